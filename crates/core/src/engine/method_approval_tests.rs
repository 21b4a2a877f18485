//! Method changes of privileged-tier users wait for an approver: proven first, kept in the
//! request, applied only by an approver who is not the user; rejection and expiry change
//! nothing; one audit record per step. A standard-tier user's change is unaffected.

use super::helpdesk_tests::{
    APPROVERS, events, hd_config, hd_people, last_event, pw, sid, signed_in,
};
use super::tests::ctx;
use super::*;
use crate::account::Guid;
use crate::audit::{Actor, Operation};
use crate::fakes::*;
use crate::method::{GateRule, Method};
use crate::store::{Enrollment, FlowKind, MethodKind};

const ADMIN: Guid = Guid([4; 16]);
const NORMAL: Guid = Guid([1; 16]);

/// `hd_world` with the privileged tier served (email, app, passkey; two gates), passkeys on,
/// and `admin` (privileged) an approver too, with password `Pw-admin-1`.
fn world_of(config: EngineConfig) -> World {
    let mut config = config;
    config.gates.privileged = Some(GateRule::privileged());
    // A cool-down shorter than a request's life, so a test can see both.
    config.enroll_cooldown = 600;
    let w = hd_people(world_with(config).passkeys().privileged_in_scope().build());
    w.dir.set("admin", |a| a.groups.push(sid(APPROVERS)));
    for sam in ["admin", "normal"] {
        w.dir
            .passwords
            .lock()
            .unwrap()
            .insert(sam.into(), format!("Pw-{sam}-1"));
    }
    w
}

/// Approve every pending request as `approver` (an approver only, added on first use): for
/// tests of other flows that a privileged user's method change must pass.
pub(super) fn approve_all(w: &World) {
    let known = w
        .dir
        .accounts
        .lock()
        .unwrap()
        .iter()
        .any(|a| a.sam_account_name == "approver");
    if !known {
        w.dir
            .accounts
            .lock()
            .unwrap()
            .push(account(30, "approver", &[APPROVERS]));
        w.dir
            .passwords
            .lock()
            .unwrap()
            .insert("approver".into(), "Pw-approver-1".into());
        w.store.with(|m| {
            m.enrollments.push(Enrollment::contact(
                Guid([30; 16]),
                MethodKind::Email,
                "approver@home.example",
                T0 - 2 * 86_400,
            ));
        });
    }
    let flow = signed_in(w, "approver");
    for r in run(w.engine.helpdesk_approvals(&flow)).unwrap() {
        run(w.engine.helpdesk_decide(&ctx(), &flow, &r.id, true)).unwrap();
    }
}

fn pw_world() -> World {
    world_of(hd_config())
}

/// Sign in for enrollment and pass the step-up with the enrolled email: the methods page.
fn manage(w: &World, sam: &str) -> String {
    let flow = run(w.engine.enroll_sign_in(&ctx(), sam, &pw(sam))).unwrap();
    run(w.engine.choose_gate(&ctx(), &flow, Method::EmailOtp)).unwrap();
    match run(w.engine.enroll_verify_code(&ctx(), &flow, &w.last_code())).unwrap() {
        Progress::Verified(id) => id,
        other => panic!("step-up: {other:?}"),
    }
}

fn enrollment(w: &World, user: Guid, kind: MethodKind) -> Option<Enrollment> {
    w.store.with(|m| {
        m.enrollments
            .iter()
            .find(|e| e.user == user && e.method == kind)
            .cloned()
    })
}

fn now(w: &World) -> i64 {
    w.clock.0.load(std::sync::atomic::Ordering::Relaxed)
}

/// The app's code now for the seed the setup page showed (base32).
fn app_code(w: &World, secret: &str) -> String {
    let seed = totp_rs::Secret::try_from_base32(secret)
        .unwrap()
        .as_bytes()
        .to_vec();
    totp_rs::Builder::new()
        .with_secret(seed)
        .build()
        .unwrap()
        .generate(u64::try_from(now(w)).unwrap())
        .to_string()
}

/// Set up an authenticator app; returns the outcome and the seed (base32) the page showed.
fn add_app(w: &World, flow: &str) -> (EnrollOutcome, String) {
    run(w.engine.enroll_totp_begin(&ctx(), flow)).unwrap();
    let EnrollStep::Totp { secret, .. } = run(w.engine.enroll_step(flow)).unwrap() else {
        panic!("the app's setup page");
    };
    let code = app_code(w, &secret);
    let out = run(w.engine.enroll_totp_confirm(&ctx(), flow, &code)).unwrap();
    (out, secret)
}

fn pending_id(out: EnrollOutcome) -> String {
    match out {
        EnrollOutcome::Pending { id, .. } => id,
        EnrollOutcome::Applied => panic!("a pending request expected"),
    }
}

/// Does the app's code pass a reset's first gate of `who`?
fn app_opens_a_reset(w: &World, who: &str, secret: &str) -> bool {
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, who)).unwrap();
    run(w
        .engine
        .verify_reset_code(&ctx(), &flow, &app_code(w, secret)))
    .is_ok()
}

#[test]
fn a_privileged_users_new_app_waits_for_a_second_person() {
    let w = pw_world();
    let flow = manage(&w, "admin");
    let before = events(&w).len();
    let (out, secret) = add_app(&w, &flow);
    let EnrollOutcome::Pending {
        id,
        expires_at,
        kind,
        remove,
    } = out
    else {
        panic!("pending expected")
    };
    assert_eq!(expires_at, now(&w) + 3600);
    assert_eq!((kind, remove), (MethodKind::Totp, false));
    // One record for the confirmation, which became the request; the user is the requester.
    let ev = events(&w);
    assert_eq!(ev.len(), before + 2, "begin and confirm: one record each");
    let req = &ev[before + 1];
    assert_eq!(
        (req.operation, req.result.as_str(), req.actor.clone()),
        (Operation::Approval, "ok", Actor::User)
    );
    assert_eq!(req.target_sam.as_deref(), Some("admin"));
    assert_eq!(req.methods, vec!["totp".to_owned()]);
    assert_eq!(
        req.detail.as_deref(),
        Some(format!("requested:add:totp; request:{id}").as_str())
    );
    // Nothing stored; the user's addresses were told; the methods page shows the request.
    assert!(enrollment(&w, ADMIN, MethodKind::Totp).is_none());
    let mail = w.last_mail();
    assert_eq!(mail.to, "u4@home.example");
    assert!(mail.body.contains("waits for approval"), "{}", mail.body);
    assert!(mail.body.contains(&id));
    let EnrollStep::Manage { pending, .. } = run(w.engine.enroll_step(&flow)).unwrap() else {
        panic!("the methods page")
    };
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].id.as_str(), pending[0].kind),
        (id.as_str(), MethodKind::Totp)
    );
    // Not usable for a reset, not even past the cool-down.
    w.advance(601);
    assert!(!app_opens_a_reset(&w, "admin", &secret));

    // The requester is an approver too, but never of his own request.
    let own = signed_in(&w, "admin");
    let list = run(w.engine.helpdesk_approvals(&own)).unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].own);
    assert_eq!(
        list[0].action,
        ApprovalAction::AddMethod {
            kind: MethodKind::Totp,
            hint: "authenticator app".into()
        }
    );
    let e = run(w.engine.helpdesk_decide(&ctx(), &own, &id, true)).unwrap_err();
    assert!(matches!(e, EngineError::SelfApproval));
    assert_eq!(last_event(&w).detail.as_deref(), Some("self_approval"));
    assert!(enrollment(&w, ADMIN, MethodKind::Totp).is_none());

    // A second approver: the proven app is stored (its cool-down starts now), audited with the
    // approver as actor, and the user is mailed.
    let appr = signed_in(&w, "appr");
    let before = events(&w).len();
    assert_eq!(
        run(w.engine.helpdesk_decide(&ctx(), &appr, &id, true)).unwrap(),
        ActOutcome::Done
    );
    let ev = events(&w);
    assert_eq!(ev.len(), before + 1);
    let done = &ev[before];
    assert_eq!(
        (done.operation, done.result.as_str(), done.actor.clone()),
        (Operation::Enroll, "ok", Actor::Helpdesk("appr".into()))
    );
    assert_eq!(done.target_sam.as_deref(), Some("admin"));
    assert_eq!(
        done.detail.as_deref(),
        Some(format!("approved; requested_by:admin; request:{id}").as_str())
    );
    let e = enrollment(&w, ADMIN, MethodKind::Totp).unwrap();
    assert_eq!(e.verified_at, now(&w));
    assert!(!e.key_id.is_empty(), "the seed stays sealed");
    let mail = w.last_mail();
    assert!(
        mail.body
            .contains("an authenticator app was added (approved by appr)"),
        "{}",
        mail.body
    );
    // Past the cool-down (from the approval) the app opens a reset.
    w.advance(300);
    assert!(!app_opens_a_reset(&w, "admin", &secret));
    w.advance(301);
    assert!(app_opens_a_reset(&w, "admin", &secret));
    // Decided once: gone. And the seed never reached the audit.
    let e = run(w.engine.helpdesk_decide(&ctx(), &appr, &id, true)).unwrap_err();
    assert!(matches!(e, EngineError::ApprovalGone));
    assert!(
        w.store
            .with(|m| m.audit.iter().all(|r| !r.body.contains(&secret)))
    );
    w.audit_ok();
}

#[test]
fn a_rejected_or_expired_change_leaves_the_methods_as_they_were() {
    let w = pw_world();
    let flow = manage(&w, "admin");
    let new = "admin.new@mail.example.org";
    run(w.engine.enroll_email(&ctx(), &flow, new)).unwrap();
    let id = pending_id(run(w.engine.enroll_confirm(&ctx(), &flow, &w.last_code())).unwrap());
    // The approver sees what would change, masked.
    let appr = signed_in(&w, "appr");
    let list = run(w.engine.helpdesk_approvals(&appr)).unwrap();
    let ApprovalAction::AddMethod { kind, hint } = &list[0].action else {
        panic!("an add")
    };
    assert_eq!(*kind, MethodKind::Email);
    assert!(!hint.contains("admin.new") && hint.contains('*'), "{hint}");
    assert!(!list[0].own);
    // Rejected: one record, nothing changed.
    let before = events(&w).len();
    run(w.engine.helpdesk_decide(&ctx(), &appr, &id, false)).unwrap();
    let ev = events(&w);
    assert_eq!(ev.len(), before + 1);
    assert_eq!(ev[before].operation, Operation::Approval);
    assert_eq!(ev[before].actor, Actor::Helpdesk("appr".into()));
    assert_eq!(
        ev[before].detail.as_deref(),
        Some(format!("rejected:add:email; requested_by:admin; request:{id}").as_str())
    );
    assert_eq!(
        enrollment(&w, ADMIN, MethodKind::Email).unwrap().value,
        "u4@home.example"
    );

    // A removal waits the same way, then expires: one `expired` record (actor system), nothing
    // removed, no decision possible.
    let out = run(w.engine.enroll_remove(&ctx(), &flow, MethodKind::Email)).unwrap();
    let id = pending_id(out);
    assert_eq!(
        last_event(&w).detail.as_deref(),
        Some(format!("requested:remove:email; request:{id}").as_str())
    );
    assert!(enrollment(&w, ADMIN, MethodKind::Email).is_some());
    w.advance(3601);
    let appr = signed_in(&w, "appr");
    let before = events(&w).len();
    assert!(run(w.engine.helpdesk_approvals(&appr)).unwrap().is_empty());
    assert!(run(w.engine.helpdesk_approvals(&appr)).unwrap().is_empty());
    let ev = events(&w);
    assert_eq!(ev.len(), before + 1, "the expiry is recorded once");
    assert_eq!(
        (ev[before].operation, ev[before].actor.clone()),
        (Operation::Approval, Actor::System)
    );
    assert_eq!(
        ev[before].detail.as_deref(),
        Some(format!("expired:remove:email; requested_by:admin; request:{id}").as_str())
    );
    assert_eq!(
        ev[before].target_guid.as_deref(),
        Some(ADMIN.to_string().as_str())
    );
    let e = run(w.engine.helpdesk_decide(&ctx(), &appr, &id, true)).unwrap_err();
    assert!(matches!(e, EngineError::ApprovalGone));
    assert!(enrollment(&w, ADMIN, MethodKind::Email).is_some());
    w.audit_ok();
}

#[test]
fn an_approved_passkey_joins_the_users_passkeys() {
    let w = pw_world();
    let flow = manage(&w, "admin");
    run(w.engine.enroll_passkey_begin(&ctx(), &flow)).unwrap();
    let EnrollStep::Passkey { options } = run(w.engine.enroll_step(&flow)).unwrap() else {
        panic!("the passkey page");
    };
    let answer = FakeAuthenticator::new("cred-admin").create(&options);
    let out = run(w
        .engine
        .enroll_passkey_finish(&ctx(), &flow, &answer, "yubikey"))
    .unwrap();
    let id = pending_id(out);
    assert!(enrollment(&w, ADMIN, MethodKind::Passkey).is_none());
    let appr = signed_in(&w, "appr");
    let list = run(w.engine.helpdesk_approvals(&appr)).unwrap();
    assert_eq!(
        list[0].action,
        ApprovalAction::AddMethod {
            kind: MethodKind::Passkey,
            hint: "passkey \"yubikey\"".into()
        }
    );
    assert_eq!(list[0].id, id);
    approve_all(&w);
    let e = enrollment(&w, ADMIN, MethodKind::Passkey).unwrap();
    assert_eq!(e.value, "1 passkey");
    assert!(e.lookup.is_some());
    assert_eq!(Engine::passkeys_of(&e).len(), 1);
}

#[test]
fn a_standard_users_change_takes_effect_at_once() {
    let w = pw_world();
    let flow = manage(&w, "normal");
    let (out, _) = add_app(&w, &flow);
    assert_eq!(out, EnrollOutcome::Applied);
    assert!(enrollment(&w, NORMAL, MethodKind::Totp).is_some());
    assert_eq!(last_event(&w).operation, Operation::Enroll);
    let out = run(w.engine.enroll_remove(&ctx(), &flow, MethodKind::Totp)).unwrap();
    assert_eq!(out, EnrollOutcome::Applied);
    assert!(enrollment(&w, NORMAL, MethodKind::Totp).is_none());
    let EnrollStep::Manage { pending, .. } = run(w.engine.enroll_step(&flow)).unwrap() else {
        panic!("the methods page")
    };
    assert!(pending.is_empty());
}

#[test]
fn without_approvers_a_privileged_change_is_refused() {
    let mut config = hd_config();
    config.helpdesk.approver_groups.clear();
    config.helpdesk.sensitive_groups.clear();
    let w = world_of(config);
    let flow = manage(&w, "admin");
    run(w.engine.enroll_totp_begin(&ctx(), &flow)).unwrap();
    let EnrollStep::Totp { secret, .. } = run(w.engine.enroll_step(&flow)).unwrap() else {
        panic!("the app's setup page");
    };
    let code = app_code(&w, &secret);
    let before = events(&w).len();
    let e = run(w.engine.enroll_totp_confirm(&ctx(), &flow, &code)).unwrap_err();
    assert!(matches!(e, EngineError::NoApprovers));
    assert_eq!(e.code(), "RK-HD-008");
    let ev = events(&w);
    assert_eq!(ev.len(), before + 1);
    assert_eq!(
        (ev[before].operation, ev[before].result.as_str()),
        (Operation::Approval, "failed")
    );
    assert_eq!(ev[before].detail.as_deref(), Some("no_approvers"));
    assert!(enrollment(&w, ADMIN, MethodKind::Totp).is_none());
}
