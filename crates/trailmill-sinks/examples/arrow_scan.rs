//! Reads log files into Arrow record batches on a consumer thread and
//! prints the throughput; with `--null`, the same run into the null sink.
//!
//! `cargo run --release -p trailmill-sinks --example arrow_scan -- DIR [--null]`

use trailmill_pipeline::{LocalSource, NullSink, Pipeline};
use trailmill_sinks::arrow::{StreamOptions, arrow_stream};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().expect("usage: arrow_scan DIR [--null]");
    let source = LocalSource::new([dir.as_str()]);
    let summary = if args.iter().any(|a| a == "--null") {
        Pipeline::builder()
            .sink(NullSink::default())
            .build()
            .run(&source)
    } else {
        let (stream, rx) = arrow_stream(StreamOptions::default());
        let consumer = std::thread::spawn(move || rx.iter().map(|b| b.num_rows()).sum::<usize>());
        let summary = Pipeline::builder()
            .sink_per_worker(move || Box::new(stream.sink()))
            .build()
            .run(&source);
        let rows = consumer.join().expect("consumer");
        println!("rows {rows}");
        summary
    };
    let secs = summary.elapsed.as_secs_f64();
    println!(
        "{} events, {:.1} MB uncompressed in {secs:.2} s: {:.0} MB/s",
        summary.events_out,
        summary.bytes_uncompressed as f64 / 1e6,
        summary.bytes_uncompressed as f64 / 1e6 / secs
    );
}
