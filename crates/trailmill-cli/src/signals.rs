//! A graceful stop on SIGINT and SIGTERM, for every command that runs long
//! (`process`, `worker`): one mechanism, `signal-hook`'s flags.
//!
//! The first signal raises the stop flag: for `process`, the listing stops,
//! the objects in flight finish, every sink commits, and the final checkpoint
//! records them, so the next run resumes with nothing to redo; for `worker`,
//! polling stops, in-flight files finish, the final checkpoint deletes what
//! settled, and the rest is released. A second signal exits at once (status
//! 130), for when the graceful path hangs (which is safe too: that is the
//! crash the commit protocol is built for).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Installs the handlers and returns the flag they raise.
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Order matters: the conditional exit is registered first, so it sees
        // the flag as it was before this signal set it.
        signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone())
            .map_err(|e| anyhow::anyhow!("cannot install the signal handlers: {e}"))?;
        signal_hook::flag::register(signal, flag.clone())
            .map_err(|e| anyhow::anyhow!("cannot install the signal handlers: {e}"))?;
    }
    Ok(flag)
}
