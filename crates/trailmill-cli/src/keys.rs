//! `trailmill keys fetch`: save CloudTrail's public keys for offline validation.

use clap::{Args, Subcommand};

use trailmill_core::time::Timestamp;

use crate::args::{ceil_secs, parse_time};

/// Arguments of `trailmill keys`.
#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Print the public keys CloudTrail used in REGION between START and END,
    /// as `aws cloudtrail list-public-keys` does (save as keys.json).
    Fetch {
        /// The region whose keys to fetch.
        #[arg(long)]
        region: String,
        /// Start of the window: RFC 3339, a date, or Unix seconds (@N).
        #[arg(long, value_parser = parse_time)]
        start: Timestamp,
        /// End of the window (default: now).
        #[arg(long, value_parser = parse_time)]
        end: Option<Timestamp>,
    },
}

/// Runs `keys`.
pub fn run(a: KeysArgs) -> anyhow::Result<bool> {
    match a.command {
        KeysCommand::Fetch { region, start, end } => {
            let end = end.map_or_else(|| Timestamp::now().as_second(), ceil_secs);
            let keys = trailmill_aws::fetch_public_keys(&region, start.as_second(), end)?;
            println!("{}", serde_json::to_string_pretty(&keys)?);
            Ok(true)
        }
    }
}
