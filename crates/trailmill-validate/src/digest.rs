//! The digest file model and the string CloudTrail signs.
//!
//! A digest file is a gzip-compressed JSON object that CloudTrail delivers
//! every hour per trail and region. It lists the log files delivered in its
//! period (`logFiles`, possibly empty), with their SHA-256 hashes, and links
//! to the previous digest (`previousDigest*`, all null for the first digest of
//! a chain). Its signature (S3 metadata) covers [`signing_string`].

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// One log file a digest vouches for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFileRef {
    /// The bucket the log file was delivered to.
    pub s3_bucket: String,
    /// The log file's key.
    pub s3_object: String,
    /// Hex SHA-256 of the log file's uncompressed bytes.
    pub hash_value: String,
    /// The hash algorithm, `SHA-256`.
    #[serde(default)]
    pub hash_algorithm: Option<String>,
    /// The newest event time in the file.
    #[serde(default)]
    pub newest_event_time: Option<String>,
    /// The oldest event time in the file (may precede the digest's start:
    /// late deliveries).
    #[serde(default)]
    pub oldest_event_time: Option<String>,
}

/// A parsed digest file, with every field CloudTrail writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    /// The account the trail logs.
    #[serde(default)]
    pub aws_account_id: Option<String>,
    /// Start of the period the digest covers (ISO-8601).
    pub digest_start_time: String,
    /// End of the period the digest covers (ISO-8601); part of the signed string.
    pub digest_end_time: String,
    /// The bucket the digest was delivered to; must be where it is found.
    #[serde(rename = "digestS3Bucket")]
    pub digest_s3_bucket: String,
    /// The key the digest was delivered to; must be where it is found.
    #[serde(rename = "digestS3Object")]
    pub digest_s3_object: String,
    /// The newest event time over the digest's log files, or null.
    #[serde(default)]
    pub newest_event_time: Option<String>,
    /// The oldest event time over the digest's log files, or null.
    #[serde(default)]
    pub oldest_event_time: Option<String>,
    /// The previous digest's bucket; null for a starting digest.
    #[serde(default, rename = "previousDigestS3Bucket")]
    pub previous_digest_s3_bucket: Option<String>,
    /// The previous digest's key; null for a starting digest.
    #[serde(default, rename = "previousDigestS3Object")]
    pub previous_digest_s3_object: Option<String>,
    /// Hex SHA-256 of the previous digest's uncompressed bytes.
    #[serde(default)]
    pub previous_digest_hash_value: Option<String>,
    /// The algorithm of `previousDigestHashValue`, `SHA-256`.
    #[serde(default)]
    pub previous_digest_hash_algorithm: Option<String>,
    /// The previous digest's signature (hex); part of the signed string.
    #[serde(default)]
    pub previous_digest_signature: Option<String>,
    /// Hex MD5 of the DER public key that verifies this digest.
    pub digest_public_key_fingerprint: String,
    /// The signature algorithm, `SHA256withRSA`.
    #[serde(default)]
    pub digest_signature_algorithm: Option<String>,
    /// The log files delivered in the period (empty for an empty digest).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub log_files: Vec<LogFileRef>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<LogFileRef>, D::Error> {
    Ok(Option::<Vec<LogFileRef>>::deserialize(d)?.unwrap_or_default())
}

impl Digest {
    /// Parses a digest from its uncompressed JSON bytes, or says why it is
    /// not a well-formed digest.
    pub fn parse(uncompressed: &[u8]) -> Result<Digest, String> {
        serde_json::from_slice(uncompressed).map_err(|e| e.to_string())
    }

    /// Builds a digest from already-parsed JSON.
    pub fn from_value(v: &Value) -> Result<Digest, String> {
        Digest::deserialize(v).map_err(|e| e.to_string())
    }

    /// True for the first digest of a chain: no previous digest link.
    pub fn is_starting(&self) -> bool {
        self.previous_digest_s3_bucket.is_none() || self.previous_digest_s3_object.is_none()
    }

    /// The string CloudTrail signed for this digest, given the digest's own
    /// uncompressed bytes.
    pub fn signing_string(&self, uncompressed: &[u8]) -> String {
        signing_string(
            &self.digest_end_time,
            &self.digest_s3_bucket,
            &self.digest_s3_object,
            uncompressed,
            self.previous_digest_signature.as_deref(),
        )
    }
}

/// The string CloudTrail signs:
/// `digestEndTime \n digestS3Bucket/digestS3Object \n hex(SHA-256(uncompressed)) \n previousDigestSignature`,
/// with a null previous signature written as the text `null`.
pub fn signing_string(
    end_time: &str,
    s3_bucket: &str,
    s3_object: &str,
    uncompressed: &[u8],
    previous_signature: Option<&str>,
) -> String {
    let hash = hex::encode(Sha256::digest(uncompressed));
    format!(
        "{end_time}\n{s3_bucket}/{s3_object}\n{hash}\n{}",
        previous_signature.unwrap_or("null")
    )
}

/// The signing string from raw JSON values, rendering non-strings as Python's
/// `str()` would (so that malformed digests fail exactly as in the CLI).
pub(crate) fn signing_string_from_json(v: &Value, uncompressed: &[u8]) -> String {
    let prev = match v.get("previousDigestSignature") {
        None | Some(Value::Null) => "null".to_string(),
        Some(other) => py_str(other),
    };
    let field = |name: &str| v.get(name).map_or_else(|| "None".to_string(), py_str);
    signing_string(
        &field("digestEndTime"),
        &field("digestS3Bucket"),
        &field("digestS3Object"),
        uncompressed,
        Some(&prev),
    )
}

/// Python's `str()` of a JSON value (close enough for scalars).
pub(crate) fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// Hex SHA-256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = r#"{
      "awsAccountId": "111122223333",
      "digestStartTime": "2024-01-01T00:00:00Z",
      "digestEndTime": "2024-01-01T01:00:00Z",
      "digestS3Bucket": "bkt",
      "digestS3Object": "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/01/01/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20240101T010000Z.json.gz",
      "digestPublicKeyFingerprint": "abc",
      "digestSignatureAlgorithm": "SHA256withRSA",
      "newestEventTime": "2024-01-01T00:59:00Z",
      "oldestEventTime": "2023-12-31T23:58:00Z",
      "previousDigestS3Bucket": "bkt",
      "previousDigestS3Object": "prev.json.gz",
      "previousDigestHashValue": "00",
      "previousDigestHashAlgorithm": "SHA-256",
      "previousDigestSignature": "beef",
      "logFiles": [{"s3Bucket":"bkt","s3Object":"log.json.gz","hashValue":"ff","hashAlgorithm":"SHA-256",
                    "newestEventTime":"2024-01-01T00:59:00Z","oldestEventTime":"2023-12-31T23:58:00Z"}]
    }"#;

    #[test]
    fn parses_every_field() {
        let d = Digest::parse(DIGEST.as_bytes()).unwrap();
        assert_eq!(d.aws_account_id.as_deref(), Some("111122223333"));
        assert_eq!(d.digest_s3_bucket, "bkt");
        assert_eq!(d.previous_digest_signature.as_deref(), Some("beef"));
        assert_eq!(d.previous_digest_hash_algorithm.as_deref(), Some("SHA-256"));
        assert_eq!(
            d.digest_signature_algorithm.as_deref(),
            Some("SHA256withRSA")
        );
        assert_eq!(d.oldest_event_time.as_deref(), Some("2023-12-31T23:58:00Z"));
        assert_eq!(d.log_files.len(), 1);
        assert_eq!(d.log_files[0].hash_value, "ff");
        assert_eq!(
            d.log_files[0].oldest_event_time.as_deref(),
            Some("2023-12-31T23:58:00Z")
        );
        assert!(!d.is_starting());
        // Round trip through serde keeps the CloudTrail field names.
        let again = Digest::from_value(&serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(again, d);
    }

    #[test]
    fn empty_and_starting_digests_are_valid_models() {
        let v = serde_json::json!({
            "digestStartTime": "a", "digestEndTime": "b", "digestS3Bucket": "c", "digestS3Object": "d",
            "digestPublicKeyFingerprint": "e", "previousDigestS3Bucket": null, "previousDigestS3Object": null,
            "previousDigestHashValue": null, "previousDigestHashAlgorithm": null, "previousDigestSignature": null,
            "newestEventTime": null, "oldestEventTime": null, "logFiles": []
        });
        let d = Digest::from_value(&v).unwrap();
        assert!(d.is_starting());
        assert!(d.log_files.is_empty());
        let mut v2 = v.clone();
        v2["logFiles"] = Value::Null;
        assert!(Digest::from_value(&v2).unwrap().log_files.is_empty());
        let mut v3 = v;
        v3["digestS3Bucket"] = serde_json::json!(5);
        assert!(Digest::from_value(&v3).is_err());
    }

    #[test]
    fn signing_string_is_cloudtrails() {
        let d = Digest::parse(DIGEST.as_bytes()).unwrap();
        let s = d.signing_string(DIGEST.as_bytes());
        let hash = sha256_hex(DIGEST.as_bytes());
        assert_eq!(
            s,
            format!(
                "2024-01-01T01:00:00Z\nbkt/{}\n{hash}\nbeef",
                d.digest_s3_object
            )
        );
        assert_eq!(
            signing_string("e", "b", "o", b"", None),
            "e\nb/o\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nnull"
        );
        let v: Value = serde_json::from_str(DIGEST).unwrap();
        assert_eq!(signing_string_from_json(&v, DIGEST.as_bytes()), s);
        let odd =
            serde_json::json!({"digestEndTime": null, "digestS3Bucket": true, "digestS3Object": 5});
        assert_eq!(
            signing_string_from_json(&odd, b""),
            format!("None\nTrue/5\n{}\nnull", sha256_hex(b""))
        );
    }
}
