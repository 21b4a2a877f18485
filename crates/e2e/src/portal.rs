//! Rekey's portal in the test's own process (feature `portal`), wired like `rekey serve`: the
//! engine over the real dev-domain directory, a SQLite store in a temp file, an SMTP mailer and
//! `rekey_web::router` on `127.0.0.1:0`. Shared by the browser tests and the benchmark.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rekey_core::LandingZone;
use rekey_core::engine::{Engine, EngineConfig, Parts};
use rekey_core::scope::ScopeRules;
use rekey_core::system::{OsRandom, SystemClock};
use rekey_directory::ActiveDirectory;
use rekey_notify::SmtpConfig;
use rekey_store::SqlStore;

use crate::dev::Dev;

/// A running portal. Its SQLite files are removed on drop.
pub struct Portal {
    /// `http://localhost:PORT` (a secure context for `__Host-` cookies).
    pub url: String,
    pub port: u16,
    pub store: Arc<SqlStore>,
    db: PathBuf,
}

impl Drop for Portal {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db.display()));
        }
    }
}

/// Start a portal in scope SSPR-Users (privileged accounts excluded), mailing through `smtp`.
/// `engine` gives the tunables; its public base URL is set to the portal's own.
pub async fn start(
    dev: &Dev,
    ad: Arc<ActiveDirectory>,
    smtp: &SmtpConfig,
    engine: EngineConfig,
    identify_deadline: Duration,
) -> Result<Portal, String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let db = std::env::temp_dir().join(format!("rekey-portal-{}-{n}.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let store = Arc::new(
        SqlStore::connect(&format!("sqlite://{}", db.display()))
            .await
            .map_err(|e| format!("SQLite store: {e}"))?,
    );
    let mailer = Arc::new(rekey_notify::SmtpMailer::new(smtp).map_err(|e| e.to_string())?);
    let sspr = ad
        .group_sid(dev.get("REKEY_DEV_SSPR_GROUP_DN"))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("SSPR-Users group not found")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let url = format!("http://localhost:{port}");
    let zones: Vec<Arc<dyn LandingZone>> = vec![ad.clone()];
    let engine = Engine::new(Parts {
        directory: ad.clone(),
        zones,
        store: store.clone(),
        mailer,
        clock: Arc::new(SystemClock),
        random: Arc::new(OsRandom),
        scope: ScopeRules {
            groups: vec![sspr],
            exclude_privileged: true,
            ..ScopeRules::default()
        },
        protected: ad.protected_groups([]),
        config: EngineConfig {
            public_base_url: url.clone(),
            organisation: "Corp".into(),
            ..engine
        },
        otp_key: [7; 32],
    })
    .with_background(Arc::new(rekey_web::TokioSpawn));
    let web = rekey_web::WebConfig {
        organisation: "Corp".into(),
        identify_deadline,
        ..rekey_web::WebConfig::default()
    };
    let app = rekey_web::router(engine, web);
    tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service).await {
            eprintln!("portal stopped: {e}");
        }
    });
    Ok(Portal {
        url,
        port,
        store,
        db,
    })
}
