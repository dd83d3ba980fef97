//! Structured property tests for the three parsers of untrusted input in
//! trailmill-core: the log decoder, the key grammar and SQS notifications.
//!
//! Random bytes are rejected at the first byte (no gzip magic, no `{`), so
//! they test little. These generators build inputs that are valid first —
//! CloudTrail-like records in every envelope, gzip or not; real key shapes;
//! the four notification shapes — and then damage them the way files and
//! messages get damaged: byte flips, truncation at any position, inserted
//! JSON tokens, deep nesting, huge strings.
//!
//! The case count is modest for CI; `PROPTEST_CASES` overrides it (see
//! `scripts/fuzz-long.sh`). Failing seeds are kept in
//! `fuzz.proptest-regressions` beside this file and replayed first.

use std::io::Write as _;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Value, json};
use trailmill_core::key::{Extension, FileKind, FileName, KeyDate, KeyTime, Location, day_prefix};
use trailmill_core::notification::{self, Format, Notification, form_encode};
use trailmill_core::{Classified, DecodeError, DecodeOptions, Decoder, ObjectKey};

/// `cases` unless `PROPTEST_CASES` is set; regressions persisted beside this
/// file (unless `PROPTEST_DISABLE_FAILURE_PERSISTENCE` is set, for a long run
/// past a known, pinned failure).
fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    if c.failure_persistence.is_some() {
        c.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        )));
    }
    c
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

// ---------------------------------------------------------------- decoder --

/// Text that exercises escapes, multi-byte UTF-8 and JSON's own punctuation.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z0-9:/._-]{0,24}",
        8 => "\\PC{0,16}",
        2 => Just("\"}]{[,\\".to_string()),
        2 => Just("\u{0}\u{1f}\u{7f}\u{2028}é😀".to_string()),
        // A huge string: records this size are what the record limit is for.
        1 => ("[a-z\"\\\\]{1,4}", 1usize..5_000).prop_map(|(unit, n)| unit.repeat(n)),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `depth` levels of arrays and objects around a leaf.
fn nested(depth: usize, objects: bool) -> Value {
    let mut v = json!(1);
    for i in 0..depth {
        v = if objects && i % 2 == 0 {
            json!({ "k": v })
        } else {
            json!([v])
        };
    }
    v
}

/// One CloudTrail-like record: the fields the decoder types, and free-form ones.
fn arb_record() -> impl Strategy<Value = Value> {
    (
        (
            "1\\.0[0-9]",
            "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z",
        ),
        (
            text(),
            "[a-z0-9]{1,10}\\.amazonaws\\.com",
            "[a-z]{2}-[a-z]{4,9}-[0-9]",
        ),
        proptest::option::of(("[A-Za-z]{4,12}", "arn:aws:[a-z]{3}::[0-9]{12}:[a-z/]{0,20}")),
        proptest::option::of(arb_json()),
        proptest::option::of(any::<bool>()),
        proptest::collection::btree_map("[a-zA-Z]{1,12}", arb_json(), 0..3),
    )
        .prop_map(
            |((version, time), (name, source, region), identity, params, read_only, extra)| {
                let mut r = serde_json::Map::new();
                r.insert("eventVersion".into(), version.into());
                r.insert("eventTime".into(), time.into());
                r.insert("eventSource".into(), source.into());
                r.insert("eventName".into(), name.into());
                r.insert("awsRegion".into(), region.into());
                if let Some((kind, arn)) = identity {
                    r.insert("userIdentity".into(), json!({ "type": kind, "arn": arn }));
                }
                if let Some(p) = params {
                    r.insert("requestParameters".into(), p);
                }
                if let Some(b) = read_only {
                    r.insert("readOnly".into(), b.into());
                }
                for (k, v) in extra {
                    r.entry(k).or_insert(v);
                }
                Value::Object(r)
            },
        )
}

/// How records are laid out in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Envelope {
    /// `{"Records":[…]}`, as CloudTrail delivers.
    Records,
    /// `{…,"Records":[…],…}` with other members around it.
    RecordsAmongOthers,
    /// A bare array, as exports write.
    Array,
    /// JSON Lines.
    Lines,
}

/// A valid file and the exact bytes of each of its records.
#[derive(Clone)]
struct File {
    bytes: Vec<u8>,
    records: Vec<Vec<u8>>,
    envelope: Envelope,
}

/// Shrunk failures print as text, not as byte arrays.
impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File")
            .field("envelope", &self.envelope)
            .field("bytes", &String::from_utf8_lossy(&self.bytes))
            .field("records", &self.records.len())
            .finish()
    }
}

fn arb_file() -> impl Strategy<Value = File> {
    (
        proptest::collection::vec((arb_record(), any::<bool>()), 1..6),
        prop_oneof![
            Just(Envelope::Records),
            Just(Envelope::RecordsAmongOthers),
            Just(Envelope::Array),
            Just(Envelope::Lines),
        ],
        prop_oneof![Just(""), Just(" "), Just("\n  "), Just("\r\n\t")],
        any::<bool>(),
    )
        .prop_map(|(recs, envelope, ws, bom_free_lead)| {
            let records: Vec<Vec<u8>> = recs
                .iter()
                .map(|(r, pretty)| {
                    // Pretty records span lines, which JSON Lines cannot hold.
                    if *pretty && envelope != Envelope::Lines {
                        serde_json::to_vec_pretty(r).unwrap()
                    } else {
                        serde_json::to_vec(r).unwrap()
                    }
                })
                .collect();
            let mut out = Vec::new();
            if bom_free_lead {
                out.extend_from_slice(ws.as_bytes());
            }
            let join = |out: &mut Vec<u8>, sep: &str| {
                for (i, r) in records.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(sep.as_bytes());
                    }
                    out.extend_from_slice(r);
                }
            };
            match envelope {
                Envelope::Records => {
                    out.extend_from_slice(format!("{{{ws}\"Records\"{ws}:{ws}[{ws}").as_bytes());
                    join(&mut out, &format!("{ws},{ws}"));
                    out.extend_from_slice(format!("{ws}]{ws}}}").as_bytes());
                }
                Envelope::RecordsAmongOthers => {
                    out.extend_from_slice(
                        br#"{"a":"Records","b":{"Records":[1,2]},"c":[[],{}],"Records":["#,
                    );
                    join(&mut out, ",");
                    out.extend_from_slice(br#"],"z":{"Records":"no"}}"#);
                }
                Envelope::Array => {
                    out.push(b'[');
                    join(&mut out, &format!("{ws},{ws}"));
                    out.push(b']');
                }
                Envelope::Lines => {
                    join(&mut out, "\n");
                    out.push(b'\n');
                }
            }
            out.extend_from_slice(ws.as_bytes());
            File {
                bytes: out,
                records,
                envelope,
            }
        })
}

/// The whole-file decoder, and one forced to stream (tiny `whole_file_limit`).
fn decoders(batch: usize, max_record: Option<usize>) -> (Decoder, Decoder) {
    let opts = DecodeOptions {
        batch_size: batch,
        max_record_bytes: max_record.unwrap_or(64 << 20),
        // Generated files stay far below this. A damaged gzip trailer claims
        // any size up to the limit, and the whole-file path allocates what it
        // claims: at the default 64 MiB, every such case would zero 64 MiB.
        whole_file_limit: 1 << 20,
        ..DecodeOptions::default()
    };
    let streaming = DecodeOptions {
        whole_file_limit: 16,
        ..opts.clone()
    };
    (Decoder::new(opts), Decoder::new(streaming))
}

/// Decodes and returns each event's exact bytes, or the error.
fn run(d: &mut Decoder, input: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
    let mut raws = Vec::new();
    d.decode(input, &mut |batch| {
        raws.extend(batch.iter().map(|e| e.raw.as_bytes().to_vec()));
        Ok(())
    })?;
    Ok(raws)
}

/// An error is a value that says something, not a wall of input.
fn check_error(e: &DecodeError) -> Result<(), TestCaseError> {
    let msg = e.to_string();
    prop_assert!(!msg.trim().is_empty(), "empty error: {e:?}");
    prop_assert!(msg.len() < 2_000, "error message of {} bytes", msg.len());
    Ok(())
}

/// Both paths: no panic, clean errors, and the same events or both an error.
fn decode_both(
    whole: &mut Decoder,
    stream: &mut Decoder,
    input: &[u8],
) -> Result<Result<Vec<Vec<u8>>, DecodeError>, TestCaseError> {
    let a = run(whole, input);
    let b = run(stream, input);
    for e in [&a, &b].into_iter().filter_map(|r| r.as_ref().err()) {
        check_error(e)?;
    }
    match (&a, &b) {
        (Ok(x), Ok(y)) => prop_assert_eq!(x, y, "whole-file and streamed events differ"),
        (Err(_), Err(_)) => {}
        _ => prop_assert!(
            false,
            "whole-file gave {:?}, streamed gave {:?}, for {:?}",
            a.as_ref().map(Vec::len),
            b.as_ref().map(Vec::len),
            String::from_utf8_lossy(&input[..input.len().min(300)])
        ),
    }
    Ok(a)
}

/// `file` damaged in its JSON then gzipped (`where_` 0: gets past the
/// inflater), in its gzip bytes (1), or in its plain bytes (2).
fn damaged(file: &File, damage: &[Mutation], where_: u8) -> Vec<u8> {
    let mut b = if where_ == 1 {
        gz(&file.bytes)
    } else {
        file.bytes.clone()
    };
    for m in damage {
        mutate(&mut b, m);
    }
    if where_ == 0 { gz(&b) } else { b }
}

/// One way to damage a file's bytes.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, &'static str),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

/// Tokens that change JSON's structure rather than its content.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    "\\",
    ",",
    ":",
    "\n",
    "\\u",
    "\\ud800",
    "null",
    "tru",
    "1e999",
    "-",
    "0.",
    "\"Records\":",
    "{\"Records\":[",
    "\u{feff}",
    "\0",
    "\u{1}",
    "é",
    "\u{80}",
    "\"digestStartTime\":1,\"logFiles\":[],",
];

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(p, x)| Mutation::Flip(p, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Set(p, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), proptest::sample::select(TOKENS))
            .prop_map(|(p, t)| Mutation::Insert(p, t)),
        (any::<usize>(), 1usize..16).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    if len == 0 {
        if let Mutation::Insert(_, t) = m {
            bytes.extend_from_slice(t.as_bytes());
        }
        return;
    }
    match *m {
        Mutation::Flip(p, x) => bytes[p % len] ^= x,
        Mutation::Set(p, b) => bytes[p % len] = b,
        Mutation::Truncate(p) => bytes.truncate(p % len),
        Mutation::Insert(p, t) => {
            let p = p % (len + 1);
            bytes.splice(p..p, t.bytes());
        }
        Mutation::Delete(p, n) => {
            let p = p % len;
            bytes.drain(p..(p + n).min(len));
        }
        Mutation::Duplicate(p, n) => {
            let p = p % len;
            let chunk = bytes[p..(p + n).min(len)].to_vec();
            bytes.splice(p..p, chunk);
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Valid files decode to exactly their records' bytes, on both paths,
    /// gzip or not, at any batch size.
    #[test]
    fn valid_files_yield_exactly_their_records(file in arb_file(), gzip: bool, batch in 1usize..4) {
        let (mut whole, mut stream) = decoders(batch, None);
        let input = if gzip { gz(&file.bytes) } else { file.bytes.clone() };
        let got = decode_both(&mut whole, &mut stream, &input)?;
        match got {
            Ok(raws) => prop_assert_eq!(raws, file.records),
            Err(e) => prop_assert!(false, "{e} for {:?}", String::from_utf8_lossy(&file.bytes[..file.bytes.len().min(300)])),
        }
    }

    /// Damaged files (inside valid gzip, or in the gzip bytes themselves)
    /// never panic and fail with a clean error, on both paths.
    #[test]
    fn damaged_files_fail_cleanly(
        file in arb_file(),
        damage in proptest::collection::vec(arb_mutation(), 1..4),
        where_ in 0..3u8,
        small_record_limit: bool,
    ) {
        let (mut whole, mut stream) = decoders(2, small_record_limit.then_some(512));
        let input = damaged(&file, &damage, where_);
        for d in [&mut whole, &mut stream] {
            if let Err(e) = run(d, &input) {
                check_error(&e)?;
            }
        }
    }

    /// Damaged files give the same events whole and streamed, or fail on both.
    #[test]
    fn damaged_files_decode_alike_on_both_paths(
        file in arb_file(),
        damage in proptest::collection::vec(arb_mutation(), 1..4),
        where_ in 0..3u8,
    ) {
        let (mut whole, mut stream) = decoders(2, None);
        let _ = decode_both(&mut whole, &mut stream, &damaged(&file, &damage, where_))?;
    }

    /// Cutting a file anywhere gives an error or, only where a prefix is a
    /// complete file (JSON Lines, trailing whitespace), a prefix of the records.
    #[test]
    fn truncated_files_fail_or_give_a_prefix(file in arb_file(), cut in any::<proptest::sample::Index>(), gzip: bool) {
        let (mut whole, mut stream) = decoders(3, None);
        let full = if gzip { gz(&file.bytes) } else { file.bytes.clone() };
        let input = &full[..cut.index(full.len())];
        // Each path on its own: agreement is `damaged_files_decode_alike_on_both_paths`'s.
        for d in [&mut whole, &mut stream] {
            match run(d, input) {
                Ok(raws) => {
                    prop_assert!(file.records.starts_with(&raws), "not a prefix of the records");
                    if file.envelope != Envelope::Lines {
                        prop_assert_eq!(raws.len(), file.records.len(), "a truncated document decoded");
                    }
                    prop_assert!(!gzip, "a truncated gzip stream decoded");
                }
                Err(e) => check_error(&e)?,
            }
        }
    }

    /// Nesting just under the depth limit decodes; just over it fails; both paths agree.
    #[test]
    fn nesting_near_the_depth_limit(depth in 100usize..160, objects: bool, envelope in 0..3u8, gzip: bool) {
        let record = json!({ "eventVersion": "1.08", "eventTime": "2024-01-01T00:00:00Z", "requestParameters": nested(depth, objects) });
        let r = serde_json::to_string(&record).unwrap();
        let text = match envelope {
            0 => format!("{{\"Records\":[{r}]}}"),
            1 => format!("[{r}]"),
            _ => format!("{r}\n{r}\n"),
        };
        let input = if gzip { gz(text.as_bytes()) } else { text.into_bytes() };
        let (mut whole, mut stream) = decoders(1, None);
        let limit = DecodeOptions::default().max_depth;
        match decode_both(&mut whole, &mut stream, &input)? {
            // The envelope and the record add one to three levels.
            Ok(raws) => {
                prop_assert!(depth < limit, "depth {depth} decoded past the limit {limit}");
                prop_assert!(raws.iter().all(|x| x == r.as_bytes()));
            }
            Err(e) => prop_assert!(depth + 3 > limit, "depth {depth} rejected: {e}"),
        }
    }
}

// ------------------------------------------------------------------- keys --

fn segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.=-]{1,8}"
}

prop_compose! {
    /// A valid key of any kind and layout.
    fn arb_key()(
        prefix in proptest::option::of(proptest::collection::vec(segment(), 1..4)),
        org in proptest::option::of("o-[a-z0-9]{4,10}"),
        account in "[0-9a-z-]{1,14}",
        region in "[a-z]{2}-[a-z]{3,9}-[0-9]",
        home in "[a-z]{2}-[a-z]{3,9}-[0-9]",
        (year, month, day) in (1000u16..=9999, 1u8..=12, 1u8..=31),
        (hour, minute, second) in (0u8..24, 0u8..60, 0u8..60),
        kind in 0..3u8,
        unique in "[A-Za-z0-9]{1,16}",
        trail in "[A-Za-z0-9._-]{1,10}(_[A-Za-z0-9]{1,5})?",
        backfill: bool,
        gz: bool,
        elsewhere in proptest::option::of("[a-z0-9]{1,5}(/[a-z0-9]{1,5}){0,3}"),
    ) -> String {
        // Clamp the day to the month (leap years included) so the key is valid.
        let last = jiff::civil::date(year as i16, month as i8, 1).days_in_month() as u8;
        let day = day.min(last);
        let date = KeyDate { year, month, day };
        let time = KeyTime { year, month, day, hour, minute, second: (kind == 2).then_some(second) };
        let kind = match kind {
            0 => FileKind::Log { unique: &unique },
            1 => FileKind::Insight { unique: &unique },
            _ => FileKind::Digest { trail: &trail, home_region: &home, backfill },
        };
        let extension = if gz { Extension::JsonGz } else { Extension::Json };
        let file = FileName { account: &account, region: &region, kind, time, extension };
        match elsewhere {
            Some(dir) => format!("{dir}/{file}"),
            None => {
                let prefix = prefix.map(|p| p.join("/"));
                format!("{}{file}", day_prefix(prefix.as_deref(), org.as_deref(), &account, kind.folder(), &region, date))
            }
        }
    }
}

/// One way to damage a key: at a char boundary, with the grammar's own characters.
#[derive(Clone, Debug)]
enum KeyEdit {
    Replace(proptest::sample::Index, char),
    Insert(proptest::sample::Index, &'static str),
    Delete(proptest::sample::Index, usize),
    /// A digit of the time or date becomes another digit (minute 67, February 30…).
    Digit(proptest::sample::Index, char),
}

/// Pieces of the key grammar, inserted anywhere.
const KEY_TOKENS: &[&str] = &[
    "/",
    "//",
    "_",
    "__",
    "AWSLogs/",
    "o-",
    "o-/",
    "CloudTrail",
    "CloudTrail-Digest",
    "CloudTrail-Insight",
    "_backfill",
    ".json",
    ".gz",
    "..",
    "/../",
    "20240229",
    "T2460Z",
];

fn arb_key_edit() -> impl Strategy<Value = KeyEdit> {
    let c = prop_oneof![
        Just('/'),
        Just('_'),
        Just('.'),
        Just('-'),
        Just('T'),
        Just('Z'),
        Just('0'),
        Just('9'),
        Just('o'),
        Just('A'),
        Just('é'),
        Just('\0'),
        Just(' '),
        any::<char>(),
    ];
    prop_oneof![
        (any::<proptest::sample::Index>(), c).prop_map(|(i, c)| KeyEdit::Replace(i, c)),
        (
            any::<proptest::sample::Index>(),
            proptest::sample::select(KEY_TOKENS)
        )
            .prop_map(|(i, s)| KeyEdit::Insert(i, s)),
        (any::<proptest::sample::Index>(), 1usize..6).prop_map(|(i, n)| KeyEdit::Delete(i, n)),
        (
            any::<proptest::sample::Index>(),
            proptest::char::range('0', '9')
        )
            .prop_map(|(i, c)| KeyEdit::Digit(i, c)),
    ]
}

fn edit_key(key: &mut String, e: &KeyEdit) {
    let bounds: Vec<usize> = key
        .char_indices()
        .map(|(i, _)| i)
        .chain([key.len()])
        .collect();
    let at = |i: &proptest::sample::Index| bounds[i.index(bounds.len())];
    match e {
        KeyEdit::Replace(i, c) => {
            let p = at(i);
            if p < key.len() {
                let n = key[p..].chars().next().unwrap().len_utf8();
                key.replace_range(p..p + n, &c.to_string());
            }
        }
        KeyEdit::Insert(i, s) => key.insert_str(at(i), s),
        KeyEdit::Delete(i, n) => {
            let p = at(i);
            let end = key[p..]
                .char_indices()
                .nth(*n)
                .map_or(key.len(), |(j, _)| p + j);
            key.replace_range(p..end, "");
        }
        KeyEdit::Digit(i, c) => {
            let digits: Vec<usize> = key
                .bytes()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_digit())
                .map(|(j, _)| j)
                .collect();
            if !digits.is_empty() {
                let p = digits[i.index(digits.len())];
                key.replace_range(p..p + 1, &c.to_string());
            }
        }
    }
}

/// What every key the grammar accepts must satisfy.
fn check_accepted(key: &str, k: &ObjectKey<'_>) -> Result<(), TestCaseError> {
    prop_assert_eq!(k.to_string(), key, "formatting does not give the key back");
    prop_assert_eq!(&ObjectKey::parse(key).unwrap(), k);
    let t = k.file.time;
    prop_assert!((1..=12).contains(&t.month) && t.hour < 24 && t.minute < 60);
    prop_assert!(t.second.is_none_or(|s| s < 60));
    // A valid date converts: no panic, and the day is the day of the name.
    // Checked through jiff's civil dates, which reach 9999-12-31, rather than
    // its `Timestamp`, which ends at 9999-12-30T22:00Z (a key may lie past it).
    let secs = t.unix_seconds();
    let d = jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(secs.div_euclid(86_400)))
        .unwrap();
    prop_assert_eq!(
        secs.rem_euclid(86_400),
        i64::from(t.hour) * 3600 + i64::from(t.minute) * 60 + i64::from(t.second.unwrap_or(0))
    );
    prop_assert_eq!(
        (d.year() as u16, d.month() as u8, d.day() as u8),
        (t.year, t.month, t.day)
    );
    prop_assert!(!k.file.account.is_empty() && !k.file.region.is_empty());
    if let Location::AwsLogs { .. } = k.location {
        prop_assert!(k.day_folder().contains("AWSLogs/"));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    /// Valid keys parse and format back exactly.
    #[test]
    fn valid_keys_round_trip(key in arb_key()) {
        match ObjectKey::classify(&key) {
            Classified::Trail(k) => check_accepted(&key, &k)?,
            Classified::Other { reason } => prop_assert!(false, "{key}: {reason}"),
        }
    }

    /// Damaged keys never panic; a key still accepted round-trips and holds
    /// a real date; a rejected one has a reason.
    #[test]
    fn damaged_keys_are_classified_cleanly(key in arb_key(), edits in proptest::collection::vec(arb_key_edit(), 1..4)) {
        let mut key = key;
        for e in &edits {
            edit_key(&mut key, e);
        }
        match ObjectKey::classify(&key) {
            Classified::Trail(k) => check_accepted(&key, &k)?,
            Classified::Other { reason } => prop_assert!(!reason.is_empty()),
        }
    }
}

// ---------------------------------------------------------- notifications --

/// A key as S3 may hold it: spaces, `+`, `%`, non-ASCII.
fn notified_key() -> impl Strategy<Value = String> {
    prop_oneof![arb_key(), "[a-zA-Z0-9 +%/._é-]{1,40}"]
}

/// A valid notification body in one of the four shapes, and the objects it announces.
#[derive(Clone, Debug)]
struct Body {
    text: String,
    format: Format,
    keys: Vec<String>,
    other_events: usize,
}

fn sns(message: &str) -> String {
    json!({
        "Type": "Notification",
        "MessageId": "8b8c4c6e-0000-0000-0000-000000000000",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:trail",
        "Message": message,
        "Timestamp": "2024-01-01T00:00:00.000Z",
        "SignatureVersion": "1",
    })
    .to_string()
}

fn arb_body() -> impl Strategy<Value = Body> {
    (
        0..4u8,
        "[a-z0-9.-]{3,20}",
        proptest::collection::vec((notified_key(), any::<bool>(), proptest::option::of(any::<u64>())), 1..4),
    )
        .prop_map(|(shape, bucket, objs)| {
            let keys: Vec<String> = objs.iter().map(|(k, _, _)| k.clone()).collect();
            if shape < 2 {
                let inner = json!({ "s3Bucket": bucket, "s3ObjectKey": keys }).to_string();
                let (text, format) = if shape == 0 {
                    (sns(&inner), Format::CloudTrailSns)
                } else {
                    (inner, Format::CloudTrailRaw)
                };
                return Body { text, format, keys, other_events: 0 };
            }
            let records: Vec<Value> = objs
                .iter()
                .map(|(k, created, size)| {
                    json!({
                        "eventVersion": "2.1",
                        "eventSource": "aws:s3",
                        "eventName": if *created { "ObjectCreated:Put" } else { "ObjectRemoved:Delete" },
                        "s3": { "bucket": { "name": bucket }, "object": { "key": form_encode(k), "size": size, "eTag": "abc" } },
                    })
                })
                .collect();
            let inner = json!({ "Records": records }).to_string();
            let (text, format) = if shape == 2 {
                (sns(&inner), Format::S3EventSns)
            } else {
                (inner, Format::S3EventSqs)
            };
            let created: Vec<String> = objs.iter().filter(|(_, c, _)| *c).map(|(k, _, _)| k.clone()).collect();
            Body { text, format, other_events: keys.len() - created.len(), keys: created }
        })
}

/// One way to damage a body: in its JSON structure or in its text.
#[derive(Clone, Debug)]
enum BodyDamage {
    Bytes(Vec<Mutation>),
    /// Replace the value at a JSON pointer (inside the SNS Message too).
    Set(&'static str, Value),
    Remove(&'static str),
}

const POINTERS: &[&str] = &[
    "/Type",
    "/Message",
    "/s3Bucket",
    "/s3ObjectKey",
    "/s3ObjectKey/0",
    "/Records",
    "/Records/0",
    "/Records/0/eventName",
    "/Records/0/s3",
    "/Records/0/s3/bucket/name",
    "/Records/0/s3/object/key",
    "/Records/0/s3/object/size",
    "/Records/0/s3/object/eTag",
    "/Event",
];

fn arb_body_damage() -> impl Strategy<Value = BodyDamage> {
    prop_oneof![
        proptest::collection::vec(arb_mutation(), 1..4).prop_map(BodyDamage::Bytes),
        (
            proptest::sample::select(POINTERS),
            prop_oneof![
                arb_json(),
                Just(json!("CloudTrail validation message.")),
                Just(json!("s3:TestEvent")),
                Just(json!("SubscriptionConfirmation")),
                Just(json!("%zz%")),
                Just(json!("%C3%28")),
                Just(nested(200, true)),
            ]
        )
            .prop_map(|(p, v)| BodyDamage::Set(p, v)),
        proptest::sample::select(POINTERS).prop_map(BodyDamage::Remove),
    ]
}

/// Applies `f` to the body's JSON, or to the SNS Message's JSON inside it.
fn edit_json(text: &str, f: &dyn Fn(&mut Value)) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(text) else {
        return text.to_string();
    };
    if let Some(inner) = v.get("Message").and_then(Value::as_str).map(str::to_string)
        && let Ok(mut m) = serde_json::from_str::<Value>(&inner)
    {
        f(&mut m);
        v["Message"] = Value::String(m.to_string());
    } else {
        f(&mut v);
    }
    v.to_string()
}

fn set_pointer(v: &mut Value, pointer: &str, new: Value) {
    if let Some(slot) = v.pointer_mut(pointer) {
        *slot = new;
    }
}

fn remove_pointer(v: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    match v.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.remove(last);
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Every shape of a valid notification gives back its objects, keys decoded.
    #[test]
    fn valid_notifications_announce_their_objects(body in arb_body()) {
        match notification::parse("m-1", &body.text) {
            Ok(Notification::Objects { format, objects, other_events }) => {
                prop_assert_eq!(format, body.format);
                prop_assert_eq!(other_events, body.other_events);
                let keys: Vec<String> = objects.into_iter().map(|o| o.key).collect();
                prop_assert_eq!(keys, body.keys);
            }
            other => prop_assert!(false, "{other:?} for {}", body.text),
        }
    }

    /// Damaged notifications never panic, and every error names the message.
    #[test]
    fn damaged_notifications_fail_cleanly(body in arb_body(), damage in proptest::collection::vec(arb_body_damage(), 1..3)) {
        let mut text = body.text.clone();
        for d in &damage {
            text = match d {
                BodyDamage::Bytes(ms) => {
                    let mut b = text.into_bytes();
                    for m in ms { mutate(&mut b, m); }
                    String::from_utf8_lossy(&b).into_owned()
                }
                BodyDamage::Set(p, v) => edit_json(&text, &|j| set_pointer(j, p, v.clone())),
                BodyDamage::Remove(p) => edit_json(&text, &|j| remove_pointer(j, p)),
            };
        }
        match notification::parse("m-42", &text) {
            Ok(Notification::Objects { objects, .. }) => {
                prop_assert!(objects.iter().all(|o| !o.bucket.is_empty() && !o.key.is_empty()));
            }
            Ok(_) => {}
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("message m-42: "), "{msg}");
                prop_assert!(!e.reason.is_empty());
                // Excerpts keep errors readable whatever the body's size.
                prop_assert!(msg.len() < 2_000, "error of {} bytes", msg.len());
            }
        }
    }
}

// ------------------------------------------- divergences found by fuzzing --

/// Each event's bytes, or the error's message.
type Decoded = Result<Vec<Vec<u8>>, String>;

/// Decodes `input` whole and forced to stream, for the regression tests below.
fn both_paths(input: &[u8]) -> (Decoded, Decoded) {
    let (mut whole, mut stream) = decoders(1024, None);
    (
        run(&mut whole, input).map_err(|e| e.to_string()),
        run(&mut stream, input).map_err(|e| e.to_string()),
    )
}

/// Bug (found by `valid_files_yield_exactly_their_records`): a file holding
/// one event object (a one-line JSON Lines file, or a lone object) decodes
/// whole, but the streaming path takes it for a `{"Records":[…]}` envelope
/// and fails with "no \"Records\" array found".
#[test]
fn streamed_lone_event_object_decodes_like_the_whole_file() {
    let event =
        r#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventName":"GetObject"}"#;
    for input in [
        format!("{event}\n"),
        event.to_string(),
        format!("  {event}  "),
    ] {
        for bytes in [input.clone().into_bytes(), gz(input.as_bytes())] {
            let (whole, streamed) = both_paths(&bytes);
            assert_eq!(whole, Ok(vec![event.as_bytes().to_vec()]), "{input:?}");
            assert_eq!(streamed, whole, "{input:?}");
        }
    }
}

/// Bug (found by `damaged_files_decode_alike_on_both_paths`): JSON
/// that is invalid outside the records (in the envelope's other members, or
/// after the records array) is rejected whole but accepted when streamed,
/// because the streaming splitter checks brackets and strings only.
#[test]
fn streamed_invalid_json_outside_the_records_is_rejected_like_the_whole_file() {
    let rec = r#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z"}"#;
    let mut accepted = Vec::new();
    for input in [
        format!(r#"{{"Records":[{rec}],"z":;}}"#),
        format!(r#"{{"a":tru,"Records":[{rec}]}}"#),
        format!(r#"{{"Records":[{rec}],"z":{{"x" 1}}}}"#),
        format!(r#"{{"Records":[{rec}] "z":1}}"#),
        format!(r#"[{rec}]]"#),
    ] {
        let (whole, streamed) = both_paths(input.as_bytes());
        assert!(whole.is_err(), "{input}: whole-file decoding accepted it");
        if streamed.is_ok() {
            accepted.push(input);
        }
    }
    assert!(
        accepted.is_empty(),
        "streamed decoding accepted {accepted:#?}"
    );
}

/// Bug (found by `damaged_keys_are_classified_cleanly` in a long run): a key
/// time after 9999-12-30T22:00:00Z, the end of jiff's `Timestamp` range, is
/// accepted by the grammar, but `KeyTime::unix_seconds` cannot convert it and
/// silently returns 0, so the file is taken for one delivered in 1970 (time
/// selections and ordering then misplace it). Such a key must be rejected
/// with a reason, or converted exactly.
#[test]
fn key_times_at_the_end_of_year_9999_are_not_read_as_1970() {
    for (key, seconds) in [
        (
            "AWSLogs/1/CloudTrail/us-east-1/9999/12/31/1_CloudTrail_us-east-1_99991231T2359Z_u.json.gz",
            253_402_300_740,
        ),
        (
            "AWSLogs/1/CloudTrail-Digest/us-east-1/9999/12/30/1_CloudTrail-Digest_us-east-1_t_us-east-1_99991230T220001Z.json.gz",
            253_402_207_201,
        ),
    ] {
        if let Classified::Trail(k) = ObjectKey::classify(key) {
            assert_eq!(k.file.time.unix_seconds(), seconds, "{key}");
        }
    }
}
