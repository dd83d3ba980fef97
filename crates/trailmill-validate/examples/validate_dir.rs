//! `trailmill validate` without clap: how a command-line wrapper uses the
//! library (the real command lives in `trailmill-cli`).
//!
//! ```text
//! cargo run -p trailmill-validate --example validate_dir -- SOURCE (--trail-arn ARN | --all)
//!     --start-time T [--end-time T] [--bucket NAME] [--s3-prefix P] [--org-id o-x]
//!     [--account-id ID] [--region R] [--public-keys FILE] [--verbose]
//!     [--format aws-cli|json|human] [--expect-until T]
//! ```

use std::io::IsTerminal;
use std::path::PathBuf;

use trailmill_validate::{EXIT_ERROR, ValidateArgs, run_validate};

fn main() {
    let mut a = ValidateArgs::default();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--trail-arn" => a.trail_arn = Some(value()),
            "--all" => a.all = true,
            "--start-time" => a.start_time = value(),
            "--end-time" => a.end_time = Some(value()),
            "--bucket" => a.bucket = Some(value()),
            "--s3-prefix" => a.s3_prefix = Some(value()),
            "--org-id" => a.org_id = Some(value()),
            "--account-id" => a.account_id = Some(value()),
            "--region" => a.region = Some(value()),
            "--public-keys" => a.public_keys = Some(PathBuf::from(value())),
            "--verbose" => a.verbose = true,
            "--format" => a.format = value().parse().unwrap_or_else(|e: String| usage(&e)),
            "--expect-until" => a.expect_until = Some(value()),
            s if !s.starts_with("--") && a.source.as_os_str().is_empty() => a.source = s.into(),
            other => usage(&format!("unexpected argument {other}")),
        }
    }
    if a.source.as_os_str().is_empty() || a.start_time.is_empty() {
        usage("SOURCE and --start-time are required");
    }
    a.color = std::io::stdout().is_terminal();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let code = match run_validate(&a, &mut out, &mut err, &mut |_| {}) {
        Ok(report) => report.exit_code(),
        Err(e) => {
            eprintln!("trailmill validate: {e}");
            EXIT_ERROR
        }
    };
    std::process::exit(code);
}

fn usage(why: &str) -> ! {
    eprintln!(
        "{why}\nusage: validate_dir SOURCE (--trail-arn ARN | --all) --start-time T [options]"
    );
    std::process::exit(2)
}
