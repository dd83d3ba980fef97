//! SQS and SNS set-up and inspection on a moto server, through boto3
//! (`moto_admin.py`): queues, topics, bucket notifications, uploads.

use std::path::PathBuf;
use std::process::Command;

use super::repo;

/// A moto server ([`super::s3::Moto`]) with boto3-based administration.
pub struct Moto {
    server: super::s3::Moto,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    python: PathBuf,
}

impl Moto {
    /// Starts the server and waits until it accepts connections.
    pub fn start() -> Moto {
        let server = super::s3::Moto::start(None);
        let python = std::env::var_os("TRAILMILL_MOTO_PYTHON")
            .map_or_else(|| repo().join(".venv/moto/bin/python"), PathBuf::from);
        Moto {
            endpoint: server.endpoint.clone(),
            server,
            python,
        }
    }

    /// `trailmill` pointed at this server, with test credentials and nothing
    /// from this machine's AWS configuration.
    pub fn trailmill(&self) -> Command {
        super::s3::aws_command(&self.server.endpoint)
    }

    /// `trailmill` pointed at this server with the access key of `user`
    /// (from [`Moto::limited_user`]) instead of the test credentials.
    pub fn trailmill_as(&self, user: &AccessKey) -> Command {
        let mut c = self.trailmill();
        c.env("AWS_ACCESS_KEY_ID", &user.id)
            .env("AWS_SECRET_ACCESS_KEY", &user.secret);
        c
    }

    /// A new IAM user allowed only `statements` (an IAM policy's
    /// `Statement` list), and its access key. moto checks policies only
    /// while [`Moto::enforce_auth`] is on.
    pub fn limited_user(&self, name: &str, statements: serde_json::Value) -> AccessKey {
        let key = self.admin(
            "limited_user",
            serde_json::json!({ "name": name, "statements": statements }),
        );
        AccessKey {
            id: key["id"].as_str().unwrap().to_owned(),
            secret: key["secret"].as_str().unwrap().to_owned(),
        }
    }

    /// Turns moto's IAM checks on or off for every later request. While
    /// they are on, only keys from [`Moto::limited_user`] work, including
    /// for [`Moto::admin`] and [`Moto::trailmill`], so turn them off again
    /// before set-up or inspection.
    pub fn enforce_auth(&self, on: bool) {
        self.admin("enforce_auth", serde_json::json!({ "on": on }));
    }

    /// Runs `moto_admin.py COMMAND ARGS` and returns its JSON result.
    pub fn admin(&self, command: &str, args: serde_json::Value) -> serde_json::Value {
        let out = Command::new(&self.python)
            .arg(repo().join("tests/support/moto_admin.py"))
            .args([&self.endpoint, command, &args.to_string()])
            .output()
            .expect("run moto_admin.py");
        assert!(
            out.status.success(),
            "moto_admin {command} {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("moto_admin prints JSON")
    }

    /// A new queue's URL.
    pub fn create_queue(&self, name: &str) -> String {
        self.admin("create_queue", serde_json::json!({ "name": name }))["url"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Sends `body` to the queue; returns the message ID.
    pub fn send(&self, url: &str, body: &str) -> String {
        self.admin("send", serde_json::json!({ "url": url, "body": body }))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// (visible, not visible, delayed) messages in the queue.
    pub fn counts(&self, url: &str) -> (u64, u64, u64) {
        let c = self.admin("counts", serde_json::json!({ "url": url }));
        let n = |k: &str| c[k].as_u64().unwrap();
        (
            n("ApproximateNumberOfMessages"),
            n("ApproximateNumberOfMessagesNotVisible"),
            n("ApproximateNumberOfMessagesDelayed"),
        )
    }
}

impl Moto {
    /// A new, empty bucket named after `what`.
    pub fn new_bucket(&self, what: &str) -> String {
        let bucket = unique(what);
        self.admin("create_bucket", serde_json::json!({ "bucket": bucket }));
        bucket
    }

    /// Uploads the trail under `root` to a new bucket named after `what`,
    /// and announces it on a new queue with `trailmill enqueue`,
    /// `keys_per_message` keys a message. Returns the bucket, the queue URL
    /// and `enqueue`'s stderr.
    pub fn enqueued_trail(
        &self,
        root: &std::path::Path,
        what: &str,
        keys_per_message: usize,
    ) -> (String, String, String) {
        let bucket = self.new_bucket(what);
        self.admin(
            "upload_tree",
            serde_json::json!({ "bucket": bucket, "dir": root }),
        );
        let queue = self.create_queue(&unique(what));
        let out = self
            .trailmill()
            .args(["enqueue", &format!("s3://{bucket}"), "--queue", &queue])
            .args(["--keys-per-message", &keys_per_message.to_string()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        (bucket, queue, err)
    }
}

/// An IAM access key made by [`Moto::limited_user`].
pub struct AccessKey {
    /// The access key ID.
    pub id: String,
    /// Its secret.
    pub secret: String,
}

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
