//! A moto server for S3 tests, and uploading a local bucket root to it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;

use super::{repo, trailmill};

/// A moto server (`scripts/moto-server.py`) on 127.0.0.1, stopped on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Moto {
    /// Starts moto on a free port; CloudTrail `ListPublicKeys` answers from
    /// `keys` (the output of `aws cloudtrail list-public-keys`), if given.
    pub fn start(keys: Option<&Path>) -> Moto {
        let python = std::env::var_os("TRAILMILL_MOTO_PYTHON")
            .map_or_else(|| repo().join(".venv/moto/bin/python"), PathBuf::from);
        assert!(
            python.exists(),
            "{} is missing: run scripts/setup-moto.sh (or set TRAILMILL_MOTO_PYTHON)",
            python.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(python);
        cmd.arg(repo().join("scripts/moto-server.py"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(k) = keys {
            cmd.env("TRAILMILL_MOTO_PUBLIC_KEYS", k);
        }
        let child = cmd.spawn().expect("start moto");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            addr: format!("127.0.0.1:{port}"),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `trailmill` pointed at `endpoint` with test credentials and nothing from
/// this machine's AWS configuration.
pub fn aws_command(endpoint: &str) -> Command {
    let mut c = trailmill();
    c.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

/// A bucket name no other test uses (S3 rules: lower case, digits, dashes).
pub fn unique_bucket(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "tm-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An S3 client for `endpoint` (path style, test credentials).
pub fn client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Creates `bucket` and uploads every file below `root` as the object of the
/// same relative key, except `K.sig` sidecars: as CloudTrail does, a
/// digest's signature goes into its metadata (`x-amz-meta-signature`, with
/// `x-amz-meta-signature-algorithm: SHA256withRSA`). Returns the keys uploaded.
pub fn upload_tree(endpoint: &str, bucket: &str, root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    collect(root, root, &mut files);
    files.retain(|(key, _)| !key.ends_with(".sig"));
    files.sort();
    let c = client(endpoint);
    runtime().block_on(async {
        c.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("create bucket");
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in files.chunks(files.len().div_ceil(16).max(1)) {
            let (c, bucket, chunk) = (c.clone(), bucket.to_owned(), chunk.to_vec());
            tasks.spawn(async move {
                for (key, path) in chunk {
                    put(&c, &bucket, &key, &path, true).await;
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("upload task");
        }
    });
    files.into_iter().map(|(k, _)| k).collect()
}

/// Uploads `path` as `key`; with `signature`, a sidecar `PATH.sig` becomes
/// the signature metadata.
async fn put(c: &aws_sdk_s3::Client, bucket: &str, key: &str, path: &Path, signature: bool) {
    let mut req = c
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(std::fs::read(path).unwrap()));
    let mut sig = path.as_os_str().to_owned();
    sig.push(".sig");
    if signature && let Ok(text) = std::fs::read_to_string(&sig) {
        req = req
            .metadata("signature", text.trim())
            .metadata("signature-algorithm", "SHA256withRSA");
    }
    req.send().await.unwrap_or_else(|e| {
        panic!(
            "upload {key}: {}",
            aws_sdk_s3::error::DisplayErrorContext(e)
        )
    });
}

/// Creates an empty bucket.
pub fn create_bucket(endpoint: &str, bucket: &str) {
    let c = client(endpoint);
    runtime()
        .block_on(c.create_bucket().bucket(bucket).send())
        .expect("create bucket");
}

/// Uploads the files `keys` below `root` into an existing bucket, as
/// [`upload_tree`] does (digest signatures into metadata), in that order.
pub fn upload_files(endpoint: &str, bucket: &str, root: &Path, keys: &[String]) {
    let c = client(endpoint);
    runtime().block_on(async {
        for key in keys {
            put(&c, bucket, key, &root.join(key), true).await;
        }
    });
}

/// Uploads one file as `key` without metadata (even for a digest with a
/// sidecar), replacing what is there.
pub fn put_file(endpoint: &str, bucket: &str, key: &str, path: &Path) {
    let c = client(endpoint);
    runtime().block_on(put(&c, bucket, key, path, false));
}

/// Deletes one object.
pub fn delete(endpoint: &str, bucket: &str, key: &str) {
    let c = client(endpoint);
    runtime()
        .block_on(c.delete_object().bucket(bucket).key(key).send())
        .expect("delete object");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            collect(root, &path, out);
        } else {
            let key = path
                .strip_prefix(root)
                .unwrap()
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((key, path));
        }
    }
}
