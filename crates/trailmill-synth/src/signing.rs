//! The trail's signing key, the digest signing string, and `keys.json`.
//!
//! CloudTrail signs each digest with an RSA key whose public half it publishes
//! through `ListPublicKeys`. The signature covers the *signing string* built by
//! [`signing_string`], and is stored (hex) in the digest object's
//! `x-amz-meta-signature`; here it goes to the sidecar file `KEY.sig`.

use md5::{Digest as _, Md5};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

use crate::SynthError;

/// The size of generated keys, as CloudTrail uses.
pub const KEY_BITS: usize = 2048;

/// The RSA private key that signs a synthetic trail's digests.
///
/// Deterministic: [`SigningKey::generate`] with the same seed gives the same key.
/// The public half is published in `keys.json`; the private half is written to
/// `synth-signing-key.der` so tests can re-sign digests they tamper with.
#[derive(Clone)]
pub struct SigningKey {
    key: RsaPrivateKey,
    signer: rsa::pkcs1v15::SigningKey<Sha256>,
    private_der: Vec<u8>,
    public_der: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates an RSA-2048 key from a ChaCha20 RNG seeded with `seed`.
    pub fn generate(seed: u64) -> Result<Self, SynthError> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = RsaPrivateKey::new(&mut rng, KEY_BITS).map_err(|e| SynthError::Key {
            reason: format!("cannot generate an RSA-{KEY_BITS} key: {e}"),
        })?;
        Self::from_key(key)
    }

    /// Reads a PKCS#1 DER `RSAPrivateKey` (the format of `synth-signing-key.der`).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, SynthError> {
        let key = RsaPrivateKey::from_pkcs1_der(der).map_err(|e| SynthError::Key {
            reason: format!("not a PKCS#1 DER RSA private key: {e}"),
        })?;
        Self::from_key(key)
    }

    fn from_key(key: RsaPrivateKey) -> Result<Self, SynthError> {
        let private_der = key
            .to_pkcs1_der()
            .map_err(|e| SynthError::Key {
                reason: format!("cannot encode the private key: {e}"),
            })?
            .as_bytes()
            .to_vec();
        let public_der = RsaPublicKey::from(&key)
            .to_pkcs1_der()
            .map_err(|e| SynthError::Key {
                reason: format!("cannot encode the public key: {e}"),
            })?
            .into_vec();
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone());
        Ok(SigningKey {
            key,
            signer,
            private_der,
            public_der,
        })
    }

    /// The private key as PKCS#1 DER (`RSAPrivateKey`).
    pub fn to_pkcs1_der(&self) -> Vec<u8> {
        self.private_der.clone()
    }

    /// The public key as PKCS#1 DER (`RSAPublicKey`), the bytes CloudTrail
    /// publishes base64-encoded as a public key's `Value`.
    pub fn public_der(&self) -> Vec<u8> {
        self.public_der.clone()
    }

    /// The key's fingerprint: the hex MD5 of [`SigningKey::public_der`], as in
    /// `digestPublicKeyFingerprint` and `ListPublicKeys`' `Fingerprint`.
    pub fn fingerprint(&self) -> String {
        hex::encode(Md5::digest(&self.public_der))
    }

    /// The wrapped RSA key.
    pub fn rsa(&self) -> &RsaPrivateKey {
        &self.key
    }
}

/// The string CloudTrail signs for a digest:
///
/// ```text
/// digestEndTime \n digestS3Bucket/digestS3Object \n hex(SHA-256(uncompressed digest)) \n previousDigestSignature
/// ```
///
/// `previous_signature` is `None` for the first digest of a chain, which signs
/// the literal text `null`.
pub fn signing_string(
    digest_end_time: &str,
    bucket: &str,
    object_key: &str,
    uncompressed_digest: &[u8],
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{digest_end_time}\n{bucket}/{object_key}\n{}\n{}",
        hex::encode(<Sha256 as sha2::Digest>::digest(uncompressed_digest)),
        previous_signature.unwrap_or("null")
    )
}

/// Signs `signing_string` with RSA PKCS#1 v1.5 and SHA-256 (`SHA256withRSA`)
/// and returns the signature in hex, as S3's `x-amz-meta-signature` holds it.
pub fn sign_digest(key: &SigningKey, signing_string: &str) -> String {
    hex::encode(key.signer.sign(signing_string.as_bytes()).to_bytes())
}

/// True when `signature_hex` is a valid `SHA256withRSA` signature of
/// `signing_string` under the PKCS#1 DER public key `public_der`.
pub fn verify_signature(public_der: &[u8], signing_string: &str, signature_hex: &str) -> bool {
    use rsa::pkcs1::DecodeRsaPublicKey;
    let Ok(public) = RsaPublicKey::from_pkcs1_der(public_der) else {
        return false;
    };
    let Ok(bytes) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let Ok(signature) = Signature::try_from(bytes.as_slice()) else {
        return false;
    };
    VerifyingKey::<Sha256>::new(public)
        .verify(signing_string.as_bytes(), &signature)
        .is_ok()
}

/// The JSON of `aws cloudtrail list-public-keys` (AWS CLI v1 output) for one key.
///
/// Validity times are epoch seconds as JSON numbers (`1704067200.0`), exactly
/// what CLI v1 prints for CloudTrail timestamps; the AWS CLI's validator only
/// reads `Fingerprint` and `Value`.
pub(crate) fn keys_json(
    key: &SigningKey,
    valid_from: i64,
    valid_to: i64,
) -> Result<Vec<u8>, serde_json::Error> {
    use base64::Engine as _;

    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct PublicKey {
        validity_start_time: f64,
        validity_end_time: f64,
        value: String,
        fingerprint: String,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct List {
        public_key_list: [PublicKey; 1],
    }
    let doc = List {
        public_key_list: [PublicKey {
            validity_start_time: valid_from as f64,
            validity_end_time: valid_to as f64,
            value: base64::engine::general_purpose::STANDARD.encode(&key.public_der),
            fingerprint: key.fingerprint(),
        }],
    };
    let mut out = serde_json::to_vec_pretty(&doc)?;
    out.push(b'\n');
    Ok(out)
}
