//! `rekey serve`: the portal from `portal::build_portal`, served with graceful shutdown.

use crate::admin::CliError;
use crate::config::Config;
use crate::portal::{build_portal, missing};

pub async fn serve(config: &Config) -> Result<(), CliError> {
    let portal = build_portal(config).await?;
    let listener = tokio::net::TcpListener::bind(&portal.listen)
        .await
        .map_err(|e| missing("server.listen", &format!("{}: {e}", portal.listen)))?;
    let local = listener.local_addr().map_err(CliError::Input)?;
    println!(
        "rekey: portal ready on http://{local} (public URL {})",
        portal.public_base_url
    );
    portal
        .serve(listener, shutdown())
        .await
        .map_err(CliError::Input)
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
