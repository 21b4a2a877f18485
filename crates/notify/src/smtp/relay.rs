//! The way to the relay: our own TCP socket with `TCP_NODELAY` (lettre 0.11.23's connector never
//! sets it, so every message waited ~40 ms for the relay's delayed ACK: lettre writes the body and
//! the final dot as two small segments), lettre's SMTP client over it, and a small pool of idle
//! connections.
//!
//! The pool belongs to no runtime and runs no task: idle connections are checked with NOOP when
//! they are taken, dropped when they idled longer than [`IDLE_TIMEOUT`], and retired all at once
//! (a new generation) when a send misses its deadline.

use std::io;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated, reason = "see `ImplicitTls`")]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use rekey_core::notify::NotifyError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::classify;

/// At most this many idle connections are kept (lettre's default pool size).
const MAX_IDLE: usize = 10;
/// An idle connection older than this is closed instead of reused (lettre's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How the connection is protected: `smtp.tls`, with the trusted CA in the parameters.
pub(super) enum Security {
    None,
    Starttls(TlsParameters),
    Implicit(TlsParameters),
}

/// One configured relay and its idle connections.
pub(super) struct Relay {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<Credentials>,
    /// The EHLO name: this host's name, as lettre's transport sent it.
    pub hello: ClientId,
    /// Bounds each TCP connect attempt (the whole send has its own deadline).
    pub timeout: Duration,
    pub idle: Pool<AsyncSmtpConnection>,
}

impl Relay {
    /// A connection ready for MAIL FROM: an idle one that still answers NOOP, else a new one.
    pub async fn connection(&self) -> Result<AsyncSmtpConnection, NotifyError> {
        while let Some(mut conn) = self.idle.take() {
            if conn.test_connected().await {
                return Ok(conn);
            }
            // The relay closed it (idle timeout, restart): try the next one.
        }
        self.open().await
    }

    /// Connect, greeting and EHLO, TLS (implicit or STARTTLS, never a downgrade), AUTH.
    pub async fn open(&self) -> Result<AsyncSmtpConnection, NotifyError> {
        let socket = connect(&self.host, self.port, self.timeout)
            .await
            .map_err(|e| NotifyError::Unavailable(format!("Connection error: {e}")))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Implicit(tls) => Box::new(ImplicitTls::handshake(socket, tls.clone()).await?),
            Security::None | Security::Starttls(_) => Box::new(socket),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| classify(&e))?;
        if let Security::Starttls(tls) = &self.security {
            // Fails when the relay does not offer STARTTLS.
            conn.starttls(tls.clone(), &self.hello)
                .await
                .map_err(|e| classify(&e))?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(|e| classify(&e))?;
        }
        Ok(conn)
    }
}

/// A TCP connection to `host:port` with `TCP_NODELAY`: each resolved address in turn, each attempt
/// bounded by `timeout`.
pub(super) async fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(socket)) => {
                // SMTP is a dialogue of small writes: never wait for the peer's ACK to send.
                socket.set_nodelay(true)?;
                return Ok(socket);
            }
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection timed out",
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "the host resolves to no address")
    }))
}

/// SMTPS on our socket with lettre's own TLS (the same `TlsParameters`, trust store and rustls
/// setup as STARTTLS), handed back to lettre as a plain stream. lettre 0.11 upgrades a socket it
/// did not open only through `AsyncNetworkStream` (public, deprecated as "not meant to be public");
/// once a lettre release sets `TCP_NODELAY` itself (lettre PR #1159), this module can go.
#[allow(
    deprecated,
    reason = "lettre 0.11's only TLS upgrade for a socket of our own"
)]
#[derive(Debug)]
struct ImplicitTls(AsyncNetworkStream);

#[allow(deprecated, reason = "see `ImplicitTls`")]
impl ImplicitTls {
    async fn handshake(socket: TcpStream, tls: TlsParameters) -> Result<Self, NotifyError> {
        let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(socket));
        stream.upgrade_tls(tls).await.map_err(|e| classify(&e))?;
        Ok(Self(stream))
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.peer_addr()
    }
}

impl AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let read = ready!(futures_io::AsyncRead::poll_read(
            Pin::new(&mut self.0),
            cx,
            buf.initialize_unfilled()
        ))?;
        buf.advance(read);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

/// Idle connections, newest last, and the generation they belong to. A connection is out of the
/// pool while a send uses it; only a send of the current generation may put it back.
pub(super) struct Pool<C> {
    state: Mutex<State<C>>,
    idle_timeout: Duration,
}

struct State<C> {
    generation: u64,
    idle: Vec<(C, Instant)>,
}

impl<C> Pool<C> {
    pub fn new(idle_timeout: Duration) -> Self {
        Self {
            state: Mutex::new(State {
                generation: 0,
                idle: Vec::new(),
            }),
            idle_timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<C>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The generation a send starts in.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The most recently parked connection that has not idled too long; older ones are closed.
    pub fn take(&self) -> Option<C> {
        let mut stale = Vec::new();
        let found = {
            let mut state = self.lock();
            loop {
                match state.idle.pop() {
                    Some((conn, since)) if since.elapsed() <= self.idle_timeout => {
                        break Some(conn);
                    }
                    Some((conn, _)) => stale.push(conn),
                    None => break None,
                }
            }
        };
        drop(stale);
        found
    }

    /// Park a connection after a clean send. Handed back when the pool is full or was retired
    /// since the send began.
    pub fn put(&self, generation: u64, conn: C) -> Option<C> {
        let mut state = self.lock();
        if state.generation != generation || state.idle.len() >= MAX_IDLE {
            return Some(conn);
        }
        state.idle.push((conn, Instant::now()));
        None
    }

    /// A send of `generation` missed its deadline: close every idle connection and start a new
    /// generation, so connections still in use by that generation are not parked again.
    pub fn retire(&self, generation: u64) {
        let old = {
            let mut state = self.lock();
            if state.generation != generation {
                return;
            }
            state.generation += 1;
            std::mem::take(&mut state.idle)
        };
        drop(old);
    }
}

impl Pool<AsyncSmtpConnection> {
    /// The default pool: [`IDLE_TIMEOUT`].
    pub fn for_relay() -> Self {
        Self::new(IDLE_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sockets_have_tcp_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let socket = connect("127.0.0.1", port, Duration::from_secs(2))
            .await
            .unwrap();
        assert!(socket.nodelay().unwrap(), "TCP_NODELAY must be set");
        let (_, from) = listener.accept().await.unwrap();
        assert_eq!(from, socket.local_addr().unwrap());
    }

    #[tokio::test]
    async fn connect_names_the_failure() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = connect("127.0.0.1", port, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    }

    #[test]
    fn the_newest_idle_connection_is_reused() {
        let pool = Pool::new(IDLE_TIMEOUT);
        let generation = pool.generation();
        assert!(pool.put(generation, "a").is_none());
        assert!(pool.put(generation, "b").is_none());
        assert_eq!(pool.take(), Some("b"));
        assert_eq!(pool.take(), Some("a"));
        assert_eq!(pool.take(), None);
    }

    #[test]
    fn a_full_pool_hands_the_connection_back() {
        let pool = Pool::new(IDLE_TIMEOUT);
        for i in 0..MAX_IDLE {
            assert!(pool.put(0, i).is_none());
        }
        assert_eq!(pool.put(0, MAX_IDLE), Some(MAX_IDLE));
    }

    #[test]
    fn connections_idle_too_long_are_not_reused() {
        let pool = Pool::new(Duration::ZERO);
        assert!(pool.put(0, "old").is_none());
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(pool.take(), None);
    }

    #[test]
    fn retiring_closes_the_idle_and_refuses_the_old_generation() {
        let pool = Pool::new(IDLE_TIMEOUT);
        let old = pool.generation();
        assert!(pool.put(old, "idle").is_none());
        pool.retire(old);
        assert_eq!(pool.take(), None);
        // A send of the old generation finishing later does not park its connection.
        assert_eq!(pool.put(old, "in use"), Some("in use"));
        let new = pool.generation();
        assert_ne!(new, old);
        // A second timeout of the old generation does not retire the new one.
        assert!(pool.put(new, "fresh").is_none());
        pool.retire(old);
        assert_eq!(pool.take(), Some("fresh"));
    }
}
