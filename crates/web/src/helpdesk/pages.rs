//! The console's typed views (templates `hd_*.html`).

use askama::Template;
use rekey_core::engine::{Act, ActOutcome, ApprovalAction, ApprovalView, Console, UserCard};

use super::ctx::HdCtx;
use super::texts::Hd;
use crate::views::{Common, utc_label};

#[derive(Template)]
#[template(path = "hd_console.html")]
pub struct ConsolePage {
    pub c: Common,
    pub h: &'static Hd,
    pub operator: String,
    pub ends: String,
    pub may_act: bool,
    pub may_approve: bool,
    pub alert: Option<String>,
    pub support_id: Option<String>,
    pub card: Option<CardView>,
}

pub struct CardView {
    pub sam: String,
    pub display: Option<String>,
    /// (machine word for tests, text)
    pub state: Vec<(&'static str, &'static str)>,
    pub privileged: bool,
    pub sensitive: bool,
    pub methods: Vec<MethodLine>,
    pub events: Vec<EventRow>,
    pub code_to: Option<String>,
    pub code_sent: bool,
    pub verified_until: Option<String>,
}

pub struct MethodLine {
    pub kind: &'static str,
    pub name: &'static str,
    pub hint: String,
    pub enrolled: String,
    pub last_used: String,
}

pub struct EventRow {
    pub time: String,
    pub operation: &'static str,
    pub result: String,
    pub actor: String,
}

pub fn console_page(
    ctx: &HdCtx,
    console: &Console,
    card: Option<&UserCard>,
    alert: Option<String>,
) -> ConsolePage {
    let (t, h) = (ctx.t, ctx.h);
    ConsolePage {
        c: ctx.common(h.console_title),
        h,
        operator: console.operator.clone(),
        ends: utc_label(console.expires_at),
        may_act: console.roles.operator,
        may_approve: console.roles.approver,
        support_id: alert.as_ref().map(|_| ctx.req.support_id.clone()),
        alert,
        card: card.map(|u| {
            let mut state = vec![if u.enabled {
                ("enabled", h.enabled)
            } else {
                ("disabled", h.disabled)
            }];
            state.push(if u.locked {
                ("locked", h.locked)
            } else {
                ("not_locked", h.not_locked)
            });
            state.push(if u.must_change {
                ("must_change", h.must_change)
            } else if u.password_expired {
                ("expired", h.expired)
            } else {
                ("password_ok", h.password_ok)
            });
            CardView {
                sam: u.sam.clone(),
                display: u.display_name.clone(),
                state,
                privileged: u.privileged,
                sensitive: u.sensitive,
                methods: u
                    .methods
                    .iter()
                    .map(|m| MethodLine {
                        kind: m.kind.as_str(),
                        name: t.kind_name(m.kind),
                        hint: m.hint.clone(),
                        enrolled: utc_label(m.enrolled_at),
                        last_used: m.last_used_at.map_or_else(|| t.never.to_owned(), utc_label),
                    })
                    .collect(),
                events: u
                    .events
                    .iter()
                    .map(|e| EventRow {
                        time: utc_label(e.at_ms / 1000),
                        operation: e.operation,
                        result: e.result.clone(),
                        actor: e.actor.clone(),
                    })
                    .collect(),
                code_to: u.code_to.clone(),
                code_sent: u.caller.code_sent,
                verified_until: u.caller.verified_until.map(utc_label),
            }
        }),
    }
}

#[derive(Template)]
#[template(path = "hd_result.html")]
pub struct ResultPage {
    pub c: Common,
    pub ok: bool,
    pub message: String,
    pub code: Option<String>,
    pub support_id: String,
    pub error_code: Option<String>,
    pub back: &'static str,
    pub back_text: &'static str,
}

pub fn outcome(ctx: &HdCtx, act: Act, outcome: ActOutcome) -> ResultPage {
    let h = ctx.h;
    let (message, code) = match outcome {
        ActOutcome::Done => (
            match act {
                Act::MustChange => h.done_must_change.to_owned(),
                _ => h.done_unlock.to_owned(),
            },
            None,
        ),
        ActOutcome::Code(code) => (h.code_once.to_owned(), Some(code)),
        ActOutcome::Pending { id, .. } => (format!("{} {id}", h.pending), None),
    };
    ResultPage {
        c: ctx.common(h.act_name(act)),
        ok: true,
        message,
        code,
        support_id: ctx.req.support_id.clone(),
        error_code: None,
        back: "/helpdesk/console",
        back_text: h.back,
    }
}

pub fn decided(ctx: &HdCtx, approve: bool, outcome: ActOutcome) -> ResultPage {
    let h = ctx.h;
    let (message, code) = match (approve, outcome) {
        (false, _) => (h.rejected.to_owned(), None),
        (true, ActOutcome::Code(code)) => (h.code_once.to_owned(), Some(code)),
        (true, _) => (h.done_approved.to_owned(), None),
    };
    ResultPage {
        c: ctx.common(h.approvals_title),
        ok: true,
        message,
        code,
        support_id: ctx.req.support_id.clone(),
        error_code: None,
        back: "/helpdesk/approvals",
        back_text: h.approvals_title,
    }
}

#[derive(Template)]
#[template(path = "hd_approvals.html")]
pub struct ApprovalsPage {
    pub c: Common,
    pub h: &'static Hd,
    pub rows: Vec<ApprovalRow>,
}

pub struct ApprovalRow {
    pub id: String,
    /// What would happen, in words (a method change names the method and its masked hint).
    pub act: String,
    /// `unlock`, `reset_code`, `must_change`, `add_method`, `remove_method` (tests, styling).
    pub kind: &'static str,
    pub target: String,
    pub requester: String,
    pub own: bool,
    pub expires: String,
}

/// A request's action as the approver reads it: `Unlock the account`, or `Add a method
/// (privileged user): Authenticator app — authenticator app`.
fn action_words(ctx: &HdCtx, action: &ApprovalAction) -> String {
    match action {
        ApprovalAction::Act(a) => ctx.h.act_name(*a).to_owned(),
        ApprovalAction::AddMethod { kind, hint } => {
            format!("{}: {} — {hint}", ctx.h.add_method, ctx.t.kind_name(*kind))
        }
        ApprovalAction::RemoveMethod { kind, hint } => {
            format!(
                "{}: {} — {hint}",
                ctx.h.remove_method,
                ctx.t.kind_name(*kind)
            )
        }
    }
}

pub fn approvals(ctx: &HdCtx, rows: &[ApprovalView]) -> ApprovalsPage {
    ApprovalsPage {
        c: ctx.common(ctx.h.approvals_title),
        h: ctx.h,
        rows: rows
            .iter()
            .map(|r| ApprovalRow {
                id: r.id.clone(),
                act: action_words(ctx, &r.action),
                kind: match &r.action {
                    ApprovalAction::Act(a) => a.as_str(),
                    ApprovalAction::AddMethod { .. } => "add_method",
                    ApprovalAction::RemoveMethod { .. } => "remove_method",
                },
                target: r.target.clone(),
                requester: r.requester.clone(),
                own: r.own,
                expires: utc_label(r.expires_at),
            })
            .collect(),
    }
}
