//! The helpdesk for integrations of the JSON API (chat bots, ticketing): the console's rules
//! without a console session. An integration looks a user up, verifies the caller with a code
//! sent to the user's enrolled email or phone — the caller reads it back — and only then acts
//! (unlock, a one-time reset code, change at next logon), for `caller_ttl`.
//!
//! The verification is a flow (`Step::Verification`, the user as the flow's user) bound to the
//! integration's name, which the engine takes from the request's actor (`Actor::Api`): another
//! integration cannot use it, an act must name the same user, and the id rotates when the
//! caller is verified. Everything else is the console's code: `actable` (privileged and out of
//! scope refused), `caller_code_to` / `send_caller_code` / `check_caller_code`, and `act_on`
//! (sensitive users → a request an approver decides in the console; the requester is
//! `api:<name>`, whom no person can be). ONE audit record per call, actor `api:<name>`.

use super::helpdesk::{Act, Agent, UserCard};
use super::helpdesk_acts::ActOutcome;
use super::state::{Caller, FlowId, Loaded, Step};
use super::trail::Trail;
use super::{Engine, EngineError, EngineResult, RequestContext};
use crate::audit::{Actor, Operation};
use crate::store::FlowKind;

/// A caller code on its way: send the code with this verification's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerCode {
    pub id: FlowId,
    /// Where the code went, masked (`j***@e***.com`, `+** *** ** 12`).
    pub sent_to: String,
    /// When the code (and this verification, unless passed) expires (Unix seconds).
    pub expires_at: i64,
}

/// A passed verification: the acts are open with this (new) id until `until` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerVerified {
    pub id: FlowId,
    pub until: i64,
}

/// The integration that calls: only an API request's actor is one.
fn integration(ctx: &RequestContext) -> EngineResult<&str> {
    match &ctx.actor {
        Actor::Api(name) => Ok(name),
        _ => Err(EngineError::NotAllowed),
    }
}

impl Engine {
    /// The engine's clock in Unix seconds: an answer turns the absolute times above into
    /// "in N seconds" with it.
    #[must_use]
    pub fn unix_now(&self) -> i64 {
        self.now()
    }

    /// Look a user up for an integration: state, tier, sensitivity, masked methods, recent
    /// events (never a secret). Audited (`lookup`), unlike the console's look-ups: an
    /// integration reads for someone nobody saw sign in.
    pub async fn helpdesk_api_lookup(
        &self,
        ctx: &RequestContext,
        who: &str,
    ) -> EngineResult<UserCard> {
        let mut trail = Trail::new(Operation::Lookup);
        trail.methods(&["helpdesk"]);
        let result = async {
            integration(ctx)?;
            let account = self.helpdesk_account(&mut trail, who).await?;
            self.card(&account, true).await
        }
        .await;
        self.record(ctx, trail, result).await
    }

    /// Start verifying the caller who says they are `who`: a code goes to the user's enrolled
    /// email (else phone) through the outbox. Privileged, out-of-scope and unenrolled users
    /// are refused as in the console. Audited (`verify`, `caller_code_sent`).
    pub async fn helpdesk_api_verify_start(
        &self,
        ctx: &RequestContext,
        who: &str,
    ) -> EngineResult<CallerCode> {
        let mut trail = Trail::new(Operation::Verify);
        let result = self.verify_start_inner(ctx, &mut trail, who).await;
        self.record(ctx, trail, result).await
    }

    async fn verify_start_inner(
        &self,
        ctx: &RequestContext,
        trail: &mut Trail,
        who: &str,
    ) -> EngineResult<CallerCode> {
        let client = integration(ctx)?;
        let account = self.helpdesk_account(trail, who).await?;
        let to = self
            .caller_code_to(trail, &Agent::Integration(client), &account)
            .await?;
        let step = Step::Verification {
            client: client.to_owned(),
            caller: Caller {
                user: account.guid.0,
                sam: account.sam_account_name.clone(),
                verified_at: None,
                attempts: 0,
            },
        };
        let expires_at = self.now() + self.inner.config.code_ttl.min(600);
        let id = self
            .new_flow_until(FlowKind::Console, Some(account.guid), &step, expires_at)
            .await?;
        let key = self.flow_key(&id);
        match self
            .send_caller_code(ctx, trail, &key, &account.guid, &to)
            .await
        {
            Ok(sent_to) => Ok(CallerCode {
                id,
                sent_to,
                expires_at,
            }),
            Err(e) => {
                // No orphan flow after a failure.
                let _ = self.forget(&id).await;
                Err(e)
            }
        }
    }

    /// The code the caller read out, for verification `id`. Right: the caller is verified, the
    /// verification gets a new id and lives `caller_ttl` from now. Wrong: counted; the fifth
    /// voids the code. Audited (`verify`).
    pub async fn helpdesk_api_verify(
        &self,
        ctx: &RequestContext,
        id: &str,
        code: &str,
    ) -> EngineResult<CallerVerified> {
        let mut trail = Trail::new(Operation::Verify);
        trail.methods(&["caller_code"]);
        let result = async {
            let client = integration(ctx)?;
            let (loaded, caller) = self.verification(&mut trail, client, id).await?;
            let until = self.now() + self.inner.config.helpdesk.caller_ttl;
            let step = |caller: Caller| Step::Verification {
                client: client.to_owned(),
                caller,
            };
            let id = self
                .check_caller_code(&mut trail, &loaded, caller, code, step, until)
                .await?;
            Ok(CallerVerified { id, until })
        }
        .await;
        self.record(ctx, trail, result).await
    }

    /// Act on `who` with a passed verification `id` of this integration for that same user:
    /// the user is re-read live; privileged and out-of-scope users are refused; on a sensitive
    /// user the act becomes a request for approval (`ActOutcome::Pending`). ONE audit record
    /// (the act's, or `approval`), actor `api:<name>`. The verification stays open for further
    /// acts until it expires.
    pub async fn helpdesk_api_act(
        &self,
        ctx: &RequestContext,
        id: &str,
        who: &str,
        act: Act,
    ) -> EngineResult<ActOutcome> {
        let mut trail = Trail::new(act.operation());
        trail.methods(&["helpdesk", "caller_code"]);
        let result = async {
            let client = integration(ctx)?;
            let (_, caller) = self.verification(&mut trail, client, id).await?;
            if !self.caller_open(&caller) {
                trail.note("caller_not_verified");
                return Err(EngineError::CallerNotVerified);
            }
            let account = self.helpdesk_account(&mut trail, who).await?;
            if account.guid.0 != caller.user {
                trail.note("verification_of_another_user");
                return Err(EngineError::VerificationMismatch);
            }
            self.act_on(&mut trail, &Agent::Integration(client), &account, act)
                .await
        }
        .await;
        self.record(ctx, trail, result).await
    }

    /// Verification `id`, if it is one (a console session's id is not) and this integration's.
    async fn verification(
        &self,
        trail: &mut Trail,
        client: &str,
        id: &str,
    ) -> EngineResult<(Loaded, Caller)> {
        let loaded = self.load(id, &[FlowKind::Console]).await?;
        let Step::Verification {
            client: owner,
            caller,
        } = loaded.step.clone()
        else {
            return Err(EngineError::FlowExpired);
        };
        trail.target_guid(Some(&crate::account::Guid(caller.user)));
        if owner != client {
            trail.note("verification_of_another_integration");
            return Err(EngineError::VerificationMismatch);
        }
        Ok((loaded, caller))
    }
}
