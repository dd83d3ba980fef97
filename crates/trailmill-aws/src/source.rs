//! [`S3Source`]: the pipeline's [`Source`] over `s3://` URLs.
//!
//! Listing goes through the [`Planner`] (by account, region and day, or one
//! plain listing for other trees) and keeps the same objects
//! [`trailmill_pipeline::LocalSource`] keeps from a mirror of the same bucket:
//! CloudTrail log keys that pass the [`Selection`], Insights files with
//! `include_insights`, never digests; in a tree with no CloudTrail key at all
//! (an export), every JSON file. Reading goes through a [`Fetcher`]: the
//! pipeline announces each queued object with [`Source::will_read`], so the
//! download starts long before a CPU worker calls [`Source::read`].
//!
//! Objects are named `s3://bucket/key`; their key is the full object key (so
//! the key grammar sees the trail's prefix and organization), their size and
//! version (the ETag) come from the listing.

use std::ops::ControlFlow;

use trailmill_core::Selection;
use trailmill_core::key::Classified;
use trailmill_pipeline::{ListStats, ObjectData, Source, SourceError, SourceObject};

use crate::fetch::Fetcher;
use crate::plan::{Layout, ListScope, ListedObject, Listing, Planner};
use crate::s3::{S3Client, S3Url, split_object_name};

/// File-name endings read in a tree with no CloudTrail keys (as `LocalSource`).
const JSON_ENDINGS: &[&str] = &[
    ".json",
    ".json.gz",
    ".jsonl",
    ".jsonl.gz",
    ".ndjson",
    ".ndjson.gz",
];

/// Log objects in S3 buckets. See the [module docs](self).
#[derive(Debug)]
pub struct S3Source {
    client: S3Client,
    urls: Vec<S3Url>,
    fetcher: Fetcher,
}

impl S3Source {
    /// A source over `urls` (of any buckets), downloading with `client`.
    pub fn new(client: S3Client, urls: Vec<S3Url>) -> S3Source {
        S3Source {
            fetcher: Fetcher::new(client.clone()),
            client,
            urls,
        }
    }

    /// The client, for its counters ([`S3Client::stats`]).
    pub fn client(&self) -> &S3Client {
        &self.client
    }

    fn object(url: &S3Url, o: ListedObject) -> SourceObject {
        SourceObject {
            name: url.object_name(&o.key),
            key: o.key,
            size: o.size,
            version: o.etag,
            tag: 0,
        }
    }
}

impl Source for S3Source {
    fn list(
        &self,
        selection: &Selection,
        emit: &mut dyn FnMut(SourceObject) -> ControlFlow<()>,
    ) -> ListStats {
        let mut stats = ListStats::default();
        for url in &self.urls {
            let planner = Planner::new(self.client.clone(), url.clone());
            let mut layout = Layout::Plain;
            let mut trail_keys = false;
            // In a plain tree, JSON files that are not CloudTrail keys are read
            // only if the tree holds no CloudTrail key at all (an export), which
            // is known at the end; CloudTrail keys flow at once.
            let mut exports: Vec<SourceObject> = Vec::new();
            let mut flow = ControlFlow::Continue(());
            planner.run(ListScope::from_selection(selection), &mut |item| {
                match item {
                    Listing::Layout(l) => layout = l,
                    Listing::Error(e) => stats.errors.push(SourceError::new(e.name, e.reason)),
                    Listing::Object(o) => {
                        let object = Self::object(url, o);
                        match object.classify() {
                            Classified::Trail(k) => {
                                trail_keys = true;
                                if let Err(why) = selection.check(&object.key, &k) {
                                    stats.count_skip(why);
                                    return ControlFlow::Continue(());
                                }
                            }
                            Classified::Other { reason } => {
                                match stats.admit_misnamed(
                                    &object.name,
                                    &object.key,
                                    &reason,
                                    selection,
                                ) {
                                    Some(true) => {}
                                    Some(false) => return ControlFlow::Continue(()),
                                    None => {
                                        let is_json =
                                            JSON_ENDINGS.iter().any(|e| object.key.ends_with(e));
                                        if layout != Layout::Plain || !is_json {
                                            stats.skipped_other += 1;
                                        } else {
                                            exports.push(object);
                                        }
                                        return ControlFlow::Continue(());
                                    }
                                }
                            }
                        }
                        stats.listed += 1;
                        flow = emit(object);
                        return flow;
                    }
                }
                ControlFlow::Continue(())
            });
            if flow.is_break() {
                break;
            }
            if trail_keys {
                stats.skipped_other += exports.len() as u64;
                continue;
            }
            for object in exports {
                if let Err(why) = selection.check_keyless(&object.key) {
                    stats.count_skip(why);
                    continue;
                }
                stats.listed += 1;
                flow = emit(object);
                if flow.is_break() {
                    break;
                }
            }
            if flow.is_break() {
                break;
            }
        }
        stats
    }

    fn will_read(&self, object: &SourceObject) {
        if let Some((bucket, key)) = split_object_name(&object.name) {
            self.fetcher.hint(bucket, key, object.size);
        }
    }

    fn read(&self, object: &SourceObject) -> Result<ObjectData, SourceError> {
        let (bucket, key) = split_object_name(&object.name)
            .ok_or_else(|| SourceError::new(&object.name, "not an s3://bucket/key name"))?;
        self.fetcher
            .get(bucket, key)
            .map(|f| ObjectData::Owned(f.bytes))
            .map_err(|e| SourceError::new(&object.name, e.reason))
    }
}
