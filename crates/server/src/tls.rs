//! RFC 7081 §7 (TLS parity): one certificate and one rustls policy for SIP and XMPP.
//!
//! On first start without configured files, a self-signed ECDSA P-256 certificate for the
//! served domains is generated (rcgen) and kept in the data directory.

use crate::datadir::{DataDir, restrict};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the certificate and key live, and whether they were generated now.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// True when a self-signed pair was generated during this call.
    pub generated: bool,
}

/// TLS set-up failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading or writing a PEM file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM file held no usable certificate or key.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// Generating the self-signed certificate failed.
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the pair.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Returns the configured pair, or generates a self-signed one under `tls/` if absent.
pub fn ensure_cert(
    dir: &DataDir,
    configured: Option<(PathBuf, PathBuf)>,
    domains: &[String],
) -> Result<TlsFiles, TlsError> {
    if let Some((cert, key)) = configured {
        return Ok(TlsFiles {
            cert: dir.resolve(&cert),
            key: dir.resolve(&key),
            generated: false,
        });
    }
    let primary = domains.first().map_or("localhost", String::as_str);
    let cert = dir.tls_dir().join(format!("{primary}.crt"));
    let key = dir.tls_dir().join(format!("{primary}.key"));
    if cert.exists() && key.exists() {
        return Ok(TlsFiles {
            cert,
            key,
            generated: false,
        });
    }
    let mut names: Vec<String> = domains.to_vec();
    for d in domains {
        names.push(format!("*.{d}"));
    }
    let ck = rcgen::generate_simple_self_signed(names)?;
    let io = |path: &PathBuf| {
        let path = path.clone();
        move |source| TlsError::Io { path, source }
    };
    std::fs::create_dir_all(dir.tls_dir()).map_err(io(&dir.tls_dir()))?;
    std::fs::write(&key, ck.signing_key.serialize_pem()).map_err(io(&key))?;
    restrict(&key, 0o600).map_err(io(&key))?;
    std::fs::write(&cert, ck.cert.pem()).map_err(io(&cert))?;
    Ok(TlsFiles {
        cert,
        key,
        generated: true,
    })
}

/// Builds the rustls server configuration every TLS listener shares (TLS 1.2 minimum).
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    server_config_min(files, "1.2")
}

/// [`server_config`] accepting only TLS `min_version` (`"1.3"`) and up; anything else means 1.2.
pub fn server_config_min(
    files: &TlsFiles,
    min_version: &str,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let pem = |path: &PathBuf, message: String| TlsError::Pem {
        path: path.clone(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| pem(&files.cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem(&files.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem(&files.cert, "no certificate found".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| pem(&files.key, e.to_string()))?;
    let versions: &[&'static rustls::SupportedProtocolVersion] = if min_version == "1.3" {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let cfg = rustls::ServerConfig::builder_with_protocol_versions(versions)
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(cfg))
}

/// Installs aws-lc-rs as the process-wide rustls provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_loads() {
        install_crypto_provider();
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = DataDir::new(tmp.path());
        let first = ensure_cert(&dir, None, &["example.org".into()]).expect("generate");
        assert!(first.generated);
        let again = ensure_cert(&dir, None, &["example.org".into()]).expect("reuse");
        assert!(!again.generated);
        assert_eq!(
            std::fs::read(&first.cert).ok(),
            std::fs::read(&again.cert).ok()
        );
        server_config(&again).expect("rustls accepts the pair");
    }
}
