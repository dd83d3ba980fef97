//! The prefetching downloader: objects announced in order are fetched ahead,
//! with bounded concurrency and a bound on bytes held, and handed to
//! synchronous readers.
//!
//! ```text
//!  hint(k1), hint(k2), …  ──▶ queue ──▶ dispatcher task ──▶ up to N GETs (retried)
//!                                                              │
//!  get(k) on a CPU worker ◀── ready bodies (≤ max bytes) ◀─────┘
//! ```
//!
//! Readers are the pipeline's CPU workers (a rayon pool, often a handful of
//! threads), so a blocking GET per worker would leave the network idle while
//! they wait. A [`Fetcher`] decouples the two: the lister announces objects
//! with [`Fetcher::hint`] in the order they will be read, a dispatcher task on
//! the client's runtime keeps up to [`S3Options::fetch_concurrency`]
//! downloads running in that order while the bytes downloaded but not yet
//! read stay under [`S3Options::max_bytes_in_flight`], and [`Fetcher::get`]
//! takes a finished body (or waits for it).
//!
//! A [`Fetcher::get`] of an object that was never announced, or is still
//! queued, moves it to the head of the queue and past the byte bound, so a
//! reader never waits behind the prefetch and never deadlocks on it. Each
//! body is handed out once: a second `get` of the same object downloads it
//! again. An announced object that is never read keeps its bytes until the
//! fetcher is dropped, so callers announce only what they will read.
//!
//! Each download is one exchange (GET, then the body streamed to memory)
//! retried as a whole by [`crate::retry`], with [`S3Options::request_timeout`]
//! on the response headers and on each body chunk.
//!
//! [`S3Options::fetch_concurrency`]: crate::S3Options::fetch_concurrency
//! [`S3Options::max_bytes_in_flight`]: crate::S3Options::max_bytes_in_flight
//! [`S3Options::request_timeout`]: crate::S3Options::request_timeout

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use aws_sdk_s3::operation::get_object::GetObjectError;

use crate::retry::{Attempt, classify, describe, with_retries};
use crate::s3::{Api, S3Client, object_name};

/// Bytes reserved for an object of unknown size until its size is known.
const UNKNOWN_SIZE_RESERVE: u64 = 1 << 20;

/// A downloaded object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The body, as stored.
    pub bytes: Vec<u8>,
    /// The ETag.
    pub etag: Option<String>,
    /// User metadata (`x-amz-meta-NAME` as `NAME`, lower case).
    pub metadata: HashMap<String, String>,
}

/// Why a download failed, after its retries.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct FetchError {
    /// `s3://bucket/key`.
    pub name: String,
    /// True when S3 said the object does not exist (`NoSuchKey`, HTTP 404).
    pub not_found: bool,
    /// What went wrong, with the number of attempts when there were several.
    pub reason: String,
}

type Id = (String, String);

enum Entry {
    /// Announced, not started.
    Queued { size: Option<u64> },
    /// Downloading (its reserved bytes are counted in `State::held`).
    Running,
    /// Done, waiting for its reader.
    Ready {
        result: Result<Fetched, FetchError>,
        reserved: u64,
    },
}

#[derive(Default)]
struct State {
    /// Announced objects in order (stale ids, already started or taken, are skipped).
    queue: VecDeque<Id>,
    /// Objects a reader is waiting for, first served first.
    urgent: VecDeque<Id>,
    entries: HashMap<Id, Entry>,
    /// Bytes reserved by running downloads and held by ready bodies.
    held: u64,
    running: usize,
    closed: bool,
}

struct Inner {
    client: Api,
    state: Mutex<State>,
    /// Readers wait here for their object.
    done: Condvar,
    /// Wakes the dispatcher: new work, a finished download or a taken body.
    wake: tokio::sync::Notify,
}

/// The prefetching downloader. See the [module docs](self).
pub struct Fetcher {
    inner: Arc<Inner>,
    /// Keeps the runtime that runs the dispatcher alive as long as the
    /// fetcher: a caller may hand over its only `S3Client`, and dropping it
    /// would otherwise stop every download and leave readers waiting forever.
    _client: S3Client,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher that downloads with `client` (its options set the
    /// concurrency, byte bound, timeout and retries).
    pub fn new(client: S3Client) -> Fetcher {
        let inner = Arc::new(Inner {
            client: client.api.clone(),
            state: Mutex::new(State::default()),
            done: Condvar::new(),
            wake: tokio::sync::Notify::new(),
        });
        let dispatcher = inner.clone();
        client
            .handle()
            .spawn(async move { dispatcher.dispatch().await });
        Fetcher {
            inner,
            _client: client,
        }
    }

    /// Announces that `bucket/key` (of `size` bytes, when known) will be
    /// read, after the objects announced before it. Announcing an object
    /// already announced and not yet read does nothing.
    pub fn hint(&self, bucket: &str, key: &str, size: Option<u64>) {
        let id = (bucket.to_owned(), key.to_owned());
        let mut st = self.inner.lock();
        if st.entries.contains_key(&id) {
            return;
        }
        st.entries.insert(id.clone(), Entry::Queued { size });
        st.queue.push_back(id);
        drop(st);
        self.inner.wake.notify_one();
    }

    /// The object's bytes and metadata, waiting for its download (started
    /// now, ahead of the prefetch, if it has not started yet). Blocks the
    /// calling thread, which must not be a runtime thread.
    pub fn get(&self, bucket: &str, key: &str) -> Result<Fetched, FetchError> {
        let id = (bucket.to_owned(), key.to_owned());
        let inner = &self.inner;
        let mut st = inner.lock();
        loop {
            match st.entries.get(&id) {
                Some(Entry::Ready { .. }) => {
                    let Some(Entry::Ready { result, reserved }) = st.entries.remove(&id) else {
                        unreachable!("matched Ready above");
                    };
                    st.held -= reserved;
                    drop(st);
                    inner.wake.notify_one();
                    return result;
                }
                Some(Entry::Running) => {}
                Some(Entry::Queued { .. }) | None => {
                    if !st.urgent.contains(&id) {
                        st.entries
                            .entry(id.clone())
                            .or_insert(Entry::Queued { size: None });
                        st.urgent.push_back(id.clone());
                        inner.wake.notify_one();
                    }
                }
            }
            st = inner.done.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Bytes reserved by running downloads and held by unread bodies.
    pub fn bytes_held(&self) -> u64 {
        self.inner.lock().held
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.inner.lock().closed = true;
        self.inner.wake.notify_one();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts downloads in order while the bounds allow, until closed.
    async fn dispatch(self: Arc<Self>) {
        let options = self.client.options.clone();
        let concurrency = options.fetch_concurrency.max(1);
        loop {
            let job = {
                let mut st = self.lock();
                if st.closed {
                    return;
                }
                next_job(&mut st, concurrency, options.max_bytes_in_flight)
            };
            match job {
                Some((id, reserved)) => {
                    let this = self.clone();
                    tokio::spawn(async move {
                        let result = this.download(&id.0, &id.1).await;
                        let size = result.as_ref().map_or(0, |f| f.bytes.len() as u64);
                        let mut st = this.lock();
                        st.running -= 1;
                        // Count what the body really holds from now on.
                        st.held = st.held - reserved + size;
                        st.entries.insert(
                            id,
                            Entry::Ready {
                                result,
                                reserved: size,
                            },
                        );
                        drop(st);
                        this.done.notify_all();
                        this.wake.notify_one();
                    });
                }
                None => self.wake.notified().await,
            }
        }
    }

    /// Downloads one object, retrying transient failures.
    async fn download(&self, bucket: &str, key: &str) -> Result<Fetched, FetchError> {
        let client = &self.client;
        let timeout = client.options.request_timeout;
        let not_found = std::sync::atomic::AtomicBool::new(false);
        let result = with_retries(&client.options.retry, &client.stats, || {
            let sdk = client.client();
            let req = sdk
                .get_object()
                .bucket(bucket)
                .key(key)
                .set_request_payer(client.request_payer());
            let not_found = &not_found;
            async move {
                let out = match tokio::time::timeout(timeout, req.send()).await {
                    Err(_) => {
                        return Err(Attempt::Transient(format!(
                            "no response within {timeout:?}"
                        )));
                    }
                    Ok(Err(_)) if client.switched_since(&sdk).await => {
                        return Err(Attempt::redirected());
                    }
                    Ok(Err(e)) => {
                        let missing =
                            matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_)))
                                || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
                        not_found.store(missing, std::sync::atomic::Ordering::Relaxed);
                        return Err(if missing {
                            Attempt::Permanent(describe(e))
                        } else {
                            classify(e)
                        });
                    }
                    Ok(Ok(out)) => out,
                };
                let expected = out.content_length().and_then(|n| usize::try_from(n).ok());
                let etag = out.e_tag().map(str::to_owned);
                let metadata = out.metadata().cloned().unwrap_or_default();
                let mut body = out.body;
                let mut bytes = Vec::with_capacity(expected.unwrap_or(0));
                loop {
                    match tokio::time::timeout(timeout, body.next()).await {
                        Err(_) => {
                            return Err(Attempt::Transient(format!(
                                "body stalled for {timeout:?} after {} bytes",
                                bytes.len()
                            )));
                        }
                        Ok(None) => break,
                        Ok(Some(Ok(chunk))) => bytes.extend_from_slice(&chunk),
                        Ok(Some(Err(e))) => {
                            return Err(Attempt::Transient(format!(
                                "body read failed after {} bytes: {}",
                                bytes.len(),
                                aws_sdk_s3::error::DisplayErrorContext(e)
                            )));
                        }
                    }
                }
                if let Some(n) = expected
                    && n != bytes.len()
                {
                    return Err(Attempt::Transient(format!(
                        "body ended after {} of {n} bytes",
                        bytes.len()
                    )));
                }
                Ok(Fetched {
                    bytes,
                    etag,
                    metadata,
                })
            }
        })
        .await;
        match result {
            Ok(f) => {
                client.stats.bytes(f.bytes.len() as u64);
                Ok(f)
            }
            Err((reason, tries)) => Err(FetchError {
                name: object_name(bucket, key),
                not_found: not_found.load(std::sync::atomic::Ordering::Relaxed),
                reason: if tries > 1 {
                    format!("{reason} (after {tries} attempts)")
                } else {
                    reason
                },
            }),
        }
    }
}

/// The next download to start, with the bytes it reserves: the oldest
/// urgent object (within the concurrency only), else the oldest announced
/// one (within the concurrency and the byte bound; one download always may
/// run so an object larger than the bound still gets through).
fn next_job(st: &mut State, concurrency: usize, max_bytes: u64) -> Option<(Id, u64)> {
    if st.running >= concurrency {
        return None;
    }
    let pick = |queue: &mut VecDeque<Id>,
                entries: &HashMap<Id, Entry>,
                bounded: bool,
                held: u64,
                running: usize| {
        while let Some(id) = queue.front() {
            let size = match entries.get(id) {
                Some(Entry::Queued { size }) => size.unwrap_or(UNKNOWN_SIZE_RESERVE),
                _ => {
                    queue.pop_front(); // started or taken already
                    continue;
                }
            };
            if bounded && running > 0 && held + size > max_bytes {
                return None;
            }
            return queue.pop_front().map(|id| (id, size));
        }
        None
    };
    let (held, running) = (st.held, st.running);
    let job = pick(&mut st.urgent, &st.entries, false, held, running)
        .or_else(|| pick(&mut st.queue, &st.entries, true, held, running))?;
    st.entries.insert(job.0.clone(), Entry::Running);
    st.running += 1;
    st.held += job.1;
    Some(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(k: &str) -> Id {
        ("b".into(), k.into())
    }

    fn queued(st: &mut State, k: &str, size: u64) {
        st.entries.insert(id(k), Entry::Queued { size: Some(size) });
        st.queue.push_back(id(k));
    }

    #[test]
    fn jobs_respect_order_concurrency_and_the_byte_bound() {
        let mut st = State::default();
        for (k, n) in [("a", 60), ("b", 30), ("c", 30), ("d", 500)] {
            queued(&mut st, k, n);
        }
        assert_eq!(next_job(&mut st, 8, 100).unwrap().0, id("a"));
        assert_eq!(next_job(&mut st, 8, 100).unwrap().0, id("b"));
        assert!(
            next_job(&mut st, 8, 100).is_none(),
            "c would exceed 100 bytes"
        );
        // A reader waiting for d gets it past the bound, but not past the concurrency.
        st.urgent.push_back(id("d"));
        assert!(next_job(&mut st, 2, 100).is_none());
        assert_eq!(next_job(&mut st, 3, 100).unwrap().0, id("d"));
        assert_eq!(st.held, 590);
        assert_eq!(st.running, 3);
        // With nothing running, one download always starts.
        let mut st = State::default();
        queued(&mut st, "big", 10_000);
        assert_eq!(next_job(&mut st, 8, 100).unwrap(), (id("big"), 10_000));
    }
}
