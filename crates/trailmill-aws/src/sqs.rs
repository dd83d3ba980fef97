//! A small synchronous face over the SQS API: receive, delete, change
//! visibility, send, and the queue's counts.
//!
//! The SDK is async; an [`SqsClient`] owns a small multi-thread tokio runtime
//! (two threads: the calls are network-bound and few) so that the worker's
//! background tasks (pollers, the visibility heartbeat) run while synchronous
//! callers, such as the pipeline's CPU workers, block on single calls.
//!
//! Batch calls ([`SqsClient::delete_batch`], [`SqsClient::change_visibility_batch`],
//! [`SqsClient::send_batch`]) take at most 10 entries, SQS's limit, and
//! report each entry's own failure: a batch call can succeed while some of
//! its entries fail.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};

use crate::AwsError;

/// SQS's most entries per batch call and messages per receive.
pub const MAX_BATCH: usize = 10;
/// SQS's longest long-poll wait.
pub const MAX_WAIT: Duration = Duration::from_secs(20);
/// The largest message body, and the largest total of one `SendMessageBatch`.
///
/// SQS has accepted up to 1 MiB since 2025, but older endpoints and
/// emulators still enforce 256 KiB, so trailmill stays within that.
pub const MAX_PAYLOAD: usize = 256 * 1024;

/// One received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The message ID SQS assigned.
    pub message_id: String,
    /// The handle this receipt of the message is deleted or extended with.
    pub receipt_handle: String,
    /// The body.
    pub body: String,
    /// The system attributes (`ApproximateReceiveCount`, `SentTimestamp`,
    /// `SenderId`, `ApproximateFirstReceiveTimestamp`, …) by name.
    pub attributes: HashMap<String, String>,
}

/// How a queue's messages stand, from `GetQueueAttributes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// `ApproximateNumberOfMessages`: visible, waiting to be received.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: received and not yet deleted.
    pub in_flight: u64,
    /// `ApproximateNumberOfMessagesDelayed`: sent with a delay not yet over.
    pub delayed: u64,
}

impl QueueCounts {
    /// True when the queue holds no message in any state.
    pub fn is_empty(&self) -> bool {
        self.visible == 0 && self.in_flight == 0 && self.delayed == 0
    }
}

/// The failure of one entry of a batch call: its index in the request and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryFailure {
    /// The entry's index in the slice that was sent.
    pub index: usize,
    /// True when SQS blames the request (retrying it unchanged will not help).
    pub sender_fault: bool,
    /// SQS's code and message.
    pub reason: String,
}

/// An SQS client with the runtime it runs on. Clones share both.
#[derive(Clone)]
pub struct SqsClient {
    client: aws_sdk_sqs::Client,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for SqsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsClient").finish_non_exhaustive()
    }
}

impl SqsClient {
    /// Loads the standard AWS configuration (credential chain, profiles,
    /// region, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_SQS`). When no region is
    /// configured, the one in `queue_url` (`https://sqs.REGION.amazonaws.com/…`)
    /// is used, so a queue URL alone is enough.
    pub fn connect(queue_url: &str) -> Result<SqsClient, AwsError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("trailmill-sqs")
            .enable_all()
            .build()
            .map_err(|e| {
                AwsError::new("SQS setup", format!("cannot start the async runtime: {e}"))
            })?;
        let config = runtime.block_on(aws_config::defaults(BehaviorVersion::latest()).load());
        let mut builder = aws_sdk_sqs::config::Builder::from(&config);
        if config.region().is_none() {
            let region = region_of_queue_url(queue_url).unwrap_or("us-east-1");
            builder = builder.region(aws_sdk_sqs::config::Region::new(region.to_owned()));
        }
        Ok(SqsClient {
            client: aws_sdk_sqs::Client::from_conf(builder.build()),
            runtime: Arc::new(runtime),
        })
    }

    /// Runs `future` on the client's runtime and waits for it. Must not be
    /// called from inside the runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The runtime's handle, to spawn background tasks.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.handle()
    }

    /// Long-polls `queue_url` for up to `max` messages (at most
    /// [`MAX_BATCH`]), waiting up to `wait`, and hides them for `visibility`.
    /// Every system attribute is asked for.
    pub async fn receive(
        &self,
        queue_url: &str,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, AwsError> {
        let out = self
            .client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(max.clamp(1, MAX_BATCH) as i32)
            .wait_time_seconds(secs(wait.min(MAX_WAIT)))
            .visibility_timeout(secs(visibility))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| {
                AwsError::new(
                    format!("ReceiveMessage {queue_url}"),
                    DisplayErrorContext(e),
                )
            })?;
        Ok(out
            .messages()
            .iter()
            .map(|m| ReceivedMessage {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                attributes: m
                    .attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Deletes up to [`MAX_BATCH`] messages by receipt handle; returns the
    /// entries that failed.
    pub async fn delete_batch(
        &self,
        queue_url: &str,
        receipt_handles: &[&str],
    ) -> Result<Vec<EntryFailure>, AwsError> {
        let action = format!("DeleteMessageBatch {queue_url}");
        let entries = receipt_handles
            .iter()
            .enumerate()
            .map(|(i, h)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(*h)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AwsError::new(&action, e))?;
        let out = self
            .client
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| AwsError::new(&action, DisplayErrorContext(e)))?;
        Ok(failures(out.failed()))
    }

    /// Sets the visibility timeout of up to [`MAX_BATCH`] received messages
    /// (zero makes them visible again at once); returns the entries that failed.
    pub async fn change_visibility_batch(
        &self,
        queue_url: &str,
        receipt_handles: &[&str],
        visibility: Duration,
    ) -> Result<Vec<EntryFailure>, AwsError> {
        let action = format!("ChangeMessageVisibilityBatch {queue_url}");
        let entries = receipt_handles
            .iter()
            .enumerate()
            .map(|(i, h)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(*h)
                    .visibility_timeout(secs(visibility))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AwsError::new(&action, e))?;
        let out = self
            .client
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| AwsError::new(&action, DisplayErrorContext(e)))?;
        Ok(failures(out.failed()))
    }

    /// Sends up to [`MAX_BATCH`] bodies (together within [`MAX_PAYLOAD`]);
    /// returns the entries that failed.
    pub async fn send_batch(
        &self,
        queue_url: &str,
        bodies: &[&str],
    ) -> Result<Vec<EntryFailure>, AwsError> {
        let action = format!("SendMessageBatch {queue_url}");
        let entries = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(*b)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AwsError::new(&action, e))?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| AwsError::new(&action, DisplayErrorContext(e)))?;
        Ok(failures(out.failed()))
    }

    /// The queue's approximate message counts.
    pub async fn counts(&self, queue_url: &str) -> Result<QueueCounts, AwsError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| {
                AwsError::new(
                    format!("GetQueueAttributes {queue_url}"),
                    DisplayErrorContext(e),
                )
            })?;
        let count = |name: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(QueueCounts {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }
}

/// Whole seconds for an SQS parameter (SQS takes `i32` seconds).
fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

fn failures(failed: &[BatchResultErrorEntry]) -> Vec<EntryFailure> {
    failed
        .iter()
        .map(|f| EntryFailure {
            index: f.id().parse().unwrap_or(usize::MAX),
            sender_fault: f.sender_fault(),
            reason: match f.message() {
                Some(m) => format!("{}: {m}", f.code()),
                None => f.code().to_owned(),
            },
        })
        .collect()
}

/// The region in a queue URL such as `https://sqs.eu-west-1.amazonaws.com/123/q`.
pub fn region_of_queue_url(url: &str) -> Option<&str> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut parts = host.split('.');
    (parts.next()? == "sqs").then_some(())?;
    parts.next().filter(|r| r.contains('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_an_aws_queue_url_only() {
        assert_eq!(
            region_of_queue_url("https://sqs.eu-west-1.amazonaws.com/123456789012/q"),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of_queue_url("http://127.0.0.1:4566/123456789012/q"),
            None
        );
        assert_eq!(region_of_queue_url("not a url"), None);
    }
}
