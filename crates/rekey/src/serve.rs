//! `rekey serve`: the portal from `portal::build_portal`, served with graceful shutdown: plain
//! HTTP for a reverse proxy in front, or HTTPS itself when `[server] tls_cert_file` and
//! `tls_key_file` are set (`tls.rs`: reloaded on SIGHUP and when the files change).

use crate::admin::CliError;
use crate::config::Config;
use crate::portal::{build_portal, missing};
use crate::tls::{self, Tls};

pub async fn serve(config: &Config) -> Result<(), CliError> {
    // The TLS files are read before the DCs are asked: a bad path fails at once, naming its key.
    let tls = match &config.server {
        Some(server) => match server.tls()? {
            Some(files) => Some(Tls::load(&files).map_err(|e| missing(e.key, &e.why))?),
            None => None,
        },
        None => None,
    };
    let portal = build_portal(config).await?;
    let listener = tokio::net::TcpListener::bind(&portal.listen)
        .await
        .map_err(|e| missing("server.listen", &format!("{}: {e}", portal.listen)))?;
    let local = listener.local_addr().map_err(CliError::Input)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!(
        "rekey: portal ready on {scheme}://{local} (public URL {})",
        portal.public_base_url
    );
    match tls {
        Some(tls) => tls::serve_portal(portal, listener, &tls, tls::POLL_EVERY, shutdown())
            .await
            .map_err(CliError::Input),
        None => {
            // `systemctl reload` sends SIGHUP: without TLS there is nothing to re-read, and it
            // must not end the process (SIGHUP's default).
            let _hangup = ignore_hangup();
            portal
                .serve(listener, shutdown())
                .await
                .map_err(CliError::Input)
        }
    }
}

/// Log SIGHUPs instead of dying of them, until the guard is dropped.
fn ignore_hangup() -> Option<tls::Watch> {
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()?;
    Some(tls::Watch::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!(
                "SIGHUP: no TLS files to re-read (other configuration changes need a restart)"
            );
        }
    }))
}

/// Ctrl-C or SIGTERM (systemd, container runtimes) stop the server gracefully.
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}
