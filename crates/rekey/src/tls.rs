//! HTTPS served by `rekey serve` itself (`[server] tls_cert_file` + `tls_key_file`): rustls with
//! ring, HTTP/1.1, the portal's router with the client address (`ConnectInfo<SocketAddr>`) like
//! the plain listener.
//!
//! The certificate chain and key are re-read on SIGHUP and when either file changes (their bytes,
//! looked at every [`POLL_EVERY`]). New connections get the new certificate; open ones keep
//! theirs; the listener is never closed. A pair that does not load (bad PEM, a key
//! that does not match the certificate, a file half written) is logged as an error and the
//! certificate in use stays. The key's bytes are never logged (errors say what is wrong, not
//! what the file holds).

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tower::Layer;
use zeroize::Zeroizing;

use crate::config::ops::TlsFiles;

/// How often `rekey serve` reads the two files to see whether they changed.
pub const POLL_EVERY: Duration = Duration::from_secs(3);
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that has not sent a request's headers by then is dropped (hyper's default, made
/// explicit: it needs a timer).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// On shutdown, open connections get this long to finish their request.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A certificate chain or key that cannot be used, naming the config key and the file.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {why}")]
pub struct TlsError {
    /// `server.tls_cert_file` or `server.tls_key_file`.
    pub key: &'static str,
    pub why: String,
}

const CERT_KEY: &str = "server.tls_cert_file";
const KEY_KEY: &str = "server.tls_key_file";

/// The served certificate: what [`Tls::reload`] replaces and every handshake reads.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// What a file held when it was last read (a hash of its bytes): any change means "read again".
/// Content, not modification times: a renewal within the same clock tick and of the same size
/// still shows. The files are small; reading them every few seconds costs nothing.
type Stamp = u64;

/// `None` when the file cannot be read (moved away mid-renewal): a change too.
fn stamp(path: &Path) -> Option<Stamp> {
    use std::hash::Hasher;
    // Follows symlinks: certbot's `live/` links switching to a new `archive/` file are a change.
    let bytes = Zeroizing::new(std::fs::read(path).ok()?);
    let mut h = std::hash::DefaultHasher::new();
    h.write(&bytes);
    Some(h.finish())
}

/// The TLS side of `rekey serve`: the server config (whose certificate can be swapped) and the
/// two files it came from. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    files: TlsFiles,
    current: Arc<Current>,
    config: Arc<rustls::ServerConfig>,
    /// The files' stamps taken just before they were last read.
    seen: Mutex<(Option<Stamp>, Option<Stamp>)>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.inner.files)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Read both files and build the server config (TLS 1.2 and 1.3, ALPN `http/1.1`).
    ///
    /// # Errors
    /// [`TlsError`] naming `server.tls_cert_file` or `server.tls_key_file`: unreadable, no PEM
    /// certificate / private key in it, a key type rustls cannot use, or a key that does not
    /// belong to the chain's first certificate.
    pub fn load(files: &TlsFiles) -> Result<Tls, TlsError> {
        let stamps = (stamp(&files.cert), stamp(&files.key));
        let key = read_pair(files)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(key))));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError {
                key: CERT_KEY,
                why: format!("rustls: {e}"),
            })?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // axum is built with HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            inner: Arc::new(Inner {
                files: files.clone(),
                current,
                config: Arc::new(config),
                seen: Mutex::new(stamps),
            }),
        })
    }

    /// The files this was loaded from.
    #[must_use]
    pub fn files(&self) -> &TlsFiles {
        &self.inner.files
    }

    /// The rustls server config (its certificate follows [`Tls::reload`]).
    #[must_use]
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.inner.config.clone()
    }

    /// The end-entity certificate served to new connections now.
    #[must_use]
    pub fn certificate(&self) -> Option<CertificateDer<'static>> {
        let current = self
            .inner
            .current
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        current
            .end_entity_cert()
            .ok()
            .map(|c| c.clone().into_owned())
    }

    /// Read both files again; on success new connections get the new certificate, on error the
    /// one in use stays.
    ///
    /// # Errors
    /// What [`Tls::load`] would say about the files now.
    pub fn reload(&self) -> Result<(), TlsError> {
        let files = &self.inner.files;
        *self
            .inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (stamp(&files.cert), stamp(&files.key));
        let key = read_pair(files)?;
        *self
            .inner
            .current
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }

    /// Whether either file looks different from when it was last read.
    fn changed(&self) -> bool {
        let files = &self.inner.files;
        let now = (stamp(&files.cert), stamp(&files.key));
        *self
            .inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            != now
    }

    /// Reload on SIGHUP and when a file changes (looked at every `poll`), logging the outcome,
    /// until the returned guard is dropped. The SIGHUP handler is installed before this returns,
    /// so a SIGHUP right after startup reloads instead of ending the process.
    #[must_use = "dropping the guard stops the reloading"]
    pub fn watch(&self, poll: Duration) -> Watch {
        let hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "TLS: no SIGHUP handler; reloading on file changes only");
                None
            }
        };
        let tls = self.clone();
        Watch(tokio::spawn(async move {
            let mut hangup = hangup;
            let mut tick = tokio::time::interval(poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                let trigger = tokio::select! {
                    () = sighup(&mut hangup) => "SIGHUP",
                    _ = tick.tick() => {
                        if !tls.changed() {
                            continue;
                        }
                        "file changed"
                    }
                };
                tls.reload_logged(trigger);
            }
        }))
    }

    fn reload_logged(&self, trigger: &str) {
        let files = &self.inner.files;
        match self.reload() {
            Ok(()) => tracing::info!(
                trigger,
                cert = %files.cert.display(),
                key = %files.key.display(),
                "TLS certificate reloaded"
            ),
            Err(e) => tracing::error!(
                trigger,
                error = %e,
                "TLS certificate NOT reloaded; still serving the previous one"
            ),
        }
    }
}

async fn sighup(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Stops [`Tls::watch`]'s task when dropped.
#[derive(Debug)]
pub struct Watch(tokio::task::JoinHandle<()>);

impl Watch {
    /// Run `task` until the guard is dropped.
    pub fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Watch {
        Watch(tokio::spawn(task))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn read_pair(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let cert_err = |why: String| TlsError {
        key: CERT_KEY,
        why: format!("{}: {why}", files.cert.display()),
    };
    let key_err = |why: String| TlsError {
        key: KEY_KEY,
        why: format!("{}: {why}", files.key.display()),
    };
    let pem = std::fs::read(&files.cert).map_err(|e| cert_err(e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(format!("not a PEM certificate chain ({e})")))?;
    if chain.is_empty() {
        return Err(cert_err(
            "no \"BEGIN CERTIFICATE\" block: expected the PEM certificate chain, server first"
                .into(),
        ));
    }
    let key = read_key(&files.key).map_err(key_err)?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider.key_provider.load_private_key(key).map_err(|e| {
        key_err(format!(
            "a private key rustls cannot use (RSA, ECDSA P-256/P-384 or Ed25519): {e}"
        ))
    })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(key_err(format!(
            "this key does not belong to the first certificate in {}",
            files.cert.display()
        ))),
        Err(e) => Err(cert_err(format!(
            "the first certificate cannot be parsed: {e}"
        ))),
    }
}

/// The private key, its PEM bytes wiped after parsing. Errors never quote the file.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.permissions().mode() & 0o004 != 0 {
        tracing::warn!(
            key = %path.display(),
            "TLS: the private key file is readable by every user: chmod 600 (or 640 root:rekey)"
        );
    }
    let pem = Zeroizing::new(std::fs::read(path).map_err(|e| e.to_string())?);
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => "no PEM private key (\"BEGIN PRIVATE KEY\", \
             \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\")"
            .to_owned(),
        rustls_pki_types::pem::Error::Io(e) => e.to_string(),
        _ => "not a valid PEM private key".to_owned(),
    })
}

/// Serve `router` over HTTPS on `listener` until `shutdown` resolves; then stop accepting and
/// give open connections [`DRAIN_TIMEOUT`] to finish. Handlers see `ConnectInfo<SocketAddr>`
/// (the TCP peer) exactly as with `into_make_service_with_connect_info::<SocketAddr>()`.
///
/// # Errors
/// None today (accept errors are logged and retried like `axum::serve`); `io::Result` keeps the
/// signature of [`crate::portal::Portal::serve`].
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: &Tls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config());
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer): (_, SocketAddr) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_error(&e).await;
                    continue;
                }
            },
        };
        // What axum's `IntoMakeServiceWithConnectInfo` does per connection.
        let service = axum::Extension(ConnectInfo(peer)).layer(router.clone());
        let service = TowerToHyperService::new(service);
        let acceptor = acceptor.clone();
        let http = http.clone();
        // Held from the handshake on, so a shutdown waits for it too.
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let conn = http.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "HTTPS connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
    Ok(())
}

/// `axum::serve`'s handling: a client that went away is nothing; anything else (out of file
/// descriptors) is logged and retried after a pause.
async fn accept_error(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// `rekey serve` with TLS: the portal's workers, certificate reloading every `poll` and on
/// SIGHUP, and [`serve`] until `shutdown`.
///
/// # Errors
/// What [`serve`] says.
pub async fn serve_portal(
    portal: crate::portal::Portal,
    listener: TcpListener,
    tls: &Tls,
    poll: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let workers = portal.start_workers();
    let watch = tls.watch(poll);
    let result = serve(listener, portal.router.clone(), tls, shutdown).await;
    drop(watch);
    drop(workers);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("rekey-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    /// A self-signed certificate for `localhost` and its key, as PEM.
    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(d: &Dir, cert: &str, key: &str) -> TlsFiles {
        let files = TlsFiles {
            cert: d.0.join("cert.pem"),
            key: d.0.join("key.pem"),
        };
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600)).unwrap();
        files
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn errors_name_the_config_key_and_never_the_key_material() {
        let d = dir("errors");
        let (cert, key) = pair();
        let (_, other_key) = pair();

        let missing = TlsFiles {
            cert: d.0.join("nope.pem"),
            key: d.0.join("nope.key"),
        };
        let e = Tls::load(&missing).unwrap_err();
        assert_eq!(e.key, "server.tls_cert_file");
        assert!(e.to_string().contains("nope.pem"), "{e}");

        let files = write(&d, "garbage\n", &key);
        let e = Tls::load(&files).unwrap_err();
        assert_eq!(e.key, "server.tls_cert_file", "{e}");
        assert!(e.to_string().contains("BEGIN CERTIFICATE"), "{e}");

        let files = write(&d, &cert, "junk");
        let e = Tls::load(&files).unwrap_err();
        assert_eq!(e.key, "server.tls_key_file", "{e}");

        // The certificate where the key belongs.
        let files = write(&d, &cert, &cert);
        let e = Tls::load(&files).unwrap_err();
        assert_eq!(e.key, "server.tls_key_file", "{e}");

        let files = write(&d, &cert, &other_key);
        let e = Tls::load(&files).unwrap_err();
        assert_eq!(e.key, "server.tls_key_file", "{e}");
        assert!(e.to_string().contains("does not belong"), "{e}");
        let body: String = other_key
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert!(!e.to_string().contains(&body[..20]), "{e}");

        let files = write(&d, &cert, &key);
        let tls = Tls::load(&files).unwrap();
        assert_eq!(tls.certificate(), Some(der(&cert)));
    }

    #[test]
    fn a_bad_new_pair_keeps_the_old_certificate_and_a_good_one_replaces_it() {
        let d = dir("reload");
        let (cert, key) = pair();
        let files = write(&d, &cert, &key);
        let tls = Tls::load(&files).unwrap();
        assert!(!tls.changed());

        let (cert2, key2) = pair();
        // Half a renewal: the new certificate, the old key.
        std::fs::write(&files.cert, &cert2).unwrap();
        assert!(tls.changed());
        assert!(tls.reload().is_err());
        assert!(
            !tls.changed(),
            "the failed attempt is remembered: no retry loop"
        );
        assert_eq!(tls.certificate(), Some(der(&cert)));

        std::fs::write(&files.key, &key2).unwrap();
        assert!(tls.changed());
        tls.reload().unwrap();
        assert_eq!(tls.certificate(), Some(der(&cert2)));

        // Moved away: a change, an error, the certificate stays.
        std::fs::remove_file(&files.key).unwrap();
        assert!(tls.changed());
        assert!(tls.reload().is_err());
        assert_eq!(tls.certificate(), Some(der(&cert2)));
    }

    #[tokio::test]
    async fn the_watch_reloads_a_changed_file() {
        let d = dir("watch");
        let (cert, key) = pair();
        let files = write(&d, &cert, &key);
        let tls = Tls::load(&files).unwrap();
        let _watch = tls.watch(Duration::from_millis(50));
        let (cert2, key2) = pair();
        // Atomic replacement (a new inode), as certbot and `install` do.
        let tmp = d.0.join("new.pem");
        std::fs::write(&tmp, &key2).unwrap();
        std::fs::rename(&tmp, &files.key).unwrap();
        std::fs::write(&tmp, &cert2).unwrap();
        std::fs::rename(&tmp, &files.cert).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while tls.certificate() != Some(der(&cert2)) {
            assert!(std::time::Instant::now() < deadline, "not reloaded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
