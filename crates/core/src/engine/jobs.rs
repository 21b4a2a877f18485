//! Zone work that outlives the request, kept in the outbox so a restart loses none of it:
//!
//! - `Landing`: a later zone's write that failed after the first zone landed. Retried until it
//!   lands or `zone_retry_window` closes, waiting what the zone's `Retry-After` asks (else
//!   backoff), and always as a verified replay (`ResetOptions::replay_of`): a zone that can see
//!   the password was set since answers without writing twice (invariant 25). The payload holds
//!   the new password, sealed (AES-256-GCM, a key derived from the server secret that never
//!   enters the database) and deleted when the item ends: the one place a new password outlives
//!   its request, bounded by the retry window (DESIGN invariant 30 names this exception).
//! - `Proof`: a password that reaches a zone by synchronisation (Entra password hash sync from
//!   AD), watched with `LandingZone::arrived` until it arrives or `sync_deadline` passes.
//!
//! Every attempt at a zone write is one audit record (actor `system`, the reset's support id);
//! a proof is one record when it ends. Both keep the reset's receipt (result page) current.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::trail::Trail;
use super::zones::{Job, ZoneReport, ZoneState};
use super::{Engine, EngineResult, RequestContext};
use crate::account::{Account, Guid};
use crate::audit::{Actor, Operation};
use crate::error::UserFacing;
use crate::landing::{
    Diagnostic, LandingError, LandingZone, Plan, Rejection, ResetOptions, WriteGrant, ZoneId,
};
use crate::secret::Password;
use crate::store::{OutboxItem, OutboxKind};

#[derive(Serialize, Deserialize)]
struct LandingJob {
    zone: ZoneId,
    user: [u8; 16],
    since: i64,
    /// The receipt's store key.
    receipt: String,
    support_id: String,
    must_change: bool,
    password: Zeroizing<String>,
}

#[derive(Serialize, Deserialize)]
struct ProofJob {
    zone: ZoneId,
    user: [u8; 16],
    handle: String,
    since: i64,
    receipt: String,
    support_id: String,
}

/// A job for one zone.
trait ForZone {
    fn zone(&self) -> ZoneId;
}

impl ForZone for LandingJob {
    fn zone(&self) -> ZoneId {
        self.zone
    }
}

impl ForZone for ProofJob {
    fn zone(&self) -> ZoneId {
        self.zone
    }
}

/// What one attempt at a queued write came to.
enum Attempt {
    /// Final (landed, refused, absent, handed to a sync proof, or the window closed).
    Done(ZoneReport),
    /// Still queued: try again in `wait` seconds.
    Again { report: ZoneReport, wait: i64 },
}

/// Seconds to wait after a zone's failure: its `Retry-After` (rounded up), else backoff.
fn wait_after(e: &LandingError, attempts: u32) -> i64 {
    match e {
        LandingError::Throttled {
            retry_after_ms: Some(ms),
            ..
        } => i64::try_from(ms.div_ceil(1000)).unwrap_or(i64::MAX).max(1),
        _ => super::outbox::backoff(attempts),
    }
}

impl Engine {
    /// Queue a later zone's write for the outbox; the report says `queued` (or, if even the
    /// store failed, what the zone said).
    pub(crate) async fn retry_later(
        &self,
        job: &Job<'_>,
        new: &Password,
        options: ResetOptions,
        e: &LandingError,
    ) -> ZoneReport {
        let payload = LandingJob {
            zone: job.zone,
            user: job.account.guid.0,
            since: job.since,
            receipt: self.flow_key(&job.ticket.receipt),
            support_id: job.ticket.support_id.clone(),
            must_change: options.must_change,
            password: Zeroizing::new(new.expose().to_owned()),
        };
        let at = self.now() + wait_after(e, 1);
        let expires = job.since + self.inner.config.zone_retry_window;
        match self
            .queue_job(
                OutboxKind::Landing,
                &job.account.guid,
                &payload,
                at,
                expires,
            )
            .await
        {
            Ok(()) => ZoneReport {
                code: Some(e.code().to_owned()),
                ..ZoneReport::new(job.zone, ZoneState::Queued)
            },
            Err(_) => ZoneReport::from_error(job.zone, e),
        }
    }

    /// Queue the proof that a synced zone received the password; the report says `pending`.
    pub(crate) async fn watch(&self, job: &Job<'_>, handle: &str) -> ZoneReport {
        self.queue_proof(ProofJob {
            zone: job.zone,
            user: job.account.guid.0,
            handle: handle.to_owned(),
            since: job.since,
            receipt: self.flow_key(&job.ticket.receipt),
            support_id: job.ticket.support_id.clone(),
        })
        .await
    }

    async fn queue_proof(&self, proof: ProofJob) -> ZoneReport {
        let cfg = &self.inner.config;
        let at = proof.since + cfg.sync_poll;
        let expires = proof.since + cfg.sync_deadline;
        let (zone, user) = (proof.zone, Guid(proof.user));
        match self
            .queue_job(OutboxKind::Proof, &user, &proof, at, expires)
            .await
        {
            Ok(()) => ZoneReport::new(zone, ZoneState::Pending),
            // Nobody will watch: say so rather than promise a proof.
            Err(_) => ZoneReport::new(zone, ZoneState::NotSynced),
        }
    }

    async fn queue_job<T: Serialize>(
        &self,
        kind: OutboxKind,
        user: &Guid,
        payload: &T,
        not_before: i64,
        expires_at: i64,
    ) -> EngineResult<()> {
        let plain = Zeroizing::new(serde_json::to_vec(payload).unwrap_or_default());
        let id = crate::clock::token(self.inner.random.as_ref(), 16);
        let item = OutboxItem {
            payload: self.seal_bytes(&id, &plain),
            id,
            kind,
            user: Some(*user),
            not_before,
            expires_at,
            attempts: 0,
        };
        Ok(self.inner.store.enqueue(&item).await?)
    }

    /// A claimed item's job and its zone; `None` (the item given up, with a record) if the
    /// payload does not unseal under this server's key or the zone is no longer configured.
    async fn open_job<T: serde::de::DeserializeOwned + ForZone>(
        &self,
        item: &OutboxItem,
    ) -> EngineResult<Option<(T, &dyn LandingZone)>> {
        let Some(job) = self
            .unseal_bytes(item)
            .and_then(|p| serde_json::from_slice::<T>(&p).ok())
        else {
            self.job_given_up(item, "unsealable").await?;
            return Ok(None);
        };
        let zone = self.inner.zones.iter().find(|z| z.id() == job.zone());
        match zone {
            Some(z) => Ok(Some((job, z.as_ref()))),
            None => {
                self.job_given_up(item, "zone_not_configured").await?;
                Ok(None)
            }
        }
    }

    /// One attempt at a queued zone write (a claimed `Landing` item).
    pub(crate) async fn continue_landing(&self, item: &OutboxItem) -> EngineResult<()> {
        let now = self.now();
        let Some((job, zone)) = self.open_job::<LandingJob>(item).await? else {
            return Ok(());
        };
        let guid = Guid(job.user);
        let mut trail = Trail::new(Operation::Reset);
        trail.methods(&["outbox"]);
        trail.target_guid(Some(&guid));
        trail.note(&format!("outbox retry {}", item.attempts));
        let expired = item.expires_at <= now;
        let account = match self.inner.directory.by_guid(&guid).await {
            Ok(Some(a)) if self.inner.scope.check(&a, &self.inner.protected).is_ok() => a,
            // The directory is down: not a zone attempt; look again later.
            Err(_) if !expired => {
                let at = now + super::outbox::backoff(item.attempts);
                self.inner.store.retry(&item.id, item.attempts, at).await?;
                return Ok(());
            }
            found => {
                let (why, e) = match found {
                    Err(_) => (
                        "retry_window_over",
                        LandingError::Unavailable {
                            diagnostic: Diagnostic::new(None, "the directory did not answer"),
                        },
                    ),
                    _ => (
                        "no_longer_eligible",
                        LandingError::Rejected {
                            reason: Rejection::NoSuchUser,
                            diagnostic: Diagnostic::new(None, "not eligible now"),
                        },
                    ),
                };
                trail.note(why);
                let report = ZoneReport::from_error(job.zone, &e);
                return self
                    .end_job(item, &job.receipt, &job.support_id, trail, report)
                    .await;
            }
        };
        trail.target(&account);
        match self.attempt(zone, &account, &job, expired).await {
            Attempt::Done(report) => {
                self.end_job(item, &job.receipt, &job.support_id, trail, report)
                    .await
            }
            Attempt::Again { report, wait } => {
                if !self
                    .inner
                    .store
                    .retry(&item.id, item.attempts, now + wait)
                    .await?
                {
                    return Ok(());
                }
                trail.zone(report.audit());
                self.update_receipt(&job.receipt, &report).await;
                let ctx = self.system_ctx(&job.support_id);
                self.record(&ctx, trail, Ok(())).await
            }
        }
    }

    /// Plan and write once.
    async fn attempt(
        &self,
        zone: &dyn LandingZone,
        account: &Account,
        job: &LandingJob,
        expired: bool,
    ) -> Attempt {
        let again = |e: &LandingError| {
            if expired {
                Attempt::Done(ZoneReport::from_error(job.zone, e))
            } else {
                Attempt::Again {
                    report: ZoneReport {
                        code: Some(e.code().to_owned()),
                        ..ZoneReport::new(job.zone, ZoneState::Queued)
                    },
                    wait: wait_after(e, 2),
                }
            }
        };
        let done = Attempt::Done;
        match zone.plan(account).await {
            Ok(Plan::Write { .. }) => {}
            Ok(Plan::Absent) => return done(ZoneReport::new(job.zone, ZoneState::Absent)),
            Ok(Plan::Ambiguous) => {
                let refused = &Rejection::Ambiguous;
                return done(ZoneReport::failure(job.zone, ZoneState::Rejected, refused));
            }
            // It became a synced account since: nothing to write; prove its arrival instead.
            Ok(Plan::Sync { handle }) => {
                let proof = ProofJob {
                    zone: job.zone,
                    user: job.user,
                    handle,
                    since: job.since,
                    receipt: job.receipt.clone(),
                    support_id: job.support_id.clone(),
                };
                return done(self.queue_proof(proof).await);
            }
            Err(e) if e.rejection().is_some() => return done(ZoneReport::from_error(job.zone, &e)),
            Err(e) => return again(&e),
        }
        let options = ResetOptions {
            unlock: false,
            must_change: job.must_change,
            replay_of: Some(job.since),
        };
        let new = Password::new(job.password.to_string());
        let r = zone.reset(&WriteGrant::new(account), &new, options).await;
        match r {
            Err(e) if e.rejection().is_none() => again(&e),
            r => done(ZoneReport::from_result(job.zone, &r)),
        }
    }

    /// One look at a synced zone (a claimed `Proof` item): arrived → `synced after N s`; the
    /// deadline passed → `not synced within N min`; else look again after `sync_poll`.
    pub(crate) async fn continue_proof(&self, item: &OutboxItem) -> EngineResult<()> {
        let now = self.now();
        let Some((job, zone)) = self.open_job::<ProofJob>(item).await? else {
            return Ok(());
        };
        // A zone that does not answer now is asked again at the next look, like "not yet".
        let arrived = zone
            .arrived(&job.handle, job.since)
            .await
            .unwrap_or_default();
        let cfg = &self.inner.config;
        let report = match arrived {
            // Measured when Rekey saw it (to within `sync_poll`): what the zone reports as the
            // change time may be the on-premises change itself, not the arrival.
            Some(_) => ZoneReport {
                secs: Some((now - job.since).max(0)),
                ..ZoneReport::new(job.zone, ZoneState::Synced)
            },
            None if now + cfg.sync_poll < item.expires_at => {
                self.inner
                    .store
                    .retry(&item.id, item.attempts, now + cfg.sync_poll)
                    .await?;
                return Ok(());
            }
            None => ZoneReport {
                secs: Some(cfg.sync_deadline),
                ..ZoneReport::new(job.zone, ZoneState::NotSynced)
            },
        };
        let guid = Guid(job.user);
        let mut trail = Trail::new(Operation::SyncProof);
        trail.target_guid(Some(&guid));
        self.end_job(item, &job.receipt, &job.support_id, trail, report)
            .await
    }

    /// End an item with its final report: remove it (fenced), then the audit record and the
    /// receipt. A worker whose lease ran out changes nothing.
    async fn end_job(
        &self,
        item: &OutboxItem,
        receipt: &str,
        support_id: &str,
        mut trail: Trail,
        report: ZoneReport,
    ) -> EngineResult<()> {
        if !self.inner.store.finish(&item.id, item.attempts).await? {
            return Ok(());
        }
        if report.state == ZoneState::Landed {
            trail.landed();
        }
        trail.zone(report.audit());
        self.update_receipt(receipt, &report).await;
        let ctx = self.system_ctx(support_id);
        self.record(&ctx, trail, Ok(())).await
    }

    async fn job_given_up(&self, item: &OutboxItem, why: &str) -> EngineResult<()> {
        if !self.inner.store.finish(&item.id, item.attempts).await? {
            return Ok(());
        }
        let mut trail = Trail::new(match item.kind {
            OutboxKind::Proof => Operation::SyncProof,
            _ => Operation::Reset,
        });
        trail.target_guid(item.user.as_ref());
        trail.note(why);
        let ctx = self.system_ctx(&self.support_id());
        self.record::<()>(&ctx, trail, Err(super::EngineError::WrongStep))
            .await
            .or_else(|e| match e {
                super::EngineError::WrongStep => Ok(()),
                other => Err(other),
            })
    }

    fn system_ctx(&self, support_id: &str) -> RequestContext {
        RequestContext {
            support_id: support_id.to_owned(),
            actor: Actor::System,
            ..RequestContext::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_what_the_zone_asks() {
        let throttled = |ms| LandingError::Throttled {
            retry_after_ms: ms,
            diagnostic: Diagnostic::new(None, "429"),
        };
        assert_eq!(wait_after(&throttled(Some(1500)), 1), 2);
        assert_eq!(wait_after(&throttled(Some(30_000)), 1), 30);
        assert_eq!(wait_after(&throttled(Some(0)), 1), 1);
        assert_eq!(wait_after(&throttled(None), 3), 20);
        let down = LandingError::Unavailable {
            diagnostic: Diagnostic::new(None, "down"),
        };
        assert_eq!(wait_after(&down, 1), 5);
    }
}
