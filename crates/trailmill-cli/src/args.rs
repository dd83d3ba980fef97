//! Arguments shared by several commands, and their conversion into the
//! library's plain configuration types.

use clap::Args;
use trailmill_core::filter::event_time_text;
use trailmill_core::{EventFilter, Selection};

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
    /// Only files delivered at or after this time (from the key): RFC 3339, a date, or Unix seconds.
    #[arg(long, value_parser = parse_time)]
    pub start: Option<i64>,
    /// Only files delivered before this time (from the key).
    #[arg(long, value_parser = parse_time)]
    pub end: Option<i64>,
    /// Also read CloudTrail Insights files.
    #[arg(long)]
    pub include_insights: bool,
}

impl SelectionArgs {
    /// The library's selection.
    pub fn to_selection(&self) -> Selection {
        Selection {
            accounts: self.accounts.clone(),
            regions: self.regions.clone(),
            org_ids: self.org_ids.clone(),
            prefix: self.prefix.clone(),
            start: self.start,
            end: self.end,
            include_insights: self.include_insights,
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
    pub event_time_start: Option<i64>,
    /// Only events before this eventTime.
    #[arg(long, value_parser = parse_time)]
    pub event_time_end: Option<i64>,
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
            event_time_start: self.event_time_start.map(event_time_text),
            event_time_end: self.event_time_end.map(event_time_text),
        }
    }
}

/// Parses a time given on the command line: RFC 3339 (`2024-01-01T00:00:00Z`),
/// a date (`2024-01-01`, midnight UTC), a date and time without zone (UTC), or
/// Unix seconds. Returns Unix seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_second());
    }
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp().as_second())
            .map_err(|e| e.to_string());
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return d
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp().as_second())
            .map_err(|e| e.to_string());
    }
    Err(format!(
        "{s:?} is not a time: use RFC 3339 (2024-01-01T00:00:00Z), a date (2024-01-01) or Unix seconds"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_form() {
        let t = 1_704_067_200; // 2024-01-01T00:00:00Z
        for s in [
            "2024-01-01T00:00:00Z",
            "2024-01-01",
            "2024-01-01T00:00:00",
            "2024-01-01T01:00:00+01:00",
            "1704067200",
        ] {
            assert_eq!(parse_time(s), Ok(t), "{s}");
        }
        assert!(parse_time("yesterday").is_err());
    }
}
