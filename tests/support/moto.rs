//! A moto server (S3, SQS, SNS) on 127.0.0.1 for one test, and boto3-based
//! set-up and inspection through `moto_admin.py`.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{repo, trailmill};

/// A moto server on a free port of 127.0.0.1, stopped on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    python: PathBuf,
}

impl Moto {
    /// Starts the server and waits until it accepts connections.
    pub fn start() -> Moto {
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
        let child = Command::new(&python)
            .arg(repo().join("scripts/moto-server.py"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
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
            python,
        }
    }

    /// `trailmill` pointed at this server, with test credentials and nothing
    /// from this machine's AWS configuration.
    pub fn trailmill(&self) -> Command {
        let mut c = trailmill();
        c.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        c
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

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
