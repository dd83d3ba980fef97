//! `trailmill enqueue`: announce a bucket's selected log files on an SQS
//! queue, as S3 event notifications, for `trailmill worker`s to share.

use std::ops::ControlFlow;

use clap::Args;
use trailmill_aws::enqueue::{EnqueueReport, Packer, Packing, send_all};
use trailmill_aws::{ListScope, Listing, Planner, S3Url, SqsClient};
use trailmill_core::ObjectKey;
use trailmill_core::key::Classified;
use trailmill_core::notification::NotifiedObject;
use trailmill_pipeline::ListStats;

use crate::args::{S3Args, SelectionArgs};

/// Arguments of `trailmill enqueue`.
#[derive(Args, Debug)]
pub struct EnqueueArgs {
    /// The bucket, and optionally a key prefix: s3://BUCKET[/PREFIX].
    #[arg(value_name = "S3_URL")]
    pub source: String,
    /// The SQS queue URL the workers read.
    #[arg(long, value_name = "URL")]
    pub queue: String,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Most keys per message (a worker deletes a message once all its files are stored).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub keys_per_message: usize,
    /// No summary.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub s3: S3Args,
}

/// Messages gathered before a `SendMessageBatch`.
const SEND_EVERY: usize = 10;

/// Lists the selected log files with the S3 listing planner (by account,
/// region and day) and sends them to the queue. True when every prefix could
/// be listed.
pub fn run(a: EnqueueArgs) -> anyhow::Result<bool> {
    let url = S3Url::parse(&a.source)
        .ok_or_else(|| anyhow::anyhow!("{:?} is not an s3://BUCKET[/PREFIX] URL", a.source))?;
    let selection = a.selection.to_selection();
    let planner = Planner::new(a.s3.connect(Some(&url.bucket))?, url.clone());
    let bucket = url.bucket.as_str();
    let sqs = SqsClient::connect(&a.queue)?;
    let event_time = jiff::Timestamp::now().to_string();
    let mut packer = Packer::new(
        Packing {
            max_keys: a.keys_per_message.max(1),
            ..Packing::default()
        },
        event_time,
    );
    let mut stats = ListStats::default();
    let mut report = EnqueueReport::default();
    let mut pending: Vec<(String, usize)> = Vec::with_capacity(SEND_EVERY);
    let mut failure: Option<anyhow::Error> = None;
    let send = |pending: &mut Vec<(String, usize)>, report: &mut EnqueueReport| {
        let sent = send_all(&sqs, &a.queue, pending.drain(..))?;
        report.messages += sent.messages;
        report.keys += sent.keys;
        report.batches += sent.batches;
        report.retries += sent.retries;
        anyhow::Ok(())
    };
    planner.run(ListScope::from_selection(&selection), &mut |item| {
        let o = match item {
            Listing::Layout(_) => return ControlFlow::Continue(()),
            Listing::Error(e) => {
                eprintln!("error: {e}");
                stats
                    .errors
                    .push(trailmill_pipeline::SourceError::new(e.name, e.reason));
                return ControlFlow::Continue(());
            }
            Listing::Object(o) => o,
        };
        let key = o.key.as_str();
        match ObjectKey::classify(key) {
            Classified::Trail(k) => {
                if let Err(why) = selection.check(key, &k) {
                    stats.count_skip(why);
                    return ControlFlow::Continue(());
                }
            }
            Classified::Other { reason } => {
                let name = format!("s3://{bucket}/{key}");
                match stats.admit_misnamed(&name, key, &reason, &selection) {
                    Some(true) => {}
                    Some(false) => return ControlFlow::Continue(()),
                    None => {
                        stats.skipped_other += 1;
                        return ControlFlow::Continue(());
                    }
                }
            }
        }
        stats.listed += 1;
        let object = NotifiedObject {
            bucket: bucket.to_owned(),
            key: o.key.clone(),
            size: o.size,
            etag: o.etag.clone(),
        };
        pending.extend(packer.push(&object));
        if pending.len() >= SEND_EVERY
            && let Err(e) = send(&mut pending, &mut report)
        {
            failure = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if let Some(e) = failure {
        return Err(e);
    }
    pending.extend(packer.finish());
    send(&mut pending, &mut report)?;
    if !a.quiet {
        eprintln!(
            "trailmill enqueue: {} keys in {} messages sent to {} ({} batches, {} entries retried); skipped {} digests, {} insights, {} unselected, {} other{}",
            report.keys,
            report.messages,
            a.queue,
            report.batches,
            report.retries,
            stats.skipped_digests,
            stats.skipped_insights,
            stats.skipped_unselected,
            stats.skipped_other,
            crate::process::misnamed_note(stats.misnamed),
        );
    }
    Ok(stats.errors.is_empty() && report.keys == stats.listed)
}
