//! Gzip inflation of CloudTrail log files with `trailmill::core::gzip::inflate_into`,
//! one file at a time into a reused output buffer. Throughput is in
//! uncompressed bytes, in decimal MB/s like `scripts/bench-compare.sh`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_main};

mod common;

fn inflate(c: &mut Criterion) {
    let corpus = common::Corpus::build();
    let mut group = c.benchmark_group("inflate");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::BytesDecimal(corpus.uncompressed_bytes));
    let mut out = Vec::new();
    group.bench_function("inflate_into", |b| {
        b.iter(|| {
            let mut total = 0usize;
            for z in &corpus.gz {
                trailmill::core::gzip::inflate_into(black_box(z), &mut out, u64::MAX)
                    .expect("inflate");
                total += out.len();
            }
            assert_eq!(total as u64, corpus.uncompressed_bytes);
            black_box(total)
        })
    });
    group.finish();
}

// Private, so that the undocumented `pub fn` criterion_group! makes is not exported.
mod group {
    criterion::criterion_group!(benches, super::inflate);
}

criterion_main!(group::benches);
