//! Embeds trailmill with a sink that forwards batches over a crossbeam
//! channel to a thread of the user's own, which tallies failed calls per
//! principal.
//!
//! ```text
//! cargo run --release -p trailmill --example forward_to_thread -- fixtures/trail
//! ```
//!
//! Events are borrowed views, valid only during `write_batch`: the sink
//! copies what the consumer needs into owned values before sending. The
//! channel is bounded, so a slow consumer slows the pipeline instead of
//! filling memory. `commit` follows the sink contract: it returns only once
//! the consumer has handled every event sent before it (here "durable"
//! means "processed by the consumer").

use std::collections::HashMap;
use std::thread;

use crossbeam_channel::{Receiver, Sender, bounded};
use trailmill::{Event, LocalSource, Pipeline, Sink, SinkError, SinkStats, SourceObject};

/// What the consumer needs of one event, owned.
struct Failed {
    principal: String,
    error_code: String,
}

/// What travels over the channel.
enum Message {
    /// The failed calls of one batch.
    Batch(Vec<Failed>),
    /// Reply once everything sent before has been handled.
    Commit(Sender<()>),
}

/// Forwards the failed calls of each batch to the consumer thread.
struct ForwardFailures {
    tx: Option<Sender<Message>>,
    stats: SinkStats,
}

impl ForwardFailures {
    fn send(&self, message: Message) -> Result<(), SinkError> {
        self.tx
            .as_ref()
            .and_then(|tx| tx.send(message).ok())
            .ok_or_else(|| SinkError::new("the consumer thread stopped"))
    }
}

impl Sink for ForwardFailures {
    fn name(&self) -> String {
        "forward-failures".into()
    }

    fn write_batch(&mut self, _file: &SourceObject, events: &[Event<'_>]) -> Result<(), SinkError> {
        // Copy out only what the consumer needs; the views die with this call.
        let failed: Vec<Failed> = events
            .iter()
            .filter_map(|e| {
                let code = e.error_code?;
                let principal = e
                    .user_identity()
                    .and_then(|u| u.arn.or(u.invoked_by))
                    .unwrap_or("(unknown)");
                Some(Failed {
                    principal: principal.to_owned(),
                    error_code: code.to_owned(),
                })
            })
            .collect();
        self.stats.events_received += events.len() as u64;
        self.stats.events_written += failed.len() as u64;
        if !failed.is_empty() {
            self.send(Message::Batch(failed))?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        let (ack_tx, ack_rx) = bounded(1);
        self.send(Message::Commit(ack_tx))?;
        ack_rx
            .recv()
            .map_err(|_| SinkError::new("the consumer thread stopped before acknowledging"))
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        self.commit()?;
        // Closing the channel tells the consumer the run is over.
        self.tx = None;
        Ok(self.stats.clone())
    }
}

/// The user's own thread: tallies failures per principal and error code.
fn consume(rx: Receiver<Message>) -> HashMap<(String, String), u64> {
    let mut tally = HashMap::new();
    for message in rx {
        match message {
            Message::Batch(failed) => {
                for f in failed {
                    *tally.entry((f.principal, f.error_code)).or_insert(0) += 1;
                }
            }
            // Messages arrive in order: every batch before this one is counted.
            Message::Commit(ack) => {
                let _ = ack.send(());
            }
        }
    }
    tally
}

fn main() {
    let sources: Vec<String> = std::env::args().skip(1).collect();
    if sources.is_empty() {
        eprintln!("usage: forward_to_thread DIR_OR_FILE...");
        std::process::exit(2);
    }
    let (tx, rx) = bounded(64);
    let consumer = thread::spawn(move || consume(rx));
    let summary = Pipeline::builder()
        .sink(ForwardFailures {
            tx: Some(tx),
            stats: SinkStats::default(),
        })
        .build()
        .run(&LocalSource::new(sources));
    let tally = consumer.join().expect("the consumer thread panicked");
    let mut rows: Vec<_> = tally.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for ((principal, code), n) in rows.iter().take(20) {
        println!("{n:>8}  {code:<32} {principal}");
    }
    for (name, stats) in &summary.sinks {
        eprintln!(
            "{} files, {} events; sink {name}: {} failed calls forwarded",
            summary.files_ok, summary.events_in, stats.events_written
        );
    }
    std::process::exit(if summary.is_success() { 0 } else { 1 });
}
