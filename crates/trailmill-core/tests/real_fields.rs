//! The typed fields of every event in the bundled real datasets
//! (`fixtures/real`) equal what an independent parser, serde_json, reads from
//! the event's exact bytes, on the whole-file path and on the streaming path.
//!
//! This pins the decoder's on-demand walk over its JSON index on real records:
//! which member is which, nested views, free-form objects kept as written
//! (a third of these files hold escape sequences, all of them in free-form
//! values), and unknown fields. Unescaping typed fields is pinned by the
//! decoder's own tests (`typed_views_are_unescaped_and_free_form_fields_are_exact`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use trailmill_core::event::KNOWN_FIELDS;
use trailmill_core::{DecodeOptions, Decoder, Event};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a fixtures folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.to_string_lossy().ends_with(".json") {
            out.push(path);
        }
    }
}

/// Field names and values, as text: what the test compares.
type Fields = Vec<(String, Option<String>)>;

/// What a test compares of one event: every typed field, as text.
fn typed(e: &Event<'_>) -> Fields {
    let s = |name: &str, v: Option<&str>| (name.to_owned(), v.map(str::to_owned));
    let raw = |name: &str, v: Option<trailmill_core::RawJson<'_>>| {
        (name.to_owned(), v.map(|r| r.as_str().to_owned()))
    };
    let ui = e.user_identity();
    let ctx = ui.and_then(|u| u.session_context);
    let mut out = vec![
        s("eventVersion", e.event_version),
        s("eventTime", e.event_time),
        s("eventSource", e.event_source),
        s("eventName", e.event_name),
        s("awsRegion", e.aws_region),
        s("sourceIPAddress", e.source_ip_address),
        s("userAgent", e.user_agent),
        s("errorCode", e.error_code),
        s("errorMessage", e.error_message),
        s("requestID", e.request_id),
        s("eventID", e.event_id),
        s("eventType", e.event_type),
        s("apiVersion", e.api_version),
        s("recipientAccountId", e.recipient_account_id),
        s("sharedEventID", e.shared_event_id),
        s("vpcEndpointId", e.vpc_endpoint_id),
        s("eventCategory", e.event_category),
        s(
            "sessionCredentialFromConsole",
            e.session_credential_from_console,
        ),
        ("readOnly".into(), e.read_only.map(|b| b.to_string())),
        (
            "managementEvent".into(),
            e.management_event.map(|b| b.to_string()),
        ),
        raw("requestParameters", e.request_parameters),
        raw("responseElements", e.response_elements),
        raw("additionalEventData", e.additional_event_data),
        raw("serviceEventDetails", e.service_event_details),
        raw("userIdentity", ui.and_then(|u| u.raw)),
        s("userIdentity.type", ui.and_then(|u| u.identity_type)),
        s("userIdentity.principalId", ui.and_then(|u| u.principal_id)),
        s("userIdentity.arn", ui.and_then(|u| u.arn)),
        s("userIdentity.accountId", ui.and_then(|u| u.account_id)),
        s("userIdentity.accessKeyId", ui.and_then(|u| u.access_key_id)),
        s("userIdentity.userName", ui.and_then(|u| u.user_name)),
        s("userIdentity.invokedBy", ui.and_then(|u| u.invoked_by)),
        s(
            "sessionContext.creationDate",
            ctx.and_then(|c| c.creation_date),
        ),
        s(
            "sessionContext.mfaAuthenticated",
            ctx.and_then(|c| c.mfa_authenticated),
        ),
        s(
            "sessionIssuer.arn",
            ctx.and_then(|c| c.session_issuer).and_then(|i| i.arn),
        ),
        raw("tlsDetails", e.tls_details_raw()),
        s(
            "tlsDetails.tlsVersion",
            e.tls_details().and_then(|t| t.tls_version),
        ),
        raw("resources", e.resources_raw()),
    ];
    for (i, r) in e.resources().enumerate() {
        out.push(s(&format!("resources[{i}].ARN"), r.arn));
        out.push(s(&format!("resources[{i}].type"), r.resource_type));
    }
    for (k, v) in e.unknown_fields() {
        out.push(raw(&format!("unknown {k}"), Some(v)));
    }
    out
}

/// The same fields, as serde_json reads them from the record's text.
fn expected(record: &Value) -> Fields {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let boolean = |v: Option<&Value>| match v {
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(Value::String(s)) if s == "true" || s == "false" => Some(s.clone()),
        _ => None,
    };
    // Free-form values are compared as values: the decoder hands out their
    // exact text, which serde_json then reads back (see `normalise`).
    let value = |v: Option<&Value>| v.filter(|v| !v.is_null()).map(Value::to_string);
    let at = |path: &str| record.pointer(path);
    let mut out = Vec::new();
    for name in [
        "eventVersion",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "errorCode",
        "errorMessage",
        "requestID",
        "eventID",
        "eventType",
        "apiVersion",
        "recipientAccountId",
        "sharedEventID",
        "vpcEndpointId",
        "eventCategory",
        "sessionCredentialFromConsole",
    ] {
        out.push((name.to_owned(), text(record.get(name))));
    }
    out.push(("readOnly".into(), boolean(record.get("readOnly"))));
    out.push((
        "managementEvent".into(),
        boolean(record.get("managementEvent")),
    ));
    for name in [
        "requestParameters",
        "responseElements",
        "additionalEventData",
        "serviceEventDetails",
    ] {
        out.push((name.to_owned(), value(record.get(name))));
    }
    let ui = at("/userIdentity").filter(|v| v.is_object());
    out.push(("userIdentity".into(), ui.map(Value::to_string)));
    for (name, path) in [
        ("userIdentity.type", "/userIdentity/type"),
        ("userIdentity.principalId", "/userIdentity/principalId"),
        ("userIdentity.arn", "/userIdentity/arn"),
        ("userIdentity.accountId", "/userIdentity/accountId"),
        ("userIdentity.accessKeyId", "/userIdentity/accessKeyId"),
        ("userIdentity.userName", "/userIdentity/userName"),
        ("userIdentity.invokedBy", "/userIdentity/invokedBy"),
        (
            "sessionContext.creationDate",
            "/userIdentity/sessionContext/attributes/creationDate",
        ),
        (
            "sessionContext.mfaAuthenticated",
            "/userIdentity/sessionContext/attributes/mfaAuthenticated",
        ),
        (
            "sessionIssuer.arn",
            "/userIdentity/sessionContext/sessionIssuer/arn",
        ),
    ] {
        out.push((name.to_owned(), text(at(path))));
    }
    let tls = at("/tlsDetails").filter(|v| v.is_object());
    out.push(("tlsDetails".into(), tls.map(Value::to_string)));
    out.push((
        "tlsDetails.tlsVersion".into(),
        text(tls.and_then(|t| t.get("tlsVersion"))),
    ));
    let resources = at("/resources").filter(|v| v.is_array());
    out.push(("resources".into(), resources.map(Value::to_string)));
    for (i, r) in resources
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.is_object())
        .enumerate()
    {
        out.push((format!("resources[{i}].ARN"), text(r.get("ARN"))));
        out.push((format!("resources[{i}].type"), text(r.get("type"))));
    }
    if let Some(members) = record.as_object() {
        for (k, v) in members {
            if !KNOWN_FIELDS.contains(&k.as_str()) {
                out.push((format!("unknown {k}"), Some(v.to_string())));
            }
        }
    }
    out
}

/// The fields [`typed`] gives as exact JSON text.
const FREE_FORM: &[&str] = &[
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "serviceEventDetails",
    "userIdentity",
    "tlsDetails",
    "resources",
];

/// Free-form values come out of the decoder as exact text: read them back so
/// that they compare with serde_json's rendering of the same value.
fn normalise(fields: Fields) -> Fields {
    fields
        .into_iter()
        .map(|(k, v)| {
            let free_form = FREE_FORM.contains(&k.as_str()) || k.starts_with("unknown ");
            let v = v.map(|text| match serde_json::from_str::<Value>(&text) {
                Ok(value) if free_form => value.to_string(),
                _ => text,
            });
            (k, v)
        })
        .collect()
}

fn decode(decoder: &mut Decoder, bytes: &[u8]) -> Vec<(Vec<u8>, Fields)> {
    let mut out = Vec::new();
    decoder
        .decode(bytes, &mut |batch| {
            out.extend(batch.iter().map(|e| (e.raw.as_bytes().to_vec(), typed(e))));
            Ok(())
        })
        .expect("a real log file decodes");
    out
}

#[test]
fn typed_fields_of_real_events_match_an_independent_parser_on_both_paths() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/real");
    let mut paths = Vec::new();
    files(&root, &mut paths);
    paths.sort();
    assert!(
        paths.len() >= 80,
        "the bundled datasets are missing: {}",
        root.display()
    );
    let mut whole = Decoder::new(DecodeOptions::default());
    // A limit below every file's size sends each through the streaming path.
    let mut streamed = Decoder::new(DecodeOptions {
        whole_file_limit: 64,
        ..DecodeOptions::default()
    });
    let (mut events, mut with_escapes) = (0, 0);
    for path in &paths {
        let bytes = std::fs::read(path).expect("read a fixture");
        let got = decode(&mut whole, &bytes);
        assert_eq!(
            decode(&mut streamed, &bytes),
            got,
            "{}: the streaming path disagrees",
            path.display()
        );
        for (raw, fields) in got {
            let record: Value = serde_json::from_slice(&raw).expect("a record is JSON");
            assert_eq!(
                normalise(fields),
                expected(&record),
                "{}: event {}",
                path.display(),
                record["eventID"]
            );
            events += 1;
            with_escapes += usize::from(raw.contains(&b'\\'));
        }
    }
    assert!(events >= 3000, "only {events} events");
    assert!(
        with_escapes > 0,
        "no record with an escape sequence was checked"
    );
}
