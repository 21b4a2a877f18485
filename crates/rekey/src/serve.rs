//! `rekey serve`: wire the directory, store, mailer and engine into the portal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rekey_core::engine::{Engine, EngineConfig, Parts};
use rekey_core::scope::ScopeRules;
use rekey_core::system::{OsRandom, SystemClock};
use rekey_core::{LandingZone, Sid};
use rekey_directory::{ActiveDirectory, SetupError};

use crate::admin::CliError;
use crate::config::Config;

fn missing(key: &'static str, why: &str) -> CliError {
    CliError::Setup(SetupError::Config {
        key,
        why: why.into(),
    })
}

/// The one-time-code key: 64 hex characters in a file.
fn secret_key(path: &std::path::Path) -> Result<[u8; 32], CliError> {
    let raw = std::fs::read_to_string(path).map_err(|e| {
        missing(
            "server.secret_key_file",
            &format!("{}: {e}", path.display()),
        )
    })?;
    let hex = raw.trim();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect();
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        missing(
            "server.secret_key_file",
            "must hold 64 hex characters (32 random bytes)",
        )
    })
}

async fn sids(
    ad: &ActiveDirectory,
    key: &'static str,
    dns: &[String],
) -> Result<Vec<Sid>, CliError> {
    let mut out = Vec::new();
    for dn in dns {
        out.push(
            ad.group_sid(dn)
                .await?
                .ok_or_else(|| missing(key, &format!("group {dn} not found")))?,
        );
    }
    Ok(out)
}

/// Open the store named by `[store]`.
pub async fn store(config: &Config) -> Result<Arc<rekey_store::SqlStore>, CliError> {
    let url = &config
        .store
        .as_ref()
        .ok_or_else(|| missing("store.url", "the portal needs a database"))?
        .url;
    let store = rekey_store::SqlStore::connect(url)
        .await
        .map_err(|e| missing("store.url", &e.to_string()))?;
    Ok(Arc::new(store))
}

pub async fn serve(config: &Config) -> Result<(), CliError> {
    let server = config.server.as_ref().ok_or_else(|| {
        missing(
            "server",
            "add a [server] section (listen, public_base_url, secret_key_file)",
        )
    })?;
    let smtp = config
        .smtp
        .as_ref()
        .ok_or_else(|| missing("smtp", "add an [smtp] section: codes are sent by mail"))?;
    let otp_key = secret_key(&server.secret_key_file)?;
    let ad = Arc::new(ActiveDirectory::connect(&config.directory).await?);
    let store = store(config).await?;
    let mailer =
        Arc::new(rekey_notify::SmtpMailer::new(smtp).map_err(|e| missing("smtp", &e.to_string()))?);
    let extra = sids(&ad, "tier.protected_groups", &config.tier.protected_groups).await?;
    let protected = ad.protected_groups(
        extra
            .into_iter()
            .zip(config.tier.protected_groups.iter().cloned()),
    );
    let scope = ScopeRules {
        groups: sids(&ad, "scope.groups", &config.scope.groups).await?,
        pilot: match &config.scope.pilot_group {
            Some(dn) => sids(&ad, "scope.pilot_group", std::slice::from_ref(dn))
                .await?
                .pop(),
            None => None,
        },
        allow_ous: config.scope.allow_ous.clone(),
        deny_ous: config.scope.deny_ous.clone(),
        exclude_privileged: true,
    };
    let mut engine_config = EngineConfig {
        public_base_url: server.public_base_url.clone(),
        organisation: server.organisation.clone(),
        ..EngineConfig::default()
    };
    if let Some(c) = config.engine.enroll_cooldown_secs {
        engine_config.enroll_cooldown = c;
    }
    let zones: Vec<Arc<dyn LandingZone>> = vec![ad.clone()];
    let engine = Engine::new(Parts {
        directory: ad,
        zones,
        store,
        mailer,
        clock: Arc::new(SystemClock),
        random: Arc::new(OsRandom),
        scope,
        protected,
        config: engine_config,
        otp_key,
    })
    .with_background(Arc::new(rekey_web::TokioSpawn));
    let web = rekey_web::WebConfig {
        organisation: server.organisation.clone(),
        trusted_proxies: server.trusted_proxies.clone(),
        identify_deadline: Duration::from_millis(server.identify_deadline_ms),
        ..rekey_web::WebConfig::default()
    };
    let app = rekey_web::router(engine, web);
    let listener = tokio::net::TcpListener::bind(&server.listen)
        .await
        .map_err(|e| missing("server.listen", &format!("{}: {e}", server.listen)))?;
    let local = listener.local_addr().map_err(CliError::Input)?;
    println!(
        "rekey: portal ready on http://{local} (public URL {})",
        server.public_base_url
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
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
