//! Gzip detection and bounded inflation.
//!
//! CloudTrail delivers single-member gzip files. Anything after the end of the
//! gzip stream is an error ([`InflateError::TrailingData`]): appending a gzip
//! member to a delivered log is a way to smuggle records past a hash check, and
//! the AWS CLI rejects it too. Output is capped so that a gzip bomb fails with
//! [`InflateError::TooLarge`] instead of exhausting memory.

use std::io::{self, Read};
use std::ptr::NonNull;

use flate2::bufread::GzDecoder;

/// The two bytes every gzip stream starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// True when `bytes` starts with the gzip magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Why a gzip stream could not be inflated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InflateError {
    /// The stream is corrupt or ends early.
    #[error("corrupt or truncated gzip stream: {0}")]
    Corrupt(io::Error),
    /// Bytes follow the end of the gzip stream.
    #[error("unexpected data after the end of the gzip stream ({0} bytes)")]
    TrailingData(usize),
    /// The uncompressed size exceeds the configured cap.
    #[error("uncompressed size exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The cap that was hit.
        limit: u64,
    },
}

/// The uncompressed size a gzip stream claims in its trailer (modulo 2^32),
/// used only as a capacity hint.
pub fn size_hint(gz: &[u8]) -> Option<usize> {
    let tail: [u8; 4] = gz.get(gz.len().checked_sub(4)?..)?.try_into().ok()?;
    Some(u32::from_le_bytes(tail) as usize)
}

/// Inflates the single-member gzip stream `gz` into `out` (cleared first),
/// writing at most `limit` bytes.
pub fn inflate_into(gz: &[u8], out: &mut Vec<u8>, limit: u64) -> Result<(), InflateError> {
    out.clear();
    if let Some(hint) = size_hint(gz) {
        // The trailer is attacker-controlled: never trust it beyond the cap.
        out.reserve(
            hint.min(usize::try_from(limit).unwrap_or(usize::MAX))
                .saturating_add(1),
        );
    }
    let mut decoder = GzDecoder::new(gz);
    let read = (&mut decoder)
        .take(limit.saturating_add(1))
        .read_to_end(out)
        .map_err(InflateError::Corrupt)?;
    if read as u64 > limit {
        return Err(InflateError::TooLarge { limit });
    }
    check_no_trailing_data(decoder.into_inner())
}

/// A streaming inflater for files too large to hold whole: reads at most
/// `limit` uncompressed bytes and fails on trailing data once the stream ends.
pub struct BoundedGzReader<'a> {
    decoder: GzDecoder<&'a [u8]>,
    produced: u64,
    limit: u64,
    finished: bool,
}

impl<'a> BoundedGzReader<'a> {
    /// Starts inflating `gz`, allowing at most `limit` uncompressed bytes.
    pub fn new(gz: &'a [u8], limit: u64) -> Self {
        BoundedGzReader {
            decoder: GzDecoder::new(gz),
            produced: 0,
            limit,
            finished: false,
        }
    }

    /// Fills `buf` as far as possible; returns 0 at the end of the stream.
    pub fn read_chunk(&mut self, buf: &mut [u8]) -> Result<usize, InflateError> {
        if self.finished {
            return Ok(0);
        }
        let mut filled = 0;
        while filled < buf.len() {
            let n = self
                .decoder
                .read(&mut buf[filled..])
                .map_err(InflateError::Corrupt)?;
            if n == 0 {
                self.finished = true;
                check_no_trailing_data(self.decoder.get_ref())?;
                break;
            }
            filled += n;
            self.produced += n as u64;
            if self.produced > self.limit {
                return Err(InflateError::TooLarge { limit: self.limit });
            }
        }
        Ok(filled)
    }
}

/// Whole-buffer gzip inflation with libdeflate, for files that fit in memory.
///
/// libdeflate inflates about twice as fast as streaming zlib-rs on the
/// development machine (see the `inflate` bench), and the decoder's fast path
/// is mostly inflate and parse. It only answers "done" or "could not": on any
/// failure (corrupt data, a wrong size in the trailer, trailing data) the
/// caller falls back to the streaming inflater, which gives the precise error
/// and handles files larger than the trailer claims.
pub struct WholeInflater {
    decompressor: NonNull<libdeflate_sys::libdeflate_decompressor>,
}

// SAFETY: a libdeflate decompressor has no thread affinity; it is only used
// through `&mut self`, so it is never used by two threads at once.
unsafe impl Send for WholeInflater {}

impl WholeInflater {
    /// A new inflater (a few KB of tables).
    pub fn new() -> Self {
        // SAFETY: no preconditions; a null result means out of memory.
        let raw = unsafe { libdeflate_sys::libdeflate_alloc_decompressor() };
        let decompressor = NonNull::new(raw).unwrap_or_else(|| {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 32768]>())
        });
        WholeInflater { decompressor }
    }

    /// Inflates the single gzip member that must make up all of `gz` into
    /// `out`, returning the uncompressed length, or `None` if that cannot be done.
    pub fn inflate(&mut self, gz: &[u8], out: &mut [u8]) -> Option<usize> {
        let mut consumed = 0usize;
        let mut produced = 0usize;
        // SAFETY: the pointers and lengths describe live slices (`gz` readable,
        // `out` writable for `out.len()` bytes); libdeflate writes only within
        // `out` and the two result slots, and keeps no pointer after returning.
        let result = unsafe {
            libdeflate_sys::libdeflate_gzip_decompress_ex(
                self.decompressor.as_ptr(),
                gz.as_ptr().cast(),
                gz.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut consumed,
                &mut produced,
            )
        };
        (result == libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS && consumed == gz.len())
            .then_some(produced)
    }
}

impl Default for WholeInflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for WholeInflater {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor and freed once.
        unsafe { libdeflate_sys::libdeflate_free_decompressor(self.decompressor.as_ptr()) }
    }
}

/// The SHA-256 of the uncompressed content of the single-member gzip stream
/// `gz`, inflated in `chunk`-sized steps (bounded memory, any size), with the
/// same checks as [`inflate_into`]: at most `limit` bytes, nothing after the
/// stream.
pub fn sha256_streaming(gz: &[u8], limit: u64, chunk: &mut [u8]) -> Result<[u8; 32], InflateError> {
    use sha2::{Digest as _, Sha256};
    let mut reader = BoundedGzReader::new(gz, limit);
    let mut hasher = Sha256::new();
    loop {
        let n = reader.read_chunk(chunk)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&chunk[..n]);
    }
}

fn check_no_trailing_data(rest: &[u8]) -> Result<(), InflateError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(InflateError::TrailingData(rest.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::new(6));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn inflates_and_detects() {
        let z = gz(b"hello world");
        assert!(is_gzip(&z));
        assert!(!is_gzip(b"{}"));
        let mut out = Vec::new();
        inflate_into(&z, &mut out, 100).unwrap();
        assert_eq!(out, b"hello world");
    }

    #[test]
    fn rejects_an_appended_gzip_member() {
        let mut z = gz(b"{\"Records\":[]}");
        z.extend(gz(b"{\"Records\":[{}]}"));
        let err = inflate_into(&z, &mut Vec::new(), 1 << 20).unwrap_err();
        assert!(
            matches!(err, InflateError::TrailingData(n) if n > 0),
            "{err}"
        );
    }

    #[test]
    fn rejects_truncation_and_caps_bombs() {
        let z = gz(&vec![b'a'; 1 << 20]);
        assert!(matches!(
            inflate_into(&z[..z.len() - 6], &mut Vec::new(), 1 << 30),
            Err(InflateError::Corrupt(_))
        ));
        assert!(matches!(
            inflate_into(&z, &mut Vec::new(), 1000),
            Err(InflateError::TooLarge { limit: 1000 })
        ));
        let mut r = BoundedGzReader::new(&z, 4096);
        let mut buf = vec![0; 1 << 16];
        assert!(matches!(
            r.read_chunk(&mut buf),
            Err(InflateError::TooLarge { .. })
        ));
    }

    #[test]
    fn the_whole_buffer_inflater_refuses_what_the_streaming_one_rejects() {
        let data = b"{\"Records\":[]}".repeat(100);
        let z = gz(&data);
        let mut w = WholeInflater::new();
        let mut out = vec![0; data.len()];
        assert_eq!(w.inflate(&z, &mut out), Some(data.len()));
        assert_eq!(out, data);
        let mut two = z.clone();
        two.extend_from_slice(&z);
        assert_eq!(w.inflate(&two, &mut out), None, "trailing member");
        assert_eq!(w.inflate(&z[..z.len() - 1], &mut out), None, "truncated");
        assert_eq!(w.inflate(&z, &mut out[..10]), None, "too small");
        let mut bad = z.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x55;
        assert_eq!(
            w.inflate(&bad, &mut vec![0; data.len() * 2]),
            None,
            "corrupt"
        );
    }

    #[test]
    fn streaming_hash_matches_and_keeps_the_checks() {
        use sha2::{Digest as _, Sha256};
        let data = b"{\"Records\":[]}".repeat(1000);
        let z = gz(&data);
        let mut chunk = vec![0; 333];
        assert_eq!(
            sha256_streaming(&z, u64::MAX, &mut chunk).unwrap(),
            <[u8; 32]>::from(Sha256::digest(&data))
        );
        let mut two = z.clone();
        two.extend_from_slice(&z);
        assert!(matches!(
            sha256_streaming(&two, u64::MAX, &mut chunk),
            Err(InflateError::TrailingData(_))
        ));
        assert!(matches!(
            sha256_streaming(&z, 10, &mut chunk),
            Err(InflateError::TooLarge { limit: 10 })
        ));
    }

    #[test]
    fn streams_in_chunks() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let z = gz(&data);
        let mut r = BoundedGzReader::new(&z, u64::MAX);
        let mut got = Vec::new();
        let mut buf = vec![0; 7777];
        loop {
            let n = r.read_chunk(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, data);
    }
}
