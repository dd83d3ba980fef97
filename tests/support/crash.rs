//! What the crash tests share: seeded kill points, waiting, signals, and the
//! state store's count of done objects.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// splitmix64: a small seeded generator, so that a failing run can be repeated.
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The seed of a crash test: `TRAILMILL_CRASH_SEED`, or the clock. Printed,
/// so that a failing run can be repeated.
pub fn seed() -> u64 {
    let seed = std::env::var("TRAILMILL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed {seed} (TRAILMILL_CRASH_SEED={seed} repeats its kill points)");
    seed
}

/// How many objects the state calls done; 0 while it does not exist yet.
pub fn done_count(state: &Path) -> usize {
    if !state.exists() {
        return 0;
    }
    let Ok(conn) = rusqlite::Connection::open(state) else {
        return 0;
    };
    conn.query_row(
        "SELECT count(*) FROM objects WHERE status = 'done'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map_or(0, |n| n as usize)
}

/// Polls `done` every 200 ms until it holds; fails after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends SIGTERM to `child`.
pub fn terminate(child: &Child) {
    // SAFETY: kill(2) on a child we started and have not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
}
