//! `trailmill enqueue`: announce a backfill's objects on a queue, as S3 event
//! notifications, so that any number of queue workers share the work.
//!
//! The messages are in S3's own event format (`ObjectCreated:Put` records,
//! keys form-encoded), so the workers treat them exactly like live S3
//! notifications, and CPL-based consumers understand them too. Each message
//! carries several keys ([`Packing`]), and messages go out ten at a time with
//! `SendMessageBatch`; entries SQS refuses are sent again with backoff.

use std::time::Duration;

use serde_json::json;
use trailmill_core::notification::{NotifiedObject, form_encode};

use crate::AwsError;
use crate::sqs::{MAX_BATCH, MAX_PAYLOAD, SqsClient};

/// How many keys go in one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packing {
    /// Most keys per message. A worker deletes a message once all its files
    /// are stored, so smaller messages spread better and redo less after a
    /// failure; larger ones cost fewer SQS calls.
    pub max_keys: usize,
    /// Most bytes per message body (at most [`MAX_PAYLOAD`]).
    pub max_bytes: usize,
}

impl Default for Packing {
    fn default() -> Self {
        Packing {
            max_keys: 100,
            max_bytes: 200 * 1024,
        }
    }
}

/// Builds message bodies from objects, a message at a time.
#[derive(Debug)]
pub struct Packer {
    packing: Packing,
    event_time: String,
    records: Vec<String>,
    bytes: usize,
}

/// `{"Records":[` and `]}`.
const ENVELOPE_BYTES: usize = 14;

impl Packer {
    /// A packer whose records carry `event_time` (RFC 3339).
    pub fn new(packing: Packing, event_time: String) -> Packer {
        Packer {
            packing: Packing {
                max_keys: packing.max_keys.max(1),
                max_bytes: packing.max_bytes.min(MAX_PAYLOAD),
            },
            event_time,
            records: Vec::new(),
            bytes: ENVELOPE_BYTES,
        }
    }

    /// Adds `object`; returns a finished body (with its number of keys) when
    /// the current message is full.
    pub fn push(&mut self, object: &NotifiedObject) -> Option<(String, usize)> {
        let record = self.record(object);
        let full = !self.records.is_empty()
            && (self.records.len() >= self.packing.max_keys
                || self.bytes + record.len() + 1 > self.packing.max_bytes);
        let done = if full { self.take() } else { None };
        self.bytes += record.len() + 1;
        self.records.push(record);
        done
    }

    /// The last, partly filled message, if any.
    pub fn finish(&mut self) -> Option<(String, usize)> {
        self.take()
    }

    fn take(&mut self) -> Option<(String, usize)> {
        if self.records.is_empty() {
            return None;
        }
        let n = self.records.len();
        let body = format!("{{\"Records\":[{}]}}", self.records.join(","));
        self.records.clear();
        self.bytes = ENVELOPE_BYTES;
        Some((body, n))
    }

    /// One S3 event record, as S3 writes it for a created object.
    fn record(&self, o: &NotifiedObject) -> String {
        let mut object = json!({ "key": form_encode(&o.key) });
        if let Some(size) = o.size {
            object["size"] = json!(size);
        }
        if let Some(etag) = &o.etag {
            object["eTag"] = json!(etag.trim_matches('"'));
        }
        json!({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventTime": self.event_time,
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "trailmill-enqueue"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "trailmill-enqueue",
                "bucket": {"name": o.bucket, "arn": format!("arn:aws:s3:::{}", o.bucket)},
                "object": object,
            }
        })
        .to_string()
    }
}

/// What [`send_all`] sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnqueueReport {
    /// Messages sent.
    pub messages: u64,
    /// Keys in them.
    pub keys: u64,
    /// `SendMessageBatch` calls.
    pub batches: u64,
    /// Entries sent again after SQS refused them (or the call failed).
    pub retries: u64,
}

/// Attempts per batch entry before giving up.
const ATTEMPTS: u32 = 8;

/// Sends `bodies` (each with its number of keys) to `queue_url`, up to ten
/// per `SendMessageBatch` and within SQS's payload limit per call. Failed
/// entries are retried with exponential backoff; an entry that still fails,
/// or that SQS says is malformed, ends the run with an error saying how much
/// was sent.
pub fn send_all(
    sqs: &SqsClient,
    queue_url: &str,
    bodies: impl IntoIterator<Item = (String, usize)>,
) -> Result<EnqueueReport, AwsError> {
    let mut report = EnqueueReport::default();
    let mut batch: Vec<(String, usize)> = Vec::with_capacity(MAX_BATCH);
    let mut batch_bytes = 0;
    for (body, keys) in bodies {
        if batch.len() == MAX_BATCH || (batch_bytes + body.len() > MAX_PAYLOAD && !batch.is_empty())
        {
            send_batch(sqs, queue_url, std::mem::take(&mut batch), &mut report)?;
            batch_bytes = 0;
        }
        batch_bytes += body.len();
        batch.push((body, keys));
    }
    if !batch.is_empty() {
        send_batch(sqs, queue_url, batch, &mut report)?;
    }
    Ok(report)
}

fn send_batch(
    sqs: &SqsClient,
    queue_url: &str,
    mut pending: Vec<(String, usize)>,
    report: &mut EnqueueReport,
) -> Result<(), AwsError> {
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        let bodies: Vec<&str> = pending.iter().map(|(b, _)| b.as_str()).collect();
        report.batches += 1;
        let failures = match sqs.block_on(sqs.send_batch(queue_url, &bodies)) {
            Ok(failures) => failures,
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!("{e}; retrying {} messages in {backoff:?}", pending.len());
                report.retries += pending.len() as u64;
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(e) => return Err(not_sent(e.to_string(), &pending, report)),
        };
        let failed: Vec<usize> = failures.iter().map(|f| f.index).collect();
        for (i, (_, keys)) in pending.iter().enumerate() {
            if !failed.contains(&i) {
                report.messages += 1;
                report.keys += *keys as u64;
            }
        }
        if let Some(f) = failures.iter().find(|f| f.sender_fault) {
            return Err(not_sent(
                format!("SQS refused a message: {}", f.reason),
                &pending,
                report,
            ));
        }
        if failures.is_empty() {
            return Ok(());
        }
        let reason = failures[0].reason.clone();
        pending = pending
            .into_iter()
            .enumerate()
            .filter(|(i, _)| failed.contains(i))
            .map(|(_, p)| p)
            .collect();
        if attempt == ATTEMPTS {
            return Err(not_sent(reason, &pending, report));
        }
        tracing::warn!(
            "{} messages refused ({reason}); retrying in {backoff:?}",
            pending.len()
        );
        report.retries += pending.len() as u64;
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    Ok(())
}

fn not_sent(reason: String, pending: &[(String, usize)], report: &EnqueueReport) -> AwsError {
    let keys: usize = pending.iter().map(|(_, k)| k).sum();
    AwsError::new(
        "SendMessageBatch",
        format!(
            "{reason} ({} messages with {keys} keys not sent; {} messages with {} keys sent before)",
            pending.len(),
            report.messages,
            report.keys
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailmill_core::notification::{Notification, parse};

    fn object(i: usize, key_len: usize) -> NotifiedObject {
        NotifiedObject {
            bucket: "b".into(),
            key: format!("my prefix/AWSLogs/{i:0key_len$}.json.gz"),
            size: Some(i as u64),
            etag: Some(format!("\"etag{i}\"")),
        }
    }

    fn pack(objects: &[NotifiedObject], packing: Packing) -> Vec<(String, usize)> {
        let mut packer = Packer::new(packing, "2024-01-01T00:00:00Z".into());
        let mut out: Vec<_> = objects.iter().filter_map(|o| packer.push(o)).collect();
        out.extend(packer.finish());
        out
    }

    #[test]
    fn packed_messages_parse_back_to_the_same_objects() {
        let objects: Vec<_> = (0..250).map(|i| object(i, 4)).collect();
        let bodies = pack(&objects, Packing::default());
        assert_eq!(
            bodies.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            [100, 100, 50]
        );
        let mut back = Vec::new();
        for (body, n) in &bodies {
            match parse("m", body).unwrap() {
                Notification::Objects { objects, .. } => {
                    assert_eq!(objects.len(), *n);
                    back.extend(objects);
                }
                other => panic!("{other:?}"),
            }
        }
        let expected: Vec<_> = objects
            .into_iter()
            .map(|mut o| {
                o.etag = o.etag.map(|e| e.trim_matches('"').to_owned());
                o
            })
            .collect();
        assert_eq!(back, expected);
    }

    #[test]
    fn messages_stay_within_the_byte_limit() {
        let objects: Vec<_> = (0..40).map(|i| object(i, 900)).collect();
        let packing = Packing {
            max_keys: 1000,
            max_bytes: 8 * 1024,
        };
        let bodies = pack(&objects, packing);
        assert!(bodies.len() > 1);
        assert_eq!(bodies.iter().map(|(_, n)| n).sum::<usize>(), 40);
        for (body, _) in &bodies {
            assert!(body.len() <= packing.max_bytes, "{}", body.len());
        }
    }

    #[test]
    fn nothing_packed_is_no_message() {
        assert!(pack(&[], Packing::default()).is_empty());
    }
}
