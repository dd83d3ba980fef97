//! Decoding already-inflated CloudTrail JSON, stage by stage:
//! - `trailmill_index`: the validated structural index alone (`Decoder::check_json`);
//! - `trailmill_decoder`: the index plus the walk that yields typed
//!   [`trailmill::Event`] views (`Decoder::decode`);
//! - `simd_json_borrowed_dom`: a baseline that builds simd-json's borrowed
//!   DOM (`simd_json::to_borrowed_value`) on the same bytes.
//!
//! Throughput is in JSON bytes, in decimal MB/s like `scripts/bench-compare.sh`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_main};
use simd_json::prelude::*;
use trailmill::{DecodeOptions, Decoder, Event};

mod common;

fn parse(c: &mut Criterion) {
    let corpus = common::Corpus::build();
    let json = corpus.inflated();
    let mut group = c.benchmark_group("parse");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::BytesDecimal(corpus.uncompressed_bytes));

    let mut decoder = Decoder::new(DecodeOptions::default());
    group.bench_function("trailmill_index", |b| {
        b.iter(|| {
            let mut positions = 0;
            for doc in &json {
                positions += decoder.check_json(black_box(doc)).expect("valid JSON");
            }
            black_box(positions)
        })
    });

    group.bench_function("trailmill_decoder", |b| {
        b.iter(|| {
            let mut events = 0u64;
            let mut count = |batch: &[Event<'_>]| {
                events += batch.len() as u64;
                Ok(())
            };
            for doc in &json {
                decoder.decode(black_box(doc), &mut count).expect("decode");
            }
            assert_eq!(events, corpus.events);
            black_box(events)
        })
    });

    // simd-json parses in place, so each document is first copied into a
    // reused buffer (trailmill's decoder reads the text where it lies).
    let mut buf = Vec::new();
    group.bench_function("simd_json_borrowed_dom", |b| {
        b.iter(|| {
            let mut events = 0u64;
            for doc in &json {
                buf.clear();
                buf.extend_from_slice(doc);
                let value = simd_json::to_borrowed_value(black_box(&mut buf)).expect("parse");
                events += value
                    .get("Records")
                    .and_then(|r| r.as_array())
                    .map_or(0, |a| a.len() as u64);
            }
            assert_eq!(events, corpus.events);
            black_box(events)
        })
    });
    group.finish();
}

// Private, so that the undocumented `pub fn` criterion_group! makes is not exported.
mod group {
    criterion::criterion_group!(benches, super::parse);
}

criterion_main!(group::benches);
