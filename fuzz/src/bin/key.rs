//! The key grammar. Input: a key. Accepted keys must format back exactly.

use trailmill_core::{Classified, ObjectKey};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(key) = std::str::from_utf8(data) else {
            return;
        };
        if let Classified::Trail(k) = ObjectKey::classify(key) {
            assert_eq!(k.to_string(), key);
            assert_eq!(ObjectKey::parse(key).unwrap(), k);
            let _ = k.file.time.unix_seconds();
            let _ = k.day_folder();
        }
    });
}
