//! End to end: `Decoder::decode` on the gzip bytes of each log file (inflate,
//! parse, events), and the full `Pipeline` over a `LocalSource` on the corpus
//! directory with a `NullSink`, with 2 worker threads and with 1 (listing,
//! reading from the page cache, decoding, delivery); then the same pipeline
//! building the Parquet lake's columns as Arrow batches on every worker (what
//! Python's `trailmill.scan` does), handed to a thread that drops them. Throughput is in
//! uncompressed bytes, in decimal MB/s like `scripts/bench-compare.sh`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_main};
use trailmill::pipeline::NullSink;
use trailmill::sinks::arrow::{StreamOptions, arrow_stream};
use trailmill::{DecodeOptions, Decoder, Event, LocalSource, Pipeline};

mod common;

fn end_to_end(c: &mut Criterion) {
    let corpus = common::Corpus::build();
    let mut group = c.benchmark_group("end_to_end");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::BytesDecimal(corpus.uncompressed_bytes));

    let mut decoder = Decoder::new(DecodeOptions::default());
    group.bench_function("decoder_gzip", |b| {
        b.iter(|| {
            let mut events = 0u64;
            let mut count = |batch: &[Event<'_>]| {
                events += batch.len() as u64;
                Ok(())
            };
            for z in &corpus.gz {
                decoder.decode(black_box(z), &mut count).expect("decode");
            }
            assert_eq!(events, corpus.events);
            black_box(events)
        })
    });

    // 2 threads is one worker per core here; 1 thread shows the pipeline's own
    // cost next to `decoder_gzip` (a fresh pool and decoder per run), and how
    // it scales.
    let source = LocalSource::new([&corpus.root]);
    for threads in [1, 2] {
        let name = format!(
            "pipeline_null_sink_{threads}_thread{}",
            if threads > 1 { "s" } else { "" }
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                let summary = Pipeline::builder()
                    .threads(threads)
                    .sink(NullSink::default())
                    .build()
                    .run(&source);
                assert!(summary.is_success());
                assert_eq!(summary.events_in, corpus.events);
                black_box(summary.events_out)
            })
        });
    }

    group.bench_function("pipeline_arrow_batches_2_threads", |b| {
        b.iter(|| {
            let (stream, batches) = arrow_stream(StreamOptions::default());
            let consumer = std::thread::spawn(move || {
                batches.iter().map(|b| b.num_rows() as u64).sum::<u64>()
            });
            let summary = Pipeline::builder()
                .threads(2)
                .sink_per_worker(move || Box::new(stream.sink()))
                .build()
                .run(&source);
            assert!(summary.is_success());
            assert_eq!(consumer.join().expect("consumer"), corpus.events);
            black_box(summary.events_out)
        })
    });
    group.finish();
}

// Private, so that the undocumented `pub fn` criterion_group! makes is not exported.
mod group {
    criterion::criterion_group!(benches, super::end_to_end);
}

criterion_main!(group::benches);
