//! Publishing to an SNS topic: where `trailmill validate --follow` can send
//! its alerts (`--alerts sns:TOPIC_ARN`), for e-mail, chat or paging
//! subscriptions.

use std::future::Future;

use aws_config::BehaviorVersion;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;

use crate::AwsError;

/// Publishes messages to one topic, from synchronous code.
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    runtime: tokio::runtime::Runtime,
    topic_arn: String,
}

impl std::fmt::Debug for SnsPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsPublisher")
            .field("topic_arn", &self.topic_arn)
            .finish_non_exhaustive()
    }
}

/// One message: its text, a subject line for e-mail subscriptions, and
/// string attributes that subscriptions can filter on.
#[derive(Clone, Debug, Default)]
pub struct SnsMessage<'a> {
    /// The body.
    pub message: &'a str,
    /// The subject (at most 100 characters; longer ones are cut).
    pub subject: &'a str,
    /// `(name, value)` string attributes.
    pub attributes: &'a [(&'a str, &'a str)],
    /// For a FIFO topic (`….fifo`): the deduplication ID, so that SNS drops
    /// a message published again within its five-minute window.
    pub deduplication_id: Option<&'a str>,
}

impl SnsPublisher {
    /// Loads the standard AWS configuration (credential chain, profiles,
    /// region, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_SNS`) for `topic_arn`.
    /// When no region is configured, the ARN's is used.
    pub fn connect(topic_arn: &str) -> Result<SnsPublisher, AwsError> {
        let region = region_of_topic_arn(topic_arn).ok_or_else(|| {
            AwsError::new(
                "SNS setup",
                format!(
                    "{topic_arn:?} is not an SNS topic ARN (arn:PARTITION:sns:REGION:ACCOUNT:NAME)"
                ),
            )
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("trailmill-sns")
            .enable_all()
            .build()
            .map_err(|e| {
                AwsError::new("SNS setup", format!("cannot start the async runtime: {e}"))
            })?;
        let config = runtime.block_on(aws_config::defaults(BehaviorVersion::latest()).load());
        let mut builder = aws_sdk_sns::config::Builder::from(&config);
        if config.region().is_none() {
            builder = builder.region(aws_sdk_sns::config::Region::new(region.to_owned()));
        }
        Ok(SnsPublisher {
            client: aws_sdk_sns::Client::from_conf(builder.build()),
            runtime,
            topic_arn: topic_arn.to_owned(),
        })
    }

    /// The topic.
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// Publishes one message and waits for SNS to accept it (the SDK retries
    /// throttling and 5xx answers); returns its message ID.
    pub fn publish(&self, m: &SnsMessage<'_>) -> Result<String, AwsError> {
        self.block_on(self.publish_async(m))
    }

    async fn publish_async(&self, m: &SnsMessage<'_>) -> Result<String, AwsError> {
        let action = format!("Publish {}", self.topic_arn);
        let subject: String = m.subject.chars().take(100).collect();
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(m.message)
            .subject(subject);
        for (name, value) in m.attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(*value)
                .build()
                .map_err(|e| AwsError::new(&action, e))?;
            request = request.message_attributes(*name, value);
        }
        if self.topic_arn.ends_with(".fifo") {
            request = request.message_group_id("trailmill");
            if let Some(id) = m.deduplication_id {
                request = request.message_deduplication_id(id);
            }
        }
        let out = request
            .send()
            .await
            .map_err(|e| AwsError::new(&action, DisplayErrorContext(e)))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// The region of `arn:PARTITION:sns:REGION:ACCOUNT:NAME`.
pub fn region_of_topic_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some("sns"), Some(region), Some(_), Some(name)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    (!region.is_empty() && !name.is_empty()).then_some(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_come_from_topic_arns() {
        assert_eq!(
            region_of_topic_arn("arn:aws:sns:eu-west-1:123456789012:alerts"),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of_topic_arn("arn:aws-cn:sns:cn-north-1:123456789012:a.fifo"),
            Some("cn-north-1")
        );
        for bad in [
            "arn:aws:sqs:eu-west-1:123456789012:alerts",
            "arn:aws:sns::123456789012:alerts",
            "arn:aws:sns:eu-west-1:123456789012:",
            "alerts",
        ] {
            assert_eq!(region_of_topic_arn(bad), None, "{bad}");
        }
    }
}
