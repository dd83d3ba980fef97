//! Embeds trailmill with a filter and a sink of its own: counts events by
//! `eventSource`, skipping read-only calls.
//!
//! ```text
//! cargo run --release -p trailmill --example count_by_source -- fixtures/trail
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use trailmill::{Event, LocalSource, Pipeline, Sink, SinkError, SinkStats, SourceObject};

/// Counts events per eventSource into a map the caller can read afterwards.
struct CountBySource {
    counts: Arc<Mutex<HashMap<String, u64>>>,
    seen: u64,
}

impl Sink for CountBySource {
    fn name(&self) -> String {
        "count-by-source".into()
    }

    fn write_batch(&mut self, _file: &SourceObject, events: &[Event<'_>]) -> Result<(), SinkError> {
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| SinkError::new("counter poisoned"))?;
        for e in events {
            *counts
                .entry(e.event_source.unwrap_or("(none)").to_owned())
                .or_default() += 1;
        }
        self.seen += events.len() as u64;
        Ok(())
    }

    /// Counts live in memory: there is nothing to make durable.
    fn commit(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        Ok(SinkStats {
            events_received: self.seen,
            events_written: self.seen,
            ..SinkStats::default()
        })
    }
}

fn main() {
    let sources: Vec<String> = std::env::args().skip(1).collect();
    if sources.is_empty() {
        eprintln!("usage: count_by_source DIR_OR_FILE...");
        std::process::exit(2);
    }
    let counts = Arc::new(Mutex::new(HashMap::new()));
    let summary = Pipeline::builder()
        .event_predicate(|e: &Event<'_>| e.read_only != Some(true))
        .sink(CountBySource {
            counts: counts.clone(),
            seen: 0,
        })
        .error_handler(|e: &trailmill::pipeline::FileError| eprintln!("error: {e}"))
        .build()
        .run(&LocalSource::new(sources));
    let mut rows: Vec<(String, u64)> = counts.lock().expect("not poisoned").drain().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (source, n) in rows {
        println!("{n:>8}  {source}");
    }
    eprintln!(
        "{} files, {} events read, {} counted",
        summary.files_ok, summary.events_in, summary.events_out
    );
    std::process::exit(if summary.is_success() { 0 } else { 1 });
}
