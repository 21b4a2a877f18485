//! Rekey's portal in the test's own process (feature `portal`), built by the very code
//! `rekey serve` runs (`rekey::portal::build_portal`) from a `rekey::config::Config` for the dev
//! domain: the real DCs, a SQLite store in a temp file, an SMTP mailer, the outbox worker, and
//! the router on `127.0.0.1:0`. Shared by the browser tests, the attack tests and the benchmark.
//! [`start_tls`] serves it over HTTPS the way `rekey serve` does with `[server] tls_cert_file`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rekey::config::ops::TlsFiles;
use rekey::config::{
    Config, EngineTunables, PasswordsConfig, ScopeConfig, ServerConfig, StoreConfig, TierConfig,
};
use rekey_directory::AdConfig;
use rekey_notify::SmtpConfig;
use rekey_store::SqlStore;

use crate::dev::Dev;

/// A running portal. Its temp files (SQLite, key) are removed on drop.
pub struct Portal {
    /// `http://localhost:PORT` (a secure context for `__Host-` cookies), or `https://…` from
    /// [`start_tls`].
    pub url: String,
    pub port: u16,
    pub store: Arc<SqlStore>,
    /// The certificate being served, when started by [`start_tls`].
    pub tls: Option<rekey::tls::Tls>,
    /// `None` once handed on to a restarted portal.
    dir: Option<PathBuf>,
    /// How the files are watched, kept for [`Portal::restart`].
    https: Option<Https>,
    server: tokio::task::JoinHandle<()>,
}

/// HTTPS for [`start_tls`]: the two files and how often they are looked at.
#[derive(Debug, Clone)]
struct Https {
    files: TlsFiles,
    poll: Duration,
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Portal {
    /// Stop this portal the hard way (its task is aborted mid-work, like a killed process:
    /// only what the store holds survives) and start a new one over the same SQLite file and
    /// key, built from scratch by `build_portal` like `rekey serve` after a restart.
    ///
    /// # Errors
    /// What `build_portal` said.
    pub async fn restart(
        mut self,
        dev: &Dev,
        smtp: &SmtpConfig,
        tune: impl FnOnce(&mut Config),
    ) -> Result<Portal, String> {
        self.server.abort();
        let _ = (&mut self.server).await;
        let dir = self.dir.take().ok_or("already restarted")?;
        let https = self.https.take();
        drop(self);
        start_at(dev, smtp, dir, https, tune).await
    }
}

/// The dev domain's configuration as an admin would write it: scope SSPR-Users (privileged
/// accounts excluded), mail through `smtp`, the shipped defaults for everything else except
/// `enroll_cooldown_secs = 0` (demo enrollments are usable at once). Its `server.listen` and
/// `public_base_url` are set by [`start`].
pub fn dev_config(dev: &Dev, smtp: &SmtpConfig, dir: &std::path::Path) -> Config {
    let mut directory = AdConfig::new(dev.urls(), dev.get("REKEY_DEV_SVC_DN"));
    directory.ca_file = Some(dev.get("REKEY_DEV_CA_FILE").into());
    directory.bind_password_file = Some(dev.get("REKEY_DEV_SVC_PASSWORD_FILE").into());
    Config {
        version: rekey::config::VERSION,
        directory,
        tier: TierConfig::default(),
        server: Some(ServerConfig {
            listen: "127.0.0.1:0".into(),
            public_base_url: "http://localhost".into(),
            organisation: "Corp".into(),
            trusted_proxies: Vec::new(),
            secret_key_file: dir.join("rekey.key"),
            identify_deadline_ms: 400,
            answer_deadline_ms: 400,
            password_deadline_ms: 1500,
            tls_cert_file: None,
            tls_key_file: None,
            ops_listen: None,
        }),
        store: Some(StoreConfig {
            url: format!("sqlite://{}", dir.join("rekey.db").display()),
        }),
        smtp: Some(smtp.clone()),
        scope: ScopeConfig {
            groups: vec![dev.get("REKEY_DEV_SSPR_GROUP_DN").to_owned()],
            ..ScopeConfig::default()
        },
        engine: EngineTunables {
            enroll_cooldown_secs: Some(0),
            ..EngineTunables::default()
        },
        passwords: PasswordsConfig::default(),
        entra: None,
        gates: rekey::config::methods::GatesSection::default(),
        passkeys: None,
        sms: None,
        questions: rekey::config::methods::QuestionsSection::default(),
        // The suite sends many identify requests from one address on purpose; the proof of
        // work has tests of its own that turn it back on.
        abuse: rekey::config::methods::AbuseSection {
            pow_per_ip_per_minute: Some(0),
            pow_per_minute: Some(0),
            ..rekey::config::methods::AbuseSection::default()
        },
        log: rekey::config::ops::LogSection::default(),
        canary: rekey::config::ops::CanarySection::default(),
        reminders: rekey::config::ops::RemindersSection::default(),
        doctor: rekey::config::ops::DoctorSection::default(),
        audit: rekey::config::audit::AuditSection::default(),
        api: rekey::config::api::ApiSection::default(),
        helpdesk: rekey::config::helpdesk::HelpdeskSection::default(),
        secrets: rekey::config::SecretsSection::default(),
    }
}

/// Build and serve the portal from [`dev_config`] after `tune` adjusted it (deadlines,
/// budgets): the same `build_portal` and `Portal::serve` as `rekey serve`.
pub async fn start(
    dev: &Dev,
    smtp: &SmtpConfig,
    tune: impl FnOnce(&mut Config),
) -> Result<Portal, String> {
    start_with(dev, smtp, None, tune).await
}

/// [`start`] over HTTPS: `[server] tls_cert_file` / `tls_key_file` set to `files`, served by
/// `rekey::tls::serve_portal` (the code `rekey serve` runs) on `https://localhost:PORT`, the files
/// looked at every `poll` (`rekey serve`: [`rekey::tls::POLL_EVERY`]) and re-read on SIGHUP.
///
/// # Errors
/// What `build_portal` or `rekey::tls::Tls::load` said.
pub async fn start_tls(
    dev: &Dev,
    smtp: &SmtpConfig,
    files: TlsFiles,
    poll: Duration,
    tune: impl FnOnce(&mut Config),
) -> Result<Portal, String> {
    start_with(dev, smtp, Some(Https { files, poll }), tune).await
}

async fn start_with(
    dev: &Dev,
    smtp: &SmtpConfig,
    https: Option<Https>,
    tune: impl FnOnce(&mut Config),
) -> Result<Portal, String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("rekey-portal-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| e.to_string())?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join("rekey.key"), hex).map_err(|e| e.to_string())?;
    start_at(dev, smtp, dir, https, tune).await
}

/// [`start`] in a directory that already holds the key (and maybe a store).
async fn start_at(
    dev: &Dev,
    smtp: &SmtpConfig,
    dir: PathBuf,
    https: Option<Https>,
    tune: impl FnOnce(&mut Config),
) -> Result<Portal, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let scheme = if https.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://localhost:{port}");
    let mut config = dev_config(dev, smtp, &dir);
    if let Some(server) = config.server.as_mut() {
        server.listen = format!("127.0.0.1:{port}");
        server.public_base_url.clone_from(&url);
        if let Some(h) = &https {
            server.tls_cert_file = Some(h.files.cert.clone());
            server.tls_key_file = Some(h.files.key.clone());
        }
    }
    tune(&mut config);
    // As `rekey serve`: the TLS files from the config, read before the portal is built.
    let tls = match &config.server {
        Some(server) => server.tls().map_err(|e| e.to_string())?,
        None => None,
    }
    .map(|files| rekey::tls::Tls::load(&files))
    .transpose()
    .map_err(|e| e.to_string())?;
    let portal = rekey::portal::build_portal(&config)
        .await
        .map_err(|e| e.to_string())?;
    let store = portal.built.store.clone();
    let poll = https.as_ref().map_or(rekey::tls::POLL_EVERY, |h| h.poll);
    let served = tls.clone();
    let server = tokio::spawn(async move {
        let stopped = match served {
            Some(tls) => {
                rekey::tls::serve_portal(portal, listener, &tls, poll, std::future::pending()).await
            }
            None => portal.serve(listener, std::future::pending()).await,
        };
        if let Err(e) = stopped {
            eprintln!("portal stopped: {e}");
        }
    });
    Ok(Portal {
        url,
        port,
        store,
        tls,
        dir: Some(dir),
        https,
        server,
    })
}

/// Enroll `u`'s recovery address (`{sam}@home.example`) directly in the portal's store, as
/// verified long ago (usable at once); returns the address.
///
/// # Panics
/// If the account cannot be read or the store refuses (test fixture).
#[allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test fixture
pub async fn enroll(
    portal: &Portal,
    ad: &rekey_directory::ActiveDirectory,
    u: &crate::dev::User,
) -> String {
    use rekey_core::store::{Enrollment, MethodKind, Store};
    let account = ad.account_by_dn(&u.dn).await.unwrap().unwrap();
    let value = format!("{}@home.example", u.sam);
    let e = Enrollment::contact(account.guid, MethodKind::Email, &value, 0);
    portal.store.upsert_enrollment(&e).await.unwrap();
    value
}
