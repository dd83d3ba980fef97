//! Output formats: the AWS CLI's text, JSON Lines, and a concise human format.
//!
//! Each formatter consumes the [`Event`]s of a run in order and writes to a
//! stdout and a stderr given as `&mut dyn Write`, so the command-line tool is
//! a thin wrapper and tests can capture both streams.

use std::io::{self, Write};
use std::str::FromStr;

use serde_json::{Map, Value, json};

use crate::time::display_time;
use crate::verdict::{Event, Report, Status, Subject, TrailInfo, TrailSummary, Verdict};

/// Which output format to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// Exactly what `aws cloudtrail validate-logs` prints (`aws-cli`).
    AwsCli,
    /// One JSON object per line: each trail, each verdict, each summary (`json`).
    Json,
    /// Concise text, coloured on request (`human`, the default).
    #[default]
    Human,
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aws-cli" => Ok(OutputFormat::AwsCli),
            "json" => Ok(OutputFormat::Json),
            "human" => Ok(OutputFormat::Human),
            other => Err(format!(
                "unknown format {other:?}: expected aws-cli, json or human"
            )),
        }
    }
}

/// Writes a run's events in some format.
pub trait Formatter {
    /// Writes what one event shows.
    fn event(&mut self, event: &Event) -> io::Result<()>;

    /// Writes whatever comes after the last trail (totals).
    fn finish(&mut self, _report: &Report) -> io::Result<()> {
        Ok(())
    }
}

/// Creates the formatter for `format`. `verbose` shows valid files (the CLI's
/// `--verbose`); `color` enables ANSI colours in the human format.
pub fn formatter<'w>(
    format: OutputFormat,
    verbose: bool,
    color: bool,
    stdout: &'w mut dyn Write,
    stderr: &'w mut dyn Write,
) -> Box<dyn Formatter + 'w> {
    match format {
        OutputFormat::AwsCli => Box::new(AwsCliFormatter::new(stdout, stderr, verbose)),
        OutputFormat::Json => Box::new(JsonFormatter::new(stdout)),
        OutputFormat::Human => Box::new(HumanFormatter::new(stdout, verbose, color)),
    }
}

/// The text of `aws cloudtrail validate-logs`, byte for byte: the header and
/// summary and (with `verbose`) valid files on stdout, invalid files and gaps
/// on stderr, with the CLI's blank-line rules between them.
///
/// Verdicts only trailmill gives (see [`Problem::cli_detects`](crate::Problem::cli_detects))
/// are written in the same style; with `--all`, each trail gets its own block.
pub struct AwsCliFormatter<'w> {
    out: &'w mut dyn Write,
    err: &'w mut dyn Write,
    verbose: bool,
    last_double: bool,
}

impl<'w> AwsCliFormatter<'w> {
    /// A formatter writing to `stdout` and `stderr`.
    pub fn new(stdout: &'w mut dyn Write, stderr: &'w mut dyn Write, verbose: bool) -> Self {
        AwsCliFormatter {
            out: stdout,
            err: stderr,
            verbose,
            last_double: true,
        }
    }

    fn status(&mut self, message: &str, is_error: bool) -> io::Result<()> {
        if is_error {
            if self.last_double {
                write!(self.err, "{message}\n\n")?;
            } else {
                write!(self.err, "\n{message}\n\n")?;
            }
            self.last_double = true;
        } else if self.verbose {
            self.last_double = false;
            writeln!(self.out, "{message}")?;
        }
        Ok(())
    }

    fn ratio(&mut self, valid: u64, invalid: u64, name: &str) -> io::Result<()> {
        let total = valid + invalid;
        if total > 0 {
            write!(self.out, "\n{valid}/{total} {name} files valid")?;
            if invalid > 0 {
                write!(self.out, ", {invalid}/{total} {name} files INVALID")?;
            }
        }
        Ok(())
    }

    fn summary(&mut self, info: &TrailInfo, s: &TrailSummary) -> io::Result<()> {
        if !self.last_double {
            writeln!(self.out)?;
        }
        writeln!(
            self.out,
            "Results requested for {} to {}",
            display_time(info.start),
            display_time(info.end)
        )?;
        if s.no_digests() {
            writeln!(self.out, "No digests found")?;
            return Ok(());
        }
        match s.found {
            None => writeln!(self.out, "No valid digests found in range")?,
            Some((a, b)) => writeln!(
                self.out,
                "Results found for {} to {}:",
                display_time(a),
                display_time(b)
            )?,
        }
        self.ratio(s.valid_digests, s.invalid_digests, "digest")?;
        self.ratio(
            s.valid_backfill_digests,
            s.invalid_backfill_digests,
            "backfill digest",
        )?;
        self.ratio(s.valid_logs, s.invalid_logs, "log")?;
        if s.unattested_logs > 0 {
            write!(
                self.out,
                "\n{} log files not referenced by any digest file",
                s.unattested_logs
            )?;
        }
        if s.chain_problems > 0 {
            write!(
                self.out,
                "\n{} digest chains end before the expected time",
                s.chain_problems
            )?;
        }
        writeln!(self.out)
    }
}

/// The CLI's line for a verdict (without the status), e.g. `Log file\ts3://b/k`.
pub fn aws_cli_line(v: &Verdict) -> String {
    let label = match v.subject {
        Subject::Digest => "Digest file",
        Subject::BackfillDigest => "(backfill) Digest file",
        Subject::Log => "Log file",
        Subject::Chain => "Digest chain",
        Subject::Period | Subject::BackfillPeriod => "",
    };
    match (&v.status, v.period) {
        (Status::Gap, Some((from, to))) => format!(
            "{}No log files were delivered by CloudTrail between {} and {}",
            if v.subject.is_backfill() {
                "(backfill) "
            } else {
                ""
            },
            display_time(from),
            display_time(to)
        ),
        (Status::Valid, _) => format!("{label}\t{}\tvalid", v.uri()),
        (Status::Invalid(p), _) => format!("{label}\t{}\tINVALID: {}", v.uri(), p.aws_cli_text()),
        _ => format!("{label}\t{}", v.uri()),
    }
}

impl Formatter for AwsCliFormatter<'_> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::TrailStarted(info) => {
                self.last_double = true;
                write!(
                    self.out,
                    "Validating log files for trail {} between {} and {}\n\n",
                    info.arn,
                    display_time(info.start),
                    display_time(info.end)
                )
            }
            Event::Verdict(v) => {
                let line = aws_cli_line(v);
                self.status(&line, !v.is_valid())
            }
            Event::TrailFinished { trail, summary } => self.summary(trail, summary),
            Event::Planned { .. } => Ok(()),
        }
    }
}

/// JSON Lines: `{"type":"trail",…}` when a trail starts, `{"type":"file",…}`
/// for every verdict (valid ones included), `{"type":"summary",…}` when it
/// ends, and `{"type":"total",…}` last.
pub struct JsonFormatter<'w> {
    out: &'w mut dyn Write,
}

impl<'w> JsonFormatter<'w> {
    /// A formatter writing to `out`.
    pub fn new(out: &'w mut dyn Write) -> Self {
        JsonFormatter { out }
    }

    fn line(&mut self, v: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut *self.out, v)?;
        self.out.write_all(b"\n")
    }
}

/// A verdict as a JSON object.
pub fn verdict_json(v: &Verdict, arn: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!("file"));
    m.insert("trail".into(), json!(v.trail));
    if let Some(a) = arn {
        m.insert("arn".into(), json!(a));
    }
    m.insert("file".into(), json!(v.subject.as_str()));
    if !v.key.is_empty() {
        m.insert("uri".into(), json!(v.uri()));
        m.insert("bucket".into(), json!(v.bucket));
        m.insert("key".into(), json!(v.key));
    }
    match &v.status {
        Status::Valid => {
            m.insert("status".into(), json!("valid"));
        }
        Status::Invalid(p) => {
            m.insert("status".into(), json!("invalid"));
            m.insert("problem".into(), json!(p.code()));
            m.insert("message".into(), json!(p.describe()));
            m.insert(
                "aws_cli_message".into(),
                json!(format!("INVALID: {}", p.aws_cli_text())),
            );
            m.insert("aws_cli_detects".into(), json!(p.cli_detects()));
        }
        Status::Gap => {
            m.insert("status".into(), json!("gap"));
        }
    }
    if let Some((a, b)) = v.period {
        m.insert("start".into(), json!(display_time(a)));
        m.insert("end".into(), json!(display_time(b)));
    }
    Value::Object(m)
}

fn summary_json(kind: &str, s: &TrailSummary) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), json!(kind));
    m.insert("valid".into(), json!(s.is_valid()));
    for (k, v) in [
        ("valid_digests", s.valid_digests),
        ("invalid_digests", s.invalid_digests),
        ("valid_backfill_digests", s.valid_backfill_digests),
        ("invalid_backfill_digests", s.invalid_backfill_digests),
        ("valid_logs", s.valid_logs),
        ("invalid_logs", s.invalid_logs),
        ("unattested_logs", s.unattested_logs),
        ("gaps", s.gaps),
        ("chain_problems", s.chain_problems),
    ] {
        m.insert(k.into(), json!(v));
    }
    if let Some((a, b)) = s.found {
        m.insert("found_start".into(), json!(display_time(a)));
        m.insert("found_end".into(), json!(display_time(b)));
    }
    m
}

impl Formatter for JsonFormatter<'_> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::TrailStarted(t) => self.line(&json!({
                "type": "trail", "trail": t.index, "arn": t.arn, "bucket": t.bucket, "prefix": t.prefix,
                "org_id": t.org_id, "account": t.account, "region": t.region, "home_region": t.home_region,
                "trail_name": t.trail_name, "start": display_time(t.start), "end": display_time(t.end),
            })),
            Event::Verdict(v) => self.line(&verdict_json(v, None)),
            Event::TrailFinished { trail, summary } => {
                let mut m = summary_json("summary", summary);
                m.insert("trail".into(), json!(trail.index));
                m.insert("arn".into(), json!(trail.arn));
                self.line(&Value::Object(m))
            }
            Event::Planned { .. } => Ok(()),
        }
    }

    fn finish(&mut self, report: &Report) -> io::Result<()> {
        let mut m = summary_json("total", &report.totals());
        m.insert("trails".into(), json!(report.trails.len()));
        m.insert("exit_code".into(), json!(report.exit_code()));
        self.line(&Value::Object(m))
    }
}

/// Concise text: one line per problem (and per valid file when verbose), one
/// summary line per trail, totals at the end. Everything goes to stdout.
pub struct HumanFormatter<'w> {
    out: &'w mut dyn Write,
    verbose: bool,
    color: bool,
}

impl<'w> HumanFormatter<'w> {
    /// A formatter writing to `out`, with ANSI colours when `color`.
    pub fn new(out: &'w mut dyn Write, verbose: bool, color: bool) -> Self {
        HumanFormatter {
            out,
            verbose,
            color,
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

fn plural(n: u64, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn counts_line(s: &TrailSummary) -> (String, String) {
    let valid = format!(
        "{}, {} valid",
        plural(s.valid_digests + s.valid_backfill_digests, "digest"),
        plural(s.valid_logs, "log file")
    );
    let mut bad = Vec::new();
    if s.invalid_digests + s.invalid_backfill_digests > 0 {
        bad.push(plural(
            s.invalid_digests + s.invalid_backfill_digests,
            "invalid digest",
        ));
    }
    if s.invalid_logs > 0 {
        bad.push(plural(s.invalid_logs, "invalid log file"));
    }
    if s.unattested_logs > 0 {
        bad.push(plural(s.unattested_logs, "unattested log file"));
    }
    if s.chain_problems > 0 {
        bad.push(plural(s.chain_problems, "truncated chain"));
    }
    if s.gaps > 0 {
        bad.push(plural(s.gaps, "gap"));
    }
    (valid, bad.join(", "))
}

impl Formatter for HumanFormatter<'_> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::TrailStarted(t) => {
                let title = self.paint("1", &t.arn);
                writeln!(
                    self.out,
                    "{title}  {} {}  {} → {}",
                    t.account,
                    t.region,
                    display_time(t.start),
                    display_time(t.end)
                )
            }
            Event::Verdict(v) => {
                let what = match v.subject {
                    Subject::Digest => "digest",
                    Subject::BackfillDigest => "backfill",
                    Subject::Log => "log",
                    Subject::Chain => "chain",
                    Subject::Period | Subject::BackfillPeriod => "gap",
                };
                match &v.status {
                    Status::Valid if self.verbose => {
                        let mark = self.paint("32", "ok");
                        writeln!(self.out, "  {mark:>2} {what:<8} {}", v.uri())
                    }
                    Status::Valid => Ok(()),
                    Status::Invalid(p) => {
                        let mark = self.paint("31", "✗");
                        writeln!(self.out, "  {mark} {what:<8} {}  {}", v.uri(), p.describe())
                    }
                    Status::Gap => {
                        let mark = self.paint("33", "·");
                        let between = v
                            .period
                            .map(|(a, b)| {
                                format!(" between {} and {}", display_time(a), display_time(b))
                            })
                            .unwrap_or_default();
                        writeln!(
                            self.out,
                            "  {mark} {what:<8} no log files delivered{between}"
                        )
                    }
                }
            }
            Event::TrailFinished { summary, .. } => {
                if summary.no_digests() {
                    return writeln!(self.out, "  no digests found");
                }
                let (valid, bad) = counts_line(summary);
                let found = summary
                    .found
                    .map(|(a, b)| format!(" (covering {} → {})", display_time(a), display_time(b)))
                    .unwrap_or_default();
                if bad.is_empty() {
                    let mark = self.paint("32", "✓");
                    writeln!(self.out, "  {mark} {valid}{found}")
                } else {
                    let mark = self.paint("31", "✗");
                    writeln!(self.out, "  {mark} {valid}{found}; {bad}")
                }
            }
            Event::Planned { .. } => Ok(()),
        }
    }

    fn finish(&mut self, report: &Report) -> io::Result<()> {
        if report.trails.is_empty() {
            return writeln!(self.out, "No digests found");
        }
        if report.trails.len() > 1 {
            let t = report.totals();
            let (valid, bad) = counts_line(&t);
            let verdict = if report.is_valid() {
                self.paint("32", "VALID")
            } else {
                self.paint("31", "INVALID")
            };
            writeln!(
                self.out,
                "{verdict}: {} trails; {valid}{}",
                report.trails.len(),
                if bad.is_empty() {
                    String::new()
                } else {
                    format!("; {bad}")
                }
            )?;
        }
        Ok(())
    }
}
