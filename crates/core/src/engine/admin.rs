//! Operator entry points (the CLI today, the helpdesk console later): no gate — the operator is
//! authenticated by the OS and named in the audit — but the same scope, tier, state and policy
//! checks as self-service, the same landing, and one audit record each (invariant 34: one write
//! path).

use super::reset::ResetOutcome;
use super::trail::Trail;
use super::{Engine, EngineError, EngineResult, RequestContext};
use crate::account::Account;
use crate::audit::Operation;
use crate::landing::ResetOptions;
use crate::mask::mask_email;
use crate::secret::Password;
use crate::store::{Enrollment, MethodKind};

impl Engine {
    /// The account an operator names, if Rekey may write it: found, in scope, not privileged.
    pub(crate) async fn operator_target(
        &self,
        trail: &mut Trail,
        who: &str,
    ) -> EngineResult<Account> {
        let account = self.helpdesk_account(trail, who).await?;
        self.inner
            .scope
            .check(&account, &self.inner.protected)
            .map_err(EngineError::Ineligible)?;
        Ok(account)
    }

    /// Set a new password as an operator (`ctx.actor` names them), after AD's policy pre-check.
    pub async fn admin_reset(
        &self,
        ctx: &RequestContext,
        who: &str,
        new: &Password,
        options: ResetOptions,
    ) -> EngineResult<ResetOutcome> {
        let mut trail = Trail::new(Operation::Reset);
        trail.methods(&["operator"]);
        let result = self
            .admin_land(ctx, &mut trail, who, Some(new), options)
            .await;
        self.record(ctx, trail, result).await
    }

    /// Clear a lockout as an operator.
    pub async fn admin_unlock(
        &self,
        ctx: &RequestContext,
        who: &str,
    ) -> EngineResult<ResetOutcome> {
        let mut trail = Trail::new(Operation::Unlock);
        trail.methods(&["operator"]);
        let result = self
            .admin_land(ctx, &mut trail, who, None, ResetOptions::default())
            .await;
        self.record(ctx, trail, result).await
    }

    async fn admin_land(
        &self,
        ctx: &RequestContext,
        trail: &mut Trail,
        who: &str,
        new: Option<&Password>,
        options: ResetOptions,
    ) -> EngineResult<ResetOutcome> {
        let account = self.operator_target(trail, who).await?;
        let plans = match new {
            None => super::zones::Plans::none(),
            Some(_) => self
                .plans(trail, &account)
                .await
                .map_err(EngineError::Landing)?,
        };
        if let Some(new) = new {
            let mut policy = self.inner.directory.effective_policy(&account).await?;
            policy.entra_rules = plans.entra_rules();
            self.precheck(trail, &policy, &account, new).await?;
        }
        let ticket = self.ticket(&ctx.support_id);
        let landing = self
            .land(trail, &account, new, options, &plans, &ticket)
            .await;
        if let Some(e) = landing.first_error() {
            return Err(EngineError::Landing(e.clone()));
        }
        let op = if new.is_some() {
            let _ = self.inner.store.delete_user_flows(&account.guid).await;
            Operation::Reset
        } else {
            Operation::Unlock
        };
        self.notify_done(&account, op).await;
        Ok(ResetOutcome {
            receipt: self.keep_receipt(&ticket, &account, &landing).await,
            zones: landing.reports,
            support_id: ctx.support_id.clone(),
        })
    }

    /// Register a recovery address as an operator (bulk onboarding, the dev demo): no code is
    /// sent to confirm it, so the cool-down runs from now, and both addresses are told.
    pub async fn admin_enroll(
        &self,
        ctx: &RequestContext,
        who: &str,
        address: &str,
    ) -> EngineResult<()> {
        let mut trail = Trail::new(Operation::Enroll);
        trail.methods(&["operator"]);
        let result = self.admin_enroll_inner(&mut trail, who, address).await;
        self.record(ctx, trail, result).await
    }

    async fn admin_enroll_inner(
        &self,
        trail: &mut Trail,
        who: &str,
        address: &str,
    ) -> EngineResult<()> {
        let account = self.operator_target(trail, who).await?;
        let address = address.trim();
        if !super::enroll::valid_address(address) {
            return Err(EngineError::BadAddress);
        }
        let before = self.inner.store.enrollments(&account.guid).await?;
        self.inner
            .store
            .upsert_enrollment(&Enrollment::contact(
                account.guid,
                MethodKind::Email,
                address,
                self.now(),
            ))
            .await?;
        let what = format!(
            "the address {} was registered by an operator",
            mask_email(address)
        );
        self.notify_method_change(&account.guid, Some(&account), &before, &what, Some(address))
            .await;
        Ok(())
    }

    /// Issue a helpdesk one-time code (8 digits, single use, short-lived) for a caller the
    /// operator verified; `ctx.actor` names the operator. The code is returned to be read out,
    /// and counts as one gate of the lowest strength where the user's tier allows it.
    pub async fn helpdesk_code(&self, ctx: &RequestContext, who: &str) -> EngineResult<String> {
        let mut trail = Trail::new(Operation::HelpdeskCode);
        trail.methods(&["operator"]);
        let result = async {
            let account = self.operator_target(&mut trail, who).await?;
            self.issue_helpdesk_code(&mut trail, &account).await
        }
        .await;
        self.record(ctx, trail, result).await
    }
}
