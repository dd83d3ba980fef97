//! trailmill's AWS clients, kept out of the core crates so that decoding and
//! validation stay pure and fast to build and test.
//!
//! - CloudTrail's public keys ([`fetch_public_keys`]), which `trailmill
//!   validate` needs online and `trailmill keys fetch` saves for offline use.
//! - [`sqs`]: a synchronous face over the SQS calls the worker needs.
//! - [`worker`]: the queue worker, a pipeline [`Source`](trailmill_pipeline::Source)
//!   fed by SQS notifications, with CPL's deletion semantics.
//! - [`enqueue`]: S3-event-format messages announcing a backfill's objects.
//! - [`s3get`]: the worker's S3 downloads.
//!
//! The clients use the standard AWS configuration: the credential chain,
//! profiles, the region, and `AWS_ENDPOINT_URL` (or per-service variables such
//! as `AWS_ENDPOINT_URL_SQS`) for other endpoints, such as a local test
//! server. The async SDK runs on runtimes owned here, so callers stay
//! synchronous.

pub mod enqueue;
pub mod s3get;
pub mod sqs;
pub mod worker;

pub use s3get::GetObjectFetcher;
pub use sqs::{QueueCounts, SqsClient};
pub use worker::{
    MessageFilter, MessageInfo, ObjectFetcher, Progress, ProgressState, QueueReporter, QueueSource,
    QueueStats, WorkerHooks, WorkerOptions,
};

use aws_config::BehaviorVersion;
use aws_sdk_cloudtrail::primitives::DateTime;
use base64::Engine as _;
use md5::{Digest as _, Md5};
use serde_json::{Value, json};

/// A failure to talk to AWS, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {reason}")]
pub struct AwsError {
    /// What was being done, e.g. `ListPublicKeys in us-east-1`.
    pub action: String,
    /// What went wrong.
    pub reason: String,
}

impl AwsError {
    pub(crate) fn new(action: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        AwsError {
            action: action.into(),
            reason: reason.to_string(),
        }
    }
}

/// CloudTrail's public keys for `region` whose validity overlaps `start..end`
/// (Unix seconds), in the shape `aws cloudtrail list-public-keys` prints:
/// `{"PublicKeyList": [{"Value": base64 DER, "ValidityStartTime": epoch,
/// "ValidityEndTime": epoch, "Fingerprint": hex MD5}]}`. Every page is read.
///
/// A key whose fingerprint is not the MD5 of its bytes is refused: the
/// validator would reject it later anyway, and here the error names the key.
pub fn fetch_public_keys(region: &str, start: i64, end: i64) -> Result<Value, AwsError> {
    let action = format!("ListPublicKeys in {region}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AwsError::new(&action, format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .load()
            .await;
        let client = aws_sdk_cloudtrail::Client::new(&config);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .list_public_keys()
                .start_time(DateTime::from_secs(start))
                .end_time(DateTime::from_secs(end))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::new(&action, aws_sdk_cloudtrail::error::DisplayErrorContext(e)))?;
            for key in page.public_key_list() {
                let der = key.value().map(|b| b.as_ref().to_vec()).unwrap_or_default();
                let fingerprint = key.fingerprint().unwrap_or_default().to_owned();
                let computed = hex::encode(Md5::digest(&der));
                if der.is_empty() || !fingerprint.eq_ignore_ascii_case(&computed) {
                    return Err(AwsError::new(
                        &action,
                        format!("key {fingerprint:?} has no value or a fingerprint that is not its MD5 ({computed})"),
                    ));
                }
                let time = |t: Option<&DateTime>| t.map(|t| t.secs());
                keys.push(json!({
                    "Value": base64::engine::general_purpose::STANDARD.encode(&der),
                    "ValidityStartTime": time(key.validity_start_time()),
                    "ValidityEndTime": time(key.validity_end_time()),
                    "Fingerprint": fingerprint,
                }));
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(json!({ "PublicKeyList": keys }))
    })
}
