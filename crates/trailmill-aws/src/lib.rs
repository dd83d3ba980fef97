//! trailmill's AWS clients, kept out of the core crates so that decoding and
//! validation stay pure and fast to build and test: no other trailmill
//! library depends on AWS, tokio or an HTTP stack.
//!
//! # How the pieces fit
//!
//! - [`S3Client`] ([`s3`]) loads the standard AWS configuration (credential
//!   chain, profiles, region, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3`) with
//!   [`S3Options`] (path style, requester pays, concurrency, timeouts,
//!   [`RetryPolicy`]), owns the async runtime, and counts requests and
//!   retries ([`S3Stats`]). Everything below shares one client.
//! - [`Planner`] ([`plan`]) turns an [`S3Url`] and a [`ListScope`] into
//!   parallel listings by account, region and day, streamed in order
//!   ([`Listing`]); [`S3Client::list_objects`] and [`S3Client::list_dirs`]
//!   are the paged, retried listing primitives it uses.
//! - [`Fetcher`] ([`fetch`]) downloads announced objects ahead of their
//!   readers, with bounded concurrency and bytes, retrying transient
//!   failures ([`retry`]), including failures while a body streams.
//! - [`S3Source`] ([`source`]) is the pipeline's `Source` over `s3://` URLs
//!   (planner + fetcher), and [`S3Store`] ([`store`]) the validator's
//!   `ObjectStore` (digest signatures from object metadata).
//! - [`worker`] is the SQS queue worker: a pipeline `Source` fed by
//!   notifications ([`sqs`] wraps the SQS calls), with CPL's deletion
//!   semantics; [`enqueue`] announces a backfill's objects on a queue.
//! - [`SnsPublisher`] ([`sns`]) publishes `validate --follow`'s alerts to
//!   an SNS topic.
//! - [`fetch_public_keys`] reads CloudTrail's public keys, which
//!   `trailmill validate` needs online and `trailmill keys fetch` saves.
//!
//! Callers stay synchronous: each client owns a small multi-threaded tokio
//! runtime, and the blocking entry points may be called from any thread that
//! is not one of its threads.

pub mod enqueue;
pub mod fetch;
pub mod plan;
pub mod retry;
pub mod s3;
pub mod sns;
pub mod source;
pub mod sqs;
pub mod store;
pub mod upload;
pub mod worker;

pub use fetch::{FetchError, Fetched, Fetcher};
pub use plan::{Layout, ListError, ListScope, ListedObject, Listing, Planner, Service};
pub use retry::RetryPolicy;
pub use s3::{S3Client, S3Counters, S3Options, S3Stats, S3Url, object_name, split_object_name};
pub use sns::{SnsMessage, SnsPublisher};
pub use source::S3Source;
pub use sqs::{QueueCounts, SqsClient};
pub use store::S3Store;
pub use upload::S3Uploader;
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
