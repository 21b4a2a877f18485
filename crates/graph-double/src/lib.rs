//! # rekey-graph-double — a TEST DOUBLE, not Microsoft Graph
//!
//! A local HTTP server that follows Microsoft's *public documentation* of the identity
//! platform's token endpoint and a few Graph v1.0 user APIs, closely enough to test Rekey's
//! EntraId landing zone offline. It was written from the documentation (see
//! `../shared/reference/entra-graph-and-windows-ad.md` §A), not from Microsoft code; where the
//! documentation is silent the behaviour is a guess and says so. For tests only; never linked
//! into the `rekey` binary.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use rekey_graph_double::{AppSpec, Double, UserSpec};
//! let double = Double::start().await?;
//! double.add_app(AppSpec::new("app-1").secret("s3cret")
//!     .permissions(&["User.Read.All", "User-PasswordProfile.ReadWrite.All"])
//!     .roles(&["User Administrator"])).map_err(std::io::Error::other)?;
//! double.add_user(UserSpec::cloud("0b1c…", "ann@example.com", "Old-Passw0rd"));
//! let token_url = double.token_url("tenant-1"); // POST here, then call {base_url}/v1.0/…
//! # Ok(()) }
//! ```

mod certs;
mod control;
mod graph;
mod jwt;
mod model;
mod reply;
mod sync;
mod token;

#[cfg(feature = "ad")]
pub mod ad;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Request, State as AxState};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::oneshot;

pub use certs::self_signed_cert;
pub use model::{AppSpec, LoggedRequest, SyncSettings, UserSpec, iso8601};
pub use reply::cloud_password_ok;
pub use sync::{BoxFuture, ChangeSource, MemOnPrem, OnPremUser, PasswordOracle};
pub use token::GRAPH_DEFAULT_SCOPE;

/// An `onPremisesImmutableId` from raw anchor bytes: standard base64 (with padding) of the 16
/// raw `objectGUID` (or `mS-DS-ConsistencyGuid`) bytes, as Entra Connect writes it.
pub fn immutable_id(raw_anchor: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(raw_anchor)
}

/// A fresh random object id (GUID-shaped) for a [`UserSpec`].
pub fn new_object_id() -> String {
    model::random_guid()
}

pub(crate) struct Shared {
    state: Mutex<model::State>,
    pub(crate) oracle: Arc<dyn PasswordOracle>,
    pub(crate) source: Arc<dyn ChangeSource>,
    pub(crate) base: String,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, model::State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How to start a double.
pub struct Options {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Checks a synced user's password on-prem.
    pub oracle: Arc<dyn PasswordOracle>,
    /// Tells when a synced user's on-prem password changed.
    pub source: Arc<dyn ChangeSource>,
    /// How often the sync loop looks (tests: 200 ms).
    pub sync_interval: Duration,
    /// Initial sync settings (default: running, 2 s delay).
    pub sync: SyncSettings,
}

impl Options {
    /// Loopback, free port, the given in-memory on-prem side, sync every 200 ms after 2 s.
    pub fn in_memory(on_prem: &MemOnPrem) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            oracle: Arc::new(on_prem.clone()),
            source: Arc::new(on_prem.clone()),
            sync_interval: Duration::from_millis(200),
            sync: SyncSettings {
                paused: false,
                delay_ms: 2000,
            },
        }
    }
}

/// A running double. Dropping it stops the server and the sync loop.
pub struct Double {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Double {
    /// Starts on a free loopback port with an empty in-memory on-prem side.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(Options::in_memory(&MemOnPrem::new())).await
    }

    /// Starts with explicit options.
    pub async fn start_with(opts: Options) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let mut state = model::State::new();
        state.sync = opts.sync;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            oracle: opts.oracle,
            source: opts.source,
            base: format!("http://{addr}"),
        });
        sync::spawn(Arc::downgrade(&shared), opts.sync_interval);
        let app = router(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            shared,
            addr,
            shutdown: Some(tx),
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://127.0.0.1:PORT` — the login and Graph base (Graph is under `/v1.0`).
    pub fn base_url(&self) -> &str {
        &self.shared.base
    }
    /// The tenant's token endpoint, also the `aud` client assertions must carry.
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.shared.base)
    }
    /// Registers (or replaces) an app. Fails if its certificate PEM does not parse.
    pub fn add_app(&self, app: AppSpec) -> Result<(), String> {
        control::add_app(&self.shared, app)
    }
    /// Registers (or replaces) a user.
    pub fn add_user(&self, user: UserSpec) {
        self.shared.state().add_user(user, SystemTime::now());
    }
    /// The next `count` Graph requests answer 429 with `Retry-After: {retry_after}`.
    pub fn throttle(&self, count: u32, retry_after: &str) {
        let mut st = self.shared.state();
        st.throttle.remaining = count;
        st.throttle.retry_after = retry_after.to_owned();
    }
    /// Pauses/resumes the sync and sets its delay.
    pub fn set_sync(&self, sync: SyncSettings) {
        self.shared.state().sync = sync;
    }
    /// `expires_in` (seconds) of tokens issued from now on.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.shared.state().expires_in = secs;
    }
    /// Adds directory roles to an existing user (e.g. `Global Administrator`); false if unknown.
    pub fn grant_roles(&self, id_or_upn: &str, roles: &[&str]) -> bool {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        control::grant_roles(&self.shared, id_or_upn, &roles)
    }
    /// The current sync settings.
    pub fn sync_settings(&self) -> SyncSettings {
        self.shared.state().sync
    }
    /// Every user's full view (as [`Double::user`]), ordered by object id.
    pub fn users(&self) -> Vec<Value> {
        control::all_users(&self.shared)
    }
    /// Requests seen so far (method, path, status, arrival) — no bodies, tokens or passwords.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.state().log.clone()
    }
    /// Every property of a user as Graph would return it with a full `$select` (for asserts).
    pub fn user(&self, id_or_upn: &str) -> Option<Value> {
        control::user_view(&self.shared, id_or_upn)
    }
    /// Runs one sync pass now (besides the loop).
    pub async fn sync_now(&self) {
        sync::sync_once(&self.shared).await;
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token::token))
        .route("/v1.0/users", get(graph::list_users))
        .route(
            "/v1.0/users/{id}",
            get(graph::get_user).patch(graph::patch_user),
        )
        .route("/v1.0/users/{id}/revokeSignInSessions", post(graph::revoke))
        .route("/v1.0/users/{id}/transitiveMemberOf", get(graph::member_of))
        .route("/v1.0/users/{id}/memberOf", get(graph::member_of))
        .merge(control::routes())
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            log_and_throttle,
        ))
        .with_state(shared)
}

async fn log_and_throttle(
    AxState(shared): AxState<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let arrived = SystemTime::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let throttled = path.starts_with("/v1.0/").then(|| {
        let mut st = shared.state();
        (st.throttle.remaining > 0).then(|| {
            st.throttle.remaining -= 1;
            st.throttle.retry_after.clone()
        })
    });
    let resp = match throttled.flatten() {
        Some(after) => reply::throttled(&after, req.headers()),
        None => next.run(req).await,
    };
    shared.state().log.push(LoggedRequest {
        method,
        path,
        status: resp.status().as_u16(),
        at_unix_ms: model::unix_ms(arrived),
    });
    resp
}
