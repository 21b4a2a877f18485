//! Caller verification, shared by the console and the JSON API: `actable` refuses the targets
//! the helpdesk never touches (own account, privileged, out of scope); a code goes to the user's
//! enrolled email (else phone, past the enrollment cool-down) through the outbox, the operator or
//! integration types back what the caller reads out, and a right code opens the acts for
//! `caller_ttl` under a NEW flow id (a privilege step, invariant 13). The console's entry points
//! (`helpdesk_send_caller_code`, `helpdesk_check_caller`) are here too; the API's are in
//! `helpdesk_api`.

use super::helpdesk::Agent;
use super::state::{Caller, FlowId, Loaded, Step};
use super::trail::Trail;
use super::{Engine, EngineError, EngineResult, RequestContext};
use crate::account::{Account, Guid};
use crate::audit::Operation;
use crate::mask::{mask_email, mask_phone};
use crate::method::Method;
use crate::store::{Enrollment, FlowRecord, MethodKind};

/// Purpose of the caller verification code (bound to the session, the user and this purpose).
pub(crate) const CALLER: &str = "helpdesk:caller";

impl Engine {
    /// Refuse the acts' targets the helpdesk never touches: the operator's own account and
    /// privileged accounts (whatever the tier rules allow self-service), and anything outside
    /// self-service scope. The account is the live one (invariant 23).
    pub(crate) fn actable(
        &self,
        trail: &mut Trail,
        agent: &Agent<'_>,
        account: &Account,
    ) -> EngineResult<()> {
        trail.target(account);
        if agent.guid() == Some(account.guid) {
            trail.note("own_account");
            return Err(EngineError::OwnAccount);
        }
        if self.privileged(account) {
            trail.note("privileged");
            return Err(EngineError::Ineligible(
                crate::scope::Ineligible::PrivilegedExcluded,
            ));
        }
        self.inner
            .scope
            .check(account, &self.inner.protected)
            .map_err(|why| {
                trail.note(why.as_str());
                EngineError::Ineligible(why)
            })?;
        Ok(())
    }

    pub(crate) fn privileged(&self, account: &Account) -> bool {
        matches!(
            self.inner.protected.classify(account),
            crate::tier::Tier::Privileged { .. }
        )
    }

    /// Where a caller verification code goes: the enrolled email, else the phone (SMS
    /// configured), past the cool-down — a method added minutes ago proves nothing.
    pub(crate) fn code_target<'e>(&self, enrolled: &'e [Enrollment]) -> Option<&'e Enrollment> {
        let now = self.now();
        let ok = |e: &&Enrollment| {
            e.verified_at + self.inner.config.enroll_cooldown <= now
                && self.method_configured(e.method)
        };
        let find = |k: MethodKind| enrolled.iter().filter(ok).find(|e| e.method == k);
        find(MethodKind::Email).or_else(|| find(MethodKind::Sms))
    }

    /// Send a verification code to the session caller's enrolled email (else phone); the
    /// operator types back what the caller reads. Audited (`verify`, actor the operator).
    pub async fn helpdesk_send_caller_code(
        &self,
        ctx: &RequestContext,
        flow: &str,
    ) -> EngineResult<String> {
        let mut trail = Trail::new(Operation::Verify);
        let mut actx = ctx.clone();
        let result = self
            .send_caller_code_inner(ctx, &mut actx, &mut trail, flow)
            .await;
        self.record(&actx, trail, result).await
    }

    async fn send_caller_code_inner(
        &self,
        ctx: &RequestContext,
        actx: &mut RequestContext,
        trail: &mut Trail,
        flow: &str,
    ) -> EngineResult<String> {
        let s = self.operator_session(ctx, actx, flow).await?;
        let caller = s.caller.clone().ok_or(EngineError::WrongStep)?;
        let account = self.live_account(&Guid(caller.user)).await?;
        let to = self
            .caller_code_to(trail, &Agent::Operator(&s.operator), &account)
            .await?;
        let step = Step::Console {
            at: s.at,
            operator: s.operator.sam_account_name.clone(),
            caller: Some(Caller {
                verified_at: None,
                attempts: 0,
                ..caller
            }),
        };
        self.advance(&s.loaded, &step).await?;
        self.send_caller_code(ctx, trail, &s.loaded.record.id, &account.guid, &to)
            .await
    }

    /// Where `agent`'s caller code for the live `account` goes (its enrolled email, else phone,
    /// past the cool-down), once the account passes `actable`.
    pub(crate) async fn caller_code_to(
        &self,
        trail: &mut Trail,
        agent: &Agent<'_>,
        account: &Account,
    ) -> EngineResult<Enrollment> {
        self.actable(trail, agent, account)?;
        let enrolled = self.inner.store.enrollments(&account.guid).await?;
        let Some(to) = self.code_target(&enrolled).cloned() else {
            trail.note("no_method_for_caller_code");
            return Err(EngineError::NoCallerMethod);
        };
        trail.methods(&[Method::of(to.method).as_str()]);
        Ok(to)
    }

    /// Send a caller code bound to the flow stored under `key` and to `user`, by mail or SMS
    /// through the outbox (never inside the request); the masked address or number.
    pub(crate) async fn send_caller_code(
        &self,
        ctx: &RequestContext,
        trail: &mut Trail,
        key: &str,
        user: &Guid,
        to: &Enrollment,
    ) -> EngineResult<String> {
        let masked = if to.method == MethodKind::Sms {
            self.send_sms_code_for(ctx, key, user, &to.value, CALLER, trail)
                .await?;
            mask_phone(&to.value)
        } else {
            let code = self.put_code(key, user, CALLER).await?;
            let cfg = &self.inner.config;
            let minutes = cfg.code_ttl.min(600) / 60;
            let body = format!(
                "The {org} helpdesk is verifying that they are speaking with you.\n\n\
                 If you are on the phone with the helpdesk right now, read them this code:\n\n    {code}\n\n\
                 It is valid for {minutes} minutes. If you are not speaking with the helpdesk, do not \
                 give this code to anyone, and tell your IT security team.\n",
                org = cfg.organisation,
                code = code.as_str(),
            );
            let mail = crate::notify::Email {
                to: to.value.clone(),
                subject: format!("{} helpdesk verification code", cfg.organisation),
                body,
            };
            self.queue_mail(user, &mail, cfg.code_ttl.min(600)).await?;
            self.kick_outbox().await;
            mask_email(&to.value)
        };
        trail.note("caller_code_sent");
        Ok(masked)
    }

    /// The code the caller read out. Right: the acts open for `caller_ttl` and the session gets a
    /// new id (a privilege step, invariant 13). Wrong: counted (≤ `max_code_attempts`, then the
    /// code is void). Audited (`verify`, actor the operator).
    pub async fn helpdesk_check_caller(
        &self,
        ctx: &RequestContext,
        flow: &str,
        code: &str,
    ) -> EngineResult<FlowId> {
        let mut trail = Trail::new(Operation::Verify);
        trail.methods(&["caller_code"]);
        let mut actx = ctx.clone();
        let result = self
            .check_caller_inner(ctx, &mut actx, &mut trail, flow, code)
            .await;
        self.record(&actx, trail, result).await
    }

    async fn check_caller_inner(
        &self,
        ctx: &RequestContext,
        actx: &mut RequestContext,
        trail: &mut Trail,
        flow: &str,
        code: &str,
    ) -> EngineResult<FlowId> {
        let s = self.operator_session(ctx, actx, flow).await?;
        let caller = s.caller.clone().ok_or(EngineError::WrongStep)?;
        let operator = s.operator.sam_account_name.clone();
        let step = |c: Caller| Step::Console {
            at: s.at,
            operator: operator.clone(),
            caller: Some(c),
        };
        let end = s.loaded.record.expires_at;
        self.check_caller_code(trail, &s.loaded, caller, code, step, end)
            .await
    }

    /// Check the code a caller read out against the caller code of the flow `loaded` (a console
    /// session or an integration's verification; `step` puts a caller back into it). Wrong:
    /// counted in the flow — at `max_code_attempts` the code is void. Right: the caller is
    /// verified from now, and the flow moves under a NEW id (a privilege step, invariant 13)
    /// that ends at `expires_at`.
    pub(crate) async fn check_caller_code(
        &self,
        trail: &mut Trail,
        loaded: &Loaded,
        caller: Caller,
        code: &str,
        step: impl Fn(Caller) -> Step,
        expires_at: i64,
    ) -> EngineResult<FlowId> {
        let user = Guid(caller.user);
        trail.target_guid(Some(&user));
        let max = self.inner.config.max_code_attempts;
        if caller.attempts >= max {
            return Err(EngineError::TooManyAttempts);
        }
        let key = loaded.record.id.clone();
        let now = self.now();
        let store = &self.inner.store;
        let typed = crate::otp::typed(code);
        let challenge = store.challenge(&key, CALLER, now).await?;
        let matched = match &challenge {
            Some(c) => {
                crate::otp::matches(
                    &self.inner.otp_key,
                    &key,
                    &user,
                    CALLER,
                    &typed,
                    &c.code_hash,
                ) && store.consume_challenge(&c.id).await?
            }
            None => false,
        };
        if !matched {
            trail.note("wrong_caller_code");
            if let Some(c) = &challenge
                && store.fail_challenge(&c.id).await?.is_some_and(|n| n >= max)
            {
                let _ = store.consume_challenge(&c.id).await;
            }
            let attempts = caller.attempts + 1;
            self.advance(loaded, &step(Caller { attempts, ..caller }))
                .await?;
            return Err(if attempts >= max {
                EngineError::TooManyAttempts
            } else {
                EngineError::WrongCode
            });
        }
        trail.note("caller_verified");
        let verified = step(Caller {
            verified_at: Some(now),
            attempts: 0,
            ..caller
        });
        self.rotate(loaded, &verified, expires_at).await
    }

    /// Are the acts open for this caller (verified within `caller_ttl`)?
    pub(crate) fn caller_open(&self, caller: &Caller) -> bool {
        caller
            .verified_at
            .is_some_and(|at| self.now() < at + self.rules().caller_ttl)
    }

    /// Move the flow to `step` under a NEW id that ends at `expires_at` (a console session: its
    /// own end, never extended). Exactly one caller wins the old id.
    pub(crate) async fn rotate(
        &self,
        loaded: &Loaded,
        step: &Step,
        expires_at: i64,
    ) -> EngineResult<FlowId> {
        if !self.inner.store.delete_flow(&loaded.record.id).await? {
            return Err(EngineError::WrongStep);
        }
        let id = crate::clock::token(self.inner.random.as_ref(), 32);
        let record = FlowRecord {
            id: self.flow_key(&id),
            state: serde_json::to_string(step).unwrap_or_default(),
            version: 0,
            expires_at,
            ..loaded.record.clone()
        };
        self.inner.store.insert_flow(&record).await?;
        Ok(id)
    }
}
