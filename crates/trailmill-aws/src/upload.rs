//! [`S3Uploader`]: whole files into S3, visible all at once or not at all.
//!
//! A file up to [`S3Uploader::multipart_threshold`] goes up in one `PutObject`;
//! a larger one in a multipart upload whose parts are sent one after another
//! and which is completed only after the last, so that readers see the whole
//! object or nothing. A failed multipart upload is aborted; one that a crash
//! cut short stays invisible and is removed by
//! [`S3Uploader::abort_stale_uploads`] (or by a bucket lifecycle rule,
//! `AbortIncompleteMultipartUpload`, which we recommend).
//!
//! Every request goes through the shared [retry policy](crate::retry).

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::AwsError;
use crate::retry::{Attempt, classify, with_retries};
use crate::s3::{Api, S3Client, object_name};

/// How long one upload request may take: bodies are large, so this is more
/// patient than the read timeout.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Uploads files as whole objects. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct S3Uploader {
    client: S3Client,
    /// Files larger than this use a multipart upload.
    pub multipart_threshold: u64,
    /// The size of each part but the last (S3's minimum is 5 MiB).
    pub part_size: u64,
}

impl S3Uploader {
    /// An uploader with 64 MiB single PUTs and 16 MiB parts.
    pub fn new(client: S3Client) -> S3Uploader {
        S3Uploader {
            client,
            multipart_threshold: 64 << 20,
            part_size: 16 << 20,
        }
    }

    /// The client, for its counters.
    pub fn client(&self) -> &S3Client {
        &self.client
    }

    /// Uploads the file at `local` as `s3://bucket/key`, whole; returns its
    /// size. Must not be called from inside the client's runtime.
    pub fn put_file(&self, local: &Path, bucket: &str, key: &str) -> Result<u64, AwsError> {
        let name = object_name(bucket, key);
        let size = std::fs::metadata(local)
            .map_err(|e| {
                AwsError::new(
                    format!("upload {name}"),
                    format!("cannot read {}: {e}", local.display()),
                )
            })?
            .len();
        let api = self.client.api.clone();
        let result = if size <= self.multipart_threshold {
            self.client.block_on(put(&api, local, bucket, key))
        } else {
            self.client.block_on(put_multipart(
                &api,
                local,
                bucket,
                key,
                size,
                self.part_size.max(5 << 20),
            ))
        };
        result
            .map(|()| size)
            .map_err(|reason| AwsError::new(format!("upload {name}"), reason))
    }

    /// Aborts the multipart uploads under `prefix` that started more than
    /// `older_than` ago: what crashed writers left. Younger ones may belong
    /// to a writer that is still running (several may share a prefix), so
    /// they are left alone. Returns how many were aborted.
    pub fn abort_stale_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        older_than: Duration,
    ) -> Result<u64, AwsError> {
        let api = self.client.api.clone();
        let action = format!(
            "list multipart uploads under {}",
            object_name(bucket, prefix)
        );
        self.client
            .block_on(async move {
                let cutoff = std::time::SystemTime::now() - older_than;
                let mut aborted = 0;
                let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
                loop {
                    let page = with_retries(&api.options.retry, &api.stats, || {
                        let req = api
                            .client()
                            .list_multipart_uploads()
                            .bucket(bucket)
                            .prefix(prefix)
                            .set_key_marker(key_marker.clone())
                            .set_upload_id_marker(id_marker.clone());
                        async move { timed(req.send()).await }
                    })
                    .await
                    .map_err(|(e, _)| e)?;
                    for upload in page.uploads() {
                        let started = upload
                            .initiated()
                            .and_then(|t| std::time::SystemTime::try_from(*t).ok());
                        if started.is_none_or(|t| t > cutoff) {
                            continue;
                        }
                        let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                            continue;
                        };
                        abort(&api, bucket, key, id).await?;
                        tracing::info!(object = %object_name(bucket, key), "aborted an unfinished upload");
                        aborted += 1;
                    }
                    if page.is_truncated() != Some(true) {
                        return Ok(aborted);
                    }
                    key_marker = page.next_key_marker().map(str::to_owned);
                    id_marker = page.next_upload_id_marker().map(str::to_owned);
                }
            })
            .map_err(|reason: String| AwsError::new(action, reason))
    }
}

/// Sends `request` with the upload timeout, classifying its failure.
async fn timed<T, E, R>(
    request: impl Future<Output = Result<T, aws_sdk_s3::error::SdkError<E, R>>>,
) -> Result<T, Attempt<String>>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + crate::retry::HasStatus,
{
    match tokio::time::timeout(UPLOAD_TIMEOUT, request).await {
        Err(_) => Err(Attempt::Transient("timed out".to_owned())),
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(classify(e)),
    }
}

/// A body read from `local`, `length` bytes from `offset`.
async fn body(local: &Path, offset: u64, length: u64) -> Result<ByteStream, Attempt<String>> {
    ByteStream::read_from()
        .path(local)
        .offset(offset)
        .length(Length::Exact(length))
        .build()
        .await
        .map_err(|e| Attempt::Permanent(format!("cannot read {}: {e}", local.display())))
}

async fn put(api: &Api, local: &Path, bucket: &str, key: &str) -> Result<(), String> {
    let size = std::fs::metadata(local).map_err(|e| e.to_string())?.len();
    with_retries(&api.options.retry, &api.stats, || async move {
        let stream = body(local, 0, size).await?;
        let req = api
            .client()
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_length(size as i64)
            .body(stream);
        timed(req.send()).await
    })
    .await
    .map(|_| ())
    .map_err(|(e, tries)| format!("{e} (after {tries} attempts)"))
}

async fn put_multipart(
    api: &Api,
    local: &Path,
    bucket: &str,
    key: &str,
    size: u64,
    part_size: u64,
) -> Result<(), String> {
    let created = with_retries(&api.options.retry, &api.stats, || {
        let req = api
            .client()
            .create_multipart_upload()
            .bucket(bucket)
            .key(key);
        async move { timed(req.send()).await }
    })
    .await
    .map_err(|(e, _)| e)?;
    let id = created
        .upload_id()
        .ok_or("CreateMultipartUpload gave no upload id")?
        .to_owned();
    let sent = send_parts(api, local, bucket, key, &id, size, part_size).await;
    let completed = match sent {
        Ok(parts) => with_retries(&api.options.retry, &api.stats, || {
            let req = api
                .client()
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts.clone()))
                        .build(),
                );
            async move { timed(req.send()).await }
        })
        .await
        .map(|_| ())
        .map_err(|(e, _)| e),
        Err(e) => Err(e),
    };
    if let Err(e) = completed {
        // Best effort: an upload left behind is invisible, and the next
        // open (or a lifecycle rule) removes it.
        let _ = abort(api, bucket, key, &id).await;
        return Err(e);
    }
    Ok(())
}

async fn send_parts(
    api: &Api,
    local: &Path,
    bucket: &str,
    key: &str,
    id: &str,
    size: u64,
    part_size: u64,
) -> Result<Vec<CompletedPart>, String> {
    let mut parts = Vec::new();
    let mut offset = 0;
    let mut number = 1;
    while offset < size {
        let length = part_size.min(size - offset);
        let etag = with_retries(&api.options.retry, &api.stats, || async move {
            let stream = body(local, offset, length).await?;
            let req = api
                .client()
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .part_number(number)
                .content_length(length as i64)
                .body(stream);
            timed(req.send()).await
        })
        .await
        .map_err(|(e, tries)| format!("part {number}: {e} (after {tries} attempts)"))?
        .e_tag()
        .map(str::to_owned);
        parts.push(
            CompletedPart::builder()
                .set_e_tag(etag)
                .part_number(number)
                .build(),
        );
        offset += length;
        number += 1;
    }
    Ok(parts)
}

async fn abort(api: &Api, bucket: &str, key: &str, id: &str) -> Result<(), String> {
    with_retries(&api.options.retry, &api.stats, || {
        let req = api
            .client()
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(id);
        async move { timed(req.send()).await }
    })
    .await
    .map(|_| ())
    .map_err(|(e, _)| e)
}
