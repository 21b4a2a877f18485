//! Rekey's own budget of anonymous password attempts per account (invariant 35).
//!
//! A wrong password at the DC raises the account's badPwdCount, so an anonymous caller could
//! lock accounts through the portal. A unit is reserved atomically in the store BEFORE any DC
//! attempt (30 parallel requests cannot all see "budget left"), and given back only when the DC
//! accepted the password; a wrong password, a lost answer (it may have reached the DC) and an
//! unreachable DC all keep it spent.

use super::{Engine, EngineResult};
use crate::account::Account;

/// A reserved attempt.
pub(crate) struct Reservation {
    key: String,
    id: i64,
}

impl Engine {
    fn attempt_key(account: &Account) -> String {
        format!("pw-attempt:{}", account.guid)
    }

    /// Reserve one attempt against `account`, or `None` when Rekey must not ask the DC now.
    ///
    /// The limit keeps the account's badPwdCount at or below `threshold − lockout_margin`:
    /// failures the DC counted that are not ours (the user's own typos) lower it. With no
    /// lockout threshold the per-window budget alone applies.
    pub(crate) async fn reserve_password_attempt(
        &self,
        account: &Account,
    ) -> EngineResult<Option<Reservation>> {
        let cfg = &self.inner.config;
        let policy = self.inner.directory.effective_policy(account).await?;
        let window = i64::try_from(policy.lockout_window.as_secs())
            .unwrap_or(1800)
            .max(1800);
        let key = Self::attempt_key(account);
        let now = self.now();
        let mut limit = cfg.change_failure_budget;
        if policy.lockout_threshold > 0 {
            let ours = self.inner.store.hits(&key, now, window).await?;
            let theirs = account.state.bad_pwd_count.saturating_sub(ours);
            let cap = policy.lockout_threshold.saturating_sub(cfg.lockout_margin);
            limit = limit.min(cap.saturating_sub(theirs));
        }
        let id = self.inner.store.reserve(&key, now, window, limit).await?;
        Ok(id.map(|id| Reservation { key, id }))
    }

    /// The DC accepted the password: the attempt cost the account nothing.
    pub(crate) async fn release(&self, reservation: Reservation) {
        // Best effort: a unit that stays spent only makes Rekey stricter.
        let _ = self
            .inner
            .store
            .release(&reservation.key, reservation.id)
            .await;
    }
}
