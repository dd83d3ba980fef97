//! A log file of over 1 GiB uncompressed is processed with bounded memory,
//! by streaming its Records array.

mod support;

use support::{Synth, children_peak_rss, events_in_out, run_ok};

#[test]
fn a_file_over_1_gib_streams_with_peak_rss_under_512_mb() {
    let tmp = tempfile::tempdir().unwrap();
    let trail = tmp.path().join("trail");
    let t = trail.to_str().unwrap();
    Synth {
        accounts: 1,
        regions: 1,
        hours: 1,
        logs_per_hour: 1,
        records: 10,
        extra: &["--large-file-mib", "1100"],
    }
    .write(&trail);
    let before = children_peak_rss();
    let out = run_ok(&[
        "process",
        t,
        "--sink",
        "jsonl:/dev/null",
        "--event-name",
        "NoSuchEvent",
    ]);
    let peak = children_peak_rss();
    let (events_in, events_out) = events_in_out(&out.stderr);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let uncompressed_mb: f64 = stderr
        .lines()
        .find_map(|l| {
            l.split(" MB read, ")
                .nth(1)?
                .split(" MB uncompressed")
                .next()?
                .parse()
                .ok()
        })
        .unwrap();
    assert!(
        uncompressed_mb > 1073.8,
        "the input must be over 1 GiB uncompressed: {stderr}"
    );
    assert!(events_in > 800_000, "{stderr}");
    assert_eq!(events_out, 0);
    // getrusage reports the largest child so far; synth itself stays small.
    eprintln!(
        "peak RSS of the largest child: {} MiB",
        peak.max(before) >> 20
    );
    assert!(peak.max(before) < 512 << 20, "peak RSS {} MiB", peak >> 20);
}
