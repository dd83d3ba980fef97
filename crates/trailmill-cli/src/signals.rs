//! A graceful stop on SIGINT and SIGTERM.
//!
//! The first signal raises the pipeline's stop flag: the listing stops, the
//! objects in flight finish, every sink commits, and the final checkpoint
//! records them, so the next run resumes with nothing to redo. A second
//! signal ends the process at once, as if no handler were installed (which
//! is safe too: that is the crash the commit protocol is built for).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set by the handler. A signal handler may only touch lock-free atomics, so
/// a watcher thread carries it over to the pipeline's flag.
static RAISED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: libc::c_int) {
    if RAISED.swap(true, Ordering::SeqCst) {
        // SAFETY: `signal` and `raise` are async-signal-safe; restoring the
        // default action and raising again ends the process as the signal
        // would have without this handler.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
}

/// Installs the handlers and returns the flag they raise.
pub fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only touches an atomic and calls async-signal-safe
    // functions.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
    let pipeline_flag = flag.clone();
    // The watcher sleeps until a signal comes; it ends with the process.
    std::thread::Builder::new()
        .name("trailmill-signals".into())
        .spawn(move || {
            while !RAISED.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            pipeline_flag.store(true, Ordering::SeqCst);
        })
        .ok();
    flag
}
