//! Rekey's own budget of anonymous password attempts per account (invariant 35).
//!
//! A wrong password at the DC raises the account's badPwdCount, so an anonymous caller could
//! lock accounts through the portal. Two things are taken atomically in the store BEFORE any DC
//! attempt (30 parallel requests cannot all see "budget left"):
//! - an in-flight lease: one attempt per account at a time, so each attempt sees the DC's
//!   badPwdCount after the previous one finished (concurrent wrong binds are also where a DC's
//!   own bookkeeping is weakest);
//! - a unit of the account's budget, given back only when the DC accepted the password; a wrong
//!   password, a lost answer and an unreachable DC all keep it spent.

use super::{Engine, EngineResult};
use crate::account::Account;

/// How long an in-flight lease holds if its holder dies mid-attempt (seconds).
const IN_FLIGHT_SECS: i64 = 60;

/// A reserved attempt: the budget unit and the in-flight lease.
pub(crate) struct Reservation {
    key: String,
    id: i64,
    lease_key: String,
    lease: i64,
}

impl Engine {
    /// Reserve one attempt against `account`, or `None` when Rekey must not ask the DC now (an
    /// attempt for this account is in flight, or the budget is spent). On `Some`, the returned
    /// account's badPwdCount is current (re-read under the lease when earlier attempts of ours ran).
    ///
    /// The limit keeps the account's badPwdCount at or below `threshold − lockout_margin`:
    /// failures the DC counted that are not ours (the user's own typos) lower it. With no
    /// lockout threshold the per-window budget alone applies.
    pub(crate) async fn reserve_password_attempt(
        &self,
        account: &Account,
    ) -> EngineResult<Option<(Account, Reservation)>> {
        let now = self.now();
        let lease_key = format!("pw-inflight:{}", account.guid);
        let store = &self.inner.store;
        let Some(lease) = store.reserve(&lease_key, now, IN_FLIGHT_SECS, 1).await? else {
            return Ok(None);
        };
        let unit = self.reserve_unit(account, now).await;
        match unit {
            Ok(Some((fresh, key, id))) => Ok(Some((
                fresh,
                Reservation {
                    key,
                    id,
                    lease_key,
                    lease,
                },
            ))),
            other => {
                let _ = store.release(&lease_key, lease).await;
                other.map(|_| None)
            }
        }
    }

    async fn reserve_unit(
        &self,
        account: &Account,
        now: i64,
    ) -> EngineResult<Option<(Account, String, i64)>> {
        let cfg = &self.inner.config;
        let policy = self.inner.directory.effective_policy(account).await?;
        let window = i64::try_from(policy.lockout_window.as_secs())
            .unwrap_or(1800)
            .max(1800);
        let key = format!("pw-attempt:{}", account.guid);
        let ours = self.inner.store.hits(&key, now, window).await?;
        // Earlier attempts of ours may have finished after the caller read the account: read it
        // again under the lease. Without any (the common case) the caller's read is as fresh.
        let account = if ours > 0 {
            match self.inner.directory.by_guid(&account.guid).await? {
                Some(a) => a,
                None => return Ok(None),
            }
        } else {
            account.clone()
        };
        let mut limit = cfg.change_failure_budget;
        if policy.lockout_threshold > 0 {
            let theirs = account.state.bad_pwd_count.saturating_sub(ours);
            let cap = policy.lockout_threshold.saturating_sub(cfg.lockout_margin);
            limit = limit.min(cap.saturating_sub(theirs));
        }
        let id = self.inner.store.reserve(&key, now, window, limit).await?;
        Ok(id.map(|id| (account, key, id)))
    }

    /// The attempt is over. `harmless`: the DC accepted the password, so the unit goes back;
    /// otherwise it stays spent. The in-flight lease ends either way (best effort: a lease that
    /// stays only makes Rekey stricter, for a minute).
    pub(crate) async fn settle(&self, r: Reservation, harmless: bool) {
        if harmless {
            let _ = self.inner.store.release(&r.key, r.id).await;
        }
        let _ = self.inner.store.release(&r.lease_key, r.lease).await;
    }
}
