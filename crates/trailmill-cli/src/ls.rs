//! `trailmill ls`: the files a source holds, with their parsed key fields.

use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;

use clap::Args;
use trailmill_aws::S3Source;
use trailmill_core::key::{Classified, FileKind};
use trailmill_pipeline::{LocalSource, Source};

use crate::args::{S3Args, SelectionArgs, Sources, print_s3_counters};

/// Arguments of `trailmill ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Files or directories to list, or s3://BUCKET[/PREFIX] URLs.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub s3: S3Args,
}

/// Prints one TAB-separated line per selected file:
/// kind, account, region, delivery time, organization, prefix, size, path.
pub fn run(args: LsArgs) -> anyhow::Result<bool> {
    let (source, client): (Box<dyn Source>, _) = match Sources::of(&args.sources)? {
        Sources::Local(paths) => (Box::new(LocalSource::new(paths)), None),
        Sources::S3(urls) => {
            let client = args.s3.connect(urls.first().map(|u| u.bucket.as_str()))?;
            (Box::new(S3Source::new(client.clone(), urls)), Some(client))
        }
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut write_error = None;
    let stats = source.list(&args.selection.to_selection(), &mut |object| {
        let line = match object.classify() {
            Classified::Trail(k) => {
                let kind = match k.file.kind {
                    FileKind::Log { .. } => "log",
                    FileKind::Insight { .. } => "insight",
                    FileKind::Digest { .. } => "digest",
                };
                format!(
                    "{kind}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    k.file.account,
                    k.file.region,
                    k.file.time,
                    k.org_id().unwrap_or("-"),
                    k.prefix().unwrap_or("-"),
                    object.size.map_or("-".into(), |s| s.to_string()),
                    object.name
                )
            }
            Classified::Other { .. } => {
                format!(
                    "other\t-\t-\t-\t-\t-\t{}\t{}",
                    object.size.map_or("-".into(), |s| s.to_string()),
                    object.name
                )
            }
        };
        match writeln!(out, "{line}") {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                write_error = Some(e);
                ControlFlow::Break(())
            }
        }
    });
    if let Some(e) = write_error {
        anyhow::bail!("cannot write the listing: {e}");
    }
    out.flush()?;
    for e in &stats.errors {
        eprintln!("error: {e}");
    }
    eprintln!(
        "trailmill: {} files listed; skipped {} digests, {} insights, {} unselected, {} other{}{}",
        stats.listed,
        stats.skipped_digests,
        stats.skipped_insights,
        stats.skipped_unselected,
        stats.skipped_other,
        if stats.skipped_other_shards > 0 {
            format!(", {} in other shards", stats.skipped_other_shards)
        } else {
            String::new()
        },
        crate::process::misnamed_note(stats.misnamed),
    );
    if let Some(client) = &client {
        print_s3_counters(client);
    }
    Ok(stats.errors.is_empty())
}
