//! The TLS client configuration of the sinks that talk to a server:
//! PostgreSQL, and the Iceberg REST catalog of `trailmill-lake`.
//!
//! One configuration for all of them: rustls with aws-lc-rs (already built
//! for the AWS SDK, so TLS adds no second crypto library), TLS 1.2 and 1.3,
//! and either one given root file or the system's roots. The system's roots
//! are read by `rustls-native-certs`, which honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` as OpenSSL does.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// A rustls client configuration that verifies servers against the PEM
/// certificates in `root_cert`, or against the system's roots when it is
/// `None`. The error names the file and the reason.
pub fn client_config(root_cert: Option<&str>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read the root certificates {path}: {e}"))?
            {
                let cert = cert.map_err(|e| format!("root certificates {path}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("root certificates {path}: {e}"))?;
            }
        }
        None => {
            // Unreadable system certificates only matter if TLS is used;
            // the handshake then fails with a clear verification error.
            let found = rustls_native_certs::load_native_certs();
            let _ = roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
