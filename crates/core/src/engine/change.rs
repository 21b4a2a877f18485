//! Change: the user knows the current password. ONE directory operation; Rekey's own failure
//! budget stops anonymous guessing before the DC would lock the account (invariant 35).

use super::{
    AuditDetail, Engine, EngineError, EngineResult, RequestContext, wrong_old, zone_result,
};
use crate::account::{Account, Identifier};
use crate::audit::Operation;
use crate::error::UserFacing;
use crate::landing::LandingError;
use crate::secret::Password;

/// A completed change.
#[derive(Debug, Clone)]
pub struct ChangeOutcome {
    pub support_id: String,
}

impl Engine {
    /// How many more wrong passwords Rekey lets through for this account now: below the DC's
    /// effective lockout threshold (counting what the DC already counted) and within Rekey's own
    /// budget per lockout window. 0 = refuse without asking the DC.
    pub(crate) async fn password_attempts_left(&self, account: &Account) -> EngineResult<u32> {
        let policy = self.inner.directory.effective_policy(account).await?;
        let window = i64::try_from(policy.lockout_window.as_secs())
            .unwrap_or(1800)
            .max(1800);
        let ours = self
            .inner
            .store
            .hits(&format!("pw-fail:{}", account.guid), self.now(), window)
            .await?;
        let mut left = self.inner.config.change_failure_budget.saturating_sub(ours);
        if policy.lockout_threshold > 0 {
            // Leave the DC at least one attempt before lockout: never be the one that locks it.
            let dc_left = policy
                .lockout_threshold
                .saturating_sub(account.state.bad_pwd_count)
                .saturating_sub(1);
            let ours_cap = policy.lockout_threshold.saturating_sub(2);
            left = left.min(dc_left).min(ours_cap.saturating_sub(ours));
        }
        Ok(left)
    }

    pub(crate) async fn count_password_failure(&self, account: &Account) -> EngineResult<()> {
        self.inner
            .store
            .hit(&format!("pw-fail:{}", account.guid), self.now(), 86_400)
            .await?;
        Ok(())
    }

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
        self.ip_budget(ctx, "password").await?;
        let account = match Identifier::parse(who) {
            Some(id) => self.inner.directory.find(&id).await?,
            None => None,
        };
        let refuse = |why: &str| {
            AuditDetail::failed(&format!("{}:{why}", EngineError::ChangeRefused.code()))
        };
        let Some(account) = account else {
            self.audit(ctx, Operation::Change, None, refuse("unknown"))
                .await?;
            return Err(EngineError::ChangeRefused);
        };
        if let Err(why) = self.inner.scope.check(&account, &self.inner.protected) {
            self.audit(ctx, Operation::Change, Some(&account), refuse(why.as_str()))
                .await?;
            return Err(EngineError::ChangeRefused);
        }
        if account.state.locked || old.expose().is_empty() || new.is_blank() {
            self.audit(
                ctx,
                Operation::Change,
                Some(&account),
                refuse("locked_or_blank"),
            )
            .await?;
            return Err(EngineError::ChangeRefused);
        }
        if self.password_attempts_left(&account).await? == 0 {
            self.audit(ctx, Operation::Change, Some(&account), refuse("budget"))
                .await?;
            return Err(EngineError::ChangeRefused);
        }
        let mut audit_zones = Vec::new();
        for zone in &self.inner.zones {
            let r = zone.change(&account, old, new).await;
            audit_zones.push(zone_result(zone.id(), &r));
            if let Err(e) = r {
                return self.change_failed(ctx, &account, audit_zones, e).await;
            }
        }
        let detail = AuditDetail {
            ok: true,
            methods: vec!["current_password".into()],
            zones: audit_zones,
            error_code: None,
        };
        self.inner.store.delete_user_flows(&account.guid).await?;
        self.audit(ctx, Operation::Change, Some(&account), detail)
            .await?;
        self.notify_done(&account, Operation::Change).await;
        Ok(ChangeOutcome {
            support_id: ctx.support_id.clone(),
        })
    }

    async fn change_failed(
        &self,
        ctx: &RequestContext,
        account: &Account,
        zones: Vec<crate::audit::ZoneResult>,
        e: LandingError,
    ) -> EngineResult<ChangeOutcome> {
        let detail = AuditDetail {
            ok: false,
            methods: vec!["current_password".into()],
            zones,
            error_code: Some(e.code().to_owned()),
        };
        self.audit(ctx, Operation::Change, Some(account), detail)
            .await?;
        if wrong_old(&e) {
            self.count_password_failure(account).await?;
            return Err(EngineError::ChangeRefused);
        }
        if e.rejection() == Some(crate::landing::Rejection::MinAge) {
            let policy = self.inner.directory.effective_policy(account).await?;
            let allowed =
                policy.change_allowed_at(account.state.pwd_last_set, self.inner.clock.now());
            return Err(EngineError::TooSoon {
                allowed_at: allowed.map(crate::clock::unix),
            });
        }
        match e {
            // Locked (by someone else's attempts): same answer as any failure.
            LandingError::Rejected {
                reason: crate::landing::Rejection::AccountLocked,
                ..
            } => Err(EngineError::ChangeRefused),
            other => Err(EngineError::Landing(other)),
        }
    }
}
