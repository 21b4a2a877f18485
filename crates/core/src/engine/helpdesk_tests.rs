//! The helpdesk console on the fakes: sign-in, second factor, caller verification, acts,
//! approvals — and one audit record per entry point naming the operator.

use super::helpdesk::HelpdeskRules;
use super::tests::ctx;
use super::*;
use crate::account::Sid;
use crate::audit::{AuditEvent, Operation};
use crate::fakes::*;
use crate::method::Method;
use crate::secret::Password;

pub(super) const OPS: u32 = 3000;
pub(super) const APPROVERS: u32 = 3001;
const SENSITIVE: u32 = 3002;

pub(super) fn sid(rid: u32) -> Sid {
    DOMAIN.parse::<Sid>().unwrap().with_rid(rid)
}

/// `world` plus: `op` and `op2` (operators, op2 also approver), `appr` (approver only), `mallory`
/// (no group), `vip` (sensitive, enrolled), each with password `Pw-<sam>-1` and an email.
pub(super) fn hd_world() -> World {
    hd_people(world_with(hd_config()).build())
}

/// The console's rules of `hd_world`, and helpdesk codes for the standard tier.
pub(super) fn hd_config() -> EngineConfig {
    let mut config = EngineConfig {
        helpdesk: HelpdeskRules {
            operator_groups: vec![sid(OPS)],
            approver_groups: vec![sid(APPROVERS)],
            sensitive_groups: vec![sid(SENSITIVE)],
            ..HelpdeskRules::default()
        },
        ..EngineConfig::default()
    };
    config.gates.standard.methods.push(Method::HelpdeskCode);
    config
}

/// Add `hd_world`'s people to a world.
pub(super) fn hd_people(w: World) -> World {
    for (n, sam, groups) in [
        (20u8, "op", vec![OPS]),
        (21, "op2", vec![OPS, APPROVERS]),
        (22, "appr", vec![APPROVERS]),
        (23, "mallory", vec![]),
        (24, "vip", vec![2000, SENSITIVE]),
        (25, "nofactor", vec![OPS]),
    ] {
        w.person(n, sam, &groups, sam != "nofactor");
    }
    w
}

pub(super) fn pw(sam: &str) -> Password {
    Password::new(format!("Pw-{sam}-1"))
}

/// Sign in as `sam` and pass the email second factor: the console session's id.
pub(super) fn signed_in(w: &World, sam: &str) -> String {
    let start = run(w.engine.helpdesk_sign_in(&ctx(), sam, &pw(sam))).unwrap();
    let ConsoleStart::SecondFactor(flow) = start else {
        panic!("second factor expected")
    };
    assert!(matches!(
        run(w.engine.helpdesk_console(&flow)).unwrap(),
        ConsoleStep::Factor(_)
    ));
    run(w
        .engine
        .helpdesk_choose_factor(&ctx(), &flow, Method::EmailOtp))
    .unwrap();
    assert!(w.last_mail().to.ends_with("@home.example"));
    let code = w.last_code();
    let id = run(w.engine.helpdesk_verify_factor(&ctx(), &flow, &code))
        .unwrap()
        .into_id();
    assert_ne!(id, flow, "the id rotates when the factor passes");
    assert!(run(w.engine.helpdesk_console(&flow)).is_err());
    id
}

/// Look `who` up, send the caller code and type it back: the session's new id.
fn verified(w: &World, flow: &str, who: &str) -> String {
    run(w.engine.helpdesk_lookup(&ctx(), flow, who)).unwrap();
    run(w.engine.helpdesk_send_caller_code(&ctx(), flow)).unwrap();
    let code = w.last_code();
    run(w.engine.helpdesk_check_caller(&ctx(), flow, &code)).unwrap()
}

pub(super) fn events(w: &World) -> Vec<AuditEvent> {
    w.store.with(|m| {
        m.audit
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    })
}

pub(super) fn last_event(w: &World) -> AuditEvent {
    events(w).pop().unwrap()
}

#[test]
fn an_operator_signs_in_with_password_and_second_factor() {
    let w = hd_world();
    let before = events(&w).len();
    let flow = signed_in(&w, "op");
    let ConsoleStep::Ready(console) = run(w.engine.helpdesk_console(&flow)).unwrap() else {
        panic!("ready expected")
    };
    assert_eq!(console.operator, "op");
    assert!(console.roles.operator && !console.roles.approver);
    // Password, factor choice (a code sent), factor code: one record each.
    let ev = events(&w);
    assert_eq!(ev.len() - before, 3);
    assert_eq!(ev[before].operation, Operation::HelpdeskSignIn);
    assert_eq!(ev[before].result, "ok");
    w.audit_ok();
}

#[test]
fn someone_outside_the_groups_gets_the_wrong_password_answer_and_no_bind() {
    let w = hd_world();
    let e = run(w.engine.helpdesk_sign_in(&ctx(), "mallory", &pw("mallory"))).unwrap_err();
    assert!(matches!(e, EngineError::SignInFailed));
    let ev = last_event(&w);
    assert_eq!(
        (ev.result.as_str(), ev.detail.as_deref()),
        ("failed", Some("not_operator"))
    );
    // Never asked the DC: no badPwdCount from a refused non-operator.
    let wrong = run(w
        .engine
        .helpdesk_sign_in(&ctx(), "mallory", &Password::new("x".into())))
    .unwrap_err();
    assert_eq!(e.code(), wrong.code());
    w.dir
        .set("mallory", |a| assert_eq!(a.state.bad_pwd_count, 0));
    // A wrong password of a real operator: the same answer, the DC asked.
    let bad = run(w
        .engine
        .helpdesk_sign_in(&ctx(), "op", &Password::new("nope".into())))
    .unwrap_err();
    assert_eq!(bad.code(), e.code());
    w.dir.set("op", |a| assert_eq!(a.state.bad_pwd_count, 1));
}

#[test]
fn an_operator_without_a_second_factor_is_told_to_enroll_one() {
    let w = hd_world();
    let e = run(w
        .engine
        .helpdesk_sign_in(&ctx(), "nofactor", &pw("nofactor")))
    .unwrap_err();
    assert!(matches!(e, EngineError::OperatorNeedsFactor));
    assert_eq!(last_event(&w).detail.as_deref(), Some("no_second_factor"));
}

#[test]
fn acts_need_a_verified_caller_and_name_the_operator() {
    let w = hd_world();
    let flow = signed_in(&w, "op");
    run(w.engine.helpdesk_lookup(&ctx(), &flow, "locked")).unwrap();
    // Before the caller read the code back: refused, audited.
    let e = run(w.engine.helpdesk_act(&ctx(), &flow, Act::Unlock)).unwrap_err();
    assert!(matches!(e, EngineError::CallerNotVerified));
    let ev = last_event(&w);
    assert_eq!(ev.actor, crate::audit::Actor::Helpdesk("op".into()));
    assert_eq!(ev.result, "failed");
    assert!(w.zone.writes.lock().unwrap().is_empty());
    // A wrong code is counted and refused.
    run(w.engine.helpdesk_send_caller_code(&ctx(), &flow)).unwrap();
    assert_eq!(w.last_mail().to, "u6@home.example");
    let e = run(w.engine.helpdesk_check_caller(&ctx(), &flow, "000000")).unwrap_err();
    assert!(matches!(e, EngineError::WrongCode));
    let code = w.last_code();
    let flow2 = run(w.engine.helpdesk_check_caller(&ctx(), &flow, &code)).unwrap();
    assert_ne!(flow2, flow, "verifying the caller rotates the id");
    let before = events(&w).len();
    let out = run(w.engine.helpdesk_act(&ctx(), &flow2, Act::Unlock)).unwrap();
    assert_eq!(out, ActOutcome::Done);
    assert_eq!(
        *w.zone.writes.lock().unwrap(),
        vec!["unlock locked".to_owned()]
    );
    let ev = events(&w);
    assert_eq!(ev.len(), before + 1, "one record per act");
    let ev = &ev[before];
    assert_eq!(
        (ev.operation, ev.result.as_str(), ev.target_sam.as_deref()),
        (Operation::Unlock, "ok", Some("locked"))
    );
    assert_eq!(ev.actor, crate::audit::Actor::Helpdesk("op".into()));
    assert!(w.last_mail().body.contains("helpdesk operator op"));
    // Must change at next logon and a reset code.
    run(w.engine.helpdesk_act(&ctx(), &flow2, Act::MustChange)).unwrap();
    assert_eq!(last_event(&w).operation, Operation::MustChange);
    let ActOutcome::Code(code) =
        run(w.engine.helpdesk_act(&ctx(), &flow2, Act::ResetCode)).unwrap()
    else {
        panic!("a code")
    };
    assert_eq!(code.len(), 8);
    // No code or password ever reaches the audit.
    assert!(
        w.store
            .with(|m| m.audit.iter().all(|r| !r.body.contains(&code)))
    );
    // The verification lapses.
    w.advance(601);
    let e = run(w.engine.helpdesk_act(&ctx(), &flow2, Act::Unlock)).unwrap_err();
    assert!(matches!(e, EngineError::CallerNotVerified));
    w.audit_ok();
}

#[test]
fn privileged_users_and_the_operators_own_account_are_refused() {
    let w = hd_world();
    let flow = signed_in(&w, "op");
    let card = run(w.engine.helpdesk_lookup(&ctx(), &flow, "admin")).unwrap();
    assert!(card.privileged);
    let e = run(w.engine.helpdesk_send_caller_code(&ctx(), &flow)).unwrap_err();
    assert!(matches!(
        e,
        EngineError::Ineligible(crate::scope::Ineligible::PrivilegedExcluded)
    ));
    assert_eq!(last_event(&w).detail.as_deref(), Some("privileged"));
    run(w.engine.helpdesk_lookup(&ctx(), &flow, "op")).unwrap();
    let e = run(w.engine.helpdesk_send_caller_code(&ctx(), &flow)).unwrap_err();
    assert!(matches!(e, EngineError::OwnAccount));
}

#[test]
fn the_card_shows_state_masked_methods_and_recent_events() {
    let w = hd_world();
    let flow = signed_in(&w, "op");
    let card = run(w.engine.helpdesk_lookup(&ctx(), &flow, "locked")).unwrap();
    assert!(card.locked && card.enabled && !card.privileged);
    assert_eq!(card.methods.len(), 1);
    assert!(!card.methods[0].hint.contains("u6@home.example"));
    assert_eq!(card.code_to.as_deref(), Some(card.methods[0].hint.as_str()));
    let _ = verified(&w, &flow, "locked");
    let flow = run(w.engine.helpdesk_sign_in(&ctx(), "op", &pw("op"))).map(|_| ());
    assert!(flow.is_ok());
    let flow = signed_in(&w, "op");
    run(w.engine.helpdesk_lookup(&ctx(), &flow, "locked")).unwrap();
    let card = run(w.engine.helpdesk_user(&flow)).unwrap();
    assert!(card.events.iter().any(|e| e.operation == "verify"));
}

#[test]
fn a_sensitive_account_waits_for_a_second_approver() {
    let w = hd_world();
    let op2 = signed_in(&w, "op2");
    let flow = verified(&w, &op2, "vip");
    let ActOutcome::Pending { id, .. } =
        run(w.engine.helpdesk_act(&ctx(), &flow, Act::Unlock)).unwrap()
    else {
        panic!("pending")
    };
    assert_eq!(last_event(&w).operation, Operation::Approval);
    assert!(w.zone.writes.lock().unwrap().is_empty());
    // The requester is an approver too, but not of his own request.
    let list = run(w.engine.helpdesk_approvals(&flow)).unwrap();
    assert!(list.len() == 1 && list[0].own);
    let e = run(w.engine.helpdesk_decide(&ctx(), &flow, &id, true)).unwrap_err();
    assert!(matches!(e, EngineError::SelfApproval));
    assert_eq!(last_event(&w).detail.as_deref(), Some("self_approval"));
    // An operator who is no approver may not decide.
    let op = signed_in(&w, "op");
    let e = run(w.engine.helpdesk_decide(&ctx(), &op, &id, true)).unwrap_err();
    assert!(matches!(e, EngineError::NotAllowed));
    // A second approver: the act runs, audited with both names.
    let appr = signed_in(&w, "appr");
    assert_eq!(run(w.engine.helpdesk_approvals(&appr)).unwrap().len(), 1);
    let before = events(&w).len();
    run(w.engine.helpdesk_decide(&ctx(), &appr, &id, true)).unwrap();
    assert_eq!(
        *w.zone.writes.lock().unwrap(),
        vec!["unlock vip".to_owned()]
    );
    let ev = events(&w);
    assert_eq!(ev.len(), before + 1);
    assert_eq!(ev[before].operation, Operation::Unlock);
    assert_eq!(
        ev[before].actor,
        crate::audit::Actor::Helpdesk("appr".into())
    );
    assert_eq!(
        ev[before].detail.as_deref(),
        Some("approved; requested_by:op2")
    );
    // Decided once: gone.
    let e = run(w.engine.helpdesk_decide(&ctx(), &appr, &id, true)).unwrap_err();
    assert!(matches!(e, EngineError::ApprovalGone));
    assert!(run(w.engine.helpdesk_approvals(&appr)).unwrap().is_empty());
    w.audit_ok();
}

#[test]
fn an_expired_approval_cannot_be_approved() {
    let w = hd_world();
    let op = signed_in(&w, "op");
    let flow = verified(&w, &op, "vip");
    let ActOutcome::Pending { id, .. } =
        run(w.engine.helpdesk_act(&ctx(), &flow, Act::MustChange)).unwrap()
    else {
        panic!("pending")
    };
    w.advance(3601);
    let appr = signed_in(&w, "appr");
    assert!(run(w.engine.helpdesk_approvals(&appr)).unwrap().is_empty());
    let e = run(w.engine.helpdesk_decide(&ctx(), &appr, &id, true)).unwrap_err();
    assert!(matches!(e, EngineError::ApprovalGone));
    assert!(w.zone.writes.lock().unwrap().is_empty());
}

#[test]
fn a_session_ends_when_the_operator_leaves_the_group() {
    let w = hd_world();
    let flow = signed_in(&w, "op");
    w.dir.set("op", |a| a.groups.clear());
    let e = run(w.engine.helpdesk_console(&flow)).unwrap_err();
    assert!(matches!(e, EngineError::FlowExpired));
}
