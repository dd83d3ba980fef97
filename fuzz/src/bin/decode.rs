//! The log decoder, whole-file and streamed. Input: one flag byte, then the
//! file. Flag bit 0: gzip the rest first, so mutations of the JSON get past
//! the inflater. Any panic is a finding.

use trailmill_core::{DecodeOptions, Decoder};

fn main() {
    let mut whole = Decoder::new(DecodeOptions {
        // A lying gzip trailer makes the whole-file path allocate what it claims.
        whole_file_limit: 1 << 20,
        max_record_bytes: 1 << 16,
        batch_size: 3,
        ..DecodeOptions::default()
    });
    let mut streamed = Decoder::new(DecodeOptions {
        whole_file_limit: 16,
        max_record_bytes: 1 << 16,
        batch_size: 3,
        ..DecodeOptions::default()
    });
    afl::fuzz!(|data: &[u8]| {
        let Some((&flags, rest)) = data.split_first() else {
            return;
        };
        let input = if flags & 1 == 1 {
            trailmill_fuzz::gz(rest)
        } else {
            rest.to_vec()
        };
        for d in [&mut whole, &mut streamed] {
            let mut n = 0usize;
            let r = d.decode(&input, &mut |batch| {
                for e in batch {
                    // Touch the typed views: they index into the tape.
                    n += e.raw.len() + e.event_name.map_or(0, str::len);
                    let _ = e.user_identity().map(|u| u.identity_type);
                    let _ = e.resources().count();
                    let _ = e.unknown_fields().count();
                }
                Ok(())
            });
            if let Err(e) = r {
                assert!(!e.to_string().is_empty());
            }
            std::hint::black_box(n);
        }
    });
}
