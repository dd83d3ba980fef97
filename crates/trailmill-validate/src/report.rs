//! `trailmill validate --report FILE.html`: an auditor's report of a run, as
//! one self-contained HTML page.
//!
//! [`HtmlReport`] consumes the run's [`Event`]s ([`HtmlReport::record`]) and
//! keeps only what the page shows, so it stays small for a year of a large
//! organization trail:
//! - per chain (bucket, prefix, organization, account, region, trail name),
//!   one status per hour, folded to one status code per day when the whole
//!   day has one status and a 24-character string otherwise;
//! - the findings (every verdict that is not valid), up to
//!   [`HtmlReport::MAX_FINDINGS`], and their counts by kind, always exact;
//! - counts of valid digests and log files.
//!
//! [`HtmlReport::render`] writes the page: inline CSS and JavaScript, no
//! network access, the data as one `<script type="application/json">` block
//! that the script renders (summary, legend, a timeline per chain, the
//! findings), and a `<noscript>` fallback with the summary and the findings.
//!
//! Statuses, worst first (an hour shows the worst it has): `invalid`,
//! `missing`, `unattested`, `gap`, `valid`, `none` (see [`HtmlReport::record`]
//! for which verdict counts where). Colours are the Okabe–Ito palette, which
//! readers with any common colour-vision deficiency can tell apart, and each
//! status also has its own glyph or pattern.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use trailmill_core::key::ObjectKey;

use crate::time::{digest_key_time, display_time};
use crate::verdict::{Event, Problem, Status, Subject, TrailInfo, Verdict};

/// The page's stylesheet and script, inlined into every report.
const CSS: &str = include_str!("report/page.css");
const JS: &str = include_str!("report/page.js");

/// The `id` of the JSON data block; the script and tests find the data by it.
const DATA_ID: &str = "trailmill-report-data";

/// The longest timeline drawn, in days (ten years). A longer requested range
/// is cut to the days that have data, then to its last ten years, so that a
/// `--start-time` of 1970 does not draw 20,000 empty days per chain.
const MAX_AXIS_DAYS: i64 = 3660;

/// What the report's summary says about the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportMeta {
    /// What was validated: the trail ARN, or `--all under s3://bucket/prefix`.
    pub what: String,
    /// The start of the range validated.
    pub start: Timestamp,
    /// The end of the range validated.
    pub end: Timestamp,
    /// The fingerprints of the public keys the run had.
    pub key_fingerprints: Vec<String>,
    /// The trailmill version that wrote the report.
    pub version: String,
    /// When the report was written (for `--follow`: the last poll).
    pub generated: Timestamp,
    /// Written by `validate --follow`: the page says it is monitoring, as of
    /// the last poll, rather than the outcome of one run.
    pub follow: bool,
}

/// The status of an hour, ordered from best to worst so that `max` merges.
///
/// `None` sorts below `Valid` on purpose: an hour no digest covers but where
/// some file verified (a log attested by the next digest) shows as valid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mark {
    #[default]
    None,
    Valid,
    Gap,
    Unattested,
    Missing,
    Invalid,
}

impl Mark {
    const ALL: [Mark; 6] = [
        Mark::None,
        Mark::Valid,
        Mark::Gap,
        Mark::Unattested,
        Mark::Missing,
        Mark::Invalid,
    ];

    /// The one-letter code of the compact day strings (`n v g u m i`), which
    /// the page's script decodes with the same table.
    fn code(self) -> char {
        ['n', 'v', 'g', 'u', 'm', 'i'][self as usize]
    }

    fn from_code(c: char) -> Option<Mark> {
        Mark::ALL.into_iter().find(|m| m.code() == c)
    }

    fn name(self) -> &'static str {
        ["none", "valid", "gap", "unattested", "missing", "invalid"][self as usize]
    }

    /// The glyph that tells statuses apart without colour (`none` is a
    /// hatched cell instead).
    fn glyph(self) -> &'static str {
        ["", "✓", "–", "!", "?", "✕"][self as usize]
    }

    /// Which status a verdict gives its hours.
    fn of(v: &Verdict) -> Mark {
        match &v.status {
            Status::Valid => Mark::Valid,
            Status::Gap => Mark::Gap,
            Status::Invalid(Problem::Unattested) => Mark::Unattested,
            Status::Invalid(Problem::MissingInferred { .. }) => Mark::Missing,
            Status::Invalid(Problem::NotFound { .. }) if v.subject.is_digest() => Mark::Missing,
            Status::Invalid(_) if v.subject == Subject::Chain => Mark::Missing,
            Status::Invalid(_) => Mark::Invalid,
        }
    }
}

/// The 24 hours of one UTC day.
///
/// Serialized as the page stores it: one status code when the whole day has
/// one status, else 24 codes, one per hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Day([Mark; 24]);

impl Day {
    fn worst(&self) -> Mark {
        self.0.iter().copied().max().unwrap_or_default()
    }

    fn token(&self) -> String {
        let first = self.0[0];
        if self.0.iter().all(|&m| m == first) {
            first.code().to_string()
        } else {
            self.0.iter().map(|m| m.code()).collect()
        }
    }

    fn from_token(token: &str) -> Option<Day> {
        let marks: Vec<Mark> = token.chars().map(Mark::from_code).collect::<Option<_>>()?;
        match marks.len() {
            1 => Some(Day([marks[0]; 24])),
            24 => Some(Day(marks.try_into().ok()?)),
            _ => None,
        }
    }
}

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.token())
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let token = String::deserialize(d)?;
        Day::from_token(&token)
            .ok_or_else(|| serde::de::Error::custom(format!("bad day token {token:?}")))
    }
}

/// One chain of digests: what [`TrailInfo`] names, and its hours.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Chain {
    bucket: String,
    prefix: Option<String>,
    org_id: Option<String>,
    account: String,
    region: String,
    trail_name: String,
    arn: String,
    /// The hours (since the Unix epoch) the validations of this chain asked
    /// about, widened by a day on each side: marks outside are not drawn, so
    /// that a bogus time in a key cannot stretch the timeline over centuries.
    span: Option<(i64, i64)>,
    /// Day number (days since the Unix epoch) to its hours.
    #[serde(with = "day_runs")]
    days: BTreeMap<i64, Day>,
}

/// A chain's days as runs of equal days, `DAY[*COUNT]:TOKEN` joined by
/// commas (`19723*366:v` is a valid leap year): a year of a quiet chain is
/// a few bytes of `--follow` state instead of one map entry per day.
mod day_runs {
    use std::collections::BTreeMap;
    use std::fmt::Write as _;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::Day;

    pub(super) fn serialize<S: Serializer>(
        days: &BTreeMap<i64, Day>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut out = String::new();
        let mut iter = days.iter().peekable();
        while let Some((&first, day)) = iter.next() {
            let mut count = 1;
            while iter
                .next_if(|&(&d, next)| d == first + count && next == day)
                .is_some()
            {
                count += 1;
            }
            if !out.is_empty() {
                out.push(',');
            }
            let _ = write!(out, "{first}");
            if count > 1 {
                let _ = write!(out, "*{count}");
            }
            let _ = write!(out, ":{}", day.token());
        }
        s.serialize_str(&out)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<i64, Day>, D::Error> {
        let text = String::deserialize(d)?;
        let bad = || serde::de::Error::custom(format!("bad day runs {text:.60?}"));
        let mut days = BTreeMap::new();
        for run in text.split(',').filter(|r| !r.is_empty()) {
            let (at, token) = run.split_once(':').ok_or_else(bad)?;
            let (first, count) = match at.split_once('*') {
                Some((f, n)) => (f, n.parse::<i64>().map_err(|_| bad())?),
                None => (at, 1),
            };
            let first: i64 = first.parse().map_err(|_| bad())?;
            let day = Day::from_token(token).ok_or_else(bad)?;
            for d in first..first + count {
                days.insert(d, day);
            }
        }
        Ok(days)
    }
}

impl Chain {
    fn from_info(info: &TrailInfo) -> Chain {
        Chain {
            bucket: info.bucket.clone(),
            prefix: info.prefix.clone(),
            org_id: info.org_id.clone(),
            account: info.account.clone(),
            region: info.region.clone(),
            trail_name: info.trail_name.clone(),
            arn: info.arn.clone(),
            span: None,
            days: BTreeMap::new(),
        }
    }

    fn is(&self, info: &TrailInfo) -> bool {
        self.bucket == info.bucket
            && self.prefix == info.prefix
            && self.org_id == info.org_id
            && self.account == info.account
            && self.region == info.region
            && self.trail_name == info.trail_name
    }

    fn widen(&mut self, start: Timestamp, end: Timestamp) {
        let lo = hour_of(start.as_second()) - 24;
        let hi = hour_of(end.as_second() - 1).max(lo + 24) + 24;
        self.span = Some(match self.span {
            None => (lo, hi),
            Some((a, b)) => (a.min(lo), b.max(hi)),
        });
    }

    fn mark(&mut self, first: i64, last: i64, mark: Mark) {
        let Some((lo, hi)) = self.span else { return };
        for hour in first.max(lo)..=last.min(hi) {
            let day = self.days.entry(hour.div_euclid(24)).or_default();
            let slot = &mut day.0[hour.rem_euclid(24) as usize];
            *slot = (*slot).max(mark);
        }
    }

    fn worst(&self) -> Mark {
        self.days.values().map(Day::worst).max().unwrap_or_default()
    }

    fn sort_key(&self) -> (&str, &str, &str, &Option<String>, &Option<String>, &str) {
        (
            &self.account,
            &self.region,
            &self.trail_name,
            &self.org_id,
            &self.prefix,
            &self.bucket,
        )
    }
}

/// One verdict that is not valid.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Finding {
    /// Index into [`HtmlReport::chains`].
    chain: usize,
    /// The hours it is placed in (first and last, since the Unix epoch);
    /// several only for gaps. `None` when no time is known.
    hours: Option<(i64, i64)>,
    subject: String,
    /// [`Problem::code`], or `gap`.
    code: String,
    mark: Mark,
    bucket: String,
    key: String,
    /// [`Problem::describe`].
    reason: String,
}

impl Finding {
    fn kind(&self) -> String {
        format!("{}/{}", self.subject, self.code)
    }

    fn uri(&self) -> String {
        if self.bucket.is_empty() && self.key.is_empty() {
            String::new()
        } else {
            format!("s3://{}/{}", self.bucket, self.key)
        }
    }
}

/// How many findings of one kind, and the status they give their hours.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct KindCount {
    mark: Mark,
    count: u64,
}

/// The report of one run, or of a `--follow` monitor's many runs: fed with
/// [`HtmlReport::record`], written with [`HtmlReport::render`] or
/// [`HtmlReport::write`].
///
/// It is serializable so that `validate --follow` can keep it in its state
/// between restarts; the hours serialize in the same compact form the page
/// uses.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HtmlReport {
    chains: Vec<Chain>,
    /// [`TrailInfo::index`] to the position in `chains`, for the latest
    /// `TrailStarted` with that index: each validation numbers its trails
    /// from 0, and `--follow` runs many.
    current: BTreeMap<usize, usize>,
    findings: Vec<Finding>,
    /// Findings by kind (`digest/not_found`), including those not kept.
    kinds: BTreeMap<String, KindCount>,
    /// Findings counted but not kept (beyond [`HtmlReport::MAX_FINDINGS`]).
    omitted: u64,
    valid_digests: u64,
    valid_logs: u64,
}

impl HtmlReport {
    /// The most findings listed one by one; beyond it they are only counted
    /// (by kind, and in the timeline). A list longer than this is unreadable,
    /// and each row costs about half a kilobyte of page.
    pub const MAX_FINDINGS: usize = 5000;

    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one event of a run.
    ///
    /// `TrailStarted` names the chain that later verdicts with its index
    /// belong to. A verdict marks hours of its chain:
    /// - a digest (or a missing one), the hour that contains the middle of
    ///   its period, or without a period the hour that contains 30 minutes
    ///   before the time in its key (a digest covers the hour before it is
    ///   written, plus the seconds CloudTrail takes to write it);
    /// - a log file, the hour of the time in its key's name;
    /// - a gap, every hour of its period;
    /// - a chain problem (`--expect-until`), the last hour of the range.
    ///
    /// `invalid`: any invalid digest or log file but those below;
    /// `missing`: a digest not found (also inferred) and chain problems;
    /// `unattested`: log files no digest lists; `gap`: periods without log
    /// files. Other events are ignored.
    pub fn record(&mut self, event: &Event) {
        match event {
            Event::TrailStarted(info) => {
                let pos = match self.chains.iter().position(|c| c.is(info)) {
                    Some(pos) => pos,
                    None => {
                        self.chains.push(Chain::from_info(info));
                        self.chains.len() - 1
                    }
                };
                self.chains[pos].widen(info.start, info.end);
                self.current.insert(info.index, pos);
            }
            Event::Verdict(v) => self.verdict(v),
            Event::Planned { .. } | Event::TrailFinished { .. } => {}
        }
    }

    fn verdict(&mut self, v: &Verdict) {
        // validate() always announces a trail before its verdicts; a verdict
        // without one has no chain to be drawn in, and is dropped rather
        // than drawn in the wrong one.
        let Some(&pos) = self.current.get(&v.trail) else {
            return;
        };
        let mark = Mark::of(v);
        let hours = hours_of(v, &self.chains[pos]);
        if let Some((first, last)) = hours {
            self.chains[pos].mark(first, last, mark);
        }
        if mark == Mark::Valid {
            match v.subject {
                s if s.is_digest() => self.valid_digests += 1,
                Subject::Log => self.valid_logs += 1,
                _ => {}
            }
            return;
        }
        let (code, reason) = match &v.status {
            Status::Invalid(p) => (p.code(), p.describe()),
            _ => (
                "gap",
                "no log files were delivered in this period".to_owned(),
            ),
        };
        let finding = Finding {
            chain: pos,
            hours,
            subject: v.subject.as_str().to_owned(),
            code: code.to_owned(),
            mark,
            bucket: v.bucket.clone(),
            key: v.key.clone(),
            reason,
        };
        let kind = self.kinds.entry(finding.kind()).or_default();
        kind.count += 1;
        kind.mark = kind.mark.max(mark);
        if self.findings.len() < Self::MAX_FINDINGS {
            self.findings.push(finding);
        } else {
            self.omitted += 1;
        }
    }

    /// True when nothing but gaps was found (gaps are not errors, as in the
    /// AWS CLI).
    pub fn is_valid(&self) -> bool {
        self.kinds.values().all(|k| k.mark <= Mark::Gap)
    }

    /// The whole HTML document.
    pub fn render(&self, meta: &ReportMeta) -> String {
        let page = self.page(meta);
        let mut json = serde_json::to_string(&page).unwrap_or_else(|_| "{}".into());
        // Inside <script>, only "</script" (any case) and "<!--" can end or
        // confuse the block; escaping every '<', '>' and '&' as a JSON \u
        // escape rules all of them out whatever the keys hold. U+2028/2029
        // are escaped for older JavaScript parsers.
        json = json
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029");
        let title = format!(
            "{} — trailmill validate — {}",
            page.verdict,
            escape_html(&meta.what)
        );
        let mut out = String::with_capacity(json.len() * 2 + CSS.len() + JS.len() + 4096);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"generator\" content=\"trailmill {version}\">\n\
             <title>{title}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n\
             <header class=\"top\"><h1>CloudTrail log integrity report</h1>\
             <p class=\"sub\">trailmill validate</p></header>\n<noscript>\n",
            version = escape_html(&meta.version),
        );
        self.noscript(&page, &mut out);
        let _ = write!(
            out,
            "</noscript>\n<main id=\"app\"></main>\n\
             <script type=\"application/json\" id=\"{DATA_ID}\">{json}</script>\n\
             <script>\n{JS}</script>\n</body>\n</html>\n"
        );
        out
    }

    /// Writes [`HtmlReport::render`] to `path` atomically: to a temporary
    /// file in the same directory, then renamed over `path`, so a reader
    /// (or a browser reloading a `--follow` report) never sees half a page.
    pub fn write(&self, meta: &ReportMeta, path: &Path) -> std::io::Result<()> {
        let html = self.render(meta);
        let name = path
            .file_name()
            .ok_or_else(|| std::io::Error::other("the report path names no file"))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(html.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// The data the page embeds, with chains sorted worst first.
    fn page<'a>(&'a self, meta: &'a ReportMeta) -> Page<'a> {
        let mut order: Vec<usize> = (0..self.chains.len()).collect();
        let worst: Vec<Mark> = self.chains.iter().map(Chain::worst).collect();
        order.sort_by(|&a, &b| {
            worst[b]
                .cmp(&worst[a])
                .then_with(|| self.chains[a].sort_key().cmp(&self.chains[b].sort_key()))
        });
        let mut rank = vec![0; self.chains.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        let (axis_first, axis_days, axis_note) = self.axis(meta);
        let mut per_chain = vec![0usize; self.chains.len()];
        for f in &self.findings {
            per_chain[f.chain] += 1;
        }
        let chains = order
            .iter()
            .map(|&i| {
                let c = &self.chains[i];
                let mut days = String::with_capacity(axis_days as usize * 2);
                for d in axis_first..axis_first + axis_days {
                    if d > axis_first {
                        days.push(',');
                    }
                    match c.days.get(&d) {
                        Some(day) => days.push_str(&day.token()),
                        None => days.push(Mark::None.code()),
                    }
                }
                PageChain {
                    bucket: &c.bucket,
                    prefix: c.prefix.as_deref(),
                    org_id: c.org_id.as_deref(),
                    account: &c.account,
                    region: &c.region,
                    trail: &c.trail_name,
                    arn: &c.arn,
                    worst: worst[i].name(),
                    findings: per_chain[i],
                    days,
                }
            })
            .collect();
        let mut findings: Vec<&Finding> = self.findings.iter().collect();
        findings.sort_by(|a, b| {
            (rank[a.chain], a.hours, &a.key).cmp(&(rank[b.chain], b.hours, &b.key))
        });
        let findings = findings
            .into_iter()
            .map(|f| PageFinding {
                chain: rank[f.chain],
                hour: f.hours.map(|(h, _)| hour_label(h)),
                until: f.hours.and_then(|(a, b)| (b != a).then(|| hour_label(b))),
                kind: f.kind(),
                subject: &f.subject,
                code: &f.code,
                status: f.mark.name(),
                uri: f.uri(),
                reason: &f.reason,
            })
            .collect();
        let mut key_fingerprints = meta.key_fingerprints.clone();
        key_fingerprints.sort();
        Page {
            format: 1,
            what: &meta.what,
            start: display_time(meta.start),
            end: display_time(meta.end),
            key_fingerprints,
            version: &meta.version,
            generated: display_time(meta.generated),
            follow: meta.follow,
            verdict: if self.is_valid() { "VALID" } else { "INVALID" },
            valid_digests: self.valid_digests,
            valid_logs: self.valid_logs,
            kinds: self
                .kinds
                .iter()
                .map(|(kind, k)| PageKind {
                    kind,
                    status: k.mark.name(),
                    count: k.count,
                })
                .collect(),
            omitted: self.omitted,
            axis_start: day_label(axis_first),
            axis_days,
            axis_note,
            chains,
            findings,
        }
    }

    /// The days the timeline shows: first day and count, and a note when the
    /// requested range had to be cut (see [`MAX_AXIS_DAYS`]).
    fn axis(&self, meta: &ReportMeta) -> (i64, i64, Option<String>) {
        let first = hour_of(meta.start.as_second()).div_euclid(24);
        let last = hour_of(meta.end.as_second() - 1).div_euclid(24).max(first);
        if last - first < MAX_AXIS_DAYS {
            return (first, last - first + 1, None);
        }
        let data = self.chains.iter().flat_map(|c| c.days.keys().copied());
        let (lo, hi) = data.fold((last, first), |(lo, hi), d| (lo.min(d), hi.max(d)));
        let (lo, hi) = if lo <= hi {
            (lo.max(first), hi.min(last))
        } else {
            (last, last)
        };
        let lo = lo.max(hi - MAX_AXIS_DAYS + 1);
        let note = format!(
            "The timeline shows {} to {} only: the range is longer than {MAX_AXIS_DAYS} days.",
            day_label(lo),
            day_label(hi)
        );
        (lo, hi - lo + 1, Some(note))
    }

    /// The `<noscript>` fallback: the summary and the findings, as static
    /// HTML with the same `data-` attributes the script writes.
    fn noscript(&self, page: &Page<'_>, out: &mut String) {
        let e = escape_html;
        let _ = write!(
            out,
            "<section id=\"summary-static\"><h2>Summary</h2>\
             <p class=\"verdict {cls}\">{verdict}</p><dl>\
             <dt>Validated</dt><dd>{what}</dd>\
             <dt>Range</dt><dd>{start} → {end}</dd>\
             <dt>Public keys</dt><dd>{keys}</dd>\
             <dt>trailmill</dt><dd>{version}</dd>\
             <dt>{gen_label}</dt><dd>{generated}</dd>\
             <dt>Valid</dt><dd>{vd} digests, {vl} log files</dd></dl>",
            cls = if page.verdict == "VALID" {
                "s-valid"
            } else {
                "s-invalid"
            },
            verdict = page.verdict,
            what = e(page.what),
            start = page.start,
            end = page.end,
            keys = e(&page.key_fingerprints.join(", ")),
            version = e(page.version),
            gen_label = if page.follow {
                "Monitoring (validate --follow), last poll at"
            } else {
                "Generated"
            },
            generated = page.generated,
            vd = page.valid_digests,
            vl = page.valid_logs,
        );
        if !page.kinds.is_empty() {
            out.push_str(
                "<table class=\"kinds\"><tr><th>Kind</th><th>Status</th><th>Count</th></tr>",
            );
            for k in &page.kinds {
                let _ = write!(
                    out,
                    "<tr data-kind=\"{kind}\" data-status=\"{st}\"><td>{kind}</td><td>{st}</td><td>{n}</td></tr>",
                    kind = e(k.kind),
                    st = k.status,
                    n = k.count
                );
            }
            out.push_str("</table>");
        }
        out.push_str("</section>\n<section id=\"findings-static\"><h2>Findings</h2>");
        if page.findings.is_empty() {
            out.push_str("<p>None.</p>");
        } else {
            out.push_str(
                "<table class=\"findings\"><tr><th>Status</th><th>Account</th><th>Region</th>\
                 <th>Trail</th><th>Hour (UTC)</th><th>Kind</th><th>Object</th><th>Reason</th></tr>",
            );
            for f in &page.findings {
                let c = &page.chains[f.chain];
                let hour = match (&f.hour, &f.until) {
                    (Some(h), Some(u)) => format!("{h} … {u}"),
                    (Some(h), None) => h.clone(),
                    _ => "—".into(),
                };
                let _ = write!(
                    out,
                    "<tr class=\"finding\" data-account=\"{a}\" data-region=\"{r}\" data-trail=\"{t}\" \
                     data-hour=\"{dh}\" data-kind=\"{k}\" data-key=\"{u}\" data-status=\"{s}\">\
                     <td>{g} {s}</td><td>{a}</td><td>{r}</td><td>{t}</td><td>{hour}</td><td>{k}</td>\
                     <td><code>{u}</code></td><td>{why}</td></tr>",
                    a = e(c.account),
                    r = e(c.region),
                    t = e(c.trail),
                    dh = f.hour.as_deref().unwrap_or(""),
                    k = e(&f.kind),
                    u = e(&f.uri),
                    s = f.status,
                    g = mark_named(f.status).glyph(),
                    why = e(f.reason),
                );
            }
            out.push_str("</table>");
        }
        if page.omitted > 0 {
            let _ = write!(
                out,
                "<p>{} more findings are counted above but not listed.</p>",
                page.omitted
            );
        }
        out.push_str(
            "</section>\n<p>The timeline needs JavaScript; the data is in this file's \
             JSON block.</p>\n",
        );
    }
}

/// The data block: what the script renders. Field names are spelled out so
/// that the block is also a readable machine-readable export.
#[derive(Serialize)]
struct Page<'a> {
    /// Bumped when the block's shape changes.
    format: u32,
    what: &'a str,
    start: String,
    end: String,
    key_fingerprints: Vec<String>,
    version: &'a str,
    generated: String,
    follow: bool,
    verdict: &'static str,
    valid_digests: u64,
    valid_logs: u64,
    kinds: Vec<PageKind<'a>>,
    omitted: u64,
    /// The first day of the timeline (`YYYY-MM-DD`) and how many days it has.
    axis_start: String,
    axis_days: i64,
    axis_note: Option<String>,
    chains: Vec<PageChain<'a>>,
    findings: Vec<PageFinding<'a>>,
}

#[derive(Serialize)]
struct PageKind<'a> {
    kind: &'a str,
    status: &'static str,
    count: u64,
}

#[derive(Serialize)]
struct PageChain<'a> {
    bucket: &'a str,
    prefix: Option<&'a str>,
    org_id: Option<&'a str>,
    account: &'a str,
    region: &'a str,
    trail: &'a str,
    arn: &'a str,
    worst: &'static str,
    findings: usize,
    /// One token per day of the axis, comma-separated: a status code for a
    /// uniform day, else 24 codes.
    days: String,
}

#[derive(Serialize)]
struct PageFinding<'a> {
    /// Index into `chains` (as sorted on the page).
    chain: usize,
    /// `YYYY-MM-DDTHH`.
    hour: Option<String>,
    /// The last hour, for findings spanning several (gaps).
    until: Option<String>,
    kind: String,
    subject: &'a str,
    code: &'a str,
    status: &'static str,
    uri: String,
    reason: &'a str,
}

fn mark_named(name: &str) -> Mark {
    Mark::ALL
        .into_iter()
        .find(|m| m.name() == name)
        .unwrap_or_default()
}

/// The hour (since the Unix epoch) that contains the second `secs`.
fn hour_of(secs: i64) -> i64 {
    secs.div_euclid(3600)
}

/// The hours a verdict is placed in, first and last (see
/// [`HtmlReport::record`]).
fn hours_of(v: &Verdict, chain: &Chain) -> Option<(i64, i64)> {
    let one = |secs: i64| Some((hour_of(secs), hour_of(secs)));
    match v.subject {
        Subject::Digest | Subject::BackfillDigest => match v.period {
            // The middle, not the end: CloudTrail's periods run from a few
            // seconds past one hour to a few seconds past the next, and the
            // end's hour would move each digest one hour later than the
            // log files it lists.
            Some((s, e)) => one(s.as_second() + (e.as_second() - s.as_second()) / 2),
            None => digest_key_time(&v.key).and_then(|t| one(t.as_second() - 1800)),
        },
        Subject::Log => {
            let key = ObjectKey::parse(&v.key).ok()?;
            one(key.file.time.unix_seconds())
        }
        Subject::Period | Subject::BackfillPeriod => {
            let (s, e) = v.period?;
            let first = hour_of(s.as_second());
            Some((first, hour_of(e.as_second() - 1).max(first)))
        }
        Subject::Chain => match v.period {
            Some((_, e)) => one(e.as_second() - 1),
            // The span is the range widened by a day on each side.
            None => chain.span.map(|(_, hi)| (hi - 24, hi - 24)),
        },
    }
}

/// `YYYY-MM-DD` of a day number.
fn day_label(day: i64) -> String {
    let (y, m, d) = trailmill_core::time::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH` of an hour number, as in the page's `data-hour`.
fn hour_label(hour: i64) -> String {
    format!(
        "{}T{:02}",
        day_label(hour.div_euclid(24)),
        hour.rem_euclid(24)
    )
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::parse_time;

    fn info(index: usize, account: &str, region: &str, start: &str, end: &str) -> TrailInfo {
        TrailInfo {
            index,
            arn: format!("arn:aws:cloudtrail:us-east-1:{account}:trail/main"),
            bucket: "b".into(),
            prefix: None,
            org_id: Some("o-abc".into()),
            account: account.into(),
            region: region.into(),
            home_region: "us-east-1".into(),
            trail_name: "main".into(),
            start: parse_time(start).unwrap(),
            end: parse_time(end).unwrap(),
        }
    }

    fn meta(start: &str, end: &str) -> ReportMeta {
        ReportMeta {
            what: "--all under s3://b".into(),
            start: parse_time(start).unwrap(),
            end: parse_time(end).unwrap(),
            key_fingerprints: vec!["ab12".into()],
            version: "0.1.0".into(),
            generated: parse_time("2025-01-01T00:00:00Z").unwrap(),
            follow: false,
        }
    }

    fn log_key(account: &str, region: &str, t: &str) -> String {
        // t: YYYYMMDDTHHmm
        let (y, m, d) = (&t[0..4], &t[4..6], &t[6..8]);
        format!(
            "AWSLogs/o-abc/{account}/CloudTrail/{region}/{y}/{m}/{d}/{account}_CloudTrail_{region}_{t}Z_abcdEFGH12345678.json.gz"
        )
    }

    fn digest_key(account: &str, region: &str, t: &str) -> String {
        // t: YYYYMMDDTHHMMSS
        let (y, m, d) = (&t[0..4], &t[4..6], &t[6..8]);
        format!(
            "AWSLogs/o-abc/{account}/CloudTrail-Digest/{region}/{y}/{m}/{d}/{account}_CloudTrail-Digest_{region}_main_us-east-1_{t}Z.json.gz"
        )
    }

    fn verdict(trail: usize, subject: Subject, key: String, status: Status) -> Event {
        Event::Verdict(Verdict {
            trail,
            subject,
            bucket: "b".into(),
            key,
            status,
            period: None,
            attested_sha256: None,
        })
    }

    fn with_period(mut ev: Event, s: &str, e: &str) -> Event {
        if let Event::Verdict(v) = &mut ev {
            v.period = Some((parse_time(s).unwrap(), parse_time(e).unwrap()));
        }
        ev
    }

    /// The JSON data block of a rendered page.
    fn data(html: &str) -> serde_json::Value {
        let open = format!("<script type=\"application/json\" id=\"{DATA_ID}\">");
        let start = html.find(&open).unwrap() + open.len();
        let len = html[start..].find("</script>").unwrap();
        serde_json::from_str(&html[start..start + len]).unwrap()
    }

    #[test]
    fn hours_take_the_worst_status_and_days_fold() {
        let mut r = HtmlReport::new();
        let (s, e) = ("2024-01-01T00:00:00Z", "2024-01-03T00:00:00Z");
        r.record(&Event::TrailStarted(Arc::new(info(
            0,
            "111",
            "eu-west-1",
            s,
            e,
        ))));
        // Valid digests for every hour of the first day: period a few seconds
        // past the hour, as CloudTrail writes them.
        for h in 0..24 {
            let ev = verdict(
                0,
                Subject::Digest,
                digest_key(
                    "111",
                    "eu-west-1",
                    &format!("20240101T{:02}0015", (h + 1) % 24),
                ),
                Status::Valid,
            );
            let start = format!("2024-01-01T{h:02}:00:15Z");
            let end = if h == 23 {
                "2024-01-02T00:00:15Z".to_owned()
            } else {
                format!("2024-01-01T{:02}:00:15Z", h + 1)
            };
            r.record(&with_period(ev, &start, &end));
        }
        // Hour 03: a valid log, then a tampered one; hour 05: a deleted
        // digest (no period: placed by its key), and an unattested log.
        let log3 = log_key("111", "eu-west-1", "20240101T0312");
        r.record(&verdict(0, Subject::Log, log3.clone(), Status::Valid));
        r.record(&verdict(
            0,
            Subject::Log,
            log3,
            Status::Invalid(Problem::HashMismatch),
        ));
        r.record(&verdict(
            0,
            Subject::Digest,
            digest_key("111", "eu-west-1", "20240101T060015"),
            Status::Invalid(Problem::NotFound { detail: None }),
        ));
        r.record(&verdict(
            0,
            Subject::Log,
            log_key("111", "eu-west-1", "20240101T0540"),
            Status::Invalid(Problem::Unattested),
        ));
        // A gap over the second day's hours 10 to 12.
        r.record(&with_period(
            Event::Verdict(Verdict {
                trail: 0,
                subject: Subject::Period,
                bucket: String::new(),
                key: String::new(),
                status: Status::Gap,
                period: None,
                attested_sha256: None,
            }),
            "2024-01-02T10:00:00Z",
            "2024-01-02T13:00:00Z",
        ));
        // --expect-until: the chain ends early; shown in the range's last hour.
        r.record(&verdict(
            0,
            Subject::Chain,
            "AWSLogs/o-abc/111/CloudTrail-Digest/eu-west-1/".into(),
            Status::Invalid(Problem::ChainEndsEarly {
                newest_end: None,
                expected_until: parse_time(e).unwrap(),
            }),
        ));
        let day1 = r.chains[0].days[&19723].token();
        assert_eq!(day1, "vvvivmvvvvvvvvvvvvvvvvvv");
        let day2 = r.chains[0].days[&19724].token();
        assert_eq!(day2, "nnnnnnnnnngggnnnnnnnnnnm");
        assert!(!r.is_valid());

        let html = r.render(&meta(s, e));
        let d = data(&html);
        assert_eq!(d["verdict"], "INVALID");
        assert_eq!(d["axis_start"], "2024-01-01");
        assert_eq!(d["axis_days"], 2);
        assert_eq!(
            d["chains"][0]["days"],
            "vvvivmvvvvvvvvvvvvvvvvvv,nnnnnnnnnngggnnnnnnnnnnm"
        );
        assert_eq!(d["chains"][0]["worst"], "invalid");
        let found: Vec<(String, String, String)> = d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["hour"].as_str().unwrap().to_owned(),
                    f["kind"].as_str().unwrap().to_owned(),
                    f["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want = [
            ("2024-01-01T03", "log/hash_mismatch", "invalid"),
            ("2024-01-01T05", "digest/not_found", "missing"),
            ("2024-01-01T05", "log/unattested", "unattested"),
            ("2024-01-02T10", "period/gap", "gap"),
            ("2024-01-02T23", "chain/chain_ends_early", "missing"),
        ];
        assert_eq!(
            found,
            want.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
        );
        assert_eq!(d["findings"][3]["until"], "2024-01-02T12");
        assert_eq!(d["valid_digests"], 24);
        assert_eq!(d["valid_logs"], 1);
    }

    #[test]
    fn indexes_follow_the_latest_trail_started() {
        // `--follow` runs many validations, each numbering trails from 0.
        let mut r = HtmlReport::new();
        let (s, e) = ("2024-01-01T00:00:00Z", "2024-01-01T02:00:00Z");
        r.record(&Event::TrailStarted(Arc::new(info(
            0,
            "111",
            "eu-west-1",
            s,
            e,
        ))));
        r.record(&Event::TrailStarted(Arc::new(info(
            1,
            "222",
            "eu-west-1",
            s,
            e,
        ))));
        let (s2, e2) = ("2024-01-01T02:00:00Z", "2024-01-01T03:00:00Z");
        r.record(&Event::TrailStarted(Arc::new(info(
            0,
            "222",
            "eu-west-1",
            s2,
            e2,
        ))));
        r.record(&verdict(
            0,
            Subject::Log,
            log_key("222", "eu-west-1", "20240101T0210"),
            Status::Invalid(Problem::HashMismatch),
        ));
        assert_eq!(r.chains.len(), 2);
        assert_eq!(r.chains[1].account, "222");
        assert_eq!(r.chains[1].days[&19723].0[2], Mark::Invalid);
        assert!(r.chains[0].days.is_empty());

        // The state survives a round trip through JSON, as --follow keeps it.
        let text = serde_json::to_string(&r).unwrap();
        let back: HtmlReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back.chains[1].days, r.chains[1].days);
        assert!(
            text.contains(r#""days":"19723:nninnnnnnnnnnnnnnnnnnnnn""#),
            "{text}"
        );
        assert_eq!(
            back.render(&meta(s, e2)),
            r.render(&meta(s, e2)),
            "a restored report renders the same page"
        );
    }

    #[test]
    fn hostile_keys_are_escaped_everywhere() {
        let mut r = HtmlReport::new();
        let (s, e) = ("2024-01-01T00:00:00Z", "2024-01-01T02:00:00Z");
        let mut hostile = info(0, "111", "eu-west-1<b>", s, e);
        hostile.trail_name = "t\"'&<x>".into();
        r.record(&Event::TrailStarted(Arc::new(hostile)));
        let key =
            "AWSLogs/111/CloudTrail/x/</script><img src=x onerror=alert(1)><!--\u{2028}.json.gz";
        r.record(&verdict(
            0,
            Subject::Log,
            key.into(),
            Status::Invalid(Problem::ReadError {
                message: "</script><script>alert(2)</script>".into(),
            }),
        ));
        let mut m = meta(s, e);
        m.what = "</title><script>alert(3)</script>".into();
        let html = r.render(&m);
        assert!(!html.contains("<img"), "an element was injected");
        assert!(!html.contains("<b>"), "an element was injected");
        assert!(!html.contains("<x>"), "an element was injected");
        assert!(!html.contains("<!--"), "a comment was opened");
        assert_eq!(
            html.matches("<script").count(),
            2,
            "only the page's own scripts"
        );
        assert_eq!(html.matches("</script>").count(), 2);
        assert_eq!(html.matches("</title>").count(), 1);
        // The data block still carries the exact strings.
        let d = data(&html);
        assert_eq!(d["findings"][0]["uri"], format!("s3://b/{key}"));
        assert_eq!(d["chains"][0]["trail"], "t\"'&<x>");
        assert_eq!(d["what"], "</title><script>alert(3)</script>");
    }

    #[test]
    fn a_year_of_an_850_chain_organization_stays_small() {
        // A year of hourly digests for 850 chains (account × region), all
        // valid but for a few findings.
        const CHAINS: usize = 850;
        let (s, e) = ("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z");
        let start = parse_time(s).unwrap().as_second();
        let hours = (parse_time(e).unwrap().as_second() - start) / 3600;
        let mut r = HtmlReport::new();
        let mut ev = Event::Verdict(Verdict {
            trail: 0,
            subject: Subject::Digest,
            bucket: "b".into(),
            key: String::new(),
            status: Status::Valid,
            period: None,
            attested_sha256: None,
        });
        for chain in 0..CHAINS {
            let account = format!("{:012}", 100_000_000_000u64 + (chain / 17) as u64);
            let region = format!("region-{}", chain % 17);
            r.record(&Event::TrailStarted(Arc::new(info(
                chain, &account, &region, s, e,
            ))));
            for h in 0..hours {
                if let Event::Verdict(v) = &mut ev {
                    v.trail = chain;
                    let t0 = Timestamp::from_second(start + h * 3600 + 15).unwrap();
                    let t1 = Timestamp::from_second(start + (h + 1) * 3600 + 15).unwrap();
                    v.period = Some((t0, t1));
                }
                r.record(&ev);
            }
        }
        for (chain, t) in [
            (3, "20240311T1412"),
            (400, "20240704T0001"),
            (849, "20241231T2359"),
        ] {
            r.record(&verdict(
                chain,
                Subject::Log,
                log_key("x", "y", t),
                Status::Invalid(Problem::HashMismatch),
            ));
        }
        r.record(&verdict(
            17,
            Subject::Digest,
            digest_key("x", "y", "20240601T120015"),
            Status::Invalid(Problem::NotFound { detail: None }),
        ));
        let html = r.render(&meta(s, e));
        let state = serde_json::to_string(&r).unwrap();
        println!(
            "850 chains, one year: {} bytes of HTML, {} bytes of state",
            html.len(),
            state.len()
        );
        assert!(html.len() < 8 << 20, "{} bytes", html.len());
        // Runs of equal days keep the --follow state far smaller than the page.
        assert!(state.len() < 256 << 10, "{} bytes of state", state.len());
        let back: HtmlReport = serde_json::from_str(&state).unwrap();
        assert_eq!(back.render(&meta(s, e)), html);
        let d = data(&html);
        assert_eq!(d["chains"].as_array().unwrap().len(), CHAINS);
        assert_eq!(d["findings"].as_array().unwrap().len(), 4);
        assert_eq!(d["axis_days"], 366);
        // Chains with findings come first, worst first.
        assert_eq!(d["chains"][0]["worst"], "invalid");
        assert_eq!(d["chains"][3]["worst"], "missing");
        assert_eq!(d["chains"][4]["worst"], "valid");
        // The last hour of 2024-12-31 is covered by the digest that ends at
        // 2025-01-01T00:00:15Z; hour 23 of the findings' days is still
        // folded with the rest.
        let valid_day = d["chains"][4]["days"].as_str().unwrap();
        assert!(valid_day.split(',').all(|t| t == "v"), "{valid_day:.80}");
    }

    #[test]
    fn a_range_of_decades_is_cut_to_the_days_with_data() {
        let mut r = HtmlReport::new();
        let (s, e) = ("1970-01-01T00:00:00Z", "2024-01-03T00:00:00Z");
        r.record(&Event::TrailStarted(Arc::new(info(
            0,
            "111",
            "eu-west-1",
            s,
            e,
        ))));
        r.record(&verdict(
            0,
            Subject::Log,
            log_key("111", "eu-west-1", "20240102T0310"),
            Status::Valid,
        ));
        let d = data(&r.render(&meta(s, e)));
        assert_eq!(d["axis_start"], "2024-01-02");
        assert_eq!(d["axis_days"], 1);
        assert_eq!(d["chains"][0]["days"], "nnnvnnnnnnnnnnnnnnnnnnnn");
        assert!(d["axis_note"].as_str().unwrap().contains("2024-01-02"));
    }

    #[test]
    fn day_tokens_round_trip() {
        for token in ["v", "n", "vvvivmvvvvvvvvvvvvvvvvvv"] {
            assert_eq!(Day::from_token(token).unwrap().token(), token);
        }
        assert!(Day::from_token("vv").is_none());
        assert!(Day::from_token("z").is_none());
        assert_eq!(
            Day::from_token("vvvivmvvvvvvvvvvvvvvvvvv").unwrap().worst(),
            Mark::Invalid
        );
    }

    #[test]
    fn write_replaces_the_file_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.html");
        std::fs::write(&path, "old").unwrap();
        let r = HtmlReport::new();
        r.write(&meta("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"), &path)
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("<!DOCTYPE html>") && text.contains("VALID"));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
        let err = r
            .write(
                &meta("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"),
                &dir.path().join("missing/r.html"),
            )
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
}
