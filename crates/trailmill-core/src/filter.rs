//! Choosing files by key and events by field.
//!
//! [`Selection`] decides from an object key alone (account, region,
//! organization, prefix, delivery time), so listings can skip whole folders and
//! no byte of an unwanted file is read. [`EventFilter`] decides per event, from
//! the typed view, after decoding. Both are plain data so the CLI, the library
//! and config files build them the same way.
//!
//! A [`Shard`] splits the selected objects into N stable parts by a hash of
//! the key, so N processes (a Kubernetes indexed job, an AWS Batch array)
//! share one backfill without talking to each other.

use wildmatch::WildMatch;

use crate::event::Event;
use crate::key::{FileKind, ObjectKey};
use crate::time::{Timestamp, parse_event_time, rfc3339};

/// Which files to read, decided from their keys.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Accounts in the key (empty: all).
    pub accounts: Vec<String>,
    /// Regions in the key (empty: all).
    pub regions: Vec<String>,
    /// Organization IDs in the key (empty: all, with or without an `o-` folder).
    pub org_ids: Vec<String>,
    /// Only keys that start with this text.
    pub prefix: Option<String>,
    /// Only files delivered at or after this time (Unix seconds, from the key).
    /// Key times are whole minutes, so a bound with a fraction of a second is
    /// rounded up without changing which files it selects (the CLI does so).
    pub start: Option<i64>,
    /// Only files delivered before this time (Unix seconds, from the key).
    pub end: Option<i64>,
    /// Also read Insights files.
    pub include_insights: bool,
    /// Only the objects of this shard (see [`Shard`]); `None` reads all.
    pub shard: Option<Shard>,
}

/// One part of a stable partition of object keys: `--shard I/N`.
///
/// An object belongs to shard `I` of `N` when the 64-bit FNV-1a hash of its
/// key's bytes, modulo `N`, is `I`. The key is the S3 object key, or for a
/// local tree the path below the root with `/` separators, so a bucket and its
/// mirror shard alike. The hash is written out here (not taken from a crate
/// or `std`'s `Hasher`, whose output may change) and is part of trailmill's
/// interface: the same key lands in the same shard on every machine and in
/// every version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// Shard `index` of `count` (`index < count`, `count > 0`), or why not.
    pub fn new(index: u64, count: u64) -> Result<Shard, String> {
        if count == 0 {
            return Err("the shard count must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is out of range: shards of {count} are numbered 0 to {}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// This shard's index, from 0.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The number of shards.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// True when the object with `key` belongs to this shard.
    pub fn contains(&self, key: &str) -> bool {
        fnv1a64(key.as_bytes()) % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// Parses `I/N`, e.g. `0/8`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a shard: use I/N, e.g. 0/8"))?;
        let num = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("{s:?} is not a shard: {t:?} is not a number"))
        };
        Shard::new(num(i)?, num(n)?)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3):
/// the stable hash behind [`Shard`], also for sinks that partition events by
/// key. Stable across builds and platforms, unlike `std`'s hashers.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h: u64, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Why [`Selection::check`] passed a key over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A digest file: digests are validated, never read as events.
    Digest,
    /// An Insights file, without [`Selection::include_insights`].
    Insight,
    /// Outside the selection's accounts, regions, organizations, prefix or times.
    NotSelected,
    /// Selected, but in another [`Shard`].
    OtherShard,
}

impl Selection {
    /// Decides whether a file whose name is not a CloudTrail key (an export) is
    /// read. Only the prefix and organization can be judged from its name; the
    /// accounts, regions and times apply to its events instead (see
    /// [`Selection::as_event_filter`]).
    pub fn check_keyless(&self, key_text: &str) -> Result<(), Skip> {
        let selected = self.org_ids.is_empty()
            && self
                .prefix
                .as_deref()
                .is_none_or(|p| key_text.starts_with(p));
        if !selected {
            Err(Skip::NotSelected)
        } else {
            self.check_shard(key_text)
        }
    }

    /// `Ok` when `key_text` is in the selection's shard (or there is none).
    pub fn check_shard(&self, key_text: &str) -> Result<(), Skip> {
        match self.shard {
            Some(s) if !s.contains(key_text) => Err(Skip::OtherShard),
            _ => Ok(()),
        }
    }

    /// The conditions a file without a CloudTrail key applies to its events
    /// instead: accounts as `recipientAccountId`, regions as `awsRegion`, and
    /// the time range as `eventTime`.
    pub fn as_event_filter(&self) -> EventFilter {
        EventFilter {
            accounts: self.accounts.clone(),
            regions: self.regions.clone(),
            event_time_start: self.start.map(timestamp_from_secs),
            event_time_end: self.end.map(timestamp_from_secs),
            ..EventFilter::default()
        }
    }

    /// Decides whether the file at `key_text` (parsed as `key`) is read.
    pub fn check(&self, key_text: &str, key: &ObjectKey<'_>) -> Result<(), Skip> {
        match key.file.kind {
            FileKind::Digest { .. } => return Err(Skip::Digest),
            FileKind::Insight { .. } if !self.include_insights => return Err(Skip::Insight),
            _ => {}
        }
        let selected = (self.accounts.is_empty()
            || self.accounts.iter().any(|a| a == key.file.account))
            && (self.regions.is_empty() || self.regions.iter().any(|r| r == key.file.region))
            && (self.org_ids.is_empty()
                || key
                    .org_id()
                    .is_some_and(|o| self.org_ids.iter().any(|x| x == o)))
            && self
                .prefix
                .as_deref()
                .is_none_or(|p| key_text.starts_with(p))
            && self.start.is_none_or(|s| key.file.time.unix_seconds() >= s)
            && self.end.is_none_or(|e| key.file.time.unix_seconds() < e);
        if !selected {
            Err(Skip::NotSelected)
        } else {
            self.check_shard(key_text)
        }
    }
}

/// Unix seconds as a timestamp; out-of-range values clamp to the earliest or
/// latest representable time.
pub fn timestamp_from_secs(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap_or(if secs < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// Which events to keep, decided from their fields. Every list is "any of";
/// an empty list does not restrict. All conditions must hold.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    /// `eventSource`, exactly (e.g. `s3.amazonaws.com`).
    pub event_sources: Vec<String>,
    /// `eventName`, as globs (`Get*`, `?ut*`).
    pub event_names: Vec<String>,
    /// `recipientAccountId`.
    pub accounts: Vec<String>,
    /// `awsRegion`.
    pub regions: Vec<String>,
    /// `userIdentity.arn`, as globs.
    pub user_arns: Vec<String>,
    /// `errorCode`, exactly.
    pub error_codes: Vec<String>,
    /// Only events that carry an `errorCode`.
    pub errors_only: bool,
    /// `Some(true)`: only read-only events; `Some(false)`: only writes.
    pub read_only: Option<bool>,
    /// `eventCategory` (`Management`, `Data`, `Insight`, `NetworkActivity`).
    pub event_categories: Vec<String>,
    /// Only events at or after this instant. `eventTime` is compared as an
    /// instant, fractions of a second and offsets included; an event whose
    /// `eventTime` is missing or not RFC 3339 fails a time bound.
    pub event_time_start: Option<Timestamp>,
    /// Only events before this instant (see `event_time_start`).
    pub event_time_end: Option<Timestamp>,
}

/// The version tag that opens [`EventFilter::binding_text`]. A new tag is
/// only ever needed if the meaning of a line changes; new conditions add
/// lines, which filters without them never show.
pub const BINDING_TEXT_VERSION: &str = "trailmill-event-filter/1";

impl EventFilter {
    /// A canonical, versioned text of which events this filter and the
    /// `selection` deliver, for a state store to bind a job to: two jobs with
    /// the same text deliver the same events of each object.
    ///
    /// The first line is [`BINDING_TEXT_VERSION`]. Then one line per condition
    /// that is set, in this order, named as the CLI flag, each value as a JSON
    /// string; list values are sorted and deduplicated (a list matches any of
    /// its values, so order does not matter):
    /// `event-source`, `event-name`, `event-account`, `event-region`,
    /// `user-arn`, `error-code`, `errors-only`, `read-only` (`true`, or
    /// `false` for `--writes-only`), `event-category`, `event-time-start`,
    /// `event-time-end`, and then the selection's conditions that apply to the
    /// events of files without a CloudTrail key ([`Selection::as_event_filter`]):
    /// `account`, `region`, `start`, `end`. Times are RFC 3339 in UTC
    /// ([`crate::time::rfc3339`]). The selection's other parts (organizations,
    /// prefix, Insights, shard) choose objects, never events, and are left out.
    ///
    /// ```
    /// use trailmill_core::{EventFilter, Selection};
    /// let filter = EventFilter { errors_only: true, ..EventFilter::default() };
    /// assert_eq!(
    ///     filter.binding_text(&Selection::default()),
    ///     "trailmill-event-filter/1\nerrors-only true"
    /// );
    /// ```
    pub fn binding_text(&self, selection: &Selection) -> String {
        let quoted = |v: &str| serde_json::Value::from(v).to_string();
        let time = |t: Timestamp| quoted(&rfc3339(t));
        let mut lines = vec![BINDING_TEXT_VERSION.to_owned()];
        let list = |lines: &mut Vec<String>, name: &str, values: &[String]| {
            let mut values: Vec<&String> = values.iter().collect();
            values.sort();
            values.dedup();
            lines.extend(values.into_iter().map(|v| format!("{name} {}", quoted(v))));
        };
        list(&mut lines, "event-source", &self.event_sources);
        list(&mut lines, "event-name", &self.event_names);
        list(&mut lines, "event-account", &self.accounts);
        list(&mut lines, "event-region", &self.regions);
        list(&mut lines, "user-arn", &self.user_arns);
        list(&mut lines, "error-code", &self.error_codes);
        if self.errors_only {
            lines.push("errors-only true".into());
        }
        if let Some(r) = self.read_only {
            lines.push(format!("read-only {r}"));
        }
        list(&mut lines, "event-category", &self.event_categories);
        if let Some(t) = self.event_time_start {
            lines.push(format!("event-time-start {}", time(t)));
        }
        if let Some(t) = self.event_time_end {
            lines.push(format!("event-time-end {}", time(t)));
        }
        let on_events = selection.as_event_filter();
        list(&mut lines, "account", &on_events.accounts);
        list(&mut lines, "region", &on_events.regions);
        if let Some(t) = on_events.event_time_start {
            lines.push(format!("start {}", time(t)));
        }
        if let Some(t) = on_events.event_time_end {
            lines.push(format!("end {}", time(t)));
        }
        lines.join("\n")
    }

    /// Compiles the globs once; the result is what workers share.
    pub fn compile(&self) -> CompiledFilter {
        CompiledFilter {
            event_names: self.event_names.iter().map(|g| Glob::new(g)).collect(),
            user_arns: self.user_arns.iter().map(|g| Glob::new(g)).collect(),
            spec: self.clone(),
        }
    }
}

/// An [`EventFilter`] ready to test events.
#[derive(Clone, Debug)]
pub struct CompiledFilter {
    spec: EventFilter,
    event_names: Vec<Glob>,
    user_arns: Vec<Glob>,
}

/// A compiled `*`/`?` glob. The common shapes, a plain name and a prefix
/// such as `Describe*`, are compared directly: a general glob matcher cost
/// more per event than the filter's other conditions together.
#[derive(Clone, Debug)]
enum Glob {
    Exact(String),
    Prefix(String),
    Other(WildMatch),
}

impl Glob {
    fn new(glob: &str) -> Glob {
        let wild = |c: char| c == '*' || c == '?';
        match glob.find(wild) {
            None => Glob::Exact(glob.to_owned()),
            Some(i) if i + 1 == glob.len() && glob.ends_with('*') => {
                Glob::Prefix(glob[..i].to_owned())
            }
            Some(_) => Glob::Other(WildMatch::new(glob)),
        }
    }

    fn matches(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        match self {
            Glob::Exact(name) => same_bytes(bytes, name.as_bytes()),
            Glob::Prefix(prefix) => bytes
                .get(..prefix.len())
                .is_some_and(|head| same_bytes(head, prefix.as_bytes())),
            Glob::Other(glob) => glob.matches(text),
        }
    }
}

/// `a == b` for slices of the same length, without a `memcmp` call for
/// the short ones names and prefixes are (the call was 0.6% of a filtered
/// decode): two overlapping 8-byte loads from 8 to 16 bytes, a byte loop
/// below.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| s[at..at + 8].try_into().map(u64::from_ne_bytes).ok();
    match n {
        0..8 => a.iter().zip(b).all(|(x, y)| x == y),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// The event-source and event-name conditions of a [`CompiledFilter`] on
/// their own, for the decoder ([`crate::DecodeOptions::early_filter`]): a
/// record that fails them need not be read past its `eventSource` and
/// `eventName`, which come early in CloudTrail's records.
#[derive(Clone, Debug)]
pub struct EarlyFilter {
    sources: Vec<String>,
    names: Vec<Glob>,
}

impl EarlyFilter {
    /// True when the filter has an event-source condition, so that the
    /// decoder waits for a record's `eventSource` before it decides.
    pub fn needs_source(&self) -> bool {
        !self.sources.is_empty()
    }

    /// True when `source` and `name` pass the filter's conditions, as in
    /// [`CompiledFilter::matches`]: a record without the field a condition
    /// names fails it.
    pub fn matches(&self, source: Option<&str>, name: Option<&str>) -> bool {
        (self.sources.is_empty() || source.is_some_and(|s| self.sources.iter().any(|x| x == s)))
            && (self.names.is_empty()
                || name.is_some_and(|n| self.names.iter().any(|g| g.matches(n))))
    }
}

impl CompiledFilter {
    /// The filter's event-source and event-name conditions, when it has either.
    pub fn early_filter(&self) -> Option<EarlyFilter> {
        let sources = &self.spec.event_sources;
        (!sources.is_empty() || !self.event_names.is_empty()).then(|| EarlyFilter {
            sources: sources.clone(),
            names: self.event_names.clone(),
        })
    }

    /// True when every event passes (so callers can skip the test).
    pub fn is_pass_all(&self) -> bool {
        let s = &self.spec;
        s.event_sources.is_empty()
            && s.event_names.is_empty()
            && s.accounts.is_empty()
            && s.regions.is_empty()
            && s.user_arns.is_empty()
            && s.error_codes.is_empty()
            && !s.errors_only
            && s.read_only.is_none()
            && s.event_categories.is_empty()
            && s.event_time_start.is_none()
            && s.event_time_end.is_none()
    }

    /// True when `event` passes every condition.
    pub fn matches(&self, event: &Event<'_>) -> bool {
        let s = &self.spec;
        fn any_eq(list: &[String], value: Option<&str>) -> bool {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
        }
        any_eq(&s.event_sources, event.event_source)
            && any_eq(&s.accounts, event.recipient_account_id)
            && any_eq(&s.regions, event.aws_region)
            && any_eq(&s.error_codes, event.error_code)
            && any_eq(&s.event_categories, event.event_category)
            && (!s.errors_only || event.error_code.is_some())
            && s.read_only.is_none_or(|want| event.read_only == Some(want))
            && (self.event_names.is_empty()
                || event
                    .event_name
                    .is_some_and(|n| self.event_names.iter().any(|g| g.matches(n))))
            && ((s.event_time_start.is_none() && s.event_time_end.is_none())
                // As instants, not text: "…00:00:00.5Z" sorts before
                // "…00:00:00Z" as text ('.' < 'Z') but is later.
                || event.event_time.and_then(parse_event_time).is_some_and(|e| {
                    s.event_time_start.is_none_or(|t| e >= t)
                        && s.event_time_end.is_none_or(|t| e < t)
                }))
            && (self.user_arns.is_empty()
                || event
                    .user_identity()
                    .and_then(|u| u.arn)
                    .is_some_and(|arn| self.user_arns.iter().any(|g| g.matches(arn))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodeOptions, Decoder};

    fn names(filter: &EventFilter, json: &str) -> Vec<String> {
        let f = filter.compile();
        let mut out = Vec::new();
        Decoder::new(DecodeOptions::default())
            .decode(json.as_bytes(), &mut |batch| {
                out.extend(
                    batch
                        .iter()
                        .filter(|e| f.matches(e))
                        .map(|e| e.event_name.unwrap().to_owned()),
                );
                Ok(())
            })
            .unwrap();
        out
    }

    const LOG: &str = r#"{"Records":[
        {"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","readOnly":true,"recipientAccountId":"1","eventCategory":"Data","userIdentity":{"arn":"arn:aws:iam::1:user/alice"}},
        {"eventVersion":"1.08","eventTime":"2024-01-01T01:00:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","readOnly":false,"errorCode":"AccessDenied","recipientAccountId":"2","eventCategory":"Management","userIdentity":{"arn":"arn:aws:iam::2:role/bob"}},
        {"eventVersion":"1.08","eventTime":"2024-01-01T02:00:00Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"eu-west-1","readOnly":false,"recipientAccountId":"1","eventCategory":"Data"}
    ]}"#;

    #[test]
    fn plain_and_prefix_globs_match_as_the_general_matcher_does() {
        let globs = [
            "",
            "*",
            "**",
            "Get*",
            "GetObject",
            "Get?bject",
            "?etObject",
            "Get*Object",
            "*Object",
            "Describe*",
            "Describe",
            "é*",
            "g*",
            // Each length class of `same_bytes`: below 8, 8 to 16, above.
            "Describ*",
            "CreateUse*",
            "DescribeInstance*",
            "DescribeInstances",
            "DescribeInstancez",
            "DescribeInstancesX*",
        ];
        let names = [
            "",
            "Get",
            "GetObject",
            "GetObjectAcl",
            "get",
            "DescribeInstances",
            "Describe",
            "PutObject",
            "é",
            "éa",
            // Near misses in the last byte, and in the middle.
            "DescribeInstancez",
            "DescribeInstancesX",
            "DescribeInstancesY",
            "DescribeInstancXs",
            "CreateUser",
            "CreateUsex",
            "CreateUxer",
            "CreateUsx",
            "Describe\u{e9}",
        ];
        for glob in globs {
            for name in names {
                assert_eq!(
                    Glob::new(glob).matches(name),
                    WildMatch::new(glob).matches(name),
                    "glob {glob:?}, name {name:?}"
                );
            }
        }
        assert!(matches!(Glob::new("Describe*"), Glob::Prefix(_)));
        assert!(matches!(Glob::new("GetObject"), Glob::Exact(_)));
    }

    #[test]
    fn each_condition_filters() {
        let all = EventFilter::default();
        assert!(all.compile().is_pass_all());
        assert_eq!(names(&all, LOG).len(), 3);
        let f = |f: EventFilter| names(&f, LOG);
        assert_eq!(
            f(EventFilter {
                event_sources: vec!["s3.amazonaws.com".into()],
                ..Default::default()
            }),
            ["GetObject", "PutObject"]
        );
        assert_eq!(
            f(EventFilter {
                event_names: vec!["*Object".into()],
                ..Default::default()
            }),
            ["GetObject", "PutObject"]
        );
        assert_eq!(
            f(EventFilter {
                accounts: vec!["2".into()],
                ..Default::default()
            }),
            ["CreateUser"]
        );
        assert_eq!(
            f(EventFilter {
                regions: vec!["eu-west-1".into()],
                ..Default::default()
            }),
            ["PutObject"]
        );
        assert_eq!(
            f(EventFilter {
                user_arns: vec!["*:user/*".into()],
                ..Default::default()
            }),
            ["GetObject"]
        );
        assert_eq!(
            f(EventFilter {
                errors_only: true,
                ..Default::default()
            }),
            ["CreateUser"]
        );
        assert_eq!(
            f(EventFilter {
                error_codes: vec!["Throttling".into()],
                ..Default::default()
            }),
            Vec::<String>::new()
        );
        assert_eq!(
            f(EventFilter {
                read_only: Some(true),
                ..Default::default()
            }),
            ["GetObject"]
        );
        assert_eq!(
            f(EventFilter {
                read_only: Some(false),
                ..Default::default()
            }),
            ["CreateUser", "PutObject"]
        );
        assert_eq!(
            f(EventFilter {
                event_categories: vec!["Management".into()],
                ..Default::default()
            }),
            ["CreateUser"]
        );
        assert_eq!(
            f(EventFilter {
                event_time_start: Some("2024-01-01T01:00:00Z".parse().unwrap()),
                event_time_end: Some("2024-01-01T02:00:00Z".parse().unwrap()),
                ..Default::default()
            }),
            ["CreateUser"]
        );
    }

    #[test]
    fn selection_by_key() {
        let key = "p/AWSLogs/o-1/111/CloudTrail/us-east-1/2024/01/01/111_CloudTrail_us-east-1_20240101T0105Z_u.json.gz";
        let k = ObjectKey::parse(key).unwrap();
        let t = k.file.time.unix_seconds();
        assert_eq!(Selection::default().check(key, &k), Ok(()));
        let sel = |s: Selection| s.check(key, &k);
        assert_eq!(
            sel(Selection {
                accounts: vec!["222".into()],
                ..Default::default()
            }),
            Err(Skip::NotSelected)
        );
        assert_eq!(
            sel(Selection {
                regions: vec!["us-east-1".into()],
                ..Default::default()
            }),
            Ok(())
        );
        assert_eq!(
            sel(Selection {
                org_ids: vec!["o-1".into()],
                ..Default::default()
            }),
            Ok(())
        );
        assert_eq!(
            sel(Selection {
                org_ids: vec!["o-2".into()],
                ..Default::default()
            }),
            Err(Skip::NotSelected)
        );
        assert_eq!(
            sel(Selection {
                prefix: Some("p/AWSLogs/o-1/111/".into()),
                ..Default::default()
            }),
            Ok(())
        );
        assert_eq!(
            sel(Selection {
                start: Some(t),
                end: Some(t + 1),
                ..Default::default()
            }),
            Ok(())
        );
        assert_eq!(
            sel(Selection {
                end: Some(t),
                ..Default::default()
            }),
            Err(Skip::NotSelected)
        );
        let digest = "111_CloudTrail-Digest_us-east-1_t_us-east-1_20240101T010203Z.json.gz";
        assert_eq!(
            Selection::default().check(digest, &ObjectKey::parse(digest).unwrap()),
            Err(Skip::Digest)
        );
        let insight = "111_CloudTrail-Insight_us-east-1_20240101T0105Z_u.json.gz";
        let ik = ObjectKey::parse(insight).unwrap();
        assert_eq!(Selection::default().check(insight, &ik), Err(Skip::Insight));
        assert_eq!(
            Selection {
                include_insights: true,
                ..Default::default()
            }
            .check(insight, &ik),
            Ok(())
        );
    }

    #[test]
    fn shards_partition_keys_stably() {
        // FNV-1a test vectors (from the reference implementation's test suite).
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
        let keys: Vec<String> = (0..1000)
            .map(|i| format!("AWSLogs/1/x_{i}.json.gz"))
            .collect();
        let n = 7;
        let mut seen = vec![0; keys.len()];
        for i in 0..n {
            let shard: Shard = format!("{i}/{n}").parse().unwrap();
            for (j, k) in keys.iter().enumerate() {
                if shard.contains(k) {
                    seen[j] += 1;
                }
            }
        }
        assert!(
            seen.iter().all(|&c| c == 1),
            "every key in exactly one shard"
        );
        // Pinned: the assignment is part of the interface and must never change.
        let pinned: Vec<u64> = keys[..8]
            .iter()
            .map(|k| fnv1a64(k.as_bytes()) % 7)
            .collect();
        assert_eq!(pinned, [0, 1, 0, 6, 2, 4, 4, 3]);
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x/2".parse::<Shard>().is_err());
        assert_eq!("1/2".parse::<Shard>().unwrap().to_string(), "1/2");
        let key = "111_CloudTrail_us-east-1_20240101T0105Z_u.json.gz";
        let k = ObjectKey::parse(key).unwrap();
        let inside = (0..2)
            .filter(|i| {
                Selection {
                    shard: Some(Shard::new(*i, 2).unwrap()),
                    ..Default::default()
                }
                .check(key, &k)
                .is_ok()
            })
            .count();
        assert_eq!(inside, 1);
    }

    #[test]
    fn keyless_files_apply_the_selection_to_their_events() {
        let sel = Selection {
            accounts: vec!["2".into()],
            start: Some(0),
            ..Default::default()
        };
        assert_eq!(sel.check_keyless("export.json"), Ok(()));
        assert_eq!(
            Selection {
                org_ids: vec!["o-1".into()],
                ..Default::default()
            }
            .check_keyless("x.json"),
            Err(Skip::NotSelected)
        );
        let sel = Selection {
            start: Some(1_704_070_800),
            ..sel
        }; // 2024-01-01T01:00:00Z
        let f = sel.as_event_filter();
        assert_eq!(names(&f, LOG), ["CreateUser"]);
    }

    /// Regression (issue 11, item 5): time bounds compared `eventTime` as
    /// text, so "2024-01-01T00:00:00.5Z" (half a second after midnight) sorted
    /// before "2024-01-01T00:00:00Z" ('.' < 'Z'): a start bound at midnight
    /// dropped it and an end bound at midnight kept it.
    #[test]
    fn fractional_event_times_compare_as_instants_not_text() {
        const FRACTIONS: &str = r#"{"Records":[
            {"eventTime":"2023-12-31T23:59:59.999Z","eventName":"Before"},
            {"eventTime":"2024-01-01T00:00:00Z","eventName":"AtMidnight"},
            {"eventTime":"2024-01-01T00:00:00.5Z","eventName":"HalfPast"},
            {"eventTime":"2024-01-01T02:00:00.5+02:00","eventName":"HalfPastWithOffset"},
            {"eventTime":"not a time","eventName":"Unreadable"},
            {"eventName":"NoTime"}
        ]}"#;
        let midnight: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let from_midnight = EventFilter {
            event_time_start: Some(midnight),
            ..Default::default()
        };
        assert_eq!(
            names(&from_midnight, FRACTIONS),
            ["AtMidnight", "HalfPast", "HalfPastWithOffset"]
        );
        let until_midnight = EventFilter {
            event_time_end: Some(midnight),
            ..Default::default()
        };
        assert_eq!(names(&until_midnight, FRACTIONS), ["Before"]);
        let fractional_bound = EventFilter {
            event_time_end: Some("2024-01-01T00:00:00.5Z".parse().unwrap()),
            ..from_midnight
        };
        assert_eq!(names(&fractional_bound, FRACTIONS), ["AtMidnight"]);
    }

    /// Regression (issue 11, item 4): the state bound a job to
    /// `format!("{:?}", filter)`, which changed whenever the filter type
    /// gained a field. The binding text is canonical and versioned: this pins
    /// it, byte for byte, and shows that list order and duplicates do not
    /// change it, and that the selection is bound where it filters events.
    #[test]
    fn the_binding_text_is_pinned() {
        let filter = EventFilter {
            event_sources: vec!["s3.amazonaws.com".into(), "iam.amazonaws.com".into()],
            event_names: vec!["Get*".into(), "Get*".into()],
            accounts: vec!["111122223333".into()],
            regions: vec!["eu-west-1".into()],
            user_arns: vec!["arn:aws:iam::*:user/\"quoted\"".into()],
            error_codes: vec!["AccessDenied".into()],
            errors_only: true,
            read_only: Some(false),
            event_categories: vec!["Management".into()],
            event_time_start: Some("2024-01-01T01:00:00+01:00".parse().unwrap()),
            event_time_end: Some("2024-02-01T00:00:00.25Z".parse().unwrap()),
        };
        let selection = Selection {
            accounts: vec!["2".into(), "1".into()],
            regions: vec!["us-east-1".into()],
            org_ids: vec!["o-1".into()],
            prefix: Some("AWSLogs/".into()),
            start: Some(1_704_067_200),
            end: Some(1_706_745_600),
            include_insights: true,
            shard: Some(Shard::new(1, 4).unwrap()),
        };
        let text = filter.binding_text(&selection);
        assert_eq!(
            text,
            r#"trailmill-event-filter/1
event-source "iam.amazonaws.com"
event-source "s3.amazonaws.com"
event-name "Get*"
event-account "111122223333"
event-region "eu-west-1"
user-arn "arn:aws:iam::*:user/\"quoted\""
error-code "AccessDenied"
errors-only true
read-only false
event-category "Management"
event-time-start "2024-01-01T00:00:00Z"
event-time-end "2024-02-01T00:00:00.25Z"
account "1"
account "2"
region "us-east-1"
start "2024-01-01T00:00:00Z"
end "2024-02-01T00:00:00Z""#
        );
        assert_eq!(
            EventFilter::default().binding_text(&Selection::default()),
            "trailmill-event-filter/1"
        );
        // Objects, not events: organizations, prefix, Insights and shard.
        let objects_only = Selection {
            org_ids: vec!["o-1".into()],
            prefix: Some("p/".into()),
            include_insights: true,
            shard: Some(Shard::new(0, 2).unwrap()),
            ..Default::default()
        };
        assert_eq!(
            EventFilter::default().binding_text(&objects_only),
            "trailmill-event-filter/1"
        );
    }
}
