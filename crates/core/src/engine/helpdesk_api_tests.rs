//! The helpdesk for integrations on the fakes: caller verification bound to the integration
//! and the user, the console's acts and approvals, one audit record per call naming
//! `api:<name>`.

use super::helpdesk_tests::{events, hd_world, last_event, signed_in};
use super::tests::ctx;
use super::*;
use crate::audit::{Actor, Operation};
use crate::fakes::*;

fn api(name: &str) -> RequestContext {
    RequestContext {
        actor: Actor::Api(name.into()),
        ..ctx()
    }
}

/// Start a verification of `who` as `client` and pass it with the mailed code.
fn verified(w: &World, client: &str, who: &str) -> CallerVerified {
    let start = run(w.engine.helpdesk_api_verify_start(&api(client), who)).unwrap();
    let code = w.last_code();
    run(w.engine.helpdesk_api_verify(&api(client), &start.id, &code)).unwrap()
}

#[test]
fn an_integration_verifies_the_caller_then_unlocks() {
    let w = hd_world();
    let before = events(&w).len();
    let card = run(w.engine.helpdesk_api_lookup(&api("desk"), "locked")).unwrap();
    assert!(card.locked && !card.privileged && !card.sensitive);
    assert!(!card.methods[0].hint.contains("u6@home.example"));
    let start = run(w.engine.helpdesk_api_verify_start(&api("desk"), "locked")).unwrap();
    assert_eq!(w.last_mail().to, "u6@home.example");
    assert_eq!(start.sent_to, card.methods[0].hint);
    assert_eq!(start.expires_at, T0 + 600);
    // Acting before the caller read the code back: refused, nothing written.
    let e = run(w
        .engine
        .helpdesk_api_act(&api("desk"), &start.id, "locked", Act::Unlock))
    .unwrap_err();
    assert!(matches!(e, EngineError::CallerNotVerified));
    let e = run(w
        .engine
        .helpdesk_api_verify(&api("desk"), &start.id, "000000"))
    .unwrap_err();
    assert!(matches!(e, EngineError::WrongCode));
    let code = w.last_code();
    let ok = run(w.engine.helpdesk_api_verify(&api("desk"), &start.id, &code)).unwrap();
    assert_ne!(
        ok.id, start.id,
        "the id rotates when the caller is verified"
    );
    assert_eq!(ok.until, T0 + 600);
    let e = run(w
        .engine
        .helpdesk_api_act(&api("desk"), &start.id, "locked", Act::Unlock))
    .unwrap_err();
    assert!(matches!(e, EngineError::FlowExpired), "the old id is dead");
    let out = run(w
        .engine
        .helpdesk_api_act(&api("desk"), &ok.id, "locked", Act::Unlock))
    .unwrap();
    assert_eq!(out, ActOutcome::Done);
    assert_eq!(
        *w.zone.writes.lock().unwrap(),
        vec!["unlock locked".to_owned()]
    );
    assert!(
        w.last_mail().body.contains("helpdesk integration desk"),
        "the user is told who acted"
    );
    // Further acts with the same verification, while it lasts.
    run(w
        .engine
        .helpdesk_api_act(&api("desk"), &ok.id, "locked", Act::MustChange))
    .unwrap();
    let ActOutcome::Code(code) =
        run(w
            .engine
            .helpdesk_api_act(&api("desk"), &ok.id, "locked", Act::ResetCode))
        .unwrap()
    else {
        panic!("a code")
    };
    assert_eq!(code.len(), 8);
    // ONE record per call, every one naming the integration; no code in any.
    let ev = events(&w);
    let ops: Vec<(Operation, &str)> = ev[before..]
        .iter()
        .map(|e| (e.operation, e.result.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            (Operation::Lookup, "ok"),
            (Operation::Verify, "ok"),
            (Operation::Unlock, "failed"),
            (Operation::Verify, "failed"),
            (Operation::Verify, "ok"),
            (Operation::Unlock, "failed"),
            (Operation::Unlock, "ok"),
            (Operation::MustChange, "ok"),
            (Operation::HelpdeskCode, "ok"),
        ]
    );
    assert!(
        ev[before..]
            .iter()
            .all(|e| e.actor == Actor::Api("desk".into())
                && e.target_sam.as_deref().is_none_or(|s| s == "locked")),
        "{ev:#?}"
    );
    assert!(
        w.store
            .with(|m| m.audit.iter().all(|r| !r.body.contains(&code)))
    );
    w.audit_ok();
}

#[test]
fn a_verification_of_another_integration_or_user_is_refused() {
    let w = hd_world();
    let ok = verified(&w, "desk", "locked");
    let e = run(w
        .engine
        .helpdesk_api_act(&api("other"), &ok.id, "locked", Act::Unlock))
    .unwrap_err();
    assert!(matches!(e, EngineError::VerificationMismatch));
    assert_eq!(
        last_event(&w).detail.as_deref(),
        Some("verification_of_another_integration")
    );
    let e = run(w
        .engine
        .helpdesk_api_verify(&api("other"), &ok.id, "123456"))
    .unwrap_err();
    assert!(matches!(e, EngineError::VerificationMismatch));
    let e = run(w
        .engine
        .helpdesk_api_act(&api("desk"), &ok.id, "normal", Act::Unlock))
    .unwrap_err();
    assert!(matches!(e, EngineError::VerificationMismatch));
    let ev = last_event(&w);
    assert_eq!(ev.detail.as_deref(), Some("verification_of_another_user"));
    assert_eq!(ev.actor, Actor::Api("desk".into()));
    assert!(w.zone.writes.lock().unwrap().is_empty());
    // Not an integration at all (a console request context): refused.
    let e = run(w
        .engine
        .helpdesk_api_act(&ctx(), &ok.id, "locked", Act::Unlock))
    .unwrap_err();
    assert!(matches!(e, EngineError::NotAllowed));
    // A console session is no verification, and a verification no console session.
    let console = signed_in(&w, "op");
    let e = run(w
        .engine
        .helpdesk_api_act(&api("desk"), &console, "locked", Act::Unlock))
    .unwrap_err();
    assert!(matches!(e, EngineError::FlowExpired));
    assert!(run(w.engine.helpdesk_console(&ok.id)).is_err());
    assert!(run(w.engine.helpdesk_act(&ctx(), &ok.id, Act::Unlock)).is_err());
    assert!(w.zone.writes.lock().unwrap().is_empty());
}

#[test]
fn an_expired_verification_is_refused() {
    let w = hd_world();
    let ok = verified(&w, "desk", "locked");
    w.advance(601);
    let e = run(w
        .engine
        .helpdesk_api_act(&api("desk"), &ok.id, "locked", Act::Unlock))
    .unwrap_err();
    assert!(matches!(e, EngineError::FlowExpired));
    // An unpassed one ends with its code.
    let start = run(w.engine.helpdesk_api_verify_start(&api("desk"), "locked")).unwrap();
    let code = w.last_code();
    w.advance(601);
    let e = run(w.engine.helpdesk_api_verify(&api("desk"), &start.id, &code)).unwrap_err();
    assert!(matches!(e, EngineError::FlowExpired));
    assert!(w.zone.writes.lock().unwrap().is_empty());
}

#[test]
fn five_wrong_codes_void_the_verification() {
    let w = hd_world();
    let start = run(w.engine.helpdesk_api_verify_start(&api("desk"), "locked")).unwrap();
    let code = w.last_code();
    for n in 1..=5 {
        let e = run(w
            .engine
            .helpdesk_api_verify(&api("desk"), &start.id, "000000"))
        .unwrap_err();
        if n < 5 {
            assert!(matches!(e, EngineError::WrongCode), "{n}");
        } else {
            assert!(matches!(e, EngineError::TooManyAttempts), "{n}");
        }
    }
    let e = run(w.engine.helpdesk_api_verify(&api("desk"), &start.id, &code)).unwrap_err();
    assert!(matches!(e, EngineError::TooManyAttempts));
}

#[test]
fn privileged_and_unenrolled_users_cannot_be_verified() {
    let w = hd_world();
    let card = run(w.engine.helpdesk_api_lookup(&api("desk"), "admin")).unwrap();
    assert!(card.privileged);
    let mails = w.mails();
    let e = run(w.engine.helpdesk_api_verify_start(&api("desk"), "admin")).unwrap_err();
    assert!(matches!(
        e,
        EngineError::Ineligible(crate::scope::Ineligible::PrivilegedExcluded)
    ));
    let ev = last_event(&w);
    assert_eq!(
        (ev.operation, ev.detail.as_deref(), ev.actor),
        (
            Operation::Verify,
            Some("privileged"),
            Actor::Api("desk".into())
        )
    );
    let e = run(w
        .engine
        .helpdesk_api_verify_start(&api("desk"), "unenrolled"))
    .unwrap_err();
    assert!(matches!(e, EngineError::NoCallerMethod));
    let e = run(w.engine.helpdesk_api_lookup(&api("desk"), "nobody")).unwrap_err();
    assert!(matches!(e, EngineError::NoSuchAccount));
    assert_eq!(last_event(&w).operation, Operation::Lookup);
    assert_eq!(w.mails(), mails, "no code went out");
}

#[test]
fn a_sensitive_user_waits_for_an_approver_who_is_any_person() {
    let w = hd_world();
    let ok = verified(&w, "desk", "vip");
    let ActOutcome::Pending { id, expires_at } =
        run(w
            .engine
            .helpdesk_api_act(&api("desk"), &ok.id, "vip", Act::Unlock))
        .unwrap()
    else {
        panic!("pending")
    };
    assert_eq!(expires_at, T0 + 3600);
    let ev = last_event(&w);
    assert_eq!(
        (ev.operation, ev.actor, ev.detail.as_deref()),
        (
            Operation::Approval,
            Actor::Api("desk".into()),
            Some("requested:unlock")
        )
    );
    assert!(w.zone.writes.lock().unwrap().is_empty());
    // No person is this requester: op2 (operator and approver) sees it as someone else's.
    let op2 = signed_in(&w, "op2");
    let list = run(w.engine.helpdesk_approvals(&op2)).unwrap();
    assert_eq!(list.len(), 1);
    assert!(!list[0].own);
    assert_eq!(list[0].requester, "api:desk");
    let before = events(&w).len();
    run(w.engine.helpdesk_decide(&ctx(), &op2, &id, true)).unwrap();
    assert_eq!(
        *w.zone.writes.lock().unwrap(),
        vec!["unlock vip".to_owned()]
    );
    let ev = events(&w);
    assert_eq!(ev.len(), before + 1);
    assert_eq!(
        (
            ev[before].operation,
            ev[before].actor.clone(),
            ev[before].detail.as_deref()
        ),
        (
            Operation::Unlock,
            Actor::Helpdesk("op2".into()),
            Some("approved; requested_by:api:desk")
        )
    );
    assert!(
        w.last_mail()
            .body
            .contains("helpdesk integration desk, approved by op2")
    );
    w.audit_ok();
}
