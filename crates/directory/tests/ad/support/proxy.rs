//! A loopback TCP proxy in front of a real DC. It counts the connections it accepted (each one is
//! a TLS handshake), can swallow the next answer and hang up (a connection lost after a write was
//! sent), and can stop, closing everything (a DC going down).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    cut: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = watch::channel(false);
        let (acc, c) = (accepted.clone(), cut.clone());
        tokio::spawn(async move {
            let mut stopped_rx = stopped.clone();
            loop {
                let client = tokio::select! {
                    r = listener.accept() => match r { Ok((s, _)) => s, Err(_) => return },
                    _ = stopped_rx.changed() => return,
                };
                acc.fetch_add(1, Ordering::SeqCst);
                let (c, stopped) = (c.clone(), stopped.clone());
                tokio::spawn(relay(client, target, c, stopped));
            }
        });
        Self {
            port,
            accepted,
            cut,
            stop,
        }
    }

    /// `ldaps://localhost:PORT` (the dev certificate names `localhost`).
    pub fn url(&self) -> String {
        format!("ldaps://localhost:{}", self.port)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Swallow the DC's next answer and close the connection.
    pub fn cut_next_answer(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Close every connection and stop listening: the DC is gone.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

async fn relay(
    client: TcpStream,
    target: SocketAddr,
    cut: Arc<AtomicBool>,
    mut stopped: watch::Receiver<bool>,
) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if cut.swap(false, Ordering::SeqCst) {
                return; // the answer is dropped and both sides are closed below
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = up => {},
        () = down => {},
        _ = stopped.changed() => {},
    }
}
