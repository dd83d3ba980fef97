//! An Iceberg REST catalog server for the REST catalog tests: rustberg
//! (`scripts/setup-rustberg.sh`, `TRAILMILL_RUSTBERG`), on 127.0.0.1, with
//! its warehouse on the moto server, stopped on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running rustberg server. It has two API keys: one with its `writer`
/// role (read, list, create, update: no deletes) for trailmill, and one with
/// its `reader` role for the reader that checks the tables.
pub struct RestCatalog {
    child: Child,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT` (`https://` with TLS).
    pub uri: String,
    /// The writer key, sent as `token` (`Authorization: Bearer`).
    pub writer_token: String,
    /// The reader key.
    pub reader_token: String,
}

/// TLS for [`RestCatalog::start`]: the server's certificate and key (PEM).
pub struct Tls<'a> {
    /// The certificate, which clients must trust.
    pub cert: &'a Path,
    /// Its private key.
    pub key: &'a Path,
}

impl RestCatalog {
    /// Starts a server whose warehouse is `warehouse` (`s3://BUCKET/PREFIX`)
    /// on the moto server at `s3_endpoint`, over TLS if `tls` is given.
    pub fn start(s3_endpoint: &str, warehouse: &str, tls: Option<Tls<'_>>) -> RestCatalog {
        let binary = std::env::var_os("TRAILMILL_RUSTBERG")
            .map(PathBuf::from)
            .expect(
                "TRAILMILL_RUSTBERG is not set: run scripts/test, which builds the REST catalog \
             server (scripts/setup-rustberg.sh)",
            );
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            r#"[server]
host = "127.0.0.1"
port = {port}

[server.auth]
api_key_enabled = true

[[server.auth.api_keys]]
name = "trailmill"
tenant = "default"
roles = ["writer"]
key_env = "TEST_WRITER_KEY"

[[server.auth.api_keys]]
name = "reader"
tenant = "default"
roles = ["reader"]
key_env = "TEST_READER_KEY"

[storage]
catalog_url = "file://{data}"
warehouse_location = "{warehouse}"

[storage.properties]
"s3.endpoint" = "{s3_endpoint}"
"s3.path-style-access" = "true"
"s3.region" = "us-east-1"
"s3.access-key-id" = "test"
"s3.secret-access-key" = "test"

[rate_limit]
enabled = false
"#,
            data = dir.path().join("data").display(),
        );
        let config_path = dir.path().join("rustberg.toml");
        std::fs::write(&config_path, config).unwrap();
        let writer_token = format!("rb_writer{}", super::moto::unique("").replace('-', "_"));
        let reader_token = format!("rb_reader{}", super::moto::unique("").replace('-', "_"));
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut command = Command::new(&binary);
        command.arg("--config").arg(&config_path);
        // TLS is set on the command line (without a certificate, the server
        // would make a self-signed one rather than serve plain HTTP).
        match &tls {
            Some(t) => command
                .arg("--tls-cert")
                .arg(t.cert)
                .arg("--tls-key")
                .arg(t.key),
            None => command.arg("--insecure-http"),
        };
        let child = command
            .env("TEST_WRITER_KEY", &writer_token)
            .env("TEST_READER_KEY", &reader_token)
            .env("RUST_LOG", "warn")
            .env_remove("RUSTBERG_DEV")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut server = RestCatalog {
            child,
            dir,
            uri: format!(
                "{}://127.0.0.1:{port}",
                if tls.is_some() { "https" } else { "http" }
            ),
            writer_token,
            reader_token,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the REST catalog server ended ({status}): {}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "the REST catalog server did not start on port {port}: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// What the server has logged (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for RestCatalog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
