//! Hashing log files: inflate and SHA-256.
//!
//! Files whose gzip trailer announces at most [`WHOLE_MAX`] bytes are
//! inflated whole with libdeflate (about twice as fast as streaming zlib-rs)
//! and hashed; anything libdeflate refuses — corrupt data, a lying trailer,
//! bytes after the stream, larger files — goes through the streaming
//! inflater, which inflates and hashes chunk by chunk and names the precise
//! error. Each worker thread keeps its buffers ([`LogHasher`]), so hashing
//! allocates nothing in the steady state, and memory per thread is bounded by
//! the largest compressed file plus [`WHOLE_MAX`].

use std::cell::RefCell;
use std::io;

use sha2::{Digest as _, Sha256};
use trailmill_core::gzip::{InflateError, WholeInflater, size_hint};

use crate::store::{ObjectStore, StoreError};
use crate::verdict::{Problem, Status};

/// The size of the streaming inflate-and-hash chunk: small enough to stay in L2.
pub const CHUNK: usize = 128 * 1024;

/// Files announcing more uncompressed bytes than this are streamed.
pub const WHOLE_MAX: usize = 64 << 20;

/// Compressed buffers larger than this are released after use.
const KEEP_BUFFER: usize = 256 << 20;

/// Reusable state for hashing log files: one per worker thread.
#[derive(Default)]
pub struct LogHasher {
    whole: Option<WholeInflater>,
    out: Vec<u8>,
    chunk: Vec<u8>,
}

impl LogHasher {
    /// A hasher with no buffers yet (they grow on first use).
    pub fn new() -> Self {
        LogHasher::default()
    }

    /// The SHA-256 of the uncompressed content of the single-member gzip
    /// stream `gz`, inflating at most `limit` bytes.
    ///
    /// Trailing bytes after the gzip stream are [`Problem::TrailingData`]; a
    /// stream that ends early is [`Problem::Truncated`]; any other corruption
    /// is [`Problem::InvalidFormat`]; more than `limit` bytes is [`Problem::TooLarge`].
    pub fn sha256_of_gzip(&mut self, gz: &[u8], limit: u64) -> Result<[u8; 32], Problem> {
        if let Some(hint) = size_hint(gz)
            && hint <= WHOLE_MAX
            && (hint as u64) <= limit
        {
            if self.out.len() < hint {
                self.out.resize(hint, 0);
            }
            let whole = self.whole.get_or_insert_with(WholeInflater::new);
            // Success means one member, CRC and size verified, nothing after it.
            if let Some(n) = whole.inflate(gz, &mut self.out[..hint]) {
                return Ok(Sha256::digest(&self.out[..n]).into());
            }
        }
        if self.chunk.len() != CHUNK {
            self.chunk.resize(CHUNK, 0);
        }
        sha256_of_gzip(gz, limit, &mut self.chunk)
    }
}

thread_local! {
    static BUFFERS: RefCell<(Vec<u8>, LogHasher)> = RefCell::new((Vec::new(), LogHasher::new()));
}

/// The SHA-256 of the uncompressed content of the single-member gzip stream
/// `gz`, inflating (streaming, with zlib-rs) at most `limit` bytes through `chunk`.
///
/// Trailing bytes after the gzip stream are [`Problem::TrailingData`]; a
/// stream that ends early is [`Problem::Truncated`]; any other corruption is
/// [`Problem::InvalidFormat`].
pub fn sha256_of_gzip(gz: &[u8], limit: u64, chunk: &mut [u8]) -> Result<[u8; 32], Problem> {
    trailmill_core::gzip::sha256_streaming(gz, limit, chunk).map_err(|e| inflate_problem(&e))
}

/// The problem an inflate error means for a log file.
pub(crate) fn inflate_problem(e: &InflateError) -> Problem {
    match e {
        InflateError::TrailingData(_) => Problem::TrailingData,
        InflateError::TooLarge { limit } => Problem::TooLarge { limit: *limit },
        InflateError::Corrupt(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            Problem::Truncated
        }
        other => Problem::InvalidFormat {
            detail: other.to_string(),
        },
    }
}

/// The problem a store error means for any object.
pub(crate) fn store_problem(e: StoreError) -> Problem {
    match e {
        StoreError::NotFound => Problem::NotFound { detail: None },
        StoreError::UnknownBucket(b) => Problem::NotFound {
            detail: Some(format!("bucket {b} is not mapped")),
        },
        StoreError::UnsafeKey(reason) => Problem::UnsafeKey { reason },
        StoreError::Other(message) => Problem::ReadError { message },
    }
}

/// Fetches and checks one log file against `expected` (the digest's
/// `hashValue`, compared exactly as the CLI does).
pub(crate) fn check_log(
    store: &dyn ObjectStore,
    bucket: &str,
    key: &str,
    expected: &str,
    limit: u64,
) -> Status {
    BUFFERS.with(|cell| {
        let mut bufs = cell.borrow_mut();
        let (gz, hasher) = &mut *bufs;
        let status = match store.read_into(bucket, key, gz) {
            Err(e) => Status::Invalid(store_problem(e)),
            Ok(()) => match hasher.sha256_of_gzip(gz, limit) {
                Err(p) => Status::Invalid(p),
                Ok(h) if hex::encode(h) == expected => Status::Valid,
                Ok(_) => Status::Invalid(Problem::HashMismatch),
            },
        };
        if gz.capacity() > KEEP_BUFFER {
            *gz = Vec::new();
        }
        status
    })
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
    fn hashes_and_classifies_failures() {
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let z = gz(&data);
        let mut chunk = vec![0; 4096];
        assert_eq!(
            sha256_of_gzip(&z, u64::MAX, &mut chunk).unwrap(),
            <[u8; 32]>::from(Sha256::digest(&data))
        );
        let mut appended = z.clone();
        appended.extend(gz(b"x"));
        assert_eq!(
            sha256_of_gzip(&appended, u64::MAX, &mut chunk),
            Err(Problem::TrailingData)
        );
        assert_eq!(
            sha256_of_gzip(&z[..z.len() / 2], u64::MAX, &mut chunk),
            Err(Problem::Truncated)
        );
        assert_eq!(
            sha256_of_gzip(&[], u64::MAX, &mut chunk),
            Err(Problem::Truncated)
        );
        assert!(matches!(
            sha256_of_gzip(b"{\"Records\":[]}", u64::MAX, &mut chunk),
            Err(Problem::InvalidFormat { .. })
        ));
        assert_eq!(
            sha256_of_gzip(&z, 10, &mut chunk),
            Err(Problem::TooLarge { limit: 10 })
        );
    }

    #[test]
    fn the_whole_file_path_agrees_with_streaming_and_falls_back_on_errors() {
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let z = gz(&data);
        let mut h = LogHasher::new();
        let want = <[u8; 32]>::from(Sha256::digest(&data));
        assert_eq!(h.sha256_of_gzip(&z, u64::MAX), Ok(want));
        assert_eq!(
            h.sha256_of_gzip(&gz(b""), u64::MAX),
            Ok(<[u8; 32]>::from(Sha256::digest(b"")))
        );
        let mut appended = z.clone();
        appended.extend(gz(b"x"));
        assert_eq!(
            h.sha256_of_gzip(&appended, u64::MAX),
            Err(Problem::TrailingData)
        );
        assert_eq!(
            h.sha256_of_gzip(&z[..z.len() / 2], u64::MAX),
            Err(Problem::Truncated)
        );
        assert_eq!(
            h.sha256_of_gzip(&z, 10),
            Err(Problem::TooLarge { limit: 10 })
        );
        // A trailer that lies about the size (or the CRC) is caught either way.
        let n = z.len();
        let mut lying = z.clone();
        lying[n - 4..].copy_from_slice(&7u32.to_le_bytes());
        assert!(matches!(
            h.sha256_of_gzip(&lying, u64::MAX),
            Err(Problem::InvalidFormat { .. })
        ));
        let mut bad_crc = z.clone();
        bad_crc[n - 8] ^= 1;
        assert!(matches!(
            h.sha256_of_gzip(&bad_crc, u64::MAX),
            Err(Problem::InvalidFormat { .. })
        ));
        // The buffers are reused: a smaller file after a larger one.
        assert_eq!(
            h.sha256_of_gzip(&gz(b"abc"), u64::MAX),
            Ok(<[u8; 32]>::from(Sha256::digest(b"abc")))
        );
    }
}
