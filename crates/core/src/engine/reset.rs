//! Reset and unlock: identify → email code → (new password →) land → done.

use super::state::{FlowId, Loaded, Step};
use super::{
    AuditDetail, Engine, EngineError, EngineResult, RequestContext, precheck, zone_result,
};
use crate::account::{Account, Identifier};
use crate::audit::Operation;
use crate::error::UserFacing;
use crate::landing::{LandingError, ResetOptions, ZoneId};
use crate::notify::Email;
use crate::policy::PasswordPolicy;
use crate::secret::Password;
use crate::store::{FlowKind, MethodKind};

const PURPOSE: &str = "reset:email";

/// One zone's result, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneReport {
    pub zone: ZoneId,
    /// `landed`, `rejected`, `failed` or `indeterminate`.
    pub outcome: &'static str,
    pub code: Option<&'static str>,
    pub message: Option<&'static str>,
}

/// The end of a reset or unlock.
#[derive(Debug, Clone)]
pub struct ResetOutcome {
    pub zones: Vec<ZoneReport>,
    pub support_id: String,
}

impl ResetOutcome {
    #[must_use]
    pub fn landed_everywhere(&self) -> bool {
        self.zones.iter().all(|z| z.outcome == "landed")
    }
}

fn report(zone: ZoneId, r: &Result<crate::landing::Landed, LandingError>) -> ZoneReport {
    let z = zone_result(zone, r);
    let outcome = match z.outcome.as_str() {
        "landed" => "landed",
        "rejected" => "rejected",
        "indeterminate" => "indeterminate",
        _ => "failed",
    };
    ZoneReport {
        zone,
        outcome,
        code: r.as_ref().err().map(UserFacing::code),
        message: r.as_ref().err().map(UserFacing::message),
    }
}

impl Engine {
    /// Start a reset or unlock. The answer is the same whatever the account is (unknown,
    /// disabled, out of scope, privileged, unenrolled, locked or normal, invariant 9): a flow id.
    /// Only an eligible, enrolled account gets a code by mail.
    pub async fn start_reset(
        &self,
        ctx: &RequestContext,
        kind: FlowKind,
        who: &str,
    ) -> EngineResult<FlowId> {
        let kind = if kind == FlowKind::Unlock {
            FlowKind::Unlock
        } else {
            FlowKind::Reset
        };
        let found = match Identifier::parse(who) {
            Some(id) => self.inner.directory.find(&id).await?,
            None => None,
        };
        let (target, why) = match &found {
            None => (None, "unknown"),
            Some(account) => match self.eligible_enrolled(account).await? {
                Ok(address) => (Some((account, address)), "ok"),
                Err(why) => (None, why),
            },
        };
        let flow = self
            .new_flow(
                kind,
                target.as_ref().map(|(a, _)| a.guid),
                &Step::AwaitCode { attempts: 0 },
            )
            .await?;
        if let Some((account, address)) = &target {
            let subject = format!("Your {} verification code", self.inner.config.organisation);
            self.issue_code(&flow, &account.guid, PURPOSE, address, &subject)
                .await?;
        }
        let detail = if target.is_some() {
            AuditDetail::ok(vec![])
        } else {
            AuditDetail::failed(&format!("ineligible:{why}"))
        };
        self.audit(ctx, Operation::Identify, found.as_ref(), detail)
            .await?;
        Ok(flow)
    }

    /// `Ok(address)` if the account may reset by email now, else why not (for the audit only).
    async fn eligible_enrolled(
        &self,
        account: &Account,
    ) -> EngineResult<Result<String, &'static str>> {
        if let Err(why) = self.inner.scope.check(account, &self.inner.protected) {
            return Ok(Err(why.as_str()));
        }
        if self.sspr_locked(&account.guid).await? {
            return Ok(Err("sspr_locked"));
        }
        let now = self.now();
        let enrolled = self.inner.store.enrollments(&account.guid).await?;
        let email = enrolled.into_iter().find(|e| e.method == MethodKind::Email);
        Ok(match email {
            None => Err("not_enrolled"),
            Some(e) if e.verified_at + self.inner.config.enroll_cooldown > now => {
                Err("enrollment_cooling_down")
            }
            Some(e) => Ok(e.value),
        })
    }

    /// Check the emailed code of a reset or unlock flow. On success the flow gets a NEW id (the
    /// caller must replace its cookie: the id rotates at each privilege step, invariant 13).
    pub async fn verify_reset_code(
        &self,
        ctx: &RequestContext,
        flow: &str,
        code: &str,
    ) -> EngineResult<FlowId> {
        let loaded = self
            .load(flow, &[FlowKind::Reset, FlowKind::Unlock])
            .await?;
        let Step::AwaitCode { attempts } = loaded.step else {
            return Err(EngineError::WrongStep);
        };
        let result = self
            .check_code(&loaded, PURPOSE, code, attempts, |attempts| {
                Step::AwaitCode { attempts }
            })
            .await;
        let account = self.flow_account(&loaded).await?;
        if let Err(e) = result {
            self.audit(
                ctx,
                Operation::Verify,
                account.as_ref(),
                AuditDetail::failed(e.code()),
            )
            .await?;
            return Err(e);
        }
        // Exactly one caller wins the old id; the flow continues under a fresh one.
        if !self.inner.store.delete_flow(flow).await? {
            return Err(EngineError::WrongStep);
        }
        let methods = vec!["email_otp".to_owned()];
        let step = Step::Verified {
            methods: methods.clone(),
        };
        let rotated = self
            .new_flow(loaded.record.kind, loaded.record.user, &step)
            .await?;
        self.audit(
            ctx,
            Operation::Verify,
            account.as_ref(),
            AuditDetail::ok(methods),
        )
        .await?;
        Ok(rotated)
    }

    /// Which step a reset/unlock flow is at: `true` once the gate passed.
    pub async fn reset_verified(&self, flow: &str) -> EngineResult<bool> {
        let loaded = self
            .load(flow, &[FlowKind::Reset, FlowKind::Unlock])
            .await?;
        Ok(matches!(loaded.step, Step::Verified { .. }))
    }

    /// The effective policy to show on the new-password page (only after the gate).
    pub async fn reset_policy(&self, flow: &str) -> EngineResult<PasswordPolicy> {
        let loaded = self.load(flow, &[FlowKind::Reset]).await?;
        let Step::Verified { .. } = loaded.step else {
            return Err(EngineError::WrongStep);
        };
        let account = self.live_eligible(&loaded).await?;
        Ok(self.inner.directory.effective_policy(&account).await?)
    }

    async fn flow_account(&self, loaded: &Loaded) -> EngineResult<Option<Account>> {
        match loaded.user() {
            Some(guid) => Ok(self.inner.directory.by_guid(guid).await?),
            None => Ok(None),
        }
    }

    /// Re-read the account live and re-check scope, tier and state before a write (invariant 23).
    async fn live_eligible(&self, loaded: &Loaded) -> EngineResult<Account> {
        let account = self
            .flow_account(loaded)
            .await?
            .ok_or(EngineError::FlowExpired)?;
        self.inner
            .scope
            .check(&account, &self.inner.protected)
            .map_err(|_| EngineError::FlowExpired)?;
        Ok(account)
    }

    /// Set the new password in every landing zone, AD first.
    pub async fn complete_reset(
        &self,
        ctx: &RequestContext,
        flow: &str,
        new: &Password,
    ) -> EngineResult<ResetOutcome> {
        self.finish(ctx, flow, FlowKind::Reset, Some(new)).await
    }

    /// Clear the lockout (no password change).
    pub async fn complete_unlock(
        &self,
        ctx: &RequestContext,
        flow: &str,
    ) -> EngineResult<ResetOutcome> {
        self.finish(ctx, flow, FlowKind::Unlock, None).await
    }

    async fn finish(
        &self,
        ctx: &RequestContext,
        flow: &str,
        kind: FlowKind,
        new: Option<&Password>,
    ) -> EngineResult<ResetOutcome> {
        let loaded = self.load(flow, &[kind]).await?;
        let Step::Verified { methods } = loaded.step.clone() else {
            return Err(EngineError::WrongStep);
        };
        let account = self.live_eligible(&loaded).await?;
        if let Some(new) = new {
            let policy = self.inner.directory.effective_policy(&account).await?;
            precheck(&policy, &account, new)?;
        }
        // Claim the flow: a second submit (double click, replay) finds `Landing` and stops.
        self.advance(&loaded, &Step::Landing).await?;
        let (op, options) = match kind {
            FlowKind::Unlock => (Operation::Unlock, ResetOptions::default()),
            _ => (
                Operation::Reset,
                ResetOptions {
                    unlock: true,
                    must_change: false,
                },
            ),
        };
        let mut zones = Vec::new();
        let mut audit_zones = Vec::new();
        let mut first_error = None;
        for zone in &self.inner.zones {
            let r = match new {
                Some(p) => zone.reset(&account, p, options).await,
                None => zone.unlock(&account).await,
            };
            audit_zones.push(zone_result(zone.id(), &r));
            zones.push(report(zone.id(), &r));
            if let Err(e) = r {
                first_error.get_or_insert(e);
                break; // AD first: never land in a later zone what the first refused
            }
        }
        let first = zones.first().map_or("failed", |z| z.outcome);
        let detail = AuditDetail {
            ok: first == "landed",
            methods,
            zones: audit_zones,
            error_code: zones.iter().find_map(|z| z.code.map(str::to_owned)),
        };
        if let (Some(e @ LandingError::Rejected { .. }), "rejected") = (&first_error, first) {
            // A definite "no" (policy): back to the password step, so the user can try another.
            let claimed = self.load(flow, &[kind]).await?;
            self.advance(&claimed, &loaded.step).await?;
            self.audit(ctx, op, Some(&account), detail).await?;
            return Err(EngineError::Landing(e.clone()));
        }
        // Landed (or unknown): every flow of this user ends here (invariant 8).
        self.inner.store.delete_user_flows(&account.guid).await?;
        self.audit(ctx, op, Some(&account), detail).await?;
        if first == "landed" {
            self.notify_done(&account, op).await;
        }
        Ok(ResetOutcome {
            zones,
            support_id: ctx.support_id.clone(),
        })
    }

    /// "Your password was reset; not you?" — to the enrolled address, else the directory's.
    pub(crate) async fn notify_done(&self, account: &Account, op: crate::audit::Operation) {
        match self.background.clone() {
            Some(spawn) => {
                let (engine, account) = (self.clone(), account.clone());
                spawn.spawn(Box::pin(
                    async move { engine.send_notice(&account, op).await },
                ));
            }
            None => self.send_notice(account, op).await,
        }
    }

    async fn send_notice(&self, account: &Account, op: crate::audit::Operation) {
        let enrolled = self
            .inner
            .store
            .enrollments(&account.guid)
            .await
            .unwrap_or_default();
        let to = enrolled
            .into_iter()
            .find(|e| e.method == MethodKind::Email)
            .map(|e| e.value)
            .or_else(|| account.mail.clone());
        let Some(to) = to else { return };
        let what = match op {
            Operation::Unlock => "was unlocked",
            Operation::Change => "was changed",
            _ => "was reset",
        };
        let cfg = &self.inner.config;
        let body = format!(
            "The password of your account {sam} {what} through {org} self-service.\n\n\
             Not you? Contact the helpdesk at once, and reset your password at {url}\n",
            sam = account.sam_account_name,
            org = cfg.organisation,
            url = cfg.public_base_url,
        );
        let mail = Email {
            to,
            subject: format!("Your {} account {what}", cfg.organisation),
            body,
        };
        // Best effort: the operation already happened and is audited.
        let _ = self.mail(&account.guid.to_string(), mail).await;
    }
}
