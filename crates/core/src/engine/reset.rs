//! Reset and unlock: identify → email code → (new password →) land → done.

use super::state::{FlowId, Loaded, Step};
use super::trail::Trail;
use super::zones::ZoneReport;
use super::{Engine, EngineError, EngineResult, RequestContext};
use crate::account::Account;
use crate::audit::Operation;

use crate::landing::{LandingError, ResetOptions};
use crate::notify::Email;
use crate::policy::PasswordPolicy;
use crate::secret::Password;
use crate::store::{FlowKind, MethodKind};

const PURPOSE: &str = "reset:email";
/// How long a notice is worth delivering (seconds).
pub(crate) const NOTICE_TTL: i64 = 86_400;

/// The end of a reset or unlock.
#[derive(Debug, Clone)]
pub struct ResetOutcome {
    pub zones: Vec<ZoneReport>,
    pub support_id: String,
    /// The id of the result page to come back to while a zone is still moving (queued for a
    /// retry, or pending a sync): `Engine::receipt` reads it.
    pub receipt: Option<FlowId>,
}

impl ResetOutcome {
    /// Every zone landed, or needs nothing (no account there, or the password arrives by sync).
    #[must_use]
    pub fn landed_everywhere(&self) -> bool {
        self.zones.iter().all(|z| z.state.is_good())
    }
}

impl Engine {
    /// Start a reset or unlock. The answer is the same whatever the account is (unknown,
    /// ambiguous, disabled, out of scope, privileged, unenrolled, locked or normal, invariant 9):
    /// a flow id. Only an eligible, enrolled account gets a code, queued for the outbox.
    pub async fn start_reset(
        &self,
        ctx: &RequestContext,
        kind: FlowKind,
        who: &str,
    ) -> EngineResult<FlowId> {
        let mut trail = Trail::new(Operation::Identify);
        let mut created = None;
        let result = self
            .start_reset_inner(&mut trail, kind, who, &mut created)
            .await;
        let result = self.record(ctx, trail, result).await;
        if let (Err(_), Some(flow)) = (&result, created) {
            // No orphan flow behind a failure (best effort: the store may be what failed).
            let _ = self.forget(&flow).await;
        }
        result
    }

    async fn start_reset_inner(
        &self,
        trail: &mut Trail,
        kind: FlowKind,
        who: &str,
        created: &mut Option<FlowId>,
    ) -> EngineResult<FlowId> {
        let kind = if kind == FlowKind::Unlock {
            FlowKind::Unlock
        } else {
            FlowKind::Reset
        };
        let found = self.find(who, trail).await?;
        let target = match &found {
            None => {
                trail.decoy("unknown");
                None
            }
            Some(account) => {
                trail.target(account);
                match self.eligible_enrolled(account).await? {
                    Ok(address) => Some((account, address)),
                    Err(why) => {
                        trail.decoy(why);
                        None
                    }
                }
            }
        };
        let flow = self
            .new_flow(
                kind,
                target.as_ref().map(|(a, _)| a.guid),
                &Step::AwaitCode { attempts: 0 },
            )
            .await?;
        created.replace(flow.clone());
        if let Some((account, address)) = &target {
            let subject = format!("Your {} verification code", self.inner.config.organisation);
            let key = self.flow_key(&flow);
            self.issue_code(&key, &account.guid, PURPOSE, address, &subject)
                .await?;
            trail.methods(&["email_otp"]);
        }
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
        let mut trail = Trail::new(Operation::Verify);
        trail.methods(&["email_otp"]);
        let result = self.verify_reset_code_inner(&mut trail, flow, code).await;
        self.record(ctx, trail, result).await
    }

    async fn verify_reset_code_inner(
        &self,
        trail: &mut Trail,
        flow: &str,
        code: &str,
    ) -> EngineResult<FlowId> {
        let loaded = self
            .load(flow, &[FlowKind::Reset, FlowKind::Unlock])
            .await?;
        // The flow's GUID is enough for the record: the identify record names the account, and
        // no directory read here means real and decoy flows do the same work.
        trail.target_guid(loaded.user());
        let Step::AwaitCode { attempts } = loaded.step else {
            return Err(EngineError::WrongStep);
        };
        self.check_code(&loaded, PURPOSE, code, attempts, |attempts| {
            Step::AwaitCode { attempts }
        })
        .await?;
        // Exactly one caller wins the old id; the flow continues under a fresh one.
        if !self.forget(flow).await? {
            return Err(EngineError::WrongStep);
        }
        let step = Step::Verified {
            methods: vec!["email_otp".to_owned()],
        };
        self.new_flow(loaded.record.kind, loaded.record.user, &step)
            .await
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
        let mut policy = self.inner.directory.effective_policy(&account).await?;
        policy.entra_rules = self.ask_plans(&account).await.entra_rules();
        Ok(policy)
    }

    /// Re-read the account live and re-check scope, tier and state before a write (invariant 23).
    async fn live_eligible(&self, loaded: &Loaded) -> EngineResult<Account> {
        let guid = loaded.user().ok_or(EngineError::FlowExpired)?;
        let account = self
            .inner
            .directory
            .by_guid(guid)
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
        let mut trail = Trail::new(Operation::Reset);
        let result = self
            .finish(ctx, &mut trail, flow, FlowKind::Reset, Some(new))
            .await;
        self.record(ctx, trail, result).await
    }

    /// Clear the lockout (no password change).
    pub async fn complete_unlock(
        &self,
        ctx: &RequestContext,
        flow: &str,
    ) -> EngineResult<ResetOutcome> {
        let mut trail = Trail::new(Operation::Unlock);
        let result = self
            .finish(ctx, &mut trail, flow, FlowKind::Unlock, None)
            .await;
        self.record(ctx, trail, result).await
    }

    async fn finish(
        &self,
        ctx: &RequestContext,
        trail: &mut Trail,
        flow: &str,
        kind: FlowKind,
        new: Option<&Password>,
    ) -> EngineResult<ResetOutcome> {
        let loaded = self.load(flow, &[kind]).await?;
        trail.target_guid(loaded.user());
        let Step::Verified { methods } = loaded.step.clone() else {
            return Err(EngineError::WrongStep);
        };
        let methods: Vec<&str> = methods.iter().map(String::as_str).collect();
        trail.methods(&methods);
        let account = match self.live_eligible(&loaded).await {
            Ok(a) => a,
            Err(e) => {
                trail.note("no_longer_eligible");
                return Err(e);
            }
        };
        trail.target(&account);
        let plans = match new {
            // An unlock is AD's alone: later zones are not asked.
            None => Ok(super::zones::Plans::none()),
            Some(_) => self.plans(trail, &account).await,
        };
        let plans = match plans {
            Ok(plans) => plans,
            Err(refused) => {
                // Not a matter of choosing another password: the flow ends here.
                let _ = self.forget(flow).await;
                return Err(EngineError::Landing(refused));
            }
        };
        if let Some(new) = new {
            let mut policy = self.inner.directory.effective_policy(&account).await?;
            policy.entra_rules = plans.entra_rules();
            self.precheck(trail, &policy, &account, new).await?;
        }
        // Claim the flow: a second submit (double click, replay) finds `Landing` and stops.
        self.advance(&loaded, &Step::Landing).await?;
        let options = ResetOptions {
            unlock: true,
            must_change: false,
            replay_of: None,
        };
        let ticket = self.ticket(&ctx.support_id);
        let zones = self
            .land(trail, &account, new, options, &plans, &ticket)
            .await;
        if let Some(e @ LandingError::Rejected { .. }) = zones.first_error() {
            // A definite "no" (policy): back to the password step, so the user can try another.
            let claimed = self.load(flow, &[kind]).await?;
            self.advance(&claimed, &loaded.step).await?;
            return Err(EngineError::Landing(e.clone()));
        }
        // Landed (or unknown): every flow of this user ends here (invariant 8).
        let _ = self.inner.store.delete_user_flows(&account.guid).await;
        if zones.first_error().is_none() {
            let op = if new.is_some() {
                Operation::Reset
            } else {
                Operation::Unlock
            };
            self.notify_done(&account, op).await;
        }
        Ok(ResetOutcome {
            receipt: self.keep_receipt(&ticket, &account, &zones).await,
            zones: zones.reports,
            support_id: ctx.support_id.clone(),
        })
    }

    /// "Your password was reset; not you?" — to the enrolled address, else the directory's;
    /// queued for the outbox (best effort: the operation already happened and is audited).
    pub(crate) async fn notify_done(&self, account: &Account, op: Operation) {
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
        if self
            .queue_mail(&account.guid, &mail, NOTICE_TTL)
            .await
            .is_ok()
        {
            self.kick_outbox().await;
        }
    }
}
