//! The S3 client trailmill's S3 features share: configuration, the async
//! runtime, retries and counters.
//!
//! An [`S3Client`] is cheap to clone and shared by the listing planner
//! ([`crate::plan`]), the prefetching downloader ([`crate::fetch`]) and the
//! sources built on them. It owns one multi-threaded tokio runtime, so
//! callers stay synchronous: they call [`S3Client::block_on`] (or the blocking
//! methods of the types built on the client) from any thread that is not a
//! runtime thread, such as the pipeline's CPU workers.
//!
//! Configuration is the standard AWS chain (environment, profiles, SSO, IMDS,
//! `AWS_REGION`, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3`), plus
//! [`S3Options`]. The SDK's own retries are turned off: every request goes
//! through [`crate::retry`], which also retries failures while a body streams
//! (which the SDK never retries) and counts every retry in [`S3Stats`].

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::types::RequestPayer;

use crate::AwsError;
use crate::retry::RetryPolicy;

/// The region used when the configuration names none. S3 answers a request
/// signed for the wrong region with the bucket's region, which
/// [`S3Client::connect`] then switches to.
const FALLBACK_REGION: &str = "us-east-1";

/// A bucket and a key prefix, from an `s3://BUCKET[/PREFIX]` URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct S3Url {
    /// The bucket name.
    pub bucket: String,
    /// The key prefix: empty (the whole bucket) or ending in `/`. A URL's
    /// path names a folder, as with `aws s3 sync`: `s3://b/a/b` and
    /// `s3://b/a/b/` both mean the keys under `a/b/`.
    pub prefix: String,
}

impl S3Url {
    /// Parses `s3://BUCKET[/PREFIX]`; `None` for anything else.
    pub fn parse(url: &str) -> Option<S3Url> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return None;
        }
        let path = path.trim_start_matches('/');
        let prefix = if path.is_empty() || path.ends_with('/') {
            path.to_owned()
        } else {
            format!("{path}/")
        };
        Some(S3Url {
            bucket: bucket.to_owned(),
            prefix,
        })
    }

    /// True when `text` is an `s3://` URL (whether or not it is well formed).
    pub fn is_s3_url(text: &str) -> bool {
        text.starts_with("s3://")
    }

    /// The display name of the object `key` in this URL's bucket: `s3://bucket/key`.
    pub fn object_name(&self, key: &str) -> String {
        object_name(&self.bucket, key)
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// `s3://bucket/key`, the name trailmill shows for an S3 object.
pub fn object_name(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// Splits `s3://bucket/key` into bucket and key.
pub fn split_object_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

/// How trailmill talks to S3, beyond the standard AWS configuration.
#[derive(Clone, Debug)]
pub struct S3Options {
    /// Address buckets as `ENDPOINT/BUCKET/KEY` instead of
    /// `BUCKET.ENDPOINT/KEY`. Path style is also used whenever an endpoint URL
    /// is configured (`AWS_ENDPOINT_URL*`), since local and S3-compatible
    /// servers (moto, MinIO, s3s) rarely serve virtual hosts.
    pub path_style: bool,
    /// Send `x-amz-request-payer: requester` (requester-pays buckets).
    pub requester_pays: bool,
    /// Most downloads in flight at once.
    pub fetch_concurrency: usize,
    /// Most listing requests in flight at once.
    pub list_concurrency: usize,
    /// Most bytes downloaded ahead of the readers (bodies fetched or being
    /// fetched but not yet read). One download always proceeds, so a single
    /// object larger than this still works.
    pub max_bytes_in_flight: u64,
    /// How long a request may wait for its response headers, and a body
    /// stream for its next chunk, before the attempt is abandoned and retried.
    pub request_timeout: Duration,
    /// Retries with exponential backoff and jitter.
    pub retry: RetryPolicy,
    /// Threads of the async runtime that drives the requests (1 or more).
    pub io_threads: usize,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            path_style: false,
            requester_pays: false,
            fetch_concurrency: 64,
            list_concurrency: 16,
            max_bytes_in_flight: 512 << 20,
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            io_threads: 2,
        }
    }
}

/// Request, retry and byte counters of one [`S3Client`] and its clones.
#[derive(Debug, Default)]
pub struct S3Stats {
    requests: AtomicU64,
    retries: AtomicU64,
    bytes: AtomicU64,
    failures: AtomicU64,
}

/// A snapshot of [`S3Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct S3Counters {
    /// Request attempts sent (retries included).
    pub requests: u64,
    /// Attempts that failed and were retried.
    pub retries: u64,
    /// Object body bytes received by completed downloads.
    pub bytes: u64,
    /// Requests that still failed after their last attempt.
    pub failures: u64,
}

impl S3Stats {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> S3Counters {
        S3Counters {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

/// An S3 client with its runtime, options and counters. Clones share all three.
#[derive(Clone)]
pub struct S3Client {
    pub(crate) api: Api,
    runtime: Arc<tokio::runtime::Runtime>,
}

/// What tasks on the runtime use: the SDK client, the options and the
/// counters, but not the runtime itself, so that no task ever holds the last
/// reference to the runtime it runs on (dropping a runtime from one of its
/// own threads panics).
#[derive(Clone)]
pub(crate) struct Api {
    regional: Arc<Regional>,
    pub(crate) options: Arc<S3Options>,
    pub(crate) stats: Arc<S3Stats>,
}

/// The SDK client in use, switched (once) to the bucket's region when the
/// region check finds another one. The check, a `HeadBucket`, runs alongside
/// the first requests instead of before them: a request sent to the wrong
/// region only fails (S3 serves nothing from another region's endpoint), and
/// is then made again with the switched client ([`Api::switched_since`]).
struct Regional {
    current: RwLock<aws_sdk_s3::Client>,
    /// True once the region check has answered, or when there is none.
    checked: tokio::sync::watch::Sender<bool>,
}

impl Api {
    /// The SDK client for the next request.
    pub(crate) fn client(&self) -> aws_sdk_s3::Client {
        self.regional
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// After a request made with `used` failed: waits for the region check if
    /// it is still running, and tells whether the client has switched region
    /// since `used`, so that the request should be made again at once.
    pub(crate) async fn switched_since(&self, used: &aws_sdk_s3::Client) -> bool {
        let mut checked = self.regional.checked.subscribe();
        let _ = checked.wait_for(|done| *done).await;
        self.client().config().region() != used.config().region()
    }

    /// The bucket's region when S3 reports one that differs from the
    /// client's. Failures are left for the real requests to report.
    async fn bucket_region_if_other(&self, bucket: &str) -> Option<String> {
        let client = self.client();
        let current = client.config().region().map(|r| r.to_string());
        let found = match client.head_bucket().bucket(bucket).send().await {
            Ok(out) => out.bucket_region().map(str::to_owned),
            Err(e) => e
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .map(str::to_owned),
        }?;
        (Some(&found) != current.as_ref()).then_some(found)
    }

    pub(crate) fn request_payer(&self) -> Option<RequestPayer> {
        self.options
            .requester_pays
            .then_some(RequestPayer::Requester)
    }
}

impl fmt::Debug for S3Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Client")
            .field("options", self.options())
            .finish_non_exhaustive()
    }
}

impl S3Client {
    /// Loads the standard AWS configuration and builds a client.
    ///
    /// When `bucket` is given and no region is configured, or the configured
    /// one is not the bucket's, the client switches to the bucket's region
    /// (from `HeadBucket`'s `x-amz-bucket-region`), so `s3://` URLs work
    /// whatever `AWS_REGION` says. That check runs alongside the first
    /// requests, so it costs no round trip before them.
    pub fn connect(options: S3Options, bucket: Option<&str>) -> Result<S3Client, AwsError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.io_threads.max(1))
            .thread_name("trailmill-s3")
            .enable_all()
            .build()
            .map_err(|e| {
                AwsError::new("S3 setup", format!("cannot start the async runtime: {e}"))
            })?;
        let sdk = runtime.block_on(aws_config::defaults(BehaviorVersion::latest()).load());
        let path_style = options.path_style || sdk.endpoint_url().is_some();
        let region_given = sdk.region().is_some();
        let connect_timeout = options.request_timeout.min(Duration::from_secs(10));
        let build = move |region: Option<String>| {
            let mut b = aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(path_style)
                // trailmill's own loop retries (see `crate::retry`), so that
                // body streaming is retried too and every retry is counted.
                .retry_config(RetryConfig::disabled())
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(connect_timeout)
                        .build(),
                );
            match region {
                Some(r) => b = b.region(aws_sdk_s3::config::Region::new(r)),
                None if !region_given => {
                    b = b.region(aws_sdk_s3::config::Region::new(FALLBACK_REGION))
                }
                None => {}
            }
            aws_sdk_s3::Client::from_conf(b.build())
        };
        let client = S3Client {
            api: Api {
                regional: Arc::new(Regional {
                    current: RwLock::new(build(None)),
                    checked: tokio::sync::watch::Sender::new(bucket.is_none()),
                }),
                options: Arc::new(options),
                stats: Arc::new(S3Stats::default()),
            },
            runtime: Arc::new(runtime),
        };
        if let Some(bucket) = bucket {
            let (api, bucket) = (client.api.clone(), bucket.to_owned());
            client.runtime.spawn(async move {
                if let Some(region) = api.bucket_region_if_other(&bucket).await {
                    tracing::info!(bucket, region, "using the bucket's region");
                    let switched = build(Some(region));
                    *api.regional
                        .current
                        .write()
                        .unwrap_or_else(|p| p.into_inner()) = switched;
                }
                api.regional.checked.send_replace(true);
            });
        }
        Ok(client)
    }

    /// Runs `future` on the client's runtime and waits for it. Must not be
    /// called from inside the runtime (an async context).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The runtime's handle, to spawn tasks.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.handle()
    }

    /// The SDK client (in the bucket's region once the region check has
    /// answered), for operations trailmill does not wrap.
    pub fn sdk(&self) -> aws_sdk_s3::Client {
        self.api.client()
    }

    /// The options in use.
    pub fn options(&self) -> &S3Options {
        &self.api.options
    }

    /// The shared counters.
    pub fn stats(&self) -> &S3Stats {
        &self.api.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_and_a_folder() {
        let u = S3Url::parse("s3://bkt").unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("bkt", ""));
        let u = S3Url::parse("s3://bkt/a/b").unwrap();
        assert_eq!(u.prefix, "a/b/");
        assert_eq!(S3Url::parse("s3://bkt/a/b/").unwrap().prefix, "a/b/");
        assert_eq!(S3Url::parse("s3://bkt/").unwrap().prefix, "");
        assert!(S3Url::parse("s3:///x").is_none());
        assert!(S3Url::parse("/tmp/x").is_none());
        assert_eq!(u.object_name("k/x.gz"), "s3://bkt/k/x.gz");
        assert_eq!(
            split_object_name("s3://bkt/k/x.gz"),
            Some(("bkt", "k/x.gz"))
        );
        assert_eq!(split_object_name("s3://bkt/"), None);
    }
}
