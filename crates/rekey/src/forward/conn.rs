//! The forwarder's connection: TCP, or TLS with rustls verifying the receiver's certificate
//! against the configured CA (there is no "accept any certificate"), optionally with a client
//! certificate; RFC 6587 octet-counted frames.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use crate::config::ConfigError;
use crate::config::audit::{ForwardSection, Transport};

/// A byte stream to the receiver.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An open connection.
pub(crate) type Conn = Box<dyn Stream>;

/// How to open a connection to the receiver.
#[derive(Clone)]
pub(crate) struct Connector {
    host: String,
    port: u16,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    timeout: Duration,
}

fn bad(key: &'static str, why: String) -> ConfigError {
    ConfigError::Key { key, why }
}

/// `host:port` or `[v6]:port` → (host, port).
pub(crate) fn parse_target(target: &str) -> Result<(String, u16), ConfigError> {
    let err = || {
        bad(
            "audit.forward.target",
            format!("{target:?}: expected host:port (or [IPv6]:port)"),
        )
    };
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        rest.split_once("]:").ok_or_else(err)?
    } else {
        target.rsplit_once(':').ok_or_else(err)?
    };
    let port: u16 = port.parse().map_err(|_| err())?;
    if host.is_empty() || host.contains(['/', ' ']) || port == 0 {
        return Err(err());
    }
    Ok((host.to_owned(), port))
}

impl Connector {
    /// From `[audit.forward]`: the target, and for TLS the CA, the name to check and the client
    /// certificate; every file is read now, so a mistake stops `rekey serve` at start.
    pub(crate) fn new(section: &ForwardSection, target: &str) -> Result<Self, ConfigError> {
        let (host, port) = parse_target(target)?;
        let timeout = Duration::from_secs(section.timeout_secs.max(1));
        let tls = match section.transport {
            Transport::Tcp => None,
            Transport::Tls => {
                let name = section.server_name.clone().unwrap_or_else(|| host.clone());
                let name = ServerName::try_from(name.clone()).map_err(|_| {
                    bad(
                        "audit.forward.server_name",
                        format!("{name:?} is neither a DNS name nor an IP address"),
                    )
                })?;
                let config = tls_config(section)?;
                Some((tokio_rustls::TlsConnector::from(config), name))
            }
        };
        Ok(Self {
            host,
            port,
            tls,
            timeout,
        })
    }

    /// Connect (and handshake), within the timeout.
    pub(crate) async fn connect(&self) -> std::io::Result<Conn> {
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let tcp = tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| timed_out())??;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some((connector, name)) => {
                let tls = tokio::time::timeout(self.timeout, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| timed_out())??;
                Ok(Box::new(tls))
            }
        }
    }

    /// Write `bytes` and flush them to the socket, within the timeout.
    pub(crate) async fn write(&self, conn: &mut Conn, bytes: &[u8]) -> std::io::Result<()> {
        let write = async {
            conn.write_all(bytes).await?;
            conn.flush().await
        };
        tokio::time::timeout(self.timeout, write)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out"))?
    }
}

/// Whether the receiver still holds the connection open. A syslog receiver never sends: end of
/// stream or an error means it closed (or reset) the connection, and what was written since it
/// last was seen open may be lost.
pub(crate) async fn still_open(conn: &mut Conn) -> bool {
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_millis(10), conn.read(&mut buf)).await {
        Err(_) | Ok(Ok(1..)) => true,
        Ok(Ok(0) | Err(_)) => false,
    }
}

/// One RFC 6587 octet-counted frame: `LEN SP MSG`.
pub(crate) fn frame(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(message.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(message.as_bytes());
}

fn read_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(key, format!("{}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(key, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(bad(
            key,
            format!("{}: no PEM certificate in it", path.display()),
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let key = "audit.forward.client_key_file";
    let meta = std::fs::metadata(path).map_err(|e| bad(key, format!("{}: {e}", path.display())))?;
    if meta.permissions().mode() & 0o004 != 0 {
        tracing::warn!(
            key = %path.display(),
            "audit forwarding: the client's private key file is readable by every user: chmod 600"
        );
    }
    let pem = Zeroizing::new(
        std::fs::read(path).map_err(|e| bad(key, format!("{}: {e}", path.display())))?,
    );
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        bad(
            key,
            format!("{}: no usable PEM private key", path.display()),
        )
    })
}

fn tls_config(section: &ForwardSection) -> Result<Arc<ClientConfig>, ConfigError> {
    let ca = section.ca_file.as_deref().ok_or_else(|| {
        bad(
            "audit.forward.ca_file",
            "required with transport = \"tls\": the PEM of the CA that issued the receiver's \
             certificate"
                .into(),
        )
    })?;
    let mut roots = RootCertStore::empty();
    for cert in read_certs("audit.forward.ca_file", ca)? {
        roots
            .add(cert)
            .map_err(|e| bad("audit.forward.ca_file", format!("{}: {e}", ca.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("audit.forward", e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&section.client_cert_file, &section.client_key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(
                read_certs("audit.forward.client_cert_file", cert)?,
                read_key(key)?,
            )
            .map_err(|e| {
                bad(
                    "audit.forward.client_key_file",
                    format!("does not fit audit.forward.client_cert_file: {e}"),
                )
            })?,
        (Some(_), None) => {
            return Err(bad(
                "audit.forward.client_key_file",
                "required with audit.forward.client_cert_file".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(bad(
                "audit.forward.client_cert_file",
                "required with audit.forward.client_key_file".into(),
            ));
        }
    };
    Ok(Arc::new(config))
}
