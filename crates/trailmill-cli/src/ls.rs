//! `trailmill ls`: the files a source holds, with their parsed key fields.

use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;

use clap::Args;
use trailmill_core::key::{Classified, FileKind};
use trailmill_pipeline::{LocalSource, Source};

use crate::args::SelectionArgs;

/// Arguments of `trailmill ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Files or directories to list.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    #[command(flatten)]
    pub selection: SelectionArgs,
}

/// Prints one TAB-separated line per selected file:
/// kind, account, region, delivery time, organization, prefix, size, path.
pub fn run(args: LsArgs) -> anyhow::Result<bool> {
    let source = LocalSource::new(args.sources);
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
        "trailmill: {} files listed; skipped {} digests, {} insights, {} unselected, {} other",
        stats.listed,
        stats.skipped_digests,
        stats.skipped_insights,
        stats.skipped_unselected,
        stats.skipped_other
    );
    Ok(stats.errors.is_empty())
}
