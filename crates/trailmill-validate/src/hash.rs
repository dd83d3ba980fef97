//! Hashing log files: inflate and SHA-256 in one streaming pass.
//!
//! Each worker thread keeps two buffers (the compressed object and a chunk of
//! inflated bytes), so hashing allocates nothing in the steady state and
//! never holds a whole uncompressed file: memory per thread is the largest
//! compressed file plus [`CHUNK`].

use std::cell::RefCell;
use std::io;

use sha2::{Digest as _, Sha256};
use trailmill_core::gzip::{BoundedGzReader, InflateError};

use crate::store::{ObjectStore, StoreError};
use crate::verdict::{Problem, Status};

/// The size of the inflate-and-hash chunk: small enough to stay in L2.
pub const CHUNK: usize = 128 * 1024;

/// Compressed buffers larger than this are released after use.
const KEEP_BUFFER: usize = 256 << 20;

thread_local! {
    static BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// The SHA-256 of the uncompressed content of the single-member gzip stream
/// `gz`, inflating at most `limit` bytes through `chunk`.
///
/// Trailing bytes after the gzip stream are [`Problem::TrailingData`]; a
/// stream that ends early is [`Problem::Truncated`]; any other corruption is
/// [`Problem::InvalidFormat`].
pub fn sha256_of_gzip(gz: &[u8], limit: u64, chunk: &mut [u8]) -> Result<[u8; 32], Problem> {
    let mut reader = BoundedGzReader::new(gz, limit);
    let mut hasher = Sha256::new();
    loop {
        match reader.read_chunk(chunk) {
            Ok(0) => break,
            Ok(n) => hasher.update(&chunk[..n]),
            Err(e) => return Err(inflate_problem(&e)),
        }
    }
    Ok(hasher.finalize().into())
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
        let (gz, chunk) = &mut *bufs;
        if chunk.len() != CHUNK {
            chunk.resize(CHUNK, 0);
        }
        let status = match store.read_into(bucket, key, gz) {
            Err(e) => Status::Invalid(store_problem(e)),
            Ok(()) => match sha256_of_gzip(gz, limit, chunk) {
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
}
