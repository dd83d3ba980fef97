//! The SQS message bodies that announce new CloudTrail log objects.
//!
//! A queue worker receives one of these shapes, as the AWS CloudTrail
//! Processing Library (CPL) does:
//!
//! | shape | body |
//! |---|---|
//! | [`Format::CloudTrailSns`] | an SNS envelope whose `Message` is the JSON text `{"s3Bucket":"…","s3ObjectKey":["…",…]}` |
//! | [`Format::CloudTrailRaw`] | that inner JSON itself (an SNS subscription with raw message delivery) |
//! | [`Format::S3EventSns`] | an SNS envelope whose `Message` is an S3 event notification `{"Records":[{"eventName":"ObjectCreated:…","s3":{…}}]}` |
//! | [`Format::S3EventSqs`] | the S3 event notification itself, sent by S3 straight to the queue |
//!
//! S3 event notifications URL-encode object keys (form encoding: `+` for a
//! space, `%XX` for other bytes); they are decoded here. CloudTrail's own
//! notification carries keys as they are. Only `ObjectCreated:*` records
//! announce objects; other S3 events (deletions, restores) are counted and
//! passed over, as CPL does.
//!
//! Two bodies announce nothing and are meant to be deleted without error:
//! CloudTrail's SNS text `CloudTrail validation message.` (sent when a trail's
//! topic is set up) and S3's `s3:TestEvent` (sent when a bucket's notification
//! configuration is saved). Anything else is an error that names the message
//! and says what was wrong, so a poison message is easy to find.
//!
//! Parsing is pure: which of the announced keys are log files (and not
//! digests or other objects) is for the caller to decide, with
//! [`crate::ObjectKey::classify`].

use serde_json::{Map, Value};

/// The text of CloudTrail's SNS validation message.
pub const VALIDATION_MESSAGE: &str = "CloudTrail validation message.";

/// Which shape a body had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// CloudTrail's notification inside an SNS envelope.
    CloudTrailSns,
    /// CloudTrail's notification delivered raw (SNS raw message delivery).
    CloudTrailRaw,
    /// An S3 event notification inside an SNS envelope.
    S3EventSns,
    /// An S3 event notification sent by S3 straight to SQS.
    S3EventSqs,
}

impl Format {
    /// A short name for logs and summaries.
    pub fn name(self) -> &'static str {
        match self {
            Format::CloudTrailSns => "cloudtrail-sns",
            Format::CloudTrailRaw => "cloudtrail-raw",
            Format::S3EventSns => "s3-event-sns",
            Format::S3EventSqs => "s3-event-sqs",
        }
    }

    fn through_sns(self) -> Format {
        match self {
            Format::CloudTrailRaw => Format::CloudTrailSns,
            Format::S3EventSqs => Format::S3EventSns,
            other => other,
        }
    }
}

/// One object a notification announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifiedObject {
    /// The bucket.
    pub bucket: String,
    /// The object key, decoded.
    pub key: String,
    /// The size in bytes, when the notification gives it (S3 events do).
    pub size: Option<u64>,
    /// The ETag, when the notification gives it (S3 events do).
    pub etag: Option<String>,
}

/// What a message body says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notification {
    /// Objects were created.
    Objects {
        /// The body's shape.
        format: Format,
        /// The announced objects, in the body's order.
        objects: Vec<NotifiedObject>,
        /// S3 event records about something other than a created object
        /// (such as `ObjectRemoved:Delete`), which announce nothing to read.
        other_events: usize,
    },
    /// CloudTrail's SNS validation message: nothing to read; delete it.
    Validation,
    /// S3's `s3:TestEvent`: nothing to read; delete it.
    TestEvent {
        /// The body's shape: [`Format::S3EventSqs`] or [`Format::S3EventSns`].
        format: Format,
    },
}

/// Why a body is not a notification this module understands.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("message {message_id}: {reason}")]
pub struct NotificationError {
    /// The SQS message ID.
    pub message_id: String,
    /// What is wrong with the body.
    pub reason: String,
}

/// Parses the body of the SQS message `message_id`.
pub fn parse(message_id: &str, body: &str) -> Result<Notification, NotificationError> {
    parse_body(body).map_err(|reason| NotificationError {
        message_id: message_id.to_owned(),
        reason,
    })
}

fn parse_body(body: &str) -> Result<Notification, String> {
    let text = body.trim();
    // With raw message delivery, CloudTrail's validation text arrives bare.
    if text == VALIDATION_MESSAGE {
        return Ok(Notification::Validation);
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("the body is not JSON ({e}): {}", excerpt(text)))?;
    let Value::Object(outer) = value else {
        return Err(format!(
            "the body is JSON but not an object: {}",
            excerpt(text)
        ));
    };
    match outer.get("Message") {
        Some(message) => parse_sns(&outer, message),
        None => parse_inner(&outer, text),
    }
}

/// An SNS envelope: `{"Type":"Notification","MessageId":…,"Message":"…",…}`.
fn parse_sns(envelope: &Map<String, Value>, message: &Value) -> Result<Notification, String> {
    let kind = envelope.get("Type").and_then(Value::as_str);
    if let Some(kind @ ("SubscriptionConfirmation" | "UnsubscribeConfirmation")) = kind {
        return Err(format!(
            "an SNS {kind}, not a notification: confirm the subscription with its SubscribeURL"
        ));
    }
    let Some(text) = message.as_str() else {
        return Err("the SNS envelope's Message is not a string".into());
    };
    let text = text.trim();
    if text == VALIDATION_MESSAGE {
        return Ok(Notification::Validation);
    }
    let inner: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "the SNS Message is neither JSON ({e}) nor CloudTrail's validation message: {}",
            excerpt(text)
        )
    })?;
    let Value::Object(inner) = inner else {
        return Err(format!(
            "the SNS Message is JSON but not an object: {}",
            excerpt(text)
        ));
    };
    if inner.contains_key("Message") {
        return Err(format!(
            "the SNS Message holds another SNS envelope: {}",
            excerpt(text)
        ));
    }
    match parse_inner(&inner, text)? {
        Notification::Objects {
            format,
            objects,
            other_events,
        } => Ok(Notification::Objects {
            format: format.through_sns(),
            objects,
            other_events,
        }),
        Notification::TestEvent { format } => Ok(Notification::TestEvent {
            format: format.through_sns(),
        }),
        Notification::Validation => Ok(Notification::Validation),
    }
}

/// A notification object without an SNS envelope around it.
fn parse_inner(obj: &Map<String, Value>, text: &str) -> Result<Notification, String> {
    if obj.contains_key("s3Bucket") || obj.contains_key("s3ObjectKey") {
        return parse_cloudtrail(obj);
    }
    if let Some(records) = obj.get("Records") {
        return parse_s3_records(records);
    }
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Notification::TestEvent {
            format: Format::S3EventSqs,
        });
    }
    Err(format!(
        "not a CloudTrail or S3 event notification (no s3Bucket, Records or s3:TestEvent): {}",
        excerpt(text)
    ))
}

/// `{"s3Bucket":"b","s3ObjectKey":["k1","k2"]}`.
fn parse_cloudtrail(obj: &Map<String, Value>) -> Result<Notification, String> {
    let bucket = obj
        .get("s3Bucket")
        .and_then(Value::as_str)
        .filter(|b| !b.is_empty())
        .ok_or("CloudTrail notification without a string s3Bucket")?;
    let keys = obj
        .get("s3ObjectKey")
        .and_then(Value::as_array)
        .ok_or("CloudTrail notification without an s3ObjectKey array")?;
    let objects = keys
        .iter()
        .enumerate()
        .map(|(i, k)| match k.as_str() {
            Some(key) if !key.is_empty() => Ok(NotifiedObject {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                size: None,
                etag: None,
            }),
            _ => Err(format!("s3ObjectKey[{i}] is not a non-empty string")),
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Notification::Objects {
        format: Format::CloudTrailRaw,
        objects,
        other_events: 0,
    })
}

/// `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":…},"object":{"key":…}}}]}`.
fn parse_s3_records(records: &Value) -> Result<Notification, String> {
    let records = records
        .as_array()
        .ok_or("S3 event notification whose Records is not an array")?;
    let mut objects = Vec::with_capacity(records.len());
    let mut other_events = 0;
    for (i, record) in records.iter().enumerate() {
        let field = |path: &str| record.pointer(path);
        let event_name = field("/eventName")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("Records[{i}] has no eventName"))?;
        if !event_name.starts_with("ObjectCreated:") {
            other_events += 1;
            continue;
        }
        let bucket = field("/s3/bucket/name")
            .and_then(Value::as_str)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| format!("Records[{i}] has no s3.bucket.name"))?;
        let encoded = field("/s3/object/key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| format!("Records[{i}] has no s3.object.key"))?;
        let key = form_decode(encoded)
            .map_err(|why| format!("Records[{i}] s3.object.key {encoded:?}: {why}"))?;
        objects.push(NotifiedObject {
            bucket: bucket.to_owned(),
            key,
            size: field("/s3/object/size").and_then(Value::as_u64),
            etag: field("/s3/object/eTag")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    Ok(Notification::Objects {
        format: Format::S3EventSqs,
        objects,
        other_events,
    })
}

/// Decodes `application/x-www-form-urlencoded` text, as S3 event
/// notifications encode keys: `+` is a space, `%XX` a byte.
pub fn form_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad escape at byte {i}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "the decoded key is not UTF-8".to_owned())
}

/// Encodes text as [`form_decode`] decodes it: what S3 puts in an event
/// notification's `s3.object.key` (unreserved characters and `/` kept, a space
/// as `+`). Used to write notifications in S3's own format.
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
            }
        }
    }
    out
}

/// The start of a body, for error messages.
fn excerpt(text: &str) -> String {
    const MAX: usize = 120;
    if text.len() <= MAX {
        return format!("{text:?}");
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG_KEY: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/01/123456789012_CloudTrail_us-east-1_20240101T0005Z_a1b2c3d4e5f6g7h8.json.gz";

    /// What CloudTrail publishes to a trail's SNS topic, as SQS delivers it.
    fn cloudtrail_sns_body() -> String {
        let message = serde_json::json!({
            "s3Bucket": "my-trail-bucket",
            "s3ObjectKey": [
                LOG_KEY,
                "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/01/01/123456789012_CloudTrail-Digest_us-east-1_main_us-east-1_20240101T010000Z.json.gz"
            ]
        })
        .to_string();
        sns_envelope(&message)
    }

    fn sns_envelope(message: &str) -> String {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "6f2b1c0e-4a5d-5b8e-9f3a-2c1d0e9b8a7f",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:cloudtrail-topic",
            "Message": message,
            "Timestamp": "2024-01-01T00:10:12.345Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLEpH+..",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:123456789012:cloudtrail-topic:0000"
        })
        .to_string()
    }

    /// An S3 event notification as S3 writes it (keys form-encoded).
    fn s3_event(key: &str, event: &str) -> String {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2024-01-01T00:10:12.345Z",
            "eventName": event,
            "userIdentity": {"principalId": "AWS:AROAEXAMPLE:regionalDeliverySession"},
            "requestParameters": {"sourceIPAddress": "10.0.0.1"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "trail-logs",
                "bucket": {"name": "my-trail-bucket", "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": "arn:aws:s3:::my-trail-bucket"},
                "object": {"key": key, "size": 2817, "eTag": "0123456789abcdef0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"}
            }
        }]})
        .to_string()
    }

    fn objects(n: Notification) -> (Format, Vec<NotifiedObject>, usize) {
        match n {
            Notification::Objects {
                format,
                objects,
                other_events,
            } => (format, objects, other_events),
            other => panic!("expected objects, got {other:?}"),
        }
    }

    #[test]
    fn cloudtrail_sns_notification_lists_every_key_as_written() {
        let (format, objs, other) = objects(parse("m1", &cloudtrail_sns_body()).unwrap());
        assert_eq!(format, Format::CloudTrailSns);
        assert_eq!(other, 0);
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].bucket, "my-trail-bucket");
        assert_eq!(objs[0].key, LOG_KEY);
        assert_eq!((objs[0].size, objs[0].etag.as_deref()), (None, None));
        assert!(objs[1].key.contains("CloudTrail-Digest"));
    }

    #[test]
    fn cloudtrail_notification_with_raw_delivery_has_no_envelope() {
        let body = format!(r#"{{"s3Bucket":"b","s3ObjectKey":["{LOG_KEY}"]}}"#);
        let (format, objs, _) = objects(parse("m1", &body).unwrap());
        assert_eq!(format, Format::CloudTrailRaw);
        assert_eq!(objs[0].key, LOG_KEY);
    }

    #[test]
    fn s3_event_straight_to_sqs_decodes_keys() {
        let key = "trail logs+2024/AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/01/123456789012_CloudTrail_us-east-1_20240101T0005Z_a1b2.json.gz";
        let body = s3_event(&form_encode(key), "ObjectCreated:Put");
        assert!(body.contains("trail+logs%2B2024/AWSLogs"), "{body}");
        let (format, objs, _) = objects(parse("m2", &body).unwrap());
        assert_eq!(format, Format::S3EventSqs);
        assert_eq!(objs[0].key, key);
        assert_eq!(objs[0].size, Some(2817));
        assert_eq!(
            objs[0].etag.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
    }

    #[test]
    fn s3_event_through_sns_is_unwrapped_and_decoded() {
        let body = sns_envelope(&s3_event(
            "a%3Db/AWSLogs/x.json.gz",
            "ObjectCreated:CompleteMultipartUpload",
        ));
        let (format, objs, _) = objects(parse("m3", &body).unwrap());
        assert_eq!(format, Format::S3EventSns);
        assert_eq!(objs[0].key, "a=b/AWSLogs/x.json.gz");
    }

    #[test]
    fn other_s3_events_announce_nothing() {
        let (_, objs, other) =
            objects(parse("m4", &s3_event(LOG_KEY, "ObjectRemoved:Delete")).unwrap());
        assert!(objs.is_empty());
        assert_eq!(other, 1);
    }

    #[test]
    fn validation_and_test_messages_are_recognised_in_every_wrapping() {
        assert_eq!(
            parse("v", &sns_envelope(VALIDATION_MESSAGE)).unwrap(),
            Notification::Validation
        );
        assert_eq!(
            parse("v", VALIDATION_MESSAGE).unwrap(),
            Notification::Validation
        );
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-01-01T00:00:00.000Z","Bucket":"my-trail-bucket","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#;
        assert_eq!(
            parse("t", test_event).unwrap(),
            Notification::TestEvent {
                format: Format::S3EventSqs
            }
        );
        assert_eq!(
            parse("t", &sns_envelope(test_event)).unwrap(),
            Notification::TestEvent {
                format: Format::S3EventSns
            }
        );
    }

    #[test]
    fn malformed_bodies_name_the_message_and_the_reason() {
        let cases = [
            ("hello", "not JSON"),
            ("[1,2]", "not an object"),
            (r#"{"foo":1}"#, "not a CloudTrail or S3 event notification"),
            (r#"{"s3Bucket":"b"}"#, "without an s3ObjectKey array"),
            (r#"{"s3Bucket":"b","s3ObjectKey":[""]}"#, "s3ObjectKey[0]"),
            (r#"{"Records":{}}"#, "Records is not an array"),
            (
                r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"}}}]}"#,
                "Records[0] has no s3.object.key",
            ),
            (
                r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a%zz"}}}]}"#,
                "bad escape",
            ),
            (r#"{"Type":"Notification","Message":7}"#, "not a string"),
            (
                r#"{"Type":"Notification","Message":"not json"}"#,
                "neither JSON",
            ),
            (
                r#"{"Type":"SubscriptionConfirmation","Message":"You have chosen to subscribe"}"#,
                "SubscriptionConfirmation",
            ),
        ];
        for (body, why) in cases {
            let e = parse("msg-42", body).unwrap_err();
            assert_eq!(e.message_id, "msg-42");
            let text = e.to_string();
            assert!(
                text.starts_with("message msg-42: ") && text.contains(why),
                "{body}: {text}"
            );
        }
    }

    #[test]
    fn form_encoding_round_trips() {
        for key in ["a b+c/%d=é", "AWSLogs/1/x.json.gz", "~._-"] {
            assert_eq!(form_decode(&form_encode(key)).unwrap(), key);
        }
        assert_eq!(form_decode("a+b%20c").unwrap(), "a b c");
        assert!(form_decode("%ff").is_err());
        assert!(form_decode("%4").is_err());
    }
}
