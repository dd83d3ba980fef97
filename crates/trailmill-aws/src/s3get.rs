//! Plain S3 access for the queue worker and `enqueue`: a `GetObject`
//! [`ObjectFetcher`] (one request per object, the SDK's standard retries,
//! blocking the calling pipeline worker) and a flat `ListObjectsV2` listing.
//!
//! Interim: both move to the S3 source's prefetching fetcher (bounded
//! concurrency, byte bound, trailmill's retry policy) and its listing planner
//! (per account, region and day, with `StartAfter`) when those land; this
//! exists so the worker and `enqueue` run against S3 until then.

use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_sdk_s3::error::DisplayErrorContext;

use crate::AwsError;
use crate::worker::ObjectFetcher;

/// Fetches objects with `GetObject`.
#[derive(Clone)]
pub struct GetObjectFetcher {
    client: aws_sdk_s3::Client,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for GetObjectFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetObjectFetcher").finish_non_exhaustive()
    }
}

impl GetObjectFetcher {
    /// Loads the standard AWS configuration. With a custom endpoint
    /// (`AWS_ENDPOINT_URL`, a local server), path-style addressing is used,
    /// since such servers rarely resolve bucket subdomains.
    pub fn connect() -> Result<GetObjectFetcher, AwsError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("trailmill-s3get")
            .enable_all()
            .build()
            .map_err(|e| {
                AwsError::new("S3 setup", format!("cannot start the async runtime: {e}"))
            })?;
        let config = runtime.block_on(aws_config::defaults(BehaviorVersion::latest()).load());
        let mut builder = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(config.endpoint_url().is_some());
        if config.region().is_none() {
            builder = builder.region(aws_sdk_s3::config::Region::new("us-east-1"));
        }
        Ok(GetObjectFetcher {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            runtime: Arc::new(runtime),
        })
    }
}

impl GetObjectFetcher {
    /// Every object under `prefix` in `bucket`, page by page, to `emit` (key,
    /// size, ETag). Stops early when `emit` breaks.
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        emit: &mut dyn FnMut(&str, Option<u64>, Option<&str>) -> std::ops::ControlFlow<()>,
    ) -> Result<u64, AwsError> {
        let action = format!("ListObjectsV2 s3://{bucket}/{prefix}");
        self.runtime.block_on(async {
            let mut listed = 0;
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| AwsError::new(&action, DisplayErrorContext(e)))?;
                for o in page.contents() {
                    let Some(key) = o.key() else { continue };
                    listed += 1;
                    let size = o.size().and_then(|s| u64::try_from(s).ok());
                    if emit(key, size, o.e_tag()).is_break() {
                        return Ok(listed);
                    }
                }
                match page.next_continuation_token() {
                    Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
                    _ => return Ok(listed),
                }
            }
        })
    }
}

impl ObjectFetcher for GetObjectFetcher {
    fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        self.runtime.block_on(async {
            let out = self
                .client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| format!("GetObject: {}", DisplayErrorContext(e)))?;
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| format!("GetObject body: {e}"))?;
            Ok(body.into_bytes().to_vec())
        })
    }
}
