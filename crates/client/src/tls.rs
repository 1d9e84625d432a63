//! RFC 6125 / RFC 5246 §7.4.2 (as used by RFC 6120 §13.7.2 and RFC 5630/3261 §26.3.1): the
//! client's one TLS trust policy, shared by the XMPP (STARTTLS) and SIP (TLS) connections, so
//! both sides of the CUSAX service are protected alike (RFC 7081 §7).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Which server certificates the client accepts.
#[derive(Debug, Clone, Default)]
pub struct TrustConfig {
    /// Extra trust anchors (PEM file with one or more certificates), e.g. a private CA or the
    /// self-signed certificate of a test server. The system's roots are used as well.
    pub ca_file: Option<PathBuf>,
    /// Do not use the operating system's root certificates.
    pub no_system_roots: bool,
}

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No trust anchor at all: neither system roots nor a CA file.
    #[error("no trusted root certificates (system store empty and no CA file given)")]
    NoRoots,
}

fn read_ca(path: &Path, roots: &mut RootCertStore) -> Result<(), TlsError> {
    let bad = |reason: String| TlsError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    for c in certs {
        roots.add(c).map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

impl TrustConfig {
    /// A rustls client configuration verifying server names against the configured roots.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let mut roots = RootCertStore::empty();
        if !self.no_system_roots {
            let native = rustls_native_certs::load_native_certs();
            for c in native.certs {
                // A broken system certificate is skipped, as every TLS client does.
                let _ = roots.add(c);
            }
        }
        if let Some(p) = &self.ca_file {
            read_ca(p, &mut roots)?;
        }
        if roots.is_empty() {
            return Err(TlsError::NoRoots);
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| TlsError::NoRoots)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        let t = TrustConfig {
            ca_file: Some(empty),
            no_system_roots: true,
        };
        let e = t.client_config().expect_err("empty CA file");
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let t = TrustConfig {
            ca_file: Some(dir.path().join("missing.pem")),
            no_system_roots: true,
        };
        assert!(t.client_config().is_err());
        let t = TrustConfig {
            ca_file: None,
            no_system_roots: true,
        };
        assert!(matches!(t.client_config(), Err(TlsError::NoRoots)));
    }
}
