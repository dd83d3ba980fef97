//! Arguments shared by several commands, and their conversion into the
//! library's plain configuration types.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use trailmill_aws::{RetryPolicy, S3Client, S3Options, S3Url};
use trailmill_core::time::Timestamp;
use trailmill_core::{EventFilter, Selection};
use trailmill_sinks::SinkSpec;

/// How to reach S3, for `s3://` sources. Credentials, profile, region and
/// endpoint come from the standard AWS configuration (`AWS_PROFILE`,
/// `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, …).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "S3 (s3:// sources)")]
pub struct S3Args {
    /// Address buckets by path (ENDPOINT/BUCKET/KEY). Always on when an
    /// endpoint URL is configured (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3).
    #[arg(long)]
    pub path_style: bool,
    /// Accept the charges of a requester-pays bucket.
    #[arg(long)]
    pub requester_pays: bool,
    /// Downloads in flight at once.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub fetch_concurrency: usize,
    /// Most MiB downloaded ahead of processing.
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    pub prefetch_mib: u64,
    /// Seconds a request may wait for its response, or a body for its next
    /// bytes, before the attempt is retried.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub request_timeout: u64,
    /// Attempts per request, the first included (retries use exponential
    /// backoff with jitter).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub max_attempts: u32,
}

impl S3Args {
    /// The library's options.
    pub fn options(&self) -> S3Options {
        let defaults = S3Options::default();
        S3Options {
            path_style: self.path_style,
            requester_pays: self.requester_pays,
            fetch_concurrency: self.fetch_concurrency.max(1),
            max_bytes_in_flight: self.prefetch_mib.saturating_mul(1 << 20),
            request_timeout: Duration::from_secs(self.request_timeout.max(1)),
            retry: RetryPolicy {
                max_attempts: self.max_attempts.max(1),
                ..defaults.retry
            },
            ..defaults
        }
    }

    /// A client, in `bucket`'s region when that differs from the configured one.
    pub fn connect(&self, bucket: Option<&str>) -> anyhow::Result<S3Client> {
        Ok(S3Client::connect(self.options(), bucket)?)
    }
}

/// The sources of a command: local paths or `s3://` URLs (not both).
pub enum Sources {
    /// Files and directories.
    Local(Vec<PathBuf>),
    /// Buckets and prefixes.
    S3(Vec<S3Url>),
}

impl Sources {
    /// Sorts `sources` into local paths or S3 URLs.
    pub fn of(sources: &[PathBuf]) -> anyhow::Result<Sources> {
        let is_s3 = |p: &Path| p.to_str().is_some_and(S3Url::is_s3_url);
        if !sources.iter().any(|p| is_s3(p)) {
            return Ok(Sources::Local(sources.to_vec()));
        }
        let mut urls = Vec::new();
        for p in sources {
            let text = p.to_str().unwrap_or_default();
            if !is_s3(p) {
                anyhow::bail!(
                    "cannot mix local paths and s3:// URLs in one run: {}",
                    p.display()
                );
            }
            urls.push(
                S3Url::parse(text).ok_or_else(|| {
                    anyhow::anyhow!("{text:?} is not an s3://BUCKET[/PREFIX] URL")
                })?,
            );
        }
        Ok(Sources::S3(urls))
    }
}

/// The retries and downloads of an S3 run, for the summary.
pub fn print_s3_counters(client: &S3Client) {
    let c = client.stats().snapshot();
    eprintln!(
        "trailmill: s3: {} requests, {} retried, {} failed after retries, {:.1} MB downloaded",
        c.requests,
        c.retries,
        c.failures,
        c.bytes as f64 / 1e6
    );
}

/// Which files to read, from their keys.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Selection (by object key)")]
pub struct SelectionArgs {
    /// Only this account (repeatable).
    #[arg(long = "account", value_name = "ID")]
    pub accounts: Vec<String>,
    /// Only this region (repeatable).
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,
    /// Only this organization's folder (repeatable).
    #[arg(long = "org-id", value_name = "o-ID")]
    pub org_ids: Vec<String>,
    /// Only keys starting with this text (relative to the source root).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only files delivered at or after this time (from the key): RFC 3339, a date
    /// (2024-01-01 or 20240101), or Unix seconds (@N).
    #[arg(long, value_parser = parse_time)]
    pub start: Option<Timestamp>,
    /// Only files delivered before this time (from the key).
    #[arg(long, value_parser = parse_time)]
    pub end: Option<Timestamp>,
    /// Also read CloudTrail Insights files.
    #[arg(long)]
    pub include_insights: bool,
    /// Only shard I of N (from 0): a stable partition of the listed objects by
    /// a hash of the object key, for batch array jobs. The same I/N on any
    /// machine and version gives the same objects.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<trailmill_core::Shard>,
}

impl SelectionArgs {
    /// The library's selection.
    pub fn to_selection(&self) -> Selection {
        Selection {
            accounts: self.accounts.clone(),
            regions: self.regions.clone(),
            org_ids: self.org_ids.clone(),
            prefix: self.prefix.clone(),
            start: self.start.map(ceil_secs),
            end: self.end.map(ceil_secs),
            include_insights: self.include_insights,
            shard: self.shard,
        }
    }
}

/// Which events to keep, from their fields.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Event filters")]
pub struct FilterArgs {
    /// Only this eventSource, e.g. s3.amazonaws.com (repeatable).
    #[arg(long = "event-source", value_name = "SOURCE")]
    pub event_sources: Vec<String>,
    /// Only eventNames matching this glob, e.g. 'Get*' (repeatable).
    #[arg(long = "event-name", value_name = "GLOB")]
    pub event_names: Vec<String>,
    /// Only events whose recipientAccountId is this (repeatable).
    #[arg(long = "event-account", value_name = "ID")]
    pub event_accounts: Vec<String>,
    /// Only events whose awsRegion is this (repeatable).
    #[arg(long = "event-region", value_name = "REGION")]
    pub event_regions: Vec<String>,
    /// Only events whose userIdentity.arn matches this glob (repeatable).
    #[arg(long = "user-arn", value_name = "GLOB")]
    pub user_arns: Vec<String>,
    /// Only events with this errorCode (repeatable).
    #[arg(long = "error-code", value_name = "CODE")]
    pub error_codes: Vec<String>,
    /// Only events that carry an errorCode.
    #[arg(long)]
    pub errors_only: bool,
    /// Only read-only events.
    #[arg(long, conflicts_with = "writes_only")]
    pub read_only: bool,
    /// Only events that are not read-only.
    #[arg(long)]
    pub writes_only: bool,
    /// Only this eventCategory: Management, Data, Insight, NetworkActivity (repeatable).
    #[arg(long = "event-category", value_name = "CATEGORY")]
    pub event_categories: Vec<String>,
    /// Only events at or after this eventTime.
    #[arg(long, value_parser = parse_time)]
    pub event_time_start: Option<Timestamp>,
    /// Only events before this eventTime.
    #[arg(long, value_parser = parse_time)]
    pub event_time_end: Option<Timestamp>,
}

impl FilterArgs {
    /// The library's event filter. `--account` and `--region` select files by
    /// key; as event filters they are `--event-account` and `--event-region`.
    pub fn to_filter(&self) -> EventFilter {
        EventFilter {
            event_sources: self.event_sources.clone(),
            event_names: self.event_names.clone(),
            accounts: self.event_accounts.clone(),
            regions: self.event_regions.clone(),
            user_arns: self.user_arns.clone(),
            error_codes: self.error_codes.clone(),
            errors_only: self.errors_only,
            read_only: match (self.read_only, self.writes_only) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            event_categories: self.event_categories.clone(),
            event_time_start: self.event_time_start,
            event_time_end: self.event_time_end,
        }
    }
}

/// Parses a time given on the command line, in the one grammar every command
/// shares ([`trailmill_core::time::parse_time`]: RFC 3339 with offsets
/// converted, dates, compact dates, Unix seconds).
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    trailmill_core::time::parse_time(s).map_err(|e| e.to_string())
}

pub use trailmill_core::time::ceil_seconds as ceil_secs;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        selection: SelectionArgs,
        #[command(flatten)]
        filter: FilterArgs,
    }

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::try_parse_from(std::iter::once("trailmill").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    /// Regression (issue 11, item 5): `process --start 20240101` was read as
    /// Unix seconds, a time in 1970; it is the date, as in `validate`.
    #[test]
    fn start_20240101_is_a_date_not_unix_seconds() {
        let cli = parse(&["--start", "20240101", "--end", "20240201"]).unwrap();
        let selection = cli.selection.to_selection();
        assert_eq!(selection.start, Some(1_704_067_200));
        assert_eq!(selection.end, Some(1_706_745_600));
        let e = parse(&["--start", "20241301"]).err().unwrap();
        assert!(e.contains("compact date"), "{e}");
    }

    /// Every command reads the same forms; offsets are converted.
    #[test]
    fn times_parse_in_every_form() {
        let t = 1_704_067_200; // 2024-01-01T00:00:00Z
        for s in [
            "2024-01-01T00:00:00Z",
            "2024-01-01",
            "20240101",
            "2024-01-01T00:00:00",
            "2024-01-01 00:00",
            "2024-01-01T01:00:00+01:00",
            "2023-12-31T19:00:00-05:00",
            "1704067200",
            "@1704067200",
        ] {
            assert_eq!(parse_time(s).map(|t| t.as_second()), Ok(t), "{s}");
        }
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("86400").is_err(), "ambiguous: use @86400");
    }

    /// A fractional `--start` keeps every key time at or after it and no other.
    #[test]
    fn fractional_key_bounds_round_up() {
        let cli = parse(&["--start", "2024-01-01T00:00:00.5Z", "--end", "@1704067260"]).unwrap();
        let selection = cli.selection.to_selection();
        assert_eq!(selection.start, Some(1_704_067_201));
        assert_eq!(selection.end, Some(1_704_067_260));
        let cli = parse(&["--event-time-start", "2024-01-01T00:00:00.5Z"]).unwrap();
        assert_eq!(
            cli.filter
                .to_filter()
                .event_time_start
                .map(|t| t.subsec_nanosecond()),
            Some(500_000_000)
        );
    }
}

/// Where events go: the `--sink` flags of `process` and `worker`.
#[derive(Args, Debug)]
pub struct SinkArgs {
    /// Where events go: jsonl:- (stdout), jsonl:PATH (.gz/.zst compress), sqlite:PATH,
    /// parquet:DIR, parquet:s3://BUCKET/PREFIX, postgres:URL
    /// (postgres://user@host:5432/db?sslmode=require), iceberg:NAMESPACE.TABLE. Repeatable:
    /// events fan out to every sink.
    #[arg(long = "sink", value_name = "SPEC", default_value = "jsonl:-")]
    pub sinks: Vec<SinkSpec>,
    /// The Iceberg catalog of iceberg: sinks: sqlite:PATH or postgres://… (the SQL catalog,
    /// catalog name "trailmill"), glue (the AWS Glue Data Catalog), an Amazon S3 Tables
    /// bucket's ARN (arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME), or an Iceberg REST
    /// catalog's base URI (http(s)://HOST:PORT/PATH, before /v1/; Polaris, Lakekeeper, …).
    #[arg(long, value_name = "URI")]
    pub iceberg_catalog: Option<String>,
    /// Where new Iceberg tables go: s3://BUCKET/PREFIX or a local directory (not with S3
    /// Tables, which chooses). For a REST catalog: which of the server's warehouses, by the
    /// name or location it knows (optional).
    #[arg(long, value_name = "LOCATION")]
    pub iceberg_warehouse: Option<String>,
    /// A catalog or storage property for iceberg: sinks (repeatable), such as
    /// s3.endpoint=URL, glue's catalog_id=ID, or a REST catalog's token=TOKEN,
    /// credential=ID:SECRET (OAuth2) or header.NAME=VALUE. The AWS environment fills in the
    /// S3 endpoint, region and keys.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_property)]
    pub iceberg_property: Vec<(String, String)>,
    /// Parquet and Iceberg files close at this size (MiB), or at the next checkpoint,
    /// whichever comes first.
    #[arg(long, value_name = "MIB", default_value_t = 128)]
    pub target_file_size: u64,
    /// The codec of Parquet files: zstd (smallest), lz4, snappy or none (fastest to write).
    #[arg(long, value_name = "CODEC", default_value = "zstd")]
    pub parquet_codec: trailmill_sinks::parquet::Codec,
    /// Which columns Parquet lakes hold: full (typed columns, the free-form objects as JSON
    /// text, and raw), compact (typed columns and raw: the JSON text is read from raw) or
    /// typed (typed columns and the JSON text, without raw). Iceberg tables hold every column.
    #[arg(long, value_name = "SET", default_value = "full", value_parser = ["full", "compact", "typed"])]
    pub parquet_columns: String,
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

impl SinkArgs {
    /// The settings the lake sinks take from these flags.
    pub fn lake_settings(&self) -> trailmill_lake::s3_parquet::LakeSettings {
        let mut settings = trailmill_lake::s3_parquet::LakeSettings::default();
        let iceberg = &mut settings.iceberg;
        iceberg.catalog = self.iceberg_catalog.clone().unwrap_or_default();
        iceberg.warehouse = self.iceberg_warehouse.clone().unwrap_or_default();
        iceberg.properties = self.iceberg_property.clone();
        iceberg.parquet.target_file_bytes = self.target_file_size.max(1).saturating_mul(1 << 20);
        iceberg.parquet.codec = self.parquet_codec;
        iceberg.parquet.json_columns = self.parquet_columns != "compact";
        iceberg.parquet.raw_column = self.parquet_columns != "typed";
        settings
    }
}
