//! [`S3Store`]: the validator's [`ObjectStore`] over S3.
//!
//! A digest's signature comes from its object metadata, as CloudTrail writes
//! it: `x-amz-meta-signature` (hex) and `x-amz-meta-signature-algorithm`
//! (plus `x-amz-meta-backfill-generation-timestamp` on backfill digests), so
//! the store reports [`ObjectStore::has_full_metadata`]. The validator
//! announces the digests and log files it is about to read with
//! [`ObjectStore::prefetch`], and a [`Fetcher`] downloads them ahead, many at
//! once, while the validator walks chains and hashes in order.

use std::ops::ControlFlow;

use trailmill_validate::{Object, ObjectMetadata, ObjectStore, StoreError};

use crate::fetch::{FetchError, Fetched, Fetcher};
use crate::s3::S3Client;

/// S3 as the validator's object store. See the [module docs](self).
#[derive(Debug)]
pub struct S3Store {
    client: S3Client,
    fetcher: Fetcher,
}

impl S3Store {
    /// A store reading with `client` (any bucket the credentials can read).
    pub fn new(client: S3Client) -> S3Store {
        S3Store {
            fetcher: Fetcher::new(client.clone()),
            client,
        }
    }

    /// The client, for its counters.
    pub fn client(&self) -> &S3Client {
        &self.client
    }

    fn fetch(&self, bucket: &str, key: &str) -> Result<Fetched, StoreError> {
        self.fetcher.get(bucket, key).map_err(store_error)
    }
}

fn store_error(e: FetchError) -> StoreError {
    if e.not_found {
        StoreError::NotFound
    } else {
        StoreError::Other(format!("{}: {}", e.name, e.reason))
    }
}

impl ObjectStore for S3Store {
    fn get(&self, bucket: &str, key: &str) -> Result<Object, StoreError> {
        let mut f = self.fetch(bucket, key)?;
        let mut take = |name: &str| f.metadata.remove(name);
        let metadata = ObjectMetadata {
            signature: take("signature"),
            signature_algorithm: take("signature-algorithm"),
            backfill_generation_timestamp: take("backfill-generation-timestamp"),
        };
        Ok(Object {
            bytes: f.bytes,
            metadata,
        })
    }

    fn read_into(&self, bucket: &str, key: &str, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        // The body is already a fresh buffer: hand it over instead of copying.
        *buf = self.fetch(bucket, key)?.bytes;
        Ok(())
    }

    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let start_after = (!start_after.is_empty()).then_some(start_after);
        self.client
            .block_on(
                self.client
                    .list_objects(bucket, prefix, start_after, &mut |o| visit(&o.key)),
            )
            .map_err(|e| StoreError::Other(e.to_string()))
    }

    fn list_dirs(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.client
            .block_on(self.client.list_dirs(bucket, prefix))
            .map_err(|e| StoreError::Other(e.to_string()))
    }

    fn prefetch(&self, objects: &[(&str, &str)]) {
        for (bucket, key) in objects {
            self.fetcher.hint(bucket, key, None);
        }
    }
}
