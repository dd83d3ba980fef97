//! The listing planner: which S3 prefixes to list for a selection, listed in
//! parallel and streamed in order.
//!
//! CloudTrail writes `[prefix/]AWSLogs/[o-ORG/]ACCOUNT/SERVICE/REGION/YYYY/MM/DD/NAME`,
//! and a bucket may hold years of it. Listing the whole bucket to find one
//! hour would read millions of keys, so the [`Planner`]:
//!
//! 1. decides the layout: if the URL's folder holds `AWSLogs/` (or lies inside
//!    an `AWSLogs/` tree), the trail layout is planned; anything else falls
//!    back to one plain recursive listing ([`Layout::Plain`]);
//! 2. finds organizations and accounts with delimiter listings of
//!    `AWSLogs/` (or takes them from the scope's `org_ids` and `accounts`),
//!    and regions from each account's service folder (or the scope's
//!    `regions`); with no time range at all, each account's service folder
//!    (or each given region's folder) is instead listed whole, one recursive
//!    listing streamed through a bounded buffer, and steps 3 and 4 are skipped;
//! 3. turns the time range into day folders: enumerated directly when both
//!    ends are known and span at most [`MAX_ENUMERATED_DAYS`], else found
//!    with delimiter listings of the year, month and day folders, pruned to
//!    the range;
//! 4. lists one prefix per account, region and day, [`S3Options::list_concurrency`]
//!    at a time, paging to the end. On the first day a partial range starts
//!    after `ACCOUNT_SERVICE_REGION_YYYYMMDDTHHmm` (`StartAfter`, built from
//!    the key grammar), and on the last day the listing stops at the first
//!    key at or after the end, so a one-hour window in a ten-year bucket
//!    lists only that hour.
//!
//! Results come back in plan order (day by day when the days are
//! enumerated), as soon as each prefix is listed, through a bounded channel:
//! listing runs ahead on the client's runtime while the caller processes
//! what was already found. The planner only lists: deciding which keys to
//! read (digests, Insights, exports) is the caller's job
//! ([`crate::S3Source`] does what `LocalSource` does).
//!
//! [`S3Options::list_concurrency`]: crate::S3Options::list_concurrency

use std::ops::ControlFlow;

use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use futures_util::stream::{self, BoxStream, StreamExt};
use jiff::civil::Date;
use trailmill_core::Selection;
use trailmill_core::key::{KeyDate, ObjectKey, day_prefix};

use crate::retry::{Attempt, classify, with_retries};
use crate::s3::{Api, S3Client, S3Url, object_name};

/// Ranges of at most this many days are listed day by day without discovery.
pub const MAX_ENUMERATED_DAYS: i64 = 62;

/// One object a listing found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    /// The object key.
    pub key: String,
    /// The size in bytes.
    pub size: Option<u64>,
    /// The ETag, as S3 gives it (with its quotes).
    pub etag: Option<String>,
}

/// A prefix that could not be listed, with the reason after retries.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name}: cannot list: {reason}")]
pub struct ListError {
    /// `s3://bucket/prefix`.
    pub name: String,
    /// What went wrong.
    pub reason: String,
}

/// How the planner reads a URL's folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// CloudTrail's layout, planned by account, region and day.
    Trail {
        /// The folder that holds `AWSLogs/`: empty or ending in `/`.
        root: String,
    },
    /// Anything else: one recursive listing of the folder.
    Plain,
}

/// What a running plan reports, in order: first the [`Layout`], then objects
/// and errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listing {
    /// The layout chosen (always the first message).
    Layout(Layout),
    /// One object, in plan order.
    Object(ListedObject),
    /// A prefix that could not be listed; the rest of the plan goes on.
    Error(ListError),
}

/// The service folders a plan lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// `CloudTrail/`: log files.
    Logs,
    /// `CloudTrail-Insight/`: Insights files.
    Insights,
    /// `CloudTrail-Digest/`: digest files.
    Digests,
}

impl Service {
    /// The folder name, which is also the tag in file names.
    pub fn folder(self) -> &'static str {
        match self {
            Service::Logs => "CloudTrail",
            Service::Insights => "CloudTrail-Insight",
            Service::Digests => "CloudTrail-Digest",
        }
    }
}

/// What to list: the key-level part of a [`Selection`], and which services.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListScope {
    /// Only these accounts (empty: discover).
    pub accounts: Vec<String>,
    /// Only these regions (empty: discover).
    pub regions: Vec<String>,
    /// Only these organizations (empty: discover, with or without an `o-` folder).
    pub org_ids: Vec<String>,
    /// Only keys starting with this text.
    pub key_prefix: Option<String>,
    /// Delivery times from (Unix seconds, inclusive).
    pub start: Option<i64>,
    /// Delivery times until (Unix seconds, exclusive).
    pub end: Option<i64>,
    /// The service folders to list.
    pub services: Vec<Service>,
}

impl ListScope {
    /// The scope of a pipeline selection: logs, plus Insights files when the
    /// selection includes them.
    pub fn from_selection(selection: &Selection) -> ListScope {
        let mut services = vec![Service::Logs];
        if selection.include_insights {
            services.push(Service::Insights);
        }
        ListScope {
            accounts: selection.accounts.clone(),
            regions: selection.regions.clone(),
            org_ids: selection.org_ids.clone(),
            key_prefix: selection.prefix.clone().filter(|p| !p.is_empty()),
            start: selection.start,
            end: selection.end,
            services,
        }
    }
}

impl S3Client {
    /// Lists the keys under `prefix` that sort after `start_after`, in key
    /// order, page after page until the end or until `visit` breaks. Each
    /// page is retried on its own.
    pub async fn list_objects<F>(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        visit: &mut F,
    ) -> Result<(), ListError>
    where
        F: FnMut(ListedObject) -> ControlFlow<()>,
    {
        self.api
            .list_objects(bucket, prefix, start_after, None, visit)
            .await
    }

    /// The common prefixes one level below `prefix` (delimiter `/`), each
    /// ending in `/`, in key order, from every page.
    pub async fn list_dirs(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, ListError> {
        self.api.list_dirs(bucket, prefix).await
    }
}

impl Api {
    /// Lists `prefix` page by page to the end (or until `on_page` breaks):
    /// each page one `ListObjectsV2` call, with the request timeout and
    /// retries, grouped at `delimiter` when one is given. The first page asks
    /// for `first_page_keys` keys when given, the others for S3's default.
    async fn list_pages<P>(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        delimiter: Option<&str>,
        first_page_keys: Option<i32>,
        mut on_page: P,
    ) -> Result<(), ListError>
    where
        P: FnMut(&ListObjectsV2Output) -> ControlFlow<()>,
    {
        let mut token: Option<String> = None;
        loop {
            let page = with_retries(&self.options.retry, &self.stats, || {
                let sdk = self.client();
                let req = sdk
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .set_delimiter(delimiter.map(str::to_owned))
                    .set_start_after(start_after.map(str::to_owned))
                    .set_continuation_token(token.clone())
                    .set_max_keys(first_page_keys.filter(|_| token.is_none()))
                    .set_request_payer(self.request_payer());
                async move {
                    match tokio::time::timeout(self.options.request_timeout, req.send()).await {
                        Err(_) => Err(Attempt::Transient("timed out".to_owned())),
                        Ok(Ok(page)) => Ok(page),
                        Ok(Err(_)) if self.switched_since(&sdk).await => Err(Attempt::redirected()),
                        Ok(Err(e)) => Err(classify(e)),
                    }
                }
            })
            .await
            .map_err(|(reason, tries)| list_error(bucket, prefix, reason, tries))?;
            if on_page(&page).is_break() {
                return Ok(());
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) && !t.is_empty() => {
                    token = Some(t.to_owned())
                }
                _ => return Ok(()),
            }
        }
    }

    async fn list_objects<F>(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        first_page_keys: Option<i32>,
        visit: &mut F,
    ) -> Result<(), ListError>
    where
        F: FnMut(ListedObject) -> ControlFlow<()>,
    {
        self.list_pages(bucket, prefix, start_after, None, first_page_keys, |page| {
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                let object = ListedObject {
                    key: key.to_owned(),
                    size: o.size().and_then(|s| u64::try_from(s).ok()),
                    etag: o.e_tag().map(str::to_owned),
                };
                visit(object)?;
            }
            ControlFlow::Continue(())
        })
        .await
    }

    async fn list_dirs(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, ListError> {
        let mut dirs = Vec::new();
        self.list_pages(
            bucket,
            prefix,
            None,
            Some("/"),
            None,
            |page: &ListObjectsV2Output| {
                dirs.extend(
                    page.common_prefixes()
                        .iter()
                        .filter_map(|p| p.prefix().map(str::to_owned)),
                );
                ControlFlow::Continue(())
            },
        )
        .await?;
        Ok(dirs)
    }
}

fn list_error(bucket: &str, prefix: &str, reason: String, tries: u32) -> ListError {
    ListError {
        name: object_name(bucket, prefix),
        reason: if tries > 1 {
            format!("{reason} (after {tries} attempts)")
        } else {
            reason
        },
    }
}

/// Plans and runs listings of one `s3://` URL. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Planner {
    client: S3Client,
    url: S3Url,
}

/// The planner's part that runs on the runtime.
#[derive(Clone)]
struct Plan {
    client: Api,
    url: S3Url,
}

/// One account's service folder to find regions in:
/// `[prefix/]AWSLogs/[o-ORG/]ACCOUNT/`, with its parts.
#[derive(Clone, Debug)]
struct Owner {
    org_id: Option<String>,
    account: String,
}

/// One account, service and region folder.
#[derive(Clone, Debug)]
struct RegionFolder {
    org_id: Option<String>,
    account: String,
    service: Service,
    region: String,
}

/// One listing: a day folder, with the bounds of a partial day.
#[derive(Clone, Debug)]
struct DayTask {
    date: KeyDate,
    prefix: String,
    start_after: Option<String>,
    /// Stop at the first key (with the folder's own name prefix) at or after this time.
    stop_at: Option<i64>,
}

impl Planner {
    /// A planner for `url`, with `client`'s options.
    pub fn new(client: S3Client, url: S3Url) -> Planner {
        Planner { client, url }
    }

    /// The URL planned.
    pub fn url(&self) -> &S3Url {
        &self.url
    }

    /// Starts the plan on the client's runtime and returns its results as
    /// they come: a [`Listing::Layout`], then objects and errors in plan
    /// order. At most `buffer` results wait unread; listing pauses when the
    /// reader falls behind, and stops when the receiver is dropped.
    pub fn spawn(&self, scope: ListScope, buffer: usize) -> tokio::sync::mpsc::Receiver<Listing> {
        let (tx, rx) = tokio::sync::mpsc::channel(buffer.max(1));
        let plan = Plan {
            client: self.client.api.clone(),
            url: self.url.clone(),
        };
        self.client.handle().spawn(async move {
            plan.run_async(&scope, &tx).await;
        });
        rx
    }

    /// Runs the plan on the calling thread (not a runtime thread), calling
    /// `emit` for each result until the end or until `emit` breaks.
    pub fn run(&self, scope: ListScope, emit: &mut dyn FnMut(Listing) -> ControlFlow<()>) {
        let mut rx = self.spawn(scope, 4096);
        while let Some(item) = rx.blocking_recv() {
            if emit(item).is_break() {
                break;
            }
        }
    }
}

impl Plan {
    async fn run_async(&self, scope: &ListScope, tx: &tokio::sync::mpsc::Sender<Listing>) {
        let (layout, awslogs_dirs) = match self.layout().await {
            Ok(l) => l,
            Err(e) => {
                let _ = tx.send(Listing::Layout(Layout::Plain)).await;
                let _ = tx.send(Listing::Error(e)).await;
                return;
            }
        };
        if tx.send(Listing::Layout(layout.clone())).await.is_err() {
            return;
        }
        let root = match layout {
            Layout::Trail { root } => root,
            Layout::Plain => {
                // One listing of the whole folder, streamed page by page.
                let prefix = match &scope.key_prefix {
                    Some(p) if p.starts_with(&self.url.prefix) => p.clone(),
                    Some(p) if !self.url.prefix.starts_with(p.as_str()) => return,
                    _ => self.url.prefix.clone(),
                };
                self.list_folders_whole(vec![prefix], tx).await;
                return;
            }
        };
        // The constraint on keys: the URL's folder when it lies inside
        // AWSLogs/, and the scope's key prefix.
        let Some(constraint) = narrow(
            Some(self.url.prefix.clone()).filter(|p| p.len() > root.len()),
            scope.key_prefix.clone(),
        ) else {
            return; // the two prefixes exclude each other: nothing to list
        };
        let constraint = constraint.as_deref();
        let owners = match self.owners(&root, awslogs_dirs, scope, constraint).await {
            Ok(o) => o,
            Err(e) => {
                let _ = tx.send(Listing::Error(e)).await;
                return;
            }
        };
        let conc = self.client.options.list_concurrency.max(1);
        let pairs: Vec<(Owner, Service)> = owners
            .into_iter()
            .flat_map(|o| scope.services.iter().map(move |s| (o.clone(), *s)))
            .collect();
        if scope.start.is_none() && scope.end.is_none() {
            let folders = whole_folders(&root, &pairs, &scope.regions, constraint);
            self.list_folders_whole(folders, tx).await;
            return;
        }
        // Regions of every account and service, found in parallel.
        let region_lists: Vec<Result<Vec<RegionFolder>, ListError>> = stream::iter(pairs)
            .map(|(owner, service)| self.regions(&root, owner, service, scope, constraint))
            .buffered(conc)
            .collect()
            .await;
        let mut folders = Vec::new();
        for r in region_lists {
            match r {
                Ok(f) => folders.extend(f),
                Err(e) => {
                    if tx.send(Listing::Error(e)).await.is_err() {
                        return;
                    }
                }
            }
        }
        let enumerated = enumerable_days(scope.start, scope.end);
        let tasks: BoxStream<'_, Result<DayTask, ListError>> = match enumerated {
            Some(days) => {
                // Day by day across all folders, so that the oldest events come first.
                let mut tasks: Vec<DayTask> = days
                    .iter()
                    .flat_map(|d| folders.iter().map(|f| Self::day_task(&root, f, *d, scope)))
                    .filter(|t| constraint.is_none_or(|c| compatible(&t.prefix, c)))
                    .collect();
                tasks.sort_by(|a, b| (a.date, &a.prefix).cmp(&(b.date, &b.prefix)));
                stream::iter(tasks.into_iter().map(Ok)).boxed()
            }
            None => stream::iter(folders)
                .map(|f| self.discover_days(&root, f, scope, constraint))
                .buffered(conc)
                .flat_map(|r| match r {
                    Ok(tasks) => stream::iter(tasks.into_iter().map(Ok).collect::<Vec<_>>()),
                    Err(e) => stream::iter(vec![Err(e)]),
                })
                .boxed(),
        };
        let mut days = tasks
            .map(|t| async move {
                match t {
                    Ok(t) => self.list_day(t, constraint).await,
                    Err(e) => (Vec::new(), Some(e)),
                }
            })
            .buffered(conc);
        while let Some((objects, error)) = days.next().await {
            for o in objects {
                if tx.send(Listing::Object(o)).await.is_err() {
                    return;
                }
            }
            if let Some(e) = error
                && tx.send(Listing::Error(e)).await.is_err()
            {
                return;
            }
        }
    }

    /// Lists each of `prefixes` whole (see [`whole_folders`]), in order. Up
    /// to `list_concurrency` folders list at once, each into its own bounded
    /// buffer, so memory stays bounded however many keys a folder holds.
    async fn list_folders_whole(
        &self,
        prefixes: Vec<String>,
        tx: &tokio::sync::mpsc::Sender<Listing>,
    ) {
        let conc = self.client.options.list_concurrency.max(1);
        let mut folders = stream::iter(prefixes)
            .map(|prefix| {
                let (folder_tx, folder_rx) = tokio::sync::mpsc::channel(FOLDER_BUFFER);
                let (api, bucket) = (self.client.clone(), self.url.bucket.clone());
                tokio::spawn(async move {
                    let result = api
                        .list_objects(&bucket, &prefix, None, Some(FIRST_PAGE_KEYS), &mut |o| {
                            forward(&folder_tx, Listing::Object(o))
                        })
                        .await;
                    if let Err(e) = result {
                        let _ = folder_tx.send(Listing::Error(e)).await;
                    }
                });
                async move { folder_rx }
            })
            .buffered(conc);
        while let Some(mut folder) = folders.next().await {
            while let Some(item) = folder.recv().await {
                if tx.send(item).await.is_err() {
                    return; // the reader stopped; dropping `folders` ends the listings
                }
            }
        }
    }

    /// Decides the layout of the URL's folder, with the folders of its
    /// `AWSLogs/` when that took a listing.
    ///
    /// The folder has the trail layout when `AWSLogs/` holds folders. Listing
    /// those directly, rather than the folder itself to look for `AWSLogs/`,
    /// saves a round trip before the first download: the owners come from
    /// the same answer.
    async fn layout(&self) -> Result<(Layout, Option<Vec<String>>), ListError> {
        let prefix = &self.url.prefix;
        // A folder inside an AWSLogs/ tree: plan from the folder above AWSLogs/.
        if let Some(i) = find_awslogs(prefix) {
            let root = prefix[..i].to_owned();
            return Ok((Layout::Trail { root }, None));
        }
        let awslogs = format!("{prefix}AWSLogs/");
        let dirs = self.client.list_dirs(&self.url.bucket, &awslogs).await?;
        Ok(if dirs.is_empty() {
            (Layout::Plain, None)
        } else {
            let root = prefix.clone();
            (Layout::Trail { root }, Some(dirs))
        })
    }

    /// The accounts to list, with their organizations.
    async fn owners(
        &self,
        root: &str,
        awslogs_dirs: Option<Vec<String>>,
        scope: &ListScope,
        constraint: Option<&str>,
    ) -> Result<Vec<Owner>, ListError> {
        let bucket = &self.url.bucket;
        let awslogs = format!("{root}AWSLogs/");
        let ok = |dir: &str| constraint.is_none_or(|c| compatible(dir, c));
        let accounts_of = |org: Option<&str>, found: Vec<String>| -> Vec<Owner> {
            found
                .into_iter()
                .map(|account| Owner {
                    org_id: org.map(str::to_owned),
                    account,
                })
                .collect()
        };
        // Organization folders: given, or found below AWSLogs/ (with the
        // accounts that sit there directly, outside any organization).
        let (orgs, mut owners) = if scope.org_ids.is_empty() {
            let mut orgs = Vec::new();
            let mut direct = Vec::new();
            let dirs = match awslogs_dirs {
                Some(dirs) => dirs,
                None => self.client.list_dirs(bucket, &awslogs).await?,
            };
            for dir in dirs {
                let name = dir[awslogs.len()..].trim_end_matches('/').to_owned();
                if !ok(&dir) {
                    continue;
                }
                if name.starts_with("o-") {
                    orgs.push(name);
                } else if scope.accounts.is_empty() || scope.accounts.contains(&name) {
                    direct.push(name);
                }
            }
            (orgs, accounts_of(None, direct))
        } else {
            (scope.org_ids.clone(), Vec::new())
        };
        for org in orgs {
            let org_dir = format!("{awslogs}{org}/");
            if !ok(&org_dir) {
                continue;
            }
            let accounts = if scope.accounts.is_empty() {
                self.client
                    .list_dirs(bucket, &org_dir)
                    .await?
                    .into_iter()
                    .filter(|d| ok(d))
                    .map(|d| d[org_dir.len()..].trim_end_matches('/').to_owned())
                    .collect()
            } else {
                scope.accounts.clone()
            };
            owners.extend(accounts_of(Some(&org), accounts));
        }
        Ok(owners)
    }

    /// An account's regions for one service: given, or found.
    async fn regions(
        &self,
        root: &str,
        owner: Owner,
        service: Service,
        scope: &ListScope,
        constraint: Option<&str>,
    ) -> Result<Vec<RegionFolder>, ListError> {
        let folder = |region: String| RegionFolder {
            org_id: owner.org_id.clone(),
            account: owner.account.clone(),
            service,
            region,
        };
        let base = service_dir(root, &owner, service);
        if constraint.is_some_and(|c| !compatible(&base, c)) {
            return Ok(Vec::new());
        }
        if !scope.regions.is_empty() {
            return Ok(scope.regions.iter().cloned().map(folder).collect());
        }
        let dirs = self.client.list_dirs(&self.url.bucket, &base).await?;
        Ok(dirs
            .into_iter()
            .filter(|d| constraint.is_none_or(|c| compatible(d, c)))
            .map(|d| folder(d[base.len()..].trim_end_matches('/').to_owned()))
            .collect())
    }

    /// The day folders of one region folder within the scope's range, found
    /// with delimiter listings of its year, month and day folders.
    async fn discover_days(
        &self,
        root: &str,
        f: RegionFolder,
        scope: &ListScope,
        constraint: Option<&str>,
    ) -> Result<Vec<DayTask>, ListError> {
        let (first, last) = day_bounds(scope.start, scope.end);
        let region_dir = format!(
            "{}{}/",
            service_dir(
                root,
                &Owner {
                    org_id: f.org_id.clone(),
                    account: f.account.clone()
                },
                f.service
            ),
            f.region
        );
        let ok = |d: &str| constraint.is_none_or(|c| compatible(d, c));
        let conc = self.client.options.list_concurrency.max(1);
        // Each level keeps the folders whose number is in range, compared as
        // (year), (year, month), (year, month, day) tuples, and lists the
        // folders of one level in parallel: three round trips in all, however
        // many years the bucket holds.
        let years: Vec<(String, (u32, u32, u32))> = self
            .numbered(&region_dir, 4)
            .await?
            .into_iter()
            .filter(|(d, y)| ok(d) && *y >= first.0 && *y <= last.0)
            .map(|(d, y)| (d, (y, 0, 0)))
            .collect();
        let months = self
            .next_level(years, conc, |(y, _, _), m| {
                let ym = (y, m);
                ym >= (first.0, first.1) && ym <= (last.0, last.1)
            })
            .await?;
        let months: Vec<_> = months.into_iter().filter(|(d, _)| ok(d)).collect();
        let days = self
            .next_level(months, conc, |(y, m, _), d| {
                let ymd = (y, m, d);
                ymd >= first && ymd <= last
            })
            .await?;
        let tasks = days
            .into_iter()
            .map(|(_, (year, month, day))| {
                let date = KeyDate {
                    year: year as u16,
                    month: month as u8,
                    day: day as u8,
                };
                Self::day_task(root, &f, date, scope)
            })
            .filter(|t| ok(&t.prefix))
            .collect();
        Ok(tasks)
    }

    /// The two-digit sub-folders (months or days) of each of `parents`, listed
    /// `conc` at a time, in order, that `keep(parent's date, number)` keeps;
    /// each with its date filled in at the next position.
    async fn next_level(
        &self,
        parents: Vec<(String, (u32, u32, u32))>,
        conc: usize,
        keep: impl Fn((u32, u32, u32), u32) -> bool,
    ) -> Result<Vec<(String, (u32, u32, u32))>, ListError> {
        let lists: Vec<Result<_, ListError>> = stream::iter(parents)
            .map(|(dir, date)| async move { Ok((date, self.numbered(&dir, 2).await?)) })
            .buffered(conc)
            .collect()
            .await;
        let mut out = Vec::new();
        for list in lists {
            let (date, children) = list?;
            for (dir, n) in children {
                if keep(date, n) {
                    let child = match date {
                        (y, 0, _) => (y, n, 0),
                        (y, m, _) => (y, m, n),
                    };
                    out.push((dir, child));
                }
            }
        }
        Ok(out)
    }

    /// The sub-folders of `dir` whose names are `width` digits, with their numbers.
    async fn numbered(&self, dir: &str, width: usize) -> Result<Vec<(String, u32)>, ListError> {
        Ok(self
            .client
            .list_dirs(&self.url.bucket, dir)
            .await?
            .into_iter()
            .filter_map(|d| {
                let name = d[dir.len()..].trim_end_matches('/');
                let n = (name.len() == width && name.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| name.parse().ok())??;
                Some((d, n))
            })
            .collect())
    }

    /// The listing of one day folder, with `StartAfter` and the stop time of
    /// a partial first or last day.
    fn day_task(root: &str, f: &RegionFolder, date: KeyDate, scope: &ListScope) -> DayTask {
        let trail_prefix = root.strip_suffix('/');
        let prefix = day_prefix(
            trail_prefix,
            f.org_id.as_deref(),
            &f.account,
            f.service.folder(),
            &f.region,
            date,
        );
        // Log and Insights names are ACCOUNT_SERVICE_REGION_YYYYMMDDTHHmmZ_…,
        // so within a day folder key order is time order. Digest names put the
        // trail's name before the time, so digests are listed whole days.
        let timed = f.service != Service::Digests;
        let day_start = date_start(date);
        let start_after = scope
            .start
            .filter(|s| timed && *s > day_start && *s < day_start + 86_400)
            .map(|s| {
                // Keys at minute m are selected when m*60 >= start: start after
                // the name prefix of the first such minute.
                let minute = s.div_euclid(60) + i64::from(s.rem_euclid(60) != 0);
                format!(
                    "{prefix}{}_{}_{}_{}",
                    f.account,
                    f.service.folder(),
                    f.region,
                    minute_text(minute * 60)
                )
            });
        let stop_at = scope.end.filter(|e| timed && *e < day_start + 86_400);
        DayTask {
            date,
            prefix,
            start_after,
            stop_at,
        }
    }

    /// Lists one day folder: its objects, and the error that cut it short.
    async fn list_day(
        &self,
        task: DayTask,
        constraint: Option<&str>,
    ) -> (Vec<ListedObject>, Option<ListError>) {
        // A constraint that reaches into the day folder narrows the listing.
        let prefix = match constraint {
            Some(c) if c.starts_with(&task.prefix) => c,
            _ => task.prefix.as_str(),
        };
        let mut objects = Vec::new();
        let stop_at = task.stop_at;
        let result = self
            .client
            .list_objects(
                &self.url.bucket,
                prefix,
                task.start_after.as_deref(),
                None,
                &mut |o| {
                    if let Some(end) = stop_at
                        && let Ok(k) = ObjectKey::parse(&o.key)
                        && !k.file.kind.is_digest()
                        && k.file.time.unix_seconds() >= end
                    {
                        return ControlFlow::Break(());
                    }
                    objects.push(o);
                    ControlFlow::Continue(())
                },
            )
            .await;
        (objects, result.err())
    }
}

/// Objects a folder listed whole may buffer before its listing waits for the
/// reader (about one listing page).
const FOLDER_BUFFER: usize = 1000;

/// The keys asked for on the first page of a folder listed whole. A small
/// first page comes back sooner (the server has fewer keys to gather and
/// encode), so the first downloads start before a full page of 1,000 keys
/// is ready; the pages after it are full.
const FIRST_PAGE_KEYS: i32 = 64;

/// The folders to list whole when the scope has no time range, so that every
/// key below them is wanted: each account's service folder, or with regions
/// given, each of those region folders; narrowed to `constraint`.
///
/// One recursive listing per folder replaces the discovery of regions and of
/// year, month and day folders: objects flow after one round trip instead of
/// five. Keys sort by region, then date, within an account's folder. One
/// listing stream per account is enough: a page brings 1,000 keys per round
/// trip, while the downloads of those keys take at least 1,000 /
/// `fetch_concurrency` round trips.
fn whole_folders(
    root: &str,
    pairs: &[(Owner, Service)],
    regions: &[String],
    constraint: Option<&str>,
) -> Vec<String> {
    let narrowed = |dir: String| narrow(Some(dir), constraint.map(str::to_owned)).flatten();
    pairs
        .iter()
        .flat_map(|(owner, service)| {
            let dir = service_dir(root, owner, *service);
            if regions.is_empty() {
                vec![dir]
            } else {
                regions.iter().map(|r| format!("{dir}{r}/")).collect()
            }
        })
        .filter_map(narrowed)
        .collect()
}

/// Sends `item` from a synchronous listing visitor on a runtime thread:
/// waits for room when the reader is behind (without blocking the runtime's
/// other tasks), and breaks the listing when the reader is gone.
fn forward(tx: &tokio::sync::mpsc::Sender<Listing>, item: Listing) -> ControlFlow<()> {
    match tx.try_send(item) {
        Ok(()) => ControlFlow::Continue(()),
        Err(tokio::sync::mpsc::error::TrySendError::Full(item)) => {
            if tokio::task::block_in_place(|| tx.blocking_send(item)).is_err() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => ControlFlow::Break(()),
    }
}

/// `ROOT/AWSLogs/[ORG/]ACCOUNT/SERVICE/`.
fn service_dir(root: &str, owner: &Owner, service: Service) -> String {
    let mut s = format!("{root}AWSLogs/");
    if let Some(o) = &owner.org_id {
        s.push_str(o);
        s.push('/');
    }
    s.push_str(&owner.account);
    s.push('/');
    s.push_str(service.folder());
    s.push('/');
    s
}

/// Where `AWSLogs/` starts in `prefix`, as a whole path segment.
fn find_awslogs(prefix: &str) -> Option<usize> {
    if prefix.starts_with("AWSLogs/") {
        return Some(0);
    }
    prefix.find("/AWSLogs/").map(|i| i + 1)
}

/// True when some key can start with both `dir` and `constraint`.
fn compatible(dir: &str, constraint: &str) -> bool {
    dir.starts_with(constraint) || constraint.starts_with(dir)
}

/// The longer of two key prefixes when one extends the other; `None` when
/// they exclude each other (no key can have both); `Some(None)` for neither.
fn narrow(a: Option<String>, b: Option<String>) -> Option<Option<String>> {
    match (a, b) {
        (None, x) | (x, None) => Some(x),
        (Some(a), Some(b)) if a.starts_with(&b) => Some(Some(a)),
        (Some(a), Some(b)) if b.starts_with(&a) => Some(Some(b)),
        _ => None,
    }
}

fn civil(secs: i64) -> Option<Date> {
    jiff::Timestamp::from_second(secs)
        .ok()
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
}

fn key_date(d: Date) -> KeyDate {
    KeyDate {
        year: d.year() as u16,
        month: d.month() as u8,
        day: d.day() as u8,
    }
}

/// Unix seconds of a day's midnight (UTC).
fn date_start(d: KeyDate) -> i64 {
    jiff::civil::date(d.year as i16, d.month as i8, d.day as i8)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_or(0, |z| z.timestamp().as_second())
}

/// `YYYYMMDDTHHmm` of a time, as in log file names.
fn minute_text(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y%m%dT%H%M").to_string())
        .unwrap_or_default()
}

/// The dates of the days in `start..end`, when both are known and few;
/// `None` when they must be discovered. An open end means "until tomorrow"
/// (CloudTrail names files by delivery time, which is never far ahead).
fn enumerable_days(start: Option<i64>, end: Option<i64>) -> Option<Vec<KeyDate>> {
    let start = start?;
    let end = end.unwrap_or_else(|| jiff::Timestamp::now().as_second() + 86_400);
    if end <= start {
        return Some(Vec::new());
    }
    let (first, last) = (civil(start)?, civil(end - 1)?);
    if (last - first).get_days() as i64 >= MAX_ENUMERATED_DAYS {
        return None;
    }
    let mut days = Vec::new();
    let mut d = first;
    while d <= last {
        days.push(key_date(d));
        d = d.tomorrow().ok()?;
    }
    Some(days)
}

/// The first and last (year, month, day) a range can touch; open ends are unbounded.
fn day_bounds(start: Option<i64>, end: Option<i64>) -> ((u32, u32, u32), (u32, u32, u32)) {
    let ymd = |d: Date| (d.year() as u32, d.month() as u32, d.day() as u32);
    let first = start.and_then(civil).map_or((0, 0, 0), ymd);
    let last = end
        .and_then(|e| civil(e - 1))
        .map_or((u32::MAX, u32::MAX, u32::MAX), ymd);
    (first, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_enumerated_for_short_ranges_only() {
        let t = 1_704_070_800; // 2024-01-01T01:00:00Z
        let days = enumerable_days(Some(t), Some(t + 3600)).unwrap();
        assert_eq!(days.len(), 1);
        assert_eq!(days[0].to_string(), "2024/01/01");
        // An end at midnight does not touch the next day.
        let days = enumerable_days(Some(t), Some(1_704_153_600)).unwrap();
        assert_eq!(days.len(), 1);
        let days = enumerable_days(Some(t), Some(t + 86_400)).unwrap();
        assert_eq!(days.len(), 2);
        assert!(enumerable_days(Some(t), Some(t + 400 * 86_400)).is_none());
        assert!(enumerable_days(None, Some(t)).is_none());
        assert_eq!(enumerable_days(Some(t), Some(t)), Some(vec![]));
    }

    #[test]
    fn partial_days_start_after_the_first_selected_minute() {
        let client_free_task = |start: Option<i64>, end: Option<i64>, service| {
            let f = RegionFolder {
                org_id: Some("o-abc".into()),
                account: "111".into(),
                service,
                region: "us-east-1".into(),
            };
            let scope = ListScope {
                start,
                end,
                ..Default::default()
            };
            let date = KeyDate {
                year: 2024,
                month: 1,
                day: 1,
            };
            day_task_for("a/b/", &f, date, &scope)
        };
        let t = 1_704_070_800; // 01:00:00
        let task = client_free_task(Some(t), Some(t + 3600), Service::Logs);
        assert_eq!(
            task.prefix,
            "a/b/AWSLogs/o-abc/111/CloudTrail/us-east-1/2024/01/01/"
        );
        let sa = task.start_after.unwrap();
        assert_eq!(
            sa,
            "a/b/AWSLogs/o-abc/111/CloudTrail/us-east-1/2024/01/01/111_CloudTrail_us-east-1_20240101T0100"
        );
        let at = |hhmm: &str| {
            format!(
                "a/b/AWSLogs/o-abc/111/CloudTrail/us-east-1/2024/01/01/111_CloudTrail_us-east-1_20240101T{hhmm}Z_x.json.gz"
            )
        };
        assert!(at("0100").as_str() > sa.as_str() && at("0059").as_str() < sa.as_str());
        assert_eq!(task.stop_at, Some(t + 3600));
        // A start within a minute selects from the next minute on.
        let sa = client_free_task(Some(t + 1), None, Service::Logs)
            .start_after
            .unwrap();
        assert!(sa.ends_with("_20240101T0101"));
        // Midnight needs no StartAfter, and digests are listed whole days.
        assert!(
            client_free_task(Some(t - 3600), None, Service::Logs)
                .start_after
                .is_none()
        );
        let d = client_free_task(Some(t), Some(t + 60), Service::Digests);
        assert!(d.start_after.is_none() && d.stop_at.is_none());
    }

    #[test]
    fn with_no_time_range_accounts_or_given_regions_are_listed_whole() {
        let owner = |org: Option<&str>, account: &str| Owner {
            org_id: org.map(str::to_owned),
            account: account.to_owned(),
        };
        let pairs = [
            (owner(Some("o-abc"), "111"), Service::Logs),
            (owner(Some("o-abc"), "111"), Service::Insights),
            (owner(None, "222"), Service::Logs),
        ];
        // No regions: each account's service folder, with no region listing.
        assert_eq!(
            whole_folders("a/", &pairs, &[], None),
            [
                "a/AWSLogs/o-abc/111/CloudTrail/",
                "a/AWSLogs/o-abc/111/CloudTrail-Insight/",
                "a/AWSLogs/222/CloudTrail/",
            ]
        );
        // Regions given: only their folders.
        let regions = ["us-east-1".to_owned(), "eu-west-1".to_owned()];
        assert_eq!(
            whole_folders("", &pairs[2..], &regions, None),
            [
                "AWSLogs/222/CloudTrail/us-east-1/",
                "AWSLogs/222/CloudTrail/eu-west-1/",
            ]
        );
        // A constraint inside a folder narrows it; one elsewhere drops it.
        assert_eq!(
            whole_folders(
                "",
                &pairs,
                &[],
                Some("AWSLogs/222/CloudTrail/us-east-1/2024/")
            ),
            ["AWSLogs/222/CloudTrail/us-east-1/2024/"]
        );
    }

    fn day_task_for(root: &str, f: &RegionFolder, date: KeyDate, scope: &ListScope) -> DayTask {
        Plan::day_task(root, f, date, scope)
    }

    #[test]
    fn prefixes_narrow_or_exclude() {
        assert_eq!(narrow(None, None), Some(None));
        assert_eq!(
            narrow(Some("a/".into()), Some("a/b".into())),
            Some(Some("a/b".into()))
        );
        assert_eq!(
            narrow(Some("a/b/".into()), Some("a/".into())),
            Some(Some("a/b/".into()))
        );
        assert_eq!(narrow(Some("a/".into()), Some("b".into())), None);
        assert_eq!(find_awslogs("x/AWSLogs/o-1/"), Some(2));
        assert_eq!(find_awslogs("AWSLogs/"), Some(0));
        assert_eq!(find_awslogs("xAWSLogs/"), None);
        assert!(
            compatible("a/AWSLogs/", "a/AWSLogs/o-1/")
                && !compatible("a/AWSLogs/2/", "a/AWSLogs/1")
        );
    }
}
