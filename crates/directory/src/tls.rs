//! TLS for LDAPS: rustls, verifying the DC's certificate against a configured CA. There is no
//! "accept any certificate" switch, on purpose.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::SetupError;

pub(crate) fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, SetupError> {
    let bad = |why: String| SetupError::Config {
        key: "directory.ca_file",
        why,
    };
    let mut roots = RootCertStore::empty();
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(format!("{}: {e}", path.display())))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(bad(format!("{}: no PEM certificate in it", path.display())));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("{}: {e}", path.display())))?;
        }
    } else {
        return Err(bad(
            "no CA configured: set directory.ca_file to the PEM of the CA that issued the DCs' certificates"
                .into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
