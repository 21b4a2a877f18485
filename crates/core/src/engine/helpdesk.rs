//! The helpdesk console's engine calls: operator sign-in (directory password + a second factor),
//! looking a user up, verifying a caller with a code sent to the user's enrolled address or
//! phone, then acting (`helpdesk_acts`), and approvals for sensitive accounts (`approvals`).
//!
//! The console never acts on a caller's word: every act needs a caller verified in this session
//! within `caller_ttl`, re-reads the user live (scope, tier, state: invariant 23), refuses
//! privileged users whatever the tier rules say, writes ONE audit record naming the operator
//! (`helpdesk:<sam>`, invariant 34) and mails the user.

use serde::{Deserialize, Serialize};

use super::gates::Choice;
use super::methods::MethodView;
use super::state::{Caller, FlowId, Loaded, Pending, Step};
use super::trail::Trail;
use super::{Engine, EngineError, EngineResult, RequestContext};
use crate::account::{Account, Guid, Sid};
use crate::audit::{Actor, Operation};
use crate::mask::{mask_email, mask_phone};
use crate::method::Method;
use crate::secret::Password;
use crate::store::{FlowKind, MethodKind};

/// Who may use the helpdesk console, who approves, and whose accounts need approval.
#[derive(Debug, Clone)]
pub struct HelpdeskRules {
    /// Members (transitive) of these groups may sign in to the console and act; empty: no
    /// console.
    pub operator_groups: Vec<Sid>,
    /// Members (transitive) of these groups may sign in and approve or reject requests (never
    /// their own).
    pub approver_groups: Vec<Sid>,
    /// An act on a member (transitive) of these groups waits for an approver.
    pub sensitive_groups: Vec<Sid>,
    /// An operator without an enrolled email, phone or authenticator app is refused (true), or
    /// signs in with the password alone (false, for a lab).
    pub require_second_factor: bool,
    /// How long a console session lives from its sign-in, never extended (seconds).
    pub session_ttl: i64,
    /// How long the acts stay open after a caller was verified (seconds).
    pub caller_ttl: i64,
    /// How long a request waits for an approver before it expires (seconds).
    pub approval_ttl: i64,
    /// How many of a user's audit events the console shows, and from how far back (days).
    pub recent_events: usize,
    pub recent_days: i64,
}

impl Default for HelpdeskRules {
    fn default() -> Self {
        Self {
            operator_groups: Vec::new(),
            approver_groups: Vec::new(),
            sensitive_groups: Vec::new(),
            require_second_factor: true,
            session_ttl: 1800,
            caller_ttl: 600,
            approval_ttl: 3600,
            recent_events: 10,
            recent_days: 30,
        }
    }
}

/// Methods that serve an operator's second factor on the console (a code: sent, or the app's).
pub(crate) fn second_factor(kind: MethodKind) -> bool {
    matches!(kind, MethodKind::Email | MethodKind::Sms | MethodKind::Totp)
}

/// What a console session may do, from the operator's live group membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub operator: bool,
    pub approver: bool,
}

/// Where a sign-in leads. Either way the cookie gets this new id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleStart {
    /// The second factor comes next.
    SecondFactor(FlowId),
    /// Signed in (no second factor required and none enrolled).
    Ready(FlowId),
}

/// Where a console session stands, for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleStep {
    /// Choose the second factor.
    Factor(Vec<Choice>),
    /// The second factor's code page.
    FactorCode(Method),
    /// Signed in.
    Ready(Console),
}

/// The signed-in console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Console {
    pub operator: String,
    pub roles: Roles,
    /// The user being worked on, if one was looked up.
    pub caller: Option<CallerState>,
    /// When the session ends (Unix seconds).
    pub expires_at: i64,
}

/// The user the session works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerState {
    pub sam: String,
    /// A code was sent and not yet typed back.
    pub code_sent: bool,
    /// Verified: the acts are open until this time (Unix seconds).
    pub verified_until: Option<i64>,
}

/// What the console shows of a user: state, masked methods, recent events. Never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCard {
    pub sam: String,
    pub display_name: Option<String>,
    pub enabled: bool,
    pub locked: bool,
    pub password_expired: bool,
    pub must_change: bool,
    pub privileged: bool,
    /// Acts on this user wait for an approver.
    pub sensitive: bool,
    /// Why self-service does not serve the account (out of scope, disabled …), if so.
    pub ineligible: Option<crate::scope::Ineligible>,
    pub methods: Vec<MethodView>,
    /// Where a verification code would go (masked), if the user has such a method.
    pub code_to: Option<String>,
    pub events: Vec<EventLine>,
    /// The session's caller verification for this user.
    pub caller: CallerState,
}

/// One audit event of a user, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    pub at_ms: i64,
    pub operation: &'static str,
    pub result: String,
    pub actor: String,
}

/// Who works the helpdesk: an operator signed in to the console, or an integration of the JSON
/// API (by its `[api]` name). Both pass the same checks (`actable`), send and check the same
/// caller codes, run the same acts and file the same requests for approval.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Agent<'a> {
    Operator(&'a Account),
    Integration(&'a str),
}

impl Agent<'_> {
    /// The audit's actor: `helpdesk:<sam>` or `api:<name>`.
    pub fn actor(&self) -> Actor {
        match self {
            Self::Operator(a) => Actor::Helpdesk(a.sam_account_name.clone()),
            Self::Integration(n) => Actor::Api((*n).to_owned()),
        }
    }

    /// How a request names its requester (`requested_by:<name>`, the approvals list): the
    /// operator's sAMAccountName, or `api:<name>`.
    pub fn name(&self) -> String {
        match self {
            Self::Operator(a) => a.sam_account_name.clone(),
            Self::Integration(n) => format!("api:{n}"),
        }
    }

    /// The operator's objectGUID (an integration has none: no person can be its requester).
    pub fn guid(&self) -> Option<Guid> {
        match self {
            Self::Operator(a) => Some(a.guid),
            Self::Integration(_) => None,
        }
    }

    /// Who acted, in the mail to the user.
    pub fn words(&self) -> String {
        match self {
            Self::Operator(a) => format!("helpdesk operator {}", a.sam_account_name),
            Self::Integration(n) => format!("helpdesk integration {n}"),
        }
    }
}

/// A console session, loaded and checked.
pub(crate) struct Session {
    pub loaded: Loaded,
    pub operator: Account,
    pub roles: Roles,
    pub at: i64,
    pub caller: Option<Caller>,
}

impl Engine {
    pub(crate) fn rules(&self) -> &HelpdeskRules {
        &self.inner.config.helpdesk
    }

    fn member_of(account: &Account, groups: &[Sid]) -> bool {
        groups.iter().any(|g| account.is_member(g))
    }

    /// The console roles of an account, from its live `tokenGroups`. A disabled or locked
    /// account has none.
    pub(crate) fn roles_of(&self, account: &Account) -> Roles {
        let live = account.state.enabled && !account.state.locked;
        Roles {
            operator: live && Self::member_of(account, &self.rules().operator_groups),
            approver: live && Self::member_of(account, &self.rules().approver_groups),
        }
    }

    /// Is the helpdesk console configured at all? Operators, or approvers only (who decide
    /// requests, e.g. privileged users' method changes, and act on nobody).
    #[must_use]
    pub fn helpdesk_enabled(&self) -> bool {
        !self.rules().operator_groups.is_empty() || !self.rules().approver_groups.is_empty()
    }

    /// Sign in to the console with directory credentials. Someone who is not a member of the
    /// operator or approver groups gets the same refusal as a wrong password — and their
    /// password never reaches a DC. The attempt takes the account's budget like every other
    /// password attempt (invariant 35). Audited (`helpdesk_sign_in`).
    pub async fn helpdesk_sign_in(
        &self,
        ctx: &RequestContext,
        who: &str,
        password: &Password,
    ) -> EngineResult<ConsoleStart> {
        let mut trail = Trail::new(Operation::HelpdeskSignIn);
        trail.methods(&["password"]);
        let result = self.sign_in_inner(ctx, &mut trail, who, password).await;
        self.record(ctx, trail, result).await
    }

    async fn sign_in_inner(
        &self,
        ctx: &RequestContext,
        trail: &mut Trail,
        who: &str,
        password: &Password,
    ) -> EngineResult<ConsoleStart> {
        let refused = || EngineError::SignInFailed;
        if !self.helpdesk_enabled() {
            trail.note("console_off");
            return Err(refused());
        }
        self.ip_budget(ctx, "password").await?;
        let Some(account) = self.find(who, trail).await? else {
            trail.note("unknown");
            return Err(refused());
        };
        trail.target(&account);
        let roles = self.roles_of(&account);
        if !roles.operator && !roles.approver {
            trail.note("not_operator");
            return Err(refused());
        }
        if password.is_blank() {
            trail.note("locked_or_blank");
            return Err(refused());
        }
        let Some((fresh, reservation)) = self.reserve_password_attempt(&account).await? else {
            trail.note("budget");
            return Err(refused());
        };
        if fresh.state.locked {
            self.settle(reservation, true).await;
            trail.note("locked_or_blank");
            return Err(refused());
        }
        let verdict = self.inner.directory.authenticate(&fresh, password).await;
        self.settle(reservation, matches!(verdict, Ok(true))).await;
        if !verdict? {
            trail.note("bad_password");
            return Err(refused());
        }
        let now = self.now();
        let factors = self
            .inner
            .store
            .enrollments(&account.guid)
            .await?
            .iter()
            .any(|e| second_factor(e.method) && self.method_configured(e.method));
        if factors {
            trail.note("password_ok");
            let step = Step::Gate {
                passed: Vec::new(),
                pending: None,
                attempts: 0,
                signed_in: Some(now),
            };
            let id = self
                .new_flow(FlowKind::Console, Some(account.guid), &step)
                .await?;
            return Ok(ConsoleStart::SecondFactor(id));
        }
        if self.rules().require_second_factor {
            trail.note("no_second_factor");
            return Err(EngineError::OperatorNeedsFactor);
        }
        trail.note("signed_in_without_second_factor");
        let step = Step::Console {
            at: now,
            operator: account.sam_account_name.clone(),
            caller: None,
        };
        let id = self
            .new_flow(FlowKind::Console, Some(account.guid), &step)
            .await?;
        Ok(ConsoleStart::Ready(id))
    }

    /// Where the console session stands (no audit: it only reads).
    pub async fn helpdesk_console(&self, flow: &str) -> EngineResult<ConsoleStep> {
        let loaded = self.load(flow, &[FlowKind::Console]).await?;
        match &loaded.step {
            Step::Gate { pending: None, .. } => {
                Ok(ConsoleStep::Factor(self.gate_choices(flow).await?))
            }
            Step::Gate {
                pending: Some(Pending::Code { method }),
                ..
            } => Ok(ConsoleStep::FactorCode(*method)),
            Step::Console { .. } => {
                let s = self.session(flow).await?;
                Ok(ConsoleStep::Ready(Console {
                    operator: s.operator.sam_account_name.clone(),
                    roles: s.roles,
                    caller: s.caller.as_ref().map(|c| self.caller_state(c)),
                    expires_at: s.loaded.record.expires_at,
                }))
            }
            _ => Err(EngineError::WrongStep),
        }
    }

    /// The operator's chosen second factor (a code is sent, or the app's is expected).
    pub async fn helpdesk_choose_factor(
        &self,
        ctx: &RequestContext,
        flow: &str,
        method: Method,
    ) -> EngineResult<()> {
        let loaded = self.load(flow, &[FlowKind::Console]).await?;
        if !matches!(loaded.step, Step::Gate { .. }) {
            return Err(EngineError::WrongStep);
        }
        self.choose_gate(ctx, flow, method).await.map(|_| ())
    }

    /// A signed-in console session, with the operator re-read live: someone removed from the
    /// groups, disabled or locked out since the sign-in is signed out now.
    pub(crate) async fn session(&self, flow: &str) -> EngineResult<Session> {
        let loaded = self.load(flow, &[FlowKind::Console]).await?;
        let Step::Console { at, caller, .. } = loaded.step.clone() else {
            return Err(EngineError::WrongStep);
        };
        let user = *loaded.user().ok_or(EngineError::FlowExpired)?;
        let operator = self
            .inner
            .directory
            .by_guid(&user)
            .await?
            .ok_or(EngineError::FlowExpired)?;
        let roles = self.roles_of(&operator);
        if !roles.operator && !roles.approver {
            let _ = self.forget(flow).await;
            return Err(EngineError::FlowExpired);
        }
        Ok(Session {
            loaded,
            operator,
            roles,
            at,
            caller,
        })
    }

    /// The request context of an act: the operator named as the actor.
    pub(crate) fn as_operator(ctx: &RequestContext, operator: &Account) -> RequestContext {
        RequestContext {
            actor: Agent::Operator(operator).actor(),
            ..ctx.clone()
        }
    }

    /// A console session whose operator acts (not only approves), and `actx` the request
    /// context naming the operator as the actor from here on.
    pub(crate) async fn operator_session(
        &self,
        ctx: &RequestContext,
        actx: &mut RequestContext,
        flow: &str,
    ) -> EngineResult<Session> {
        let s = self.session(flow).await?;
        *actx = Self::as_operator(ctx, &s.operator);
        if !s.roles.operator {
            return Err(EngineError::NotAllowed);
        }
        Ok(s)
    }

    /// The account with objectGUID `guid`, read live from the directory.
    pub(crate) async fn live_account(&self, guid: &Guid) -> EngineResult<Account> {
        self.inner
            .directory
            .by_guid(guid)
            .await?
            .ok_or(EngineError::NoSuchAccount)
    }

    fn caller_state(&self, c: &Caller) -> CallerState {
        let now = self.now();
        CallerState {
            sam: c.sam.clone(),
            code_sent: c.verified_at.is_none(),
            verified_until: c
                .verified_at
                .map(|at| at + self.rules().caller_ttl)
                .filter(|until| *until > now),
        }
    }

    /// Look a user up: state, masked methods, recent events — and make them the session's
    /// caller (a different user than before needs a new verification).
    pub async fn helpdesk_lookup(
        &self,
        ctx: &RequestContext,
        flow: &str,
        who: &str,
    ) -> EngineResult<UserCard> {
        let s = self.session(flow).await?;
        if !s.roles.operator {
            return Err(EngineError::NotAllowed);
        }
        let account = self
            .helpdesk_account(&mut Trail::new(Operation::Lookup), who)
            .await?;
        let caller = match s.caller {
            Some(c) if c.user == account.guid.0 => c,
            _ => Caller {
                user: account.guid.0,
                sam: account.sam_account_name.clone(),
                verified_at: None,
                attempts: 0,
            },
        };
        let step = Step::Console {
            at: s.at,
            operator: s.operator.sam_account_name.clone(),
            caller: Some(caller),
        };
        self.advance(&s.loaded, &step).await?;
        let _ = ctx;
        self.card(&account, true).await
    }

    /// The session caller's card, read live again (after an act, or on reload).
    pub async fn helpdesk_user(&self, flow: &str) -> EngineResult<UserCard> {
        let s = self.session(flow).await?;
        let caller = s.caller.ok_or(EngineError::WrongStep)?;
        let account = self.live_account(&Guid(caller.user)).await?;
        let mut card = self.card(&account, false).await?;
        card.caller = self.caller_state(&caller);
        Ok(card)
    }

    /// The account an operator or integration names (user name, UPN or email); one that is
    /// unknown or ambiguous is `NoSuchAccount` (helpdesk paths may say so).
    pub(crate) async fn helpdesk_account(
        &self,
        trail: &mut Trail,
        who: &str,
    ) -> EngineResult<Account> {
        let account = self
            .find(who, trail)
            .await?
            .ok_or(EngineError::NoSuchAccount)?;
        trail.target(&account);
        Ok(account)
    }

    /// What the helpdesk sees of a user: state, tier, sensitivity, masked methods, recent
    /// events; never a secret.
    pub(crate) async fn card(&self, account: &Account, fresh: bool) -> EngineResult<UserCard> {
        let enrolled = self.inner.store.enrollments(&account.guid).await?;
        let since = (self.now() - self.rules().recent_days * 86_400) * 1000;
        let events = self
            .inner
            .store
            .recent_audit_of(&account.guid.to_string(), since, self.rules().recent_events)
            .await?
            .into_iter()
            .map(|e| EventLine {
                at_ms: e.at_ms,
                operation: e.operation.as_str(),
                result: e.result,
                actor: crate::audit_export::actor_text(&e.actor),
            })
            .collect();
        Ok(UserCard {
            sam: account.sam_account_name.clone(),
            display_name: account.display_name.clone(),
            enabled: account.state.enabled,
            locked: account.state.locked,
            password_expired: account.state.password_expired,
            must_change: account.state.must_change,
            privileged: self.privileged(account),
            sensitive: Self::member_of(account, &self.rules().sensitive_groups),
            ineligible: self.inner.scope.check(account, &self.inner.protected).err(),
            methods: enrolled.iter().map(|e| self.view(e)).collect(),
            code_to: self.code_target(&enrolled).map(|e| match e.method {
                MethodKind::Sms => mask_phone(&e.value),
                _ => mask_email(&e.value),
            }),
            events,
            caller: CallerState {
                sam: account.sam_account_name.clone(),
                code_sent: !fresh,
                verified_until: None,
            },
        })
    }

    /// End the console session.
    pub async fn helpdesk_sign_out(&self, flow: &str) -> EngineResult<()> {
        self.forget(flow).await.map(|_| ())
    }
}

/// What an operator may do for a verified caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    /// Clear the lockout.
    Unlock,
    /// Issue a one-time code the user redeems in the portal (the first gate of a reset).
    ResetCode,
    /// Require a password change at next logon.
    MustChange,
}

impl Act {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unlock => "unlock",
            Self::ResetCode => "reset_code",
            Self::MustChange => "must_change",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Unlock, Self::ResetCode, Self::MustChange]
            .into_iter()
            .find(|a| a.as_str() == s)
    }

    pub(crate) fn operation(self) -> Operation {
        match self {
            Self::Unlock => Operation::Unlock,
            Self::ResetCode => Operation::HelpdeskCode,
            Self::MustChange => Operation::MustChange,
        }
    }
}
