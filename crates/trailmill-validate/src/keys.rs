//! CloudTrail public keys and RSA signature verification.
//!
//! CloudTrail signs each digest with an RSA key it rotates over time;
//! `aws cloudtrail list-public-keys` lists them. [`PublicKeys`] loads that
//! output (times as epoch numbers, numeric strings or ISO-8601), keeps one
//! [`PublicKey`] per fingerprint, and [`verify_sha256`] checks a signature
//! with RSA PKCS#1 v1.5 and SHA-256 — and nothing else: the AWS CLI also
//! accepts MD5, SHA-1, SHA-224, SHA-384 and SHA-512 signatures, trailmill
//! does not (it only names the hash in the verdict).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use jiff::Timestamp;
use md5::{Digest as _, Md5};
use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pkcs8::DecodePublicKey;
use serde_json::Value;
use sha2::{Sha224, Sha256, Sha384, Sha512};

use crate::error::{Error, ErrorKind};
use crate::time::{epoch_seconds, parse_instant};

/// How a key's DER bytes are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyEncoding {
    /// `RSAPublicKey` (PKCS#1), as CloudTrail publishes keys.
    Pkcs1,
    /// `SubjectPublicKeyInfo` (X.509 SPKI), accepted too.
    Spki,
}

/// One public key from the keys file.
#[derive(Clone, Debug)]
pub struct PublicKey {
    /// The fingerprint as listed (`Fingerprint`), which digests name in
    /// `digestPublicKeyFingerprint`.
    pub fingerprint: String,
    /// The DER bytes (`Value`, base64-decoded).
    pub der: Vec<u8>,
    /// Start of the validity window (`ValidityStartTime`), when given.
    pub validity_start: Option<Timestamp>,
    /// End of the validity window (`ValidityEndTime`), when given.
    pub validity_end: Option<Timestamp>,
    parsed: Result<(RsaPublicKey, KeyEncoding), String>,
}

impl PublicKey {
    /// Builds a key from its listed fingerprint, DER bytes and validity window.
    pub fn new(
        fingerprint: impl Into<String>,
        der: Vec<u8>,
        validity_start: Option<Timestamp>,
        validity_end: Option<Timestamp>,
    ) -> Self {
        let parsed = parse_public_key_der(&der);
        PublicKey {
            fingerprint: fingerprint.into(),
            der,
            validity_start,
            validity_end,
            parsed,
        }
    }

    /// The RSA key and its encoding, or why the DER bytes are not an RSA public key.
    pub fn rsa(&self) -> Result<(&RsaPublicKey, KeyEncoding), &str> {
        match &self.parsed {
            Ok((k, e)) => Ok((k, *e)),
            Err(e) => Err(e),
        }
    }

    /// True when the listed fingerprint is the hex MD5 of the key's DER bytes
    /// (of the bytes as given, or of their PKCS#1 form for an SPKI key).
    pub fn fingerprint_matches(&self) -> bool {
        let listed = self.fingerprint.to_ascii_lowercase();
        if fingerprint(&self.der) == listed {
            return true;
        }
        if let Ok((key, KeyEncoding::Spki)) = &self.parsed {
            use rsa::pkcs1::EncodeRsaPublicKey;
            if let Ok(doc) = key.to_pkcs1_der() {
                return fingerprint(doc.as_bytes()) == listed;
            }
        }
        false
    }

    /// True when the validity window contains `t`, with `grace_secs` of
    /// tolerance on both edges (a missing edge is unbounded).
    pub fn valid_at(&self, t: Timestamp, grace_secs: i64) -> bool {
        let after_start = self
            .validity_start
            .is_none_or(|s| crate::time::add_secs(s, -grace_secs) <= t);
        let before_end = self
            .validity_end
            .is_none_or(|e| t <= crate::time::add_secs(e, grace_secs));
        after_start && before_end
    }
}

/// The hex MD5 of DER bytes: CloudTrail's key fingerprint.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Md5::digest(der))
}

/// Parses an RSA public key from DER: PKCS#1 `RSAPublicKey` first, then SPKI.
pub fn parse_public_key_der(der: &[u8]) -> Result<(RsaPublicKey, KeyEncoding), String> {
    match RsaPublicKey::from_pkcs1_der(der) {
        Ok(k) => Ok((k, KeyEncoding::Pkcs1)),
        Err(e1) => match RsaPublicKey::from_public_key_der(der) {
            Ok(k) => Ok((k, KeyEncoding::Spki)),
            Err(e2) => Err(format!("neither PKCS#1 ({e1}) nor SPKI ({e2})")),
        },
    }
}

/// The public keys a validation may use, by fingerprint.
#[derive(Clone, Debug, Default)]
pub struct PublicKeys {
    by_fingerprint: HashMap<String, PublicKey>,
    source: Option<PathBuf>,
}

impl PublicKeys {
    /// No keys.
    pub fn new() -> Self {
        PublicKeys::default()
    }

    /// Adds a key; a later key with the same fingerprint replaces an earlier
    /// one, as in the AWS CLI.
    pub fn insert(&mut self, key: PublicKey) {
        self.by_fingerprint.insert(key.fingerprint.clone(), key);
    }

    /// Reads a keys file (see [`PublicKeys::from_json`]).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, &e))?;
        let mut keys = Self::from_json_inner(&bytes, Some(&path.to_path_buf()))?;
        keys.source = Some(path.to_path_buf());
        Ok(keys)
    }

    /// Parses the output of `aws cloudtrail list-public-keys`:
    /// `{"PublicKeyList": [{"Value", "Fingerprint", "ValidityStartTime", "ValidityEndTime"}]}`
    /// or the bare list. `Value` is base64 DER; times are epoch numbers,
    /// numeric strings or ISO-8601, and may be absent. A key whose `Value` is
    /// not valid base64 or DER is kept, so that digests naming it get the
    /// verdict "Unable to load PKCS #1 key".
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_json_inner(bytes, None)
    }

    fn from_json_inner(bytes: &[u8], path: Option<&PathBuf>) -> Result<Self, Error> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::keys(path, format!("not JSON: {e}")))?;
        let list = match &v {
            Value::Object(o) => o
                .get("PublicKeyList")
                .ok_or_else(|| Error::keys(path, "no PublicKeyList"))?,
            Value::Array(_) => &v,
            _ => {
                return Err(Error::keys(
                    path,
                    "expected an object with PublicKeyList or a list",
                ));
            }
        };
        let Value::Array(items) = list else {
            return Err(Error::keys(path, "PublicKeyList is not a list"));
        };
        let mut keys = PublicKeys::new();
        for (i, item) in items.iter().enumerate() {
            let field = |name: &str| item.get(name).filter(|v| !v.is_null());
            let fp = match field("Fingerprint") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(Error::keys(path, format!("key {i}: no Fingerprint string"))),
            };
            let der = match field("Value") {
                Some(Value::String(s)) => decode_base64(s).unwrap_or_default(),
                _ => {
                    return Err(Error::keys(
                        path,
                        format!("key {i} ({fp}): no Value string"),
                    ));
                }
            };
            let time = |name: &str| -> Result<Option<Timestamp>, Error> {
                match field(name) {
                    None => Ok(None),
                    Some(Value::Number(n)) => {
                        n.as_f64().and_then(epoch_seconds).map(Some).ok_or_else(|| {
                            Error::keys(path, format!("key {fp}: {name} {n} is out of range"))
                        })
                    }
                    Some(Value::String(s)) => parse_instant(s).map(Some).ok_or_else(|| {
                        Error::keys(path, format!("key {fp}: {name} {s:?} is not a time"))
                    }),
                    Some(other) => Err(Error::keys(
                        path,
                        format!("key {fp}: {name} {other} is not a time"),
                    )),
                }
            };
            let (start, end) = (time("ValidityStartTime")?, time("ValidityEndTime")?);
            keys.insert(PublicKey::new(fp, der, start, end));
        }
        Ok(keys)
    }

    /// The key with this fingerprint (exact match, as the CLI looks it up).
    pub fn get(&self, fingerprint: &str) -> Option<&PublicKey> {
        self.by_fingerprint.get(fingerprint)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    /// The keys, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &PublicKey> {
        self.by_fingerprint.values()
    }

    /// The file the keys came from, when loaded with [`PublicKeys::load`].
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    pub(crate) fn require_some(&self) -> Result<(), Error> {
        if self.is_empty() {
            Err(Error::new(
                ErrorKind::NoPublicKeys,
                self.source.as_ref().map(|p| p.display().to_string()),
                "the public keys file lists no keys, so no digest can be verified",
            ))
        } else {
            Ok(())
        }
    }
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()
}

/// The result of checking a digest signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// A valid RSA PKCS#1 v1.5 SHA-256 signature of the message.
    Valid,
    /// A valid PKCS#1 v1.5 signature of the message, but with this other hash
    /// (which the AWS CLI accepts and trailmill rejects).
    OtherHash(&'static str),
    /// Not a signature of the message with this key.
    Invalid,
}

/// Verifies `signature` over `message` with RSA PKCS#1 v1.5 and SHA-256.
///
/// Only when that fails does it try the hashes the AWS CLI also accepts, to
/// name the one used in the verdict; such signatures are never valid here.
pub fn verify_sha256(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> SignatureCheck {
    let hashed = Sha256::digest(message);
    if key
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, signature)
        .is_ok()
    {
        return SignatureCheck::Valid;
    }
    let others: [(&'static str, &[u8], Vec<u8>); 5] = [
        (
            "MD5",
            &[
                0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05,
                0x05, 0x00, 0x04, 0x10,
            ],
            Md5::digest(message).to_vec(),
        ),
        (
            "SHA-1",
            &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ],
            sha1::Sha1::digest(message).to_vec(),
        ),
        (
            "SHA-224",
            &[
                0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x04, 0x05, 0x00, 0x04, 0x1c,
            ],
            Sha224::digest(message).to_vec(),
        ),
        (
            "SHA-384",
            &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Sha384::digest(message).to_vec(),
        ),
        (
            "SHA-512",
            &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
            Sha512::digest(message).to_vec(),
        ),
    ];
    for (name, prefix, hashed) in others {
        let scheme = Pkcs1v15Sign {
            hash_len: Some(hashed.len()),
            prefix: prefix.into(),
        };
        if key.verify(scheme, &hashed, signature).is_ok() {
            return SignatureCheck::OtherHash(name);
        }
    }
    SignatureCheck::Invalid
}

/// Decodes a hex signature as Python's `binascii.unhexlify` does, with its
/// error messages (which the AWS CLI prints verbatim).
pub fn unhexlify(s: &str) -> Result<Vec<u8>, &'static str> {
    if !s.len().is_multiple_of(2) {
        return Err("Odd-length string");
    }
    hex::decode(s).map_err(|_| "Non-hexadecimal digit found")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rsa::RsaPrivateKey;
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::EncodePublicKey;
    use std::sync::OnceLock;

    /// A deterministic 1024-bit test key (generated once per test binary).
    pub(crate) fn test_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| {
            use rsa::rand_core::SeedableRng;
            let mut rng = SplitMix::seed_from_u64(7);
            RsaPrivateKey::new(&mut rng, 1024).unwrap()
        })
    }

    /// A tiny deterministic RNG for key generation in tests.
    pub(crate) struct SplitMix(u64);
    impl rsa::rand_core::SeedableRng for SplitMix {
        type Seed = [u8; 8];
        fn from_seed(seed: [u8; 8]) -> Self {
            SplitMix(u64::from_le_bytes(seed))
        }
    }
    impl rsa::rand_core::RngCore for SplitMix {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            // splitmix64
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for chunk in dest.chunks_mut(8) {
                let v = self.next_u64().to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rsa::rand_core::CryptoRng for SplitMix {}

    pub(crate) fn pkcs1_der() -> Vec<u8> {
        test_key()
            .to_public_key()
            .to_pkcs1_der()
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    pub(crate) fn sign(prefix: &[u8], hashed: &[u8]) -> Vec<u8> {
        let scheme = Pkcs1v15Sign {
            hash_len: Some(hashed.len()),
            prefix: prefix.into(),
        };
        test_key().sign(scheme, hashed).unwrap()
    }

    pub(crate) fn sign_sha256(msg: &[u8]) -> Vec<u8> {
        test_key()
            .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg))
            .unwrap()
    }

    #[test]
    fn loads_pkcs1_and_spki_and_checks_fingerprints() {
        let pkcs1 = pkcs1_der();
        let spki = test_key()
            .to_public_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes()
            .to_vec();
        let k1 = PublicKey::new(fingerprint(&pkcs1), pkcs1.clone(), None, None);
        assert_eq!(k1.rsa().unwrap().1, KeyEncoding::Pkcs1);
        assert!(k1.fingerprint_matches());
        let k2 = PublicKey::new(fingerprint(&spki), spki.clone(), None, None);
        assert_eq!(k2.rsa().unwrap().1, KeyEncoding::Spki);
        assert!(k2.fingerprint_matches());
        // An SPKI key listed under the fingerprint of its PKCS#1 form also matches.
        assert!(PublicKey::new(fingerprint(&pkcs1), spki, None, None).fingerprint_matches());
        assert!(!PublicKey::new("00", pkcs1, None, None).fingerprint_matches());
        assert!(
            PublicKey::new("x", b"junk".to_vec(), None, None)
                .rsa()
                .is_err()
        );
    }

    #[test]
    fn parses_the_keys_file_with_all_time_forms() {
        let der = pkcs1_der();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let fp = fingerprint(&der);
        let json = format!(
            r#"{{"PublicKeyList":[
                {{"Value":"{b64}","Fingerprint":"{fp}","ValidityStartTime":1420070400,"ValidityEndTime":"1420156800"}},
                {{"Value":"{b64}","Fingerprint":"iso","ValidityStartTime":"2015-01-01T00:00:00Z","ValidityEndTime":"2015-01-02T02:00:00+02:00"}},
                {{"Value":"!!!","Fingerprint":"bad"}}
            ]}}"#
        );
        let keys = PublicKeys::from_json(json.as_bytes()).unwrap();
        assert_eq!(keys.len(), 3);
        let k = keys.get(&fp).unwrap();
        assert_eq!(k.validity_start.unwrap().as_second(), 1_420_070_400);
        assert_eq!(k.validity_end.unwrap().as_second(), 1_420_156_800);
        let iso = keys.get("iso").unwrap();
        assert_eq!(iso.validity_start, k.validity_start);
        assert_eq!(iso.validity_end, k.validity_end);
        assert!(keys.get("bad").unwrap().rsa().is_err());
        assert!(k.valid_at(Timestamp::from_second(1_420_100_000).unwrap(), 0));
        assert!(!k.valid_at(Timestamp::from_second(1_420_160_000).unwrap(), 0));
        assert!(k.valid_at(Timestamp::from_second(1_420_160_000).unwrap(), 3600));
        // A bare list works too; malformed files are errors naming the reason.
        assert_eq!(
            PublicKeys::from_json(
                format!("[{{\"Value\":\"{b64}\",\"Fingerprint\":\"f\"}}]").as_bytes()
            )
            .unwrap()
            .len(),
            1
        );
        for bad in [
            "{",
            "{}",
            "{\"PublicKeyList\":{}}",
            "[{\"Value\":\"\"}]",
            "[{\"Value\":\"\",\"Fingerprint\":\"f\",\"ValidityEndTime\":\"soon\"}]",
        ] {
            assert_eq!(
                PublicKeys::from_json(bad.as_bytes()).unwrap_err().kind(),
                &ErrorKind::PublicKeys,
                "{bad}"
            );
        }
    }

    #[test]
    fn verifies_sha256_only_and_names_other_hashes() {
        let key = test_key().to_public_key();
        let msg = b"2024-01-01T01:00:00Z\nb/k\nabc\nnull";
        assert_eq!(
            verify_sha256(&key, msg, &sign_sha256(msg)),
            SignatureCheck::Valid
        );
        assert_eq!(
            verify_sha256(&key, b"other", &sign_sha256(msg)),
            SignatureCheck::Invalid
        );
        let sha512_prefix = [
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ];
        let sig = sign(&sha512_prefix, &Sha512::digest(msg));
        assert_eq!(
            verify_sha256(&key, msg, &sig),
            SignatureCheck::OtherHash("SHA-512")
        );
        let sha1_prefix = [
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ];
        let sig = sign(&sha1_prefix, &sha1::Sha1::digest(msg));
        assert_eq!(
            verify_sha256(&key, msg, &sig),
            SignatureCheck::OtherHash("SHA-1")
        );
        assert_eq!(verify_sha256(&key, msg, &[]), SignatureCheck::Invalid);
        assert_eq!(
            verify_sha256(&key, msg, &[0xff; 300]),
            SignatureCheck::Invalid
        );
    }

    #[test]
    fn unhexlify_matches_python() {
        assert_eq!(unhexlify("0aFF").unwrap(), [10, 255]);
        assert_eq!(unhexlify("abc"), Err("Odd-length string"));
        assert_eq!(unhexlify("zz"), Err("Non-hexadecimal digit found"));
        assert_eq!(unhexlify("").unwrap(), Vec::<u8>::new());
    }
}
