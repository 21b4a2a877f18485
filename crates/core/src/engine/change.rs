//! Change: the user knows the current password. ONE directory operation; Rekey's own attempt
//! budget, reserved before the DC is asked, stops anonymous guessing well before the DC would
//! lock the account (invariant 35).

use super::trail::Trail;
use super::zones::{Landing, ZoneReport};
use super::{Engine, EngineError, EngineResult, RequestContext, budget::Reservation};
use crate::account::Account;
use crate::audit::Operation;
use crate::landing::{LandingError, Rejection, ResetOptions, WriteGrant};
use crate::secret::Password;

/// A completed change: AD changed; later zones as for a reset (a separately managed cloud
/// account is written with the new password, a synced one is watched).
pub type ChangeOutcome = super::ResetOutcome;

/// Rejections that prove the DC accepted the current password (it checks that first): the
/// attempt cost the account nothing.
pub(crate) fn password_was_right(e: &LandingError) -> bool {
    matches!(
        e.rejection(),
        Some(
            Rejection::TooShort
                | Rejection::Complexity
                | Rejection::History
                | Rejection::MinAge
                | Rejection::Policy
        )
    )
}

impl Engine {
    /// Change a password knowing the current one. Every failure that could reveal whether the
    /// account exists, is locked or is in scope reads the same (`ChangeRefused`); policy messages
    /// come only after the DC accepted the current password.
    pub async fn change(
        &self,
        ctx: &RequestContext,
        who: &str,
        old: &Password,
        new: &Password,
    ) -> EngineResult<ChangeOutcome> {
        let mut trail = Trail::new(Operation::Change);
        trail.methods(&["current_password"]);
        let result = self.change_inner(ctx, &mut trail, who, old, new).await;
        self.record(ctx, trail, result).await
    }

    /// The checks every anonymous password attempt passes before the DC sees it: the per-IP
    /// budget, a known, eligible, unlocked account, a non-blank password, and a reserved unit of
    /// the account's attempt budget. Any refusal is `refused` (the same answer for all).
    pub(crate) async fn password_attempt(
        &self,
        ctx: &RequestContext,
        trail: &mut Trail,
        who: &str,
        password: &Password,
        refused: EngineError,
    ) -> EngineResult<(Account, Reservation)> {
        self.ip_budget(ctx, "password").await?;
        let Some(account) = self.find(who, trail).await? else {
            trail.note("unknown");
            return Err(refused);
        };
        trail.target(&account);
        if let Err(why) = self.inner.scope.check(&account, &self.inner.protected) {
            trail.note(why.as_str());
            return Err(refused);
        }
        if account.state.locked || password.is_blank() {
            trail.note("locked_or_blank");
            return Err(refused);
        }
        match self.reserve_password_attempt(&account).await? {
            // Locked meanwhile (read again under the lease): no DC attempt, nothing spent.
            Some((fresh, reservation)) if fresh.state.locked => {
                self.settle(reservation, true).await;
                trail.note("locked_or_blank");
                Err(refused)
            }
            Some(reserved) => Ok(reserved),
            None => {
                trail.note("budget");
                Err(refused)
            }
        }
    }

    async fn change_inner(
        &self,
        ctx: &RequestContext,
        trail: &mut Trail,
        who: &str,
        old: &Password,
        new: &Password,
    ) -> EngineResult<ChangeOutcome> {
        if new.is_blank() {
            trail.note("blank_new_password");
            return Err(EngineError::ChangeRefused);
        }
        // Before the account is even looked up, so the answer is the same for every account
        // (the user's own names are AD's complexity rule's business here).
        if !self.banned_ok(new, &[]) {
            return Err(EngineError::Banned);
        }
        if !self.breach_ok(trail, new).await? {
            return Err(EngineError::Breached);
        }
        let (account, reservation) = self
            .password_attempt(ctx, trail, who, old, EngineError::ChangeRefused)
            .await?;
        let grant = WriteGrant::new(&account);
        let mut landing = Landing::default();
        // The change itself is the judge's alone (AD verifies the old password, history and age;
        // no other zone can).
        if let Some(zone) = self.inner.zones.first() {
            let r = zone.change(&grant, old, new).await;
            landing.push(trail, ZoneReport::from_result(zone.id(), &r));
            if let Err(e) = r {
                self.settle(reservation, password_was_right(&e)).await;
                return self.change_failed(trail, &account, e).await;
            }
            trail.landed();
        }
        self.settle(reservation, true).await;
        // Then the later zones, as after a reset: a separately managed cloud account would keep
        // the old password otherwise. A refusal there (privileged) is that zone's outcome: AD
        // has already changed, by the user's own hand.
        let ticket = self.ticket(&ctx.support_id);
        if self.inner.zones.len() > 1 {
            let plans = self.ask_plans(&account).await;
            let options = ResetOptions::default();
            self.land_later(trail, &account, new, options, &plans, &ticket, &mut landing)
                .await;
        }
        let _ = self.inner.store.delete_user_flows(&account.guid).await;
        self.notify_done(&account, Operation::Change).await;
        Ok(ChangeOutcome {
            receipt: self.keep_receipt(&ticket, &account, &landing).await,
            zones: landing.reports,
            support_id: ctx.support_id.clone(),
        })
    }

    async fn change_failed(
        &self,
        trail: &mut Trail,
        account: &Account,
        e: LandingError,
    ) -> EngineResult<ChangeOutcome> {
        match e.rejection() {
            // Wrong, or locked by someone else's attempts: the same answer as any failure.
            Some(Rejection::WrongOldPassword | Rejection::AccountLocked) => {
                trail.note("bad_password");
                Err(EngineError::ChangeRefused)
            }
            Some(Rejection::MinAge) => {
                let policy = self.inner.directory.effective_policy(account).await?;
                let allowed =
                    policy.change_allowed_at(account.state.pwd_last_set, self.inner.clock.now());
                Err(EngineError::TooSoon {
                    allowed_at: allowed.map(crate::clock::unix),
                })
            }
            _ => Err(EngineError::Landing(e)),
        }
    }
}
