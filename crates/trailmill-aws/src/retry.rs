//! Retries with exponential backoff and full jitter, around whole S3
//! exchanges (request, response and body).
//!
//! The SDK's retry layer is turned off for S3 (see [`crate::S3Client`]): it
//! cannot retry an error that happens while a body streams, and its retries
//! are invisible to callers. Here, each attempt is one call of an async
//! closure that does the whole exchange; a failure the attempt reports as
//! [`Attempt::Transient`] (5xx, `SlowDown`, throttling, timeouts, connection
//! resets, truncated bodies) is retried after a random delay in
//! `0..min(cap, base * 2^attempt)`, up to [`RetryPolicy::max_attempts`]; a
//! [`Attempt::Permanent`] failure (`NoSuchKey`, `AccessDenied`, …) is
//! returned at once. Every attempt and retry is counted in
//! [`crate::S3Stats`].

use std::future::Future;
use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use rand::Rng as _;

use crate::s3::S3Stats;

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry; it doubles with each retry.
    pub base_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The random delay before retry number `retry` (1 for the first retry):
    /// "full jitter", uniform in `0..=min(max_delay, base_delay * 2^(retry-1))`,
    /// which spreads clients that failed together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::thread_rng().gen_range(0..=nanos))
    }
}

/// The outcome of one failed attempt.
#[derive(Debug)]
pub enum Attempt<E> {
    /// Worth retrying: the same request may succeed later.
    Transient(E),
    /// Retrying cannot help.
    Permanent(E),
    /// The request went to another region than the bucket's, and the client
    /// has switched to the bucket's since: try again at once, without backoff.
    Redirected(E),
}

impl Attempt<String> {
    /// [`Attempt::Redirected`], for a request that went to another region
    /// than the bucket's.
    pub fn redirected() -> Self {
        Attempt::Redirected("sent to another region than the bucket's".to_owned())
    }
}

/// Runs `attempt` until it succeeds, fails permanently, or has been tried
/// `policy.max_attempts` times, sleeping [`RetryPolicy::backoff`] between
/// tries. Returns the last error with the number of attempts made.
pub async fn with_retries<T, E, F, Fut>(
    policy: &RetryPolicy,
    stats: &S3Stats,
    mut attempt: F,
) -> Result<T, (E, u32)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Attempt<E>>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        stats.request();
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(Attempt::Transient(e)) if tries < policy.max_attempts.max(1) => {
                stats.retry();
                tokio::time::sleep(policy.backoff(tries)).await;
                let _ = e;
            }
            Err(Attempt::Redirected(_)) if tries < policy.max_attempts.max(1) => {}
            Err(Attempt::Transient(e) | Attempt::Permanent(e) | Attempt::Redirected(e)) => {
                stats.failure();
                return Err((e, tries));
            }
        }
    }
}

/// Error codes S3 (and S3-compatible servers) use for "try again later".
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "PriorRequestNotComplete",
];

/// Classifies an SDK error: everything that never got a well-formed answer
/// (timeouts, connection failures and resets, truncated responses) and
/// answers with status 5xx, 408, 429 or a throttling code are transient;
/// other service errors (4xx) and requests that could not be built are not.
/// The error becomes its full text, cause chain included.
pub fn classify<E, R>(e: SdkError<E, R>) -> Attempt<String>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let transient = match &e {
        SdkError::ConstructionFailure(_) => false,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ResponseError(_) => true,
        SdkError::ServiceError(s) => {
            let status = s.raw().status_code();
            status >= 500
                || status == 408
                || status == 429
                || s.err().code().is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        _ => true,
    };
    let text = describe(e);
    if transient {
        Attempt::Transient(text)
    } else {
        Attempt::Permanent(text)
    }
}

/// An SDK error as one line: the service's code and message when there is
/// one, else the error and its causes.
pub fn describe<E, R>(e: SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HasStatus,
{
    match &e {
        SdkError::ServiceError(s) => {
            let status = s.raw().status_code();
            match (s.err().code(), s.err().message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg} (HTTP {status})"),
                (Some(code), None) => format!("{code} (HTTP {status})"),
                _ => format!("HTTP {status}: {}", DisplayErrorContext(&e)),
            }
        }
        _ => DisplayErrorContext(&e).to_string(),
    }
}

/// The HTTP status of a raw response (implemented for the SDK's response type).
pub trait HasStatus {
    /// The status code.
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_below_a_doubling_ceiling() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        for _ in 0..200 {
            assert!(p.backoff(1) <= Duration::from_millis(100));
            assert!(p.backoff(2) <= Duration::from_millis(200));
            assert!(p.backoff(3) <= Duration::from_millis(350));
            assert!(p.backoff(30) <= Duration::from_millis(350));
        }
        let distinct: std::collections::HashSet<Duration> = (0..50).map(|_| p.backoff(3)).collect();
        assert!(distinct.len() > 10, "delays are random: {distinct:?}");
    }

    #[test]
    fn retries_transient_failures_only_and_counts_them() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let stats = S3Stats::default();
        let p = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        let mut n = 0;
        let r: Result<u32, _> = rt.block_on(with_retries(&p, &stats, || {
            n += 1;
            let k = n;
            async move {
                if k < 3 {
                    Err(Attempt::Transient("reset"))
                } else {
                    Ok(k)
                }
            }
        }));
        assert_eq!(r.unwrap(), 3);
        assert_eq!(
            (stats.snapshot().requests, stats.snapshot().retries),
            (3, 2)
        );

        let r: Result<(), _> = rt.block_on(with_retries(&p, &stats, || async {
            Err(Attempt::Transient("503"))
        }));
        assert_eq!(r.unwrap_err(), ("503", 4));
        let r: Result<(), _> = rt.block_on(with_retries(&p, &stats, || async {
            Err(Attempt::Permanent("NoSuchKey"))
        }));
        assert_eq!(r.unwrap_err(), ("NoSuchKey", 1));
        let c = stats.snapshot();
        assert_eq!((c.requests, c.retries, c.failures), (3 + 4 + 1, 2 + 3, 2));
    }
}
