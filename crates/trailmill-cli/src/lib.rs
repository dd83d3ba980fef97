//! The `trailmill` command, as a library: [`main`] is the whole command
//! (the binary only calls it), and [`process`] runs `trailmill process` for
//! an embedder, such as the Python package, with the same arguments.
//!
//! `main` turns the command line into one plain configuration per command and
//! runs it; everything else lives in the library crates.

mod args;
mod enqueue;
mod follow;
mod keys;
mod ls;
mod process;
mod signals;
mod synth;
mod validate;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Process AWS CloudTrail logs at the speed of the hardware.
#[derive(Parser, Debug)]
#[command(name = "trailmill", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per run
enum Command {
    /// Read log files, filter their events and deliver them to sinks.
    Process(process::ProcessArgs),
    /// List the log files a source holds, with their parsed key fields.
    Ls(ls::LsArgs),
    /// Write a realistic synthetic trail (logs, signed digest chains, keys) as a bucket root.
    Synth(synth::SynthArgs),
    /// Validate digest chains, signatures and log file hashes, like `aws cloudtrail validate-logs`.
    Validate(validate::ValidateArgs),
    /// CloudTrail's public keys (`keys fetch`).
    Keys(keys::KeysArgs),
    /// Process the log files that SQS notifications announce (CloudTrail SNS
    /// notifications or S3 events), deleting each message once its events are stored.
    Worker(worker::WorkerArgs),
    /// Announce a bucket's selected log files on an SQS queue (as S3 event
    /// notifications), for `trailmill worker`s to share.
    Enqueue(enqueue::EnqueueArgs),
}

/// What is logged without `TRAILMILL_LOG`: trailmill's own warnings (its
/// targets all start with `trailmill`), and only errors from dependencies.
/// Their warnings are about things trailmill recovers from (the AWS SDK warns,
/// with a page of `Debug` output, when no region is found in the instance
/// metadata, and trailmill then asks S3 for the bucket's region); what does
/// fail reaches the user as trailmill's own error. `TRAILMILL_LOG=debug` (or
/// any filter) shows everything again.
const DEFAULT_LOG: &str = "error,trailmill=warn";

/// Installs the command's log (stderr, filtered by `TRAILMILL_LOG`, else
/// [`DEFAULT_LOG`]) as the global `tracing` subscriber, unless the process
/// already has one (an embedder's own).
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRAILMILL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .without_time()
        .with_target(false)
        .try_init();
}

/// Runs the `trailmill` command with the process's arguments and returns
/// its exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Process(a) => process::run(a.into()).map(|outcome| outcome.ok),
        Command::Ls(a) => ls::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Keys(a) => keys::run(a),
        Command::Enqueue(a) => enqueue::run(a),
        Command::Worker(a) => worker::run(a),
        // validate keeps the AWS CLI's exit codes (0, 1, 255).
        Command::Validate(a) => return ExitCode::from(validate::run(a)),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// What [`process`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct ProcessOutcome {
    /// The pipeline's summary: files, events, bytes, each sink's counts.
    pub summary: trailmill_pipeline::RunSummary,
    /// True when every file and sink succeeded and the run was not
    /// interrupted (the command's exit status 0).
    pub ok: bool,
}

/// Runs `trailmill process` with `args` (what follows `process` on the
/// command line) and returns its summary; `stop`, when raised, ends the run
/// as SIGINT does for the command (no signal handler is installed, so the
/// embedder keeps its own). Errors are the command's: bad arguments, or a
/// sink, state or source that cannot be opened. Warnings (a file read
/// with odd records, say) go to the command's stderr log, installed as the
/// global `tracing` subscriber unless the embedder has set one.
pub fn process<I, T>(
    args: I,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<ProcessOutcome>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    #[derive(Parser)]
    #[command(name = "trailmill process")]
    struct Invocation {
        #[command(flatten)]
        args: process::ProcessArgs,
    }
    let argv = std::iter::once(std::ffi::OsString::from("trailmill process"))
        .chain(args.into_iter().map(Into::into));
    let invocation = Invocation::try_parse_from(argv)?;
    init_logging();
    let mut config = process::ProcessConfig::from(invocation.args);
    config.stop = Some(stop);
    process::run(config)
}
