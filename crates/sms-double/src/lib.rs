//! # rekey-sms-double — a TEST DOUBLE, not Twilio
//!
//! A local HTTP server that follows Twilio's *public documentation* of the Programmable
//! Messaging REST API closely enough to test Rekey's SMS sender (`rekey-sms`) offline. It was
//! written from the documentation, not from Twilio code, and it is not Twilio: nothing reaches a
//! phone. Where the documentation is silent, the behaviour is a guess and says so. For tests and
//! the dev environment only; never linked into the `rekey` binary.
//!
//! The Twilio part, `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`
//! (`application/x-www-form-urlencoded`):
//! - HTTP Basic auth as the account (`AccountSid:AuthToken`) or as one of its API keys
//!   (`KeySid:KeySecret`); otherwise 401, Twilio code 20003. A valid login on another account's
//!   path is 404, code 20404.
//! - `To` is required (21604) and E.164, `+` then 8–15 digits (21211); `Body` is required
//!   (21602) and at most 1,600 characters (21617); `From` or `MessagingServiceSid` is required
//!   (21603).
//! - The documented magic `To` numbers of Twilio's test credentials answer their documented
//!   errors: `+15005550001` 21211, `+15005550002` 21612, `+15005550003` 21408, `+15005550004`
//!   21610, `+15005550009` 21614.
//! - Success is 201 with a message resource (`sid` `SM` + 32 hex, `status` `queued`, or
//!   `accepted` when sent through a Messaging Service, `date_created` in RFC 2822 …); the message
//!   is recorded in memory.
//! - Errors are Twilio's envelope `{"code", "message", "more_info", "status"}`.
//!
//! The control part (not Twilio), under `/_control/`, mirroring [`Handle`]'s methods:
//! - `GET /_control/messages[?to=+…]` — the recorded messages `{sid, to, from,
//!   messaging_service_sid, body, at}`, oldest first;
//! - `POST /_control/fail` — `{"status": 500, "code": 30008, "count": N}`: the next N Messages
//!   requests (all of them until a reset when `count` is absent) fail with that status and a
//!   Twilio error body (`code` defaults to 20000 + status: 20429, 20500, 20503 …);
//! - `POST /_control/slow` — `{"ms": N}`: every Messages answer waits N ms first;
//! - `POST /_control/reset` — forgets messages, failures and slowness.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use rekey_sms_double::{Config, Failure};
//! let double = rekey_sms_double::start(Config::new("AC123", "token")).await?;
//! let base_url = double.url(); // rekey-sms `base_url`
//! double.fail(Failure::new(429).times(1)).map_err(std::io::Error::other)?;
//! let sent = double.messages();
//! # Ok(()) }
//! ```

mod api;
mod control;
mod time;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use time::{iso8601, rfc2822};

/// Who may send, and where the double listens.
#[derive(Clone)]
pub struct Config {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The one account: the `{AccountSid}` of the path and the Basic auth user name.
    pub account_sid: String,
    /// The account's Basic auth password.
    pub auth_token: String,
    /// API keys of the account, `(key SID, key secret)`: the other accepted Basic auth pairs.
    pub api_keys: Vec<(String, String)>,
}

impl Config {
    /// One account, no API key, a free loopback port.
    #[must_use]
    pub fn new(account_sid: impl Into<String>, auth_token: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            api_keys: Vec::new(),
        }
    }

    /// Also accept this API key (`KeySid:KeySecret`) for the account.
    #[must_use]
    pub fn api_key(mut self, sid: impl Into<String>, key_secret: impl Into<String>) -> Self {
        self.api_keys.push((sid.into(), key_secret.into()));
        self
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.api_keys.iter().map(|(sid, _)| sid.as_str()).collect();
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("api_keys", &keys)
            .finish()
    }
}

/// A message the double accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `SM` + 32 hex digits.
    pub sid: String,
    pub to: String,
    /// `From`, when given.
    pub from: Option<String>,
    /// `MessagingServiceSid`, when given.
    pub messaging_service_sid: Option<String>,
    pub body: String,
    /// When it was accepted.
    pub at: SystemTime,
}

/// An injected failure: Messages requests answer `status` with a Twilio error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// 400–599.
    pub status: u16,
    /// The Twilio error code; by default 20000 + status (20429, 20500, 20503 …).
    #[serde(default)]
    pub code: Option<u32>,
    /// How many requests fail; `None`: every one until [`Handle::reset`].
    #[serde(default)]
    pub count: Option<u32>,
}

impl Failure {
    /// Every request fails with `status` (and the default code) until reset.
    #[must_use]
    pub fn new(status: u16) -> Self {
        Self {
            status,
            code: None,
            count: None,
        }
    }
    /// With this Twilio error code.
    #[must_use]
    pub fn code(mut self, code: u32) -> Self {
        self.code = Some(code);
        self
    }
    /// Only the next `count` requests.
    #[must_use]
    pub fn times(mut self, count: u32) -> Self {
        self.count = Some(count);
        self
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) messages: Vec<Message>,
    pub(crate) failure: Option<Failure>,
    pub(crate) delay: Duration,
    pub(crate) requests: u64,
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn fail(&self, failure: Failure) -> Result<(), String> {
        if !(400..=599).contains(&failure.status) {
            return Err(format!(
                "status {} is not an error status (400-599)",
                failure.status
            ));
        }
        self.state().failure = Some(failure);
        Ok(())
    }

    pub(crate) fn reset(&self) {
        *self.state() = State::default();
    }
}

/// A running double. Dropping it stops the server; [`Handle::stop`] also waits until it has.
pub struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts a double on `config.listen` (by default a free loopback port).
///
/// # Errors
/// The address cannot be bound.
pub async fn start(config: Config) -> std::io::Result<Handle> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        config,
        state: Mutex::new(State::default()),
    });
    let app = router(shared.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(Handle {
        shared,
        addr,
        url: format!("http://{addr}"),
        shutdown: Some(tx),
        task: Some(task),
    })
}

impl Handle {
    /// `http://127.0.0.1:PORT`: the base URL (Twilio's is `https://api.twilio.com`).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
    /// The listening address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The account's Messages endpoint.
    #[must_use]
    pub fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.url, self.shared.config.account_sid
        )
    }
    /// Every accepted message, oldest first.
    #[must_use]
    pub fn messages(&self) -> Vec<Message> {
        self.shared.state().messages.clone()
    }
    /// The accepted messages to `to`, oldest first.
    #[must_use]
    pub fn messages_to(&self, to: &str) -> Vec<Message> {
        let st = self.shared.state();
        st.messages.iter().filter(|m| m.to == to).cloned().collect()
    }
    /// Messages requests received so far (answered or not), control routes excluded.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.shared.state().requests
    }
    /// Makes Messages requests fail (see [`Failure`]); replaces an earlier failure.
    ///
    /// # Errors
    /// The status is not 400–599.
    pub fn fail(&self, failure: Failure) -> Result<(), String> {
        self.shared.fail(failure)
    }
    /// Every Messages answer waits `delay` first (zero: none).
    pub fn slow(&self, delay: Duration) {
        self.shared.state().delay = delay;
    }
    /// Forgets messages, failures, slowness and the request count.
    pub fn reset(&self) {
        self.shared.reset();
    }
    /// Stops the server and waits until it no longer listens (answers in progress finish).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages.json",
            post(api::create_message),
        )
        .route("/_control/messages", get(control::messages))
        .route("/_control/fail", post(control::fail))
        .route("/_control/slow", post(control::slow))
        .route("/_control/reset", post(control::reset))
        .with_state(shared)
}
