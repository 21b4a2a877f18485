//! The helpdesk console's acts (unlock, a one-time reset code, change at next logon) and the
//! approvals that acts on sensitive accounts — and method changes of privileged users
//! (`method_approval`) — wait for.
//!
//! An approval is a flow of kind `Approval` (no user: a reset of the target must not delete it)
//! that expires after `approval_ttl`; a list of pending ids lives in one more `Approval` flow,
//! moved by optimistic updates like any flow, so every replica sees the same list. Deciding
//! deletes the approval flow first — exactly one of concurrent approvers wins — and an expired
//! approval is gone (its index entry, which names target, requester and what, is swept and
//! audited as `expired` by the next look at the list). The requester can never decide their own
//! request (by objectGUID, not by name).

use serde::{Deserialize, Serialize};

use super::helpdesk::{Act, Agent};
use super::method_approval::MethodChange;
use super::method_approval::PendingChange;
use super::trail::Trail;
use super::zones::ZoneReport;
use super::{Engine, EngineError, EngineResult, RequestContext};
use crate::account::{Account, Guid};
use crate::audit::Operation;
use crate::landing::WriteGrant;
use crate::store::{FlowKind, FlowRecord, MethodKind};

/// What an act did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActOutcome {
    /// Done (unlocked, or must change at next logon); the user was mailed.
    Done,
    /// The one-time reset code, shown to the operator once to read to the caller.
    Code(String),
    /// The account is sensitive: the request waits for an approver under `id` until
    /// `expires_at` (Unix seconds).
    Pending { id: String, expires_at: i64 },
}

/// What a request would do, as an approver sees it (masked: never a secret or full address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalAction {
    /// A helpdesk act on a sensitive account.
    Act(Act),
    /// A privileged user adds a method (`hint`: the masked address, `authenticator app`, the
    /// passkey's label).
    AddMethod { kind: MethodKind, hint: String },
    /// A privileged user removes a method.
    RemoveMethod { kind: MethodKind, hint: String },
}

/// A pending request, as the approvals page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalView {
    pub id: String,
    pub action: ApprovalAction,
    pub requester: String,
    pub target: String,
    pub requested_at: i64,
    pub expires_at: i64,
    /// The signed-in operator asked for it (they cannot decide it).
    pub own: bool,
}

/// What a request asks for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Requested {
    Act { act: Act },
    Method { change: MethodChange },
}

impl Requested {
    /// The audit's word: `unlock`, `add:totp`, `remove:email`.
    fn word(&self) -> String {
        match self {
            Self::Act { act } => act.as_str().to_owned(),
            Self::Method { change } => change.word(),
        }
    }

    fn view(&self) -> ApprovalAction {
        match self {
            Self::Act { act } => ApprovalAction::Act(*act),
            Self::Method { change } if change.remove => ApprovalAction::RemoveMethod {
                kind: change.kind,
                hint: change.hint.clone(),
            },
            Self::Method { change } => ApprovalAction::AddMethod {
                kind: change.kind,
                hint: change.hint.clone(),
            },
        }
    }
}

/// A request for approval, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Request {
    id: String,
    what: Requested,
    /// The requesting operator's objectGUID; none for an integration of the JSON API (no
    /// person can be that requester, so any approver may decide it).
    #[serde(default)]
    requester: Option<[u8; 16]>,
    /// `Agent::name`: the operator's sAMAccountName, or `api:<name>`.
    requester_sam: String,
    target: [u8; 16],
    target_sam: String,
    at: i64,
}

/// An entry of the index of pending requests: enough to audit its expiry after the request
/// itself is gone, and to show a user their own pending changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    id: String,
    expires_at: i64,
    target: [u8; 16],
    target_sam: String,
    requester_sam: String,
    what: String,
    #[serde(default)]
    method: Option<(bool, MethodKind)>,
}

/// How long the index of pending approvals lives without being touched (it is rewritten on
/// every request and decision).
const INDEX_TTL: i64 = 30 * 86_400;
/// Pending requests kept in the index at most (older ones fall off; they expire anyway).
const INDEX_MAX: usize = 500;

impl Engine {
    /// Act for the session's verified caller. The act needs a caller verified within
    /// `caller_ttl`, re-reads the user live, refuses privileged users and the operator's own
    /// account; on a member of a sensitive group it becomes a request for approval. ONE audit
    /// record (the act's, or `approval` for a request), actor the operator.
    pub async fn helpdesk_act(
        &self,
        ctx: &RequestContext,
        flow: &str,
        act: Act,
    ) -> EngineResult<ActOutcome> {
        let mut trail = Trail::new(act.operation());
        trail.methods(&["helpdesk", "caller_code"]);
        let mut actx = ctx.clone();
        let result = self.act_inner(ctx, &mut actx, &mut trail, flow, act).await;
        self.record(&actx, trail, result).await
    }

    async fn act_inner(
        &self,
        ctx: &RequestContext,
        actx: &mut RequestContext,
        trail: &mut Trail,
        flow: &str,
        act: Act,
    ) -> EngineResult<ActOutcome> {
        let s = self.operator_session(ctx, actx, flow).await?;
        let caller = s.caller.clone().ok_or(EngineError::CallerNotVerified)?;
        let user = Guid(caller.user);
        trail.target_guid(Some(&user));
        if !self.caller_open(&caller) {
            trail.note("caller_not_verified");
            return Err(EngineError::CallerNotVerified);
        }
        let account = self.live_account(&user).await?;
        self.act_on(trail, &Agent::Operator(&s.operator), &account, act)
            .await
    }

    /// Act as `agent` on the live `account` of a caller it verified: refused where `actable`
    /// says so; on a member of a sensitive group a request for approval instead (the record
    /// becomes `approval`); else the act runs and the user is mailed.
    pub(crate) async fn act_on(
        &self,
        trail: &mut Trail,
        agent: &Agent<'_>,
        account: &Account,
        act: Act,
    ) -> EngineResult<ActOutcome> {
        self.actable(trail, agent, account)?;
        if self
            .inner
            .config
            .helpdesk
            .sensitive_groups
            .iter()
            .any(|g| account.is_member(g))
        {
            trail.operation(Operation::Approval);
            trail.note(&format!("requested:{}", act.as_str()));
            let (id, expires_at) = self
                .request_approval(agent, account, Requested::Act { act })
                .await?;
            return Ok(ActOutcome::Pending { id, expires_at });
        }
        let outcome = self.run_act(trail, account, act).await?;
        self.notify_helpdesk_act(account, act, agent, None).await;
        Ok(outcome)
    }

    /// Carry an act out on a live, checked account.
    async fn run_act(
        &self,
        trail: &mut Trail,
        account: &Account,
        act: Act,
    ) -> EngineResult<ActOutcome> {
        match act {
            Act::ResetCode => {
                let code = self.issue_helpdesk_code(trail, account).await?;
                Ok(ActOutcome::Code(code))
            }
            Act::Unlock | Act::MustChange => {
                let Some(zone) = self.inner.zones.first() else {
                    return Err(EngineError::WrongStep);
                };
                let grant = WriteGrant::new(account);
                let r = if act == Act::Unlock {
                    zone.unlock(&grant).await
                } else {
                    zone.require_change(&grant).await
                };
                trail.zone(ZoneReport::from_result(zone.id(), &r).audit());
                r.map_err(EngineError::Landing)?;
                trail.landed();
                Ok(ActOutcome::Done)
            }
        }
    }

    /// Mail the user what the helpdesk did (to the enrolled address, else the directory's).
    async fn notify_helpdesk_act(
        &self,
        account: &Account,
        act: Act,
        agent: &Agent<'_>,
        approver: Option<&str>,
    ) {
        let Some(to) = self.notice_address(account).await else {
            return;
        };
        let what = match act {
            Act::Unlock => "was unlocked",
            Act::ResetCode => "was given a one-time reset code",
            Act::MustChange => "must now change its password at next sign-in",
        };
        let cfg = &self.inner.config;
        let by = match approver {
            Some(a) => format!("{}, approved by {a}", agent.words()),
            None => agent.words(),
        };
        let body = format!(
            "Your account {sam} {what} by the {org} helpdesk ({by}) after you were verified by \
             a code sent to you.\n\nNot you? Contact your IT security team at once, and reset \
             your password at {url}\n",
            sam = account.sam_account_name,
            org = cfg.organisation,
            url = cfg.public_base_url,
        );
        let mail = crate::notify::Email {
            to,
            subject: format!("Your {} account {what}", cfg.organisation),
            body,
        };
        if self.queue_notice(&account.guid, &mail).await.is_ok() {
            self.kick_outbox().await;
        }
    }

    /// Issue a helpdesk one-time code for `account` (checked by the caller); the code hangs off
    /// a flow of its own (one per user: a new code replaces the old, a reset deletes it).
    pub(crate) async fn issue_helpdesk_code(
        &self,
        trail: &mut Trail,
        account: &Account,
    ) -> EngineResult<String> {
        let allowed = self
            .rule_for(account)
            .is_some_and(|r| r.allows(crate::method::Method::HelpdeskCode));
        if !allowed {
            trail.note("tier_forbids_helpdesk_code");
            return Err(EngineError::MethodUnavailable);
        }
        let now = self.now();
        let id = self.helpdesk_key(&account.guid);
        let ttl = self.inner.config.helpdesk_code_ttl.clamp(60, 3600);
        let _ = self.inner.store.delete_flow(&id).await?;
        self.inner
            .store
            .insert_flow(&FlowRecord {
                id: id.clone(),
                kind: FlowKind::Helpdesk,
                user: Some(account.guid),
                state: "{}".into(),
                version: 0,
                created_at: now,
                expires_at: now + ttl,
            })
            .await?;
        let code = zeroize::Zeroizing::new(crate::otp::generate_digits(
            self.inner.random.as_ref(),
            crate::otp::HELPDESK_DIGITS,
        ));
        let challenge = crate::store::Challenge {
            id: crate::clock::token(self.inner.random.as_ref(), 16),
            flow_id: id.clone(),
            user: account.guid,
            purpose: "helpdesk".into(),
            code_hash: crate::otp::hash(&self.inner.otp_key, &id, &account.guid, "helpdesk", &code),
            expires_at: now + ttl,
            failed_attempts: 0,
        };
        self.inner.store.put_challenge(&challenge).await?;
        Ok(code.as_str().to_owned())
    }

    fn approval_key(&self, id: &str) -> String {
        self.flow_key(&format!("helpdesk approval:{id}"))
    }

    fn index_key(&self) -> String {
        self.flow_key("helpdesk approvals index")
    }

    /// Store a request (its id and expiry). The index gets an entry naming it.
    pub(crate) async fn request_approval(
        &self,
        requester: &Agent<'_>,
        target: &Account,
        what: Requested,
    ) -> EngineResult<(String, i64)> {
        let now = self.now();
        let id = crate::clock::token(self.inner.random.as_ref(), 8);
        let expires_at = now + self.inner.config.helpdesk.approval_ttl.max(60);
        let entry = Entry {
            id: id.clone(),
            expires_at,
            target: target.guid.0,
            target_sam: target.sam_account_name.clone(),
            requester_sam: requester.name(),
            what: what.word(),
            method: match &what {
                Requested::Method { change } => Some((change.remove, change.kind)),
                Requested::Act { .. } => None,
            },
        };
        let request = Request {
            id: id.clone(),
            what,
            requester: requester.guid().map(|g| g.0),
            requester_sam: requester.name(),
            target: target.guid.0,
            target_sam: target.sam_account_name.clone(),
            at: now,
        };
        self.inner
            .store
            .insert_flow(&FlowRecord {
                id: self.approval_key(&id),
                kind: FlowKind::Approval,
                user: None,
                state: serde_json::to_string(&request).unwrap_or_default(),
                version: 0,
                created_at: now,
                expires_at,
            })
            .await?;
        self.edit_index(|ids| ids.push(entry.clone())).await?;
        Ok((id, expires_at))
    }

    /// Change the list of pending requests (optimistic, retried when another replica moved it).
    async fn edit_index(&self, edit: impl Fn(&mut Vec<Entry>)) -> EngineResult<Vec<Entry>> {
        let key = self.index_key();
        for _ in 0..8 {
            let now = self.now();
            let current = self.inner.store.flow(&key, now).await?;
            let mut ids: Vec<Entry> = current
                .as_ref()
                .and_then(|r| serde_json::from_str(&r.state).ok())
                .unwrap_or_default();
            edit(&mut ids);
            if ids.len() > INDEX_MAX {
                ids.drain(..ids.len() - INDEX_MAX);
            }
            let state = serde_json::to_string(&ids).unwrap_or_default();
            let done = match current {
                Some(mut r) => {
                    r.state = state;
                    r.expires_at = now + INDEX_TTL;
                    self.inner.store.update_flow(&r).await?
                }
                None => self
                    .inner
                    .store
                    .insert_flow(&FlowRecord {
                        id: key.clone(),
                        kind: FlowKind::Approval,
                        user: None,
                        state,
                        version: 0,
                        created_at: now,
                        expires_at: now + INDEX_TTL,
                    })
                    .await
                    .is_ok(),
            };
            if done {
                return Ok(ids);
            }
        }
        Err(EngineError::WrongStep)
    }

    async fn request(&self, id: &str) -> EngineResult<Option<(FlowRecord, Request)>> {
        let Some(record) = self
            .inner
            .store
            .flow(&self.approval_key(id), self.now())
            .await?
        else {
            return Ok(None);
        };
        let request = serde_json::from_str(&record.state)
            .map_err(|_| crate::store::StoreError::Corrupt("approval".into()))?;
        Ok(Some((record, request)))
    }

    async fn index(&self) -> EngineResult<Vec<Entry>> {
        Ok(self
            .inner
            .store
            .flow(&self.index_key(), self.now())
            .await?
            .and_then(|r| serde_json::from_str(&r.state).ok())
            .unwrap_or_default())
    }

    /// Take expired requests off the index and write ONE `approval` audit record for each
    /// (actor `system`, `expired:<what>; requested_by:<sam>`): nothing was done. Exactly one
    /// replica wins the index update; a lost race leaves the sweep to the next look.
    pub async fn expire_approvals(&self) -> EngineResult<usize> {
        let key = self.index_key();
        let now = self.now();
        let Some(mut record) = self.inner.store.flow(&key, now).await? else {
            return Ok(0);
        };
        let entries: Vec<Entry> = serde_json::from_str(&record.state).unwrap_or_default();
        let (expired, kept): (Vec<Entry>, Vec<Entry>) =
            entries.into_iter().partition(|e| e.expires_at <= now);
        if expired.is_empty() {
            return Ok(0);
        }
        record.state = serde_json::to_string(&kept).unwrap_or_default();
        if !self.inner.store.update_flow(&record).await? {
            return Ok(0);
        }
        let ctx = super::RequestContext {
            actor: crate::audit::Actor::System,
            support_id: self.support_id(),
            ..super::RequestContext::default()
        };
        for e in &expired {
            let mut trail = Trail::new(Operation::Approval);
            trail.target_guid(Some(&Guid(e.target)));
            if let Some((_, kind)) = e.method {
                trail.methods(&[kind.as_str()]);
            }
            trail.note(&format!(
                "expired:{}; requested_by:{}; request:{}",
                e.what, e.requester_sam, e.id
            ));
            let _ = self.record(&ctx, trail, Ok(())).await;
        }
        Ok(expired.len())
    }

    /// The user's own method changes waiting for approval (the methods page shows them).
    pub(crate) async fn pending_changes(&self, user: &Guid) -> EngineResult<Vec<PendingChange>> {
        let now = self.now();
        Ok(self
            .index()
            .await?
            .into_iter()
            .filter(|e| e.target == user.0 && e.expires_at > now)
            .filter_map(|e| {
                let (remove, kind) = e.method?;
                Some(PendingChange {
                    id: e.id,
                    remove,
                    kind,
                    expires_at: e.expires_at,
                })
            })
            .collect())
    }

    /// The pending requests (no audit of the look itself; expired ones are swept and audited).
    pub async fn helpdesk_approvals(&self, flow: &str) -> EngineResult<Vec<ApprovalView>> {
        let s = self.session(flow).await?;
        let _ = self.expire_approvals().await;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for entry in self.index().await? {
            match self.request(&entry.id).await? {
                Some((record, r)) => out.push(ApprovalView {
                    id: r.id,
                    action: r.what.view(),
                    own: r.requester == Some(s.operator.guid.0),
                    requester: r.requester_sam,
                    target: r.target_sam,
                    requested_at: r.at,
                    expires_at: record.expires_at,
                }),
                None => gone.push(entry.id),
            }
        }
        if !gone.is_empty() {
            let _ = self
                .edit_index(|ids| ids.retain(|i| !gone.contains(&i.id)))
                .await;
        }
        Ok(out)
    }

    /// Approve (the act runs now, on the live account, checked again) or reject a request. Only
    /// a member of the approver groups, never the requester (by objectGUID). ONE audit record:
    /// the act's when approved (actor the approver, the requester named in the detail), else
    /// `approval`.
    pub async fn helpdesk_decide(
        &self,
        ctx: &RequestContext,
        flow: &str,
        id: &str,
        approve: bool,
    ) -> EngineResult<ActOutcome> {
        let mut trail = Trail::new(Operation::Approval);
        trail.methods(&["helpdesk", "approval"]);
        let mut actx = ctx.clone();
        let result = self
            .decide_inner(ctx, &mut actx, &mut trail, flow, id, approve)
            .await;
        self.record(&actx, trail, result).await
    }

    async fn decide_inner(
        &self,
        ctx: &RequestContext,
        actx: &mut RequestContext,
        trail: &mut Trail,
        flow: &str,
        id: &str,
        approve: bool,
    ) -> EngineResult<ActOutcome> {
        let s = self.session(flow).await?;
        *actx = Self::as_operator(ctx, &s.operator);
        if !s.roles.approver {
            trail.note("not_approver");
            return Err(EngineError::NotAllowed);
        }
        let Some((record, request)) = self.request(id).await? else {
            trail.note("approval_gone");
            return Err(EngineError::ApprovalGone);
        };
        let target = Guid(request.target);
        trail.target_guid(Some(&target));
        if request.requester == Some(s.operator.guid.0) {
            trail.note("self_approval");
            return Err(EngineError::SelfApproval);
        }
        // Exactly one decision: whoever deletes the request decides it.
        if !self.inner.store.delete_flow(&record.id).await? {
            trail.note("approval_gone");
            return Err(EngineError::ApprovalGone);
        }
        let _ = self.edit_index(|ids| ids.retain(|i| i.id != id)).await;
        let requested_by = format!("requested_by:{}", request.requester_sam);
        if !approve {
            trail.note(&format!(
                "rejected:{}; {requested_by}; request:{id}",
                request.what.word()
            ));
            return Ok(ActOutcome::Done);
        }
        let act = match request.what {
            Requested::Act { act } => act,
            Requested::Method { change } => {
                trail.operation(if change.remove {
                    Operation::MethodRemoved
                } else {
                    Operation::Enroll
                });
                trail.note(&format!("approved; {requested_by}; request:{id}"));
                let account = self.live_account(&target).await?;
                trail.target(&account);
                self.apply_method_change(trail, &account, &change, &s.operator.sam_account_name)
                    .await?;
                return Ok(ActOutcome::Done);
            }
        };
        trail.operation(act.operation());
        trail.note(&format!("approved; {requested_by}"));
        let account = self.live_account(&target).await?;
        let operator = match request.requester {
            Some(guid) => Some(self.live_account(&Guid(guid)).await?),
            None => None,
        };
        let requester = match &operator {
            Some(a) => Agent::Operator(a),
            None => Agent::Integration(
                request
                    .requester_sam
                    .strip_prefix("api:")
                    .unwrap_or(&request.requester_sam),
            ),
        };
        // The requester's view of the target (not the approver's own account) and the approver's.
        self.actable(trail, &requester, &account)?;
        self.actable(trail, &Agent::Operator(&s.operator), &account)?;
        let outcome = self.run_act(trail, &account, act).await?;
        self.notify_helpdesk_act(
            &account,
            act,
            &requester,
            Some(&s.operator.sam_account_name),
        )
        .await;
        Ok(outcome)
    }
}
