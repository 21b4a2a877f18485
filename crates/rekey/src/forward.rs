//! The continuous audit forwarder: every audit record, as it is written, to an RFC 5424 syslog
//! receiver over TLS (default) or TCP, one octet-counted frame per record (RFC 6587), resuming
//! after a restart (`[audit.forward]`, docs/audit-forwarding.md).
//!
//! Delivery is at least once, never with a gap. The cursor (the last record the receiver is known
//! to have, per target, in the store) moves only after a batch was written and flushed AND the
//! connection was later still seen open (a syslog receiver never sends, so end of stream means it
//! went away, and what was written since may be lost): records written on a connection that then
//! closed, or in the last moments before `rekey serve` stopped, are sent again. Every message
//! carries the record's `seq` and chain `hash` in its structured data (and the support id), so a
//! collector drops a duplicate by `seq`, and sees a gap in `seq` (there should be none).
//!
//! Each record is checked against the hash chain as it goes (linked to the record sent before it,
//! hash matching its body): one that does not verify is still sent — a collector must see it —
//! but marked `chain="broken"`, logged as an error with the problem (RK-AUDIT-001) and counted
//! (`rekey_audit_forward_broken_total`); `rekey audit verify` names it. A record whose body is not
//! an event is sent as an `undecodable` message naming its `seq`.
//!
//! When the receiver is unreachable the worker retries with backoff (1 s doubling up to
//! `retry_max_secs`) and logs ONE warning per outage (RK-AUDIT-006), then one line when it is
//! back. With several replicas on one database a lease in the cursor's row lets one of them
//! forward at a time; another takes over within [`LEASE`] after it stops.

mod conn;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rekey_core::audit::{AuditRecord, GENESIS};
use rekey_core::audit_checkpoint::Walker;
use rekey_core::audit_export::{Chain, ForwardBody, SyslogOptions, decode, forward_message};
use rekey_core::clock::{Clock, unix_ms};
use rekey_core::store::{Store, StoreError};
use rekey_core::system::SystemClock;
use rekey_store::{ForwardCursor, SqlStore};

use crate::config::ConfigError;
use crate::config::audit::{ForwardFormat, ForwardSection};
use conn::{Conn, Connector};

/// How long a forwarder's claim on a target lasts without renewal (it renews on every pass).
pub const LEASE: Duration = Duration::from_secs(30);

/// Check `[audit.forward]` for `build_portal`: the target, the facility and every TLS file are
/// read now, so a mistake stops `rekey serve` at start rather than forwarding nothing.
///
/// # Errors
/// `ConfigError::Key` naming the `audit.forward.*` key.
pub fn checked(section: Option<&ForwardSection>) -> Result<Option<ForwardSection>, ConfigError> {
    match section {
        Some(s) => {
            Forwarder::new(s)?;
            Ok(Some(s.clone()))
        }
        None => Ok(None),
    }
}

/// Start forwarding if `[audit.forward]` is configured with a `target`.
#[must_use]
pub fn spawn(
    section: Option<&ForwardSection>,
    store: Arc<SqlStore>,
) -> Option<tokio::task::JoinHandle<()>> {
    match Forwarder::new(section?) {
        Ok(Some(f)) => Some(tokio::spawn(f.run(store))),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "audit forwarding not started");
            None
        }
    }
}

/// Syslog facility by name (RFC 5424 §6.2.1).
fn facility(name: &str) -> Option<u8> {
    Some(match name {
        "user" => 1,
        "daemon" => 3,
        "auth" => 4,
        "authpriv" => 10,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// The forwarder of one `[audit.forward]` target.
pub struct Forwarder {
    /// The cursor's key in the store.
    name: String,
    /// Who holds the lease: this instance's host name.
    holder: String,
    target: String,
    connector: Connector,
    sys: SyslogOptions,
    body: ForwardBody,
    poll: Duration,
    batch: u32,
    retry_max: Duration,
}

/// Where the worker stands between passes.
#[derive(Default)]
struct State {
    conn: Option<Conn>,
    /// Verified up to its head; rebuilt when the head is not the cursor.
    walker: Option<Walker>,
    /// Written on `conn`, not yet confirmed (the cursor moves to it once `conn` is seen open).
    pending: Option<(i64, [u8; 32])>,
    /// Records up to here whose break was already logged.
    reported: i64,
    /// Since when the receiver (or the store) fails: warned once.
    down_since: Option<Instant>,
    store_down: bool,
    not_holder: bool,
}

enum Failure {
    Store(StoreError),
    Receiver(std::io::Error),
}

impl Forwarder {
    /// Build from the section; `None` when it names no `target`.
    ///
    /// # Errors
    /// `ConfigError::Key` naming the `audit.forward.*` key that cannot work.
    pub fn new(section: &ForwardSection) -> Result<Option<Self>, ConfigError> {
        let Some(target) = section.target.as_deref() else {
            return Ok(None);
        };
        let connector = Connector::new(section, target)?;
        let facility = facility(&section.facility).ok_or_else(|| ConfigError::Key {
            key: "audit.forward.facility",
            why: format!(
                "{:?}: expected auth, authpriv, daemon, user or local0 … local7",
                section.facility
            ),
        })?;
        if section.batch == 0 {
            return Err(ConfigError::Key {
                key: "audit.forward.batch",
                why: "must be at least 1".into(),
            });
        }
        let hostname = section.hostname.clone().unwrap_or_else(machine_name);
        Ok(Some(Self {
            name: section.name.clone().unwrap_or_else(|| target.to_owned()),
            holder: hostname.clone(),
            target: target.to_owned(),
            connector,
            sys: SyslogOptions {
                facility,
                hostname,
                app_name: section.app_name.clone(),
            },
            body: match section.format {
                ForwardFormat::Syslog => ForwardBody::Summary,
                ForwardFormat::Cef => ForwardBody::Cef,
            },
            poll: Duration::from_millis(section.poll_ms.clamp(50, 60_000)),
            batch: section.batch,
            retry_max: Duration::from_secs(section.retry_max_secs.max(1)),
        }))
    }

    /// Name the lease's holder (default: the host name). Two forwarders with the same holder
    /// both send; with different ones, one waits until the other's lease ends.
    #[must_use]
    pub fn with_holder(mut self, holder: &str) -> Self {
        holder.clone_into(&mut self.holder);
        self
    }

    /// Forward until the task is aborted.
    pub async fn run(self, store: Arc<SqlStore>) {
        let mut state = State::default();
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.pass(&store, &mut state).await {
                Ok(sent) => {
                    backoff = Duration::from_secs(1);
                    if state.store_down {
                        state.store_down = false;
                        tracing::info!(target_addr = %self.target, "audit forwarding: the store is back");
                    }
                    // A full batch: more may be waiting.
                    if sent < self.batch as usize {
                        tokio::time::sleep(self.poll).await;
                    }
                }
                Err(failure) => {
                    state.conn = None;
                    state.pending = None;
                    self.failed(&mut state, &failure);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry_max);
                }
            }
        }
    }

    fn failed(&self, state: &mut State, failure: &Failure) {
        match failure {
            Failure::Receiver(e) => {
                metrics::gauge!("rekey_audit_forward_up").set(0.0);
                if state.down_since.is_none() {
                    state.down_since = Some(Instant::now());
                    tracing::warn!(
                        target_addr = %self.target,
                        error = %e,
                        "RK-AUDIT-006: audit forwarding: the syslog receiver is unreachable; \
                         retrying with backoff, nothing is skipped"
                    );
                }
            }
            Failure::Store(e) => {
                if !state.store_down {
                    state.store_down = true;
                    tracing::warn!(
                        target_addr = %self.target,
                        error = %e,
                        "RK-STORE-001: audit forwarding: the store is unavailable; retrying"
                    );
                }
            }
        }
    }

    /// One pass: take the lease, confirm what was written last time, send the next batch.
    /// Returns how many records were written.
    async fn pass(&self, store: &SqlStore, state: &mut State) -> Result<usize, Failure> {
        let now = unix_ms(SystemClock.now());
        let lease = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        let claimed = store
            .claim_forward(&self.name, &self.holder, now, lease)
            .await
            .map_err(Failure::Store)?;
        let Some(mut cursor) = claimed else {
            if !state.not_holder {
                state.not_holder = true;
                tracing::info!(
                    target_addr = %self.target,
                    "audit forwarding: another instance forwards to this target; standing by"
                );
            }
            state.conn = None;
            state.pending = None;
            return Ok(0);
        };
        state.not_holder = false;
        if let Some((seq, hash)) = state.pending.take() {
            let open = match state.conn.as_mut() {
                Some(c) => conn::still_open(c).await,
                None => false,
            };
            if open {
                store
                    .advance_forward(&self.name, &self.holder, seq, &hash, now)
                    .await
                    .map_err(Failure::Store)?;
                if seq > cursor.seq {
                    cursor = ForwardCursor {
                        seq,
                        hash: Some(hash),
                    };
                }
                #[allow(clippy::cast_precision_loss)]
                metrics::gauge!("rekey_audit_forward_cursor").set(cursor.seq as f64);
            } else {
                // Closed since the write: send it again.
                state.conn = None;
            }
        }
        let page = store
            .audit_after(cursor.seq, self.batch)
            .await
            .map_err(Failure::Store)?;
        let Some(last) = page.last() else {
            return Ok(0);
        };
        let (last_seq, last_hash) = (last.seq, last.hash);
        // The walker continues from the record sent last; after a resend, from the cursor.
        if state
            .walker
            .as_ref()
            .is_some_and(|w| w.head().0 != cursor.seq)
        {
            state.walker = None;
        }
        let mut bytes = Vec::new();
        let mut broken = 0_u64;
        for r in &page {
            let chain = self.check(state, cursor, r);
            if chain == Chain::Broken {
                broken += 1;
            }
            let message = forward_message(r, decode(r).as_ref(), chain, self.body, &self.sys);
            conn::frame(&mut bytes, &message);
        }
        let conn = match state.conn.as_mut() {
            Some(c) => c,
            None => state
                .conn
                .insert(self.connector.connect().await.map_err(Failure::Receiver)?),
        };
        self.connector
            .write(conn, &bytes)
            .await
            .map_err(Failure::Receiver)?;
        state.pending = Some((last_seq, last_hash));
        metrics::gauge!("rekey_audit_forward_up").set(1.0);
        metrics::counter!("rekey_audit_forwarded_total").increment(page.len() as u64);
        if broken > 0 {
            metrics::counter!("rekey_audit_forward_broken_total").increment(broken);
        }
        if let Some(since) = state.down_since.take() {
            tracing::info!(
                target_addr = %self.target,
                down_secs = since.elapsed().as_secs(),
                "audit forwarding: the syslog receiver is reachable again"
            );
        }
        Ok(page.len())
    }

    /// The record's place in the chain, continuing from the record before it in this pass, or
    /// from `cursor` (the last record the receiver has) for the first.
    fn check(&self, state: &mut State, cursor: ForwardCursor, r: &AuditRecord) -> Chain {
        let walker = state.walker.get_or_insert_with(|| match cursor.hash {
            Some(hash) => Walker::resume((cursor.seq, hash), &[]),
            // Nothing sent yet: from genesis, or from the first record kept after
            // `rekey audit prune` (the chain before it is no longer here to check).
            None if r.seq == 1 => Walker::resume((0, GENESIS), &[]),
            None => Walker::resume((r.seq - 1, r.prev_hash), &[]),
        });
        match walker.page(std::slice::from_ref(r)) {
            Ok(()) => Chain::Verified,
            Err(problem) => {
                if r.seq > state.reported {
                    state.reported = r.seq;
                    tracing::error!(
                        target_addr = %self.target,
                        seq = r.seq,
                        problem = %problem,
                        "RK-AUDIT-001: audit record does not verify against the hash chain; \
                         forwarded marked chain=\"broken\" (run rekey audit verify)"
                    );
                }
                // Judge the next record against this one as stored.
                *walker = Walker::resume((r.seq, r.hash), &[]);
                Chain::Broken
            }
        }
    }
}
