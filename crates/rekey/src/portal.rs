//! The one wiring of Rekey: `rekey serve`, the CLI's write commands, the browser tests and the
//! benchmark all build the engine and the portal here, from a `Config`, so the tests exercise
//! what ships.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rekey_core::engine::{Engine, EngineConfig, Parts};
use rekey_core::notify::{Email, Mailer, NotifyError};
use rekey_core::scope::ScopeRules;
use rekey_core::system::{OsRandom, SystemClock};
use rekey_core::{BoxFuture, LandingZone, Sid};
use rekey_directory::{ActiveDirectory, SetupError};
use rekey_store::SqlStore;

use crate::admin::CliError;
use crate::config::Config;

/// How often the outbox worker looks for due mail besides the kick after each request.
const OUTBOX_EVERY: Duration = Duration::from_secs(2);

/// A configuration problem naming its key.
pub(crate) fn missing(key: &'static str, why: &str) -> CliError {
    CliError::Setup(SetupError::Config {
        key,
        why: why.into(),
    })
}

/// The engine and the adapters it was built from.
pub struct Built {
    pub engine: Engine,
    pub store: Arc<SqlStore>,
    pub directory: Arc<ActiveDirectory>,
}

/// A portal ready to serve.
pub struct Portal {
    pub built: Built,
    pub router: axum::Router,
    /// `server.listen`, `server.public_base_url`.
    pub listen: String,
    pub public_base_url: String,
    /// `[server] ops_listen`, bound: `/metrics`, `/healthz`, `/readyz` are served there by
    /// [`Portal::start_workers`] (otherwise they are part of `router`).
    ops: std::sync::Mutex<Option<(std::net::TcpListener, axum::Router)>>,
    /// The writeback canary of an enabled `[canary]`.
    pub canary: Option<crate::canary::Canary>,
    /// `[reminders]`.
    reminders: crate::config::ops::RemindersSection,
    /// `[directory]`, for the DC watch's TLS handshakes.
    directory_config: rekey_directory::AdConfig,
    /// `[audit] checkpoint_key_file`, loaded at start; taken by the checkpoint task.
    checkpoints: std::sync::Mutex<Option<(rekey_core::audit_checkpoint::CheckpointKey, Duration)>>,
    /// `[audit.forward]`, started with the other workers.
    forward: Option<crate::config::audit::ForwardSection>,
}

pub(crate) async fn sids(
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

/// Open the store named by `[store]` (migrations run here).
pub async fn store(config: &Config) -> Result<Arc<SqlStore>, CliError> {
    let url = &config
        .store
        .as_ref()
        .ok_or_else(|| {
            missing(
                "store.url",
                "a database is needed: every write is audited and codes wait in its outbox",
            )
        })?
        .url;
    let store = SqlStore::connect(url)
        .await
        .map_err(|e| missing("store.url", &e.to_string()))?;
    Ok(Arc::new(store))
}

/// A mailer for commands run without `[smtp]`: mail stays in the outbox for `rekey serve`.
struct Deferred;

impl Mailer for Deferred {
    fn send<'a>(&'a self, _: &'a Email) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(std::future::ready(Err(NotifyError::Unavailable(
            "no [smtp] here: rekey serve's outbox worker sends it".into(),
        ))))
    }
}

/// Build the engine from the config. `background`: send mail after answering (the portal);
/// without it mail is attempted before returning (the CLI) and otherwise left in the outbox.
pub async fn engine(config: &Config, background: bool) -> Result<Built, CliError> {
    let server = config.server.as_ref().ok_or_else(|| {
        missing(
            "server",
            "add a [server] section (listen, public_base_url, secret_key_file)",
        )
    })?;
    config.engine.validate()?;
    let otp_key = crate::config::read_secret_key(&server.secret_key_file)?;
    let ad = Arc::new(ActiveDirectory::connect(&config.directory).await?);
    let store = store(config).await?;
    let keys = crate::keys::ring(config, &otp_key)?;
    crate::keys::check_store(keys.as_ref(), &store).await?;
    let mailer: Arc<dyn Mailer> = match &config.smtp {
        Some(smtp) => Arc::new(
            rekey_notify::SmtpMailer::new(smtp).map_err(|e| missing("smtp", &e.to_string()))?,
        ),
        None => Arc::new(Deferred),
    };
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
        // Privileged accounts are out unless `[gates.privileged]` sets their stricter gates.
        exclude_privileged: config.gates.privileged.is_none(),
    };
    let mut engine_config = EngineConfig {
        public_base_url: server.public_base_url.clone(),
        organisation: server.organisation.clone(),
        ..EngineConfig::default()
    };
    config.engine.apply(&mut engine_config);
    config.passwords.apply(&mut engine_config);
    crate::config::methods::apply(config, &mut engine_config)?;
    // Privileged users served: their method changes wait for approvers, who must exist.
    config
        .helpdesk
        .validate_for_privileged(config.gates.privileged.is_some())?;
    engine_config.helpdesk = config.helpdesk.rules(&ad).await?;
    let sms = sms_sender(config)?;
    let passkeys = passkeys(config, server)?;
    let mut zones: Vec<Arc<dyn LandingZone>> = vec![ad.clone()];
    if let Some(entra) = config.entra() {
        entra.apply(&mut engine_config)?;
        let zone = rekey_entra::EntraId::new(entra.zone_config()?)
            .map_err(|e| missing("entra", &e.to_string()))?;
        zones.push(Arc::new(zone));
    }
    let mut engine = Engine::new(Parts {
        directory: ad.clone(),
        zones,
        store: store.clone(),
        mailer,
        clock: Arc::new(SystemClock),
        random: Arc::new(OsRandom),
        scope,
        protected,
        config: engine_config,
        otp_key,
        keys,
        banned: config.passwords.banned_list()?,
        breached: config.passwords.breached()?,
        sms,
        passkeys,
    });
    if background {
        engine = engine.with_background(Arc::new(rekey_web::TokioSpawn));
    }
    Ok(Built {
        engine,
        store,
        directory: ad,
    })
}

/// The SMS gateway of an enabled `[sms]` section.
fn sms_sender(config: &Config) -> Result<Option<Arc<dyn rekey_core::notify::SmsSender>>, CliError> {
    let Some(sms) = config.sms.as_ref().filter(|s| s.enabled) else {
        return Ok(None);
    };
    let file = sms
        .auth_token_file
        .as_ref()
        .ok_or_else(|| missing("sms.auth_token_file", "name the auth token's file"))?;
    let token = std::fs::read_to_string(file)
        .map_err(|e| missing("sms.auth_token_file", &format!("{}: {e}", file.display())))?;
    let sid = sms
        .account_sid
        .clone()
        .ok_or_else(|| missing("sms.account_sid", "set the account SID"))?;
    let mut c = rekey_sms::SmsConfig::new(
        sms.base_url.clone(),
        sid,
        zeroize::Zeroizing::new(token.trim().to_owned()),
        sms.from.clone(),
        sms.messaging_service_sid.clone(),
    )
    .map_err(|e| missing("sms", &e.to_string()))?;
    c.username.clone_from(&sms.username);
    c.ca_file.clone_from(&sms.ca_file);
    if let Some(ms) = sms.timeout_ms {
        c.timeout = Duration::from_millis(ms);
    }
    let sender = rekey_sms::TwilioSms::new(&c).map_err(|e| missing("sms", &e.to_string()))?;
    Ok(Some(Arc::new(sender)))
}

/// The WebAuthn relying party of an enabled `[passkeys]` section: the portal's public URL is
/// the origin, its host the RP id unless configured.
fn passkeys(
    config: &Config,
    server: &crate::config::ServerConfig,
) -> Result<Option<Arc<dyn rekey_core::passkey::Passkeys>>, CliError> {
    let Some(p) = config.passkeys.as_ref().filter(|p| p.enabled) else {
        return Ok(None);
    };
    let origin = server.public_base_url.trim_end_matches('/').to_owned();
    let host = url::Url::parse(&origin)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .ok_or_else(|| missing("server.public_base_url", "not a URL with a host"))?;
    let cfg = rekey_passkey::PasskeyConfig {
        rp_id: p.rp_id.clone().unwrap_or(host),
        origin,
        rp_name: server.organisation.clone(),
    };
    let rp = rekey_passkey::WebauthnPasskeys::new(&cfg)
        .map_err(|e| missing("passkeys", &e.to_string()))?;
    Ok(Some(Arc::new(rp)))
}

/// Build the portal `rekey serve` runs: the engine (mail after the answer) and the router.
pub async fn build_portal(config: &Config) -> Result<Portal, CliError> {
    if config.smtp.is_none() {
        return Err(missing(
            "smtp",
            "add an [smtp] section: codes are sent by mail",
        ));
    }
    let built = engine(config, true).await?;
    let server = config
        .server
        .as_ref()
        .ok_or_else(|| missing("server", "add a [server] section"))?;
    let web = rekey_web::WebConfig {
        organisation: server.organisation.clone(),
        trusted_proxies: server.trusted_proxies.clone(),
        identify_deadline: Duration::from_millis(server.identify_deadline_ms),
        answer_deadline: Duration::from_millis(server.answer_deadline_ms),
        password_deadline: Duration::from_millis(server.password_deadline_ms),
        api_clients: config.api.clients()?,
        ..rekey_web::WebConfig::default()
    };
    let checkpoint_key = match &config.audit.checkpoint_key_file {
        Some(path) => Some((
            crate::audit_chain::load_key(path)
                .map_err(|e| missing("audit.checkpoint_key_file", &e.to_string()))?,
            Duration::from_secs(config.audit.checkpoint_every_secs),
        )),
        None => None,
    };
    let canary = crate::canary::Canary::from_config(&config.canary, built.directory.base_dn())
        .map_err(|why| missing("canary", &why))?;
    let ops_router = crate::ops::router(&built);
    let mut router = rekey_web::router(built.engine.clone(), web);
    let ops = match &server.ops_listen {
        Some(addr) => {
            let listener = std::net::TcpListener::bind(addr)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|e| missing("server.ops_listen", &format!("{addr}: {e}")))?;
            Some((listener, ops_router))
        }
        None => {
            router = router.merge(ops_router);
            None
        }
    };
    Ok(Portal {
        built,
        router,
        listen: server.listen.clone(),
        public_base_url: server.public_base_url.clone(),
        ops: std::sync::Mutex::new(ops),
        canary,
        reminders: config.reminders.clone(),
        directory_config: config.directory.clone(),
        checkpoints: std::sync::Mutex::new(checkpoint_key),
        forward: crate::forward::checked(config.audit.forward.as_ref())?,
    })
}

/// Deliver the outbox every few seconds for as long as the runtime lives: codes and notices
/// queued by any replica, retries after a relay outage, and what a restart left behind.
pub fn spawn_outbox_worker(engine: Engine) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(OUTBOX_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = engine.deliver_outbox().await {
                tracing::warn!(error = %e, "outbox: delivery round failed; retrying");
            }
        }
    })
}

/// The background tasks `rekey serve` runs beside its listener; dropping this stops them.
pub struct Workers(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Portal {
    /// Start the background work: the outbox worker (and whatever else the config enables).
    #[must_use]
    pub fn start_workers(&self) -> Workers {
        let mut tasks = vec![
            spawn_outbox_worker(self.built.engine.clone()),
            crate::ops::spawn_dc_watch(self.built.directory.clone(), self.directory_config.clone()),
        ];
        tasks.extend(crate::remind::spawn(
            &self.reminders,
            self.built.engine.clone(),
            self.built.directory.clone(),
        ));
        let checkpoints = self
            .checkpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((key, every)) = checkpoints {
            tasks.push(crate::audit_chain::spawn_checkpoints(
                self.built.store.clone(),
                key,
                every,
            ));
        }
        tasks.extend(crate::forward::spawn(
            self.forward.as_ref(),
            self.built.store.clone(),
        ));
        if let Some(canary) = &self.canary {
            tasks.push(
                canary
                    .clone()
                    .spawn(self.built.engine.clone(), self.built.directory.clone()),
            );
        }
        let ops = self
            .ops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((listener, router)) = ops {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => {
                    if let Ok(addr) = listener.local_addr() {
                        println!("rekey: metrics and health on http://{addr}");
                    }
                    tasks.push(tokio::spawn(async move {
                        if let Err(e) = axum::serve(listener, router).await {
                            tracing::error!(error = %e, "ops listener stopped");
                        }
                    }));
                }
                Err(e) => tracing::error!(error = %e, "ops listener not started"),
            }
        }
        Workers(tasks)
    }

    /// The address `/metrics`, `/healthz` and `/readyz` are served on when `ops_listen` is set
    /// (before [`start_workers`](Self::start_workers) takes it).
    #[must_use]
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
    }

    /// Serve on `listener` (with client addresses for the audit) until `shutdown` resolves,
    /// with the background workers alongside.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let workers = self.start_workers();
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await;
        drop(workers);
        result
    }
}
