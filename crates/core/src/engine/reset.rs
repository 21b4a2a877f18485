//! Reset and unlock: identify → email code → (new password →) land → done.

use super::state::{FlowId, Loaded, Step};
use super::trail::Trail;
use super::zones::ZoneReport;
use super::{Engine, EngineError, EngineResult, RequestContext};
use crate::account::Account;
use crate::audit::Operation;

use crate::landing::{LandingError, ResetOptions};
use crate::method::Method;
use crate::notify::Email;
use crate::policy::PasswordPolicy;
use crate::secret::Password;
use crate::store::{Enrollment, FlowKind, MethodKind};

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
        self.start_reset_pow(ctx, kind, who, None).await
    }

    /// `start_reset` with the answer to a proof-of-work challenge (`(challenge, answer)`), which
    /// is required while this client or the whole portal is over its identify rate
    /// (invariant 28): without a valid one the answer is `EngineError::ProofOfWork` with a new
    /// puzzle. Every counter lives in the store, so replicas share them; a solved puzzle is
    /// spent once.
    pub async fn start_reset_pow(
        &self,
        ctx: &RequestContext,
        kind: FlowKind,
        who: &str,
        pow: Option<(&str, &str)>,
    ) -> EngineResult<FlowId> {
        let mut trail = Trail::new(Operation::Identify);
        let mut created = None;
        let result = match self.pow_gate(ctx, &mut trail, pow).await {
            Ok(()) => {
                self.start_reset_inner(ctx, &mut trail, kind, who, &mut created)
                    .await
            }
            Err(e) => Err(e),
        };
        let result = self.record(ctx, trail, result).await;
        if let (Err(_), Some(flow)) = (&result, created) {
            // No orphan flow behind a failure (best effort: the store may be what failed).
            let _ = self.forget(&flow).await;
        }
        result
    }

    async fn start_reset_inner(
        &self,
        ctx: &RequestContext,
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
                    Ok(gate) => Some(gate),
                    Err(why) => {
                        trail.decoy(why);
                        None
                    }
                }
            }
        };
        // Only an eligible account's flow names its user (a decoy's names nobody).
        let user = target.as_ref().and(found.as_ref()).map(|a| a.guid);
        let (send, accept) = target.unwrap_or_default();
        let names: Vec<&str> = accept.iter().map(|m| m.as_str()).collect();
        trail.methods(&names);
        let step = Step::AwaitCode {
            attempts: 0,
            accept,
        };
        let flow = self.new_flow(kind, user, &step).await?;
        created.replace(flow.clone());
        if let Some(to) = &send {
            let key = self.flow_key(&flow);
            self.send_first_code(ctx, &key, to, trail).await?;
        }
        Ok(flow)
    }

    /// Count this identify and, over the rate, ask for (or check) a proof of work.
    async fn pow_gate(
        &self,
        ctx: &RequestContext,
        trail: &mut Trail,
        pow: Option<(&str, &str)>,
    ) -> EngineResult<()> {
        let cfg = &self.inner.config;
        let now = self.now();
        let store = &self.inner.store;
        // Only the rates that are on are counted (0 turns one off: no store write for it).
        let all = match cfg.pow_per_minute {
            0 => 0,
            _ => store.hit("identify:all", now, 60).await?,
        };
        let mine = match (&ctx.client_ip, cfg.pow_per_ip_per_minute) {
            (Some(ip), 1..) => store.hit(&format!("identify:ip:{ip}"), now, 60).await?,
            _ => 0,
        };
        let over = (cfg.pow_per_minute > 0 && all > cfg.pow_per_minute)
            || (cfg.pow_per_ip_per_minute > 0 && mine > cfg.pow_per_ip_per_minute);
        if !over {
            return Ok(());
        }
        let key = self.pow_key();
        let max_age = cfg.pow_fallback_secs.max(1) + 300;
        if let Some((challenge, answer)) = pow
            && let Ok(solved) = crate::pow::check(&key, challenge, answer, now, max_age)
        {
            let spent = store
                .reserve(&format!("pow:{}", solved.nonce()), now, max_age, 1)
                .await?;
            if spent.is_some() {
                trail.note(match solved.via() {
                    crate::pow::Via::Work => "proof_of_work",
                    crate::pow::Via::Wait => "proof_of_wait",
                });
                return Ok(());
            }
        }
        trail.note("proof_of_work_required");
        let puzzle = crate::pow::issue(
            &key,
            self.inner.random.as_ref(),
            now,
            cfg.pow_bits,
            cfg.pow_fallback_secs,
        );
        Err(EngineError::ProofOfWork {
            challenge: puzzle.challenge,
            bits: puzzle.bits,
            wait_secs: cfg.pow_fallback_secs,
        })
    }

    pub(crate) fn pow_key(&self) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.inner.otp_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"rekey pow key v1");
        mac.finalize().into_bytes().into()
    }

    /// `Ok` — where to send the first gate's code, and the codes it accepts — or why the account
    /// gets a decoy flow (for the audit only).
    async fn eligible_enrolled(
        &self,
        account: &Account,
    ) -> EngineResult<Result<(Option<Enrollment>, Vec<Method>), &'static str>> {
        if let Err(why) = self.inner.scope.check(account, &self.inner.protected) {
            return Ok(Err(why.as_str()));
        }
        let Some(rule) = self.rule_for(account) else {
            return Ok(Err("privileged_excluded"));
        };
        if self.sspr_locked(&account.guid).await? {
            return Ok(Err("sspr_locked"));
        }
        let usable = self.usable(&account.guid, rule).await?;
        // A helpdesk code the operator issued is the way in for a caller with nothing usable:
        // a real flow (same page), nothing sent.
        if usable.is_empty() && rule.allows(crate::method::Method::HelpdeskCode) {
            let id = self.helpdesk_key(&account.guid);
            if self
                .inner
                .store
                .challenge(&id, "helpdesk", self.now())
                .await?
                .is_some()
            {
                return Ok(Ok(Self::first_gate(&usable, rule)));
            }
        }
        if usable.is_empty() {
            let any = self.inner.store.enrollments(&account.guid).await?;
            return Ok(Err(if any.is_empty() {
                "not_enrolled"
            } else {
                "enrollment_cooling_down"
            }));
        }
        Ok(Ok(Self::first_gate(&usable, rule)))
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

    /// Where notices about an account go: its enrolled address, else the directory's mail.
    pub(crate) async fn notice_address(&self, account: &Account) -> Option<String> {
        let enrolled = self
            .inner
            .store
            .enrollments(&account.guid)
            .await
            .unwrap_or_default();
        enrolled
            .into_iter()
            .find(|e| e.method == MethodKind::Email)
            .map(|e| e.value)
            .or_else(|| account.mail.clone())
    }

    /// "Your password was reset; not you?" — to the enrolled address, else the directory's;
    /// queued for the outbox (best effort: the operation already happened and is audited).
    pub(crate) async fn notify_done(&self, account: &Account, op: Operation) {
        let Some(to) = self.notice_address(account).await else {
            return;
        };
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
        if self.queue_notice(&account.guid, &mail).await.is_ok() {
            self.kick_outbox().await;
        }
    }
}
