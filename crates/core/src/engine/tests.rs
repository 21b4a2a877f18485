//! Engine tests with the in-memory fakes and a fixed clock: every transition, no DC needed.

use std::sync::atomic::Ordering;

use super::*;
use crate::account::{Guid, Sid};
use crate::fakes::*;
use crate::landing::Rejection;
use crate::secret::Password;
use crate::store::{FlowKind, MethodKind};

pub(super) fn ctx() -> RequestContext {
    RequestContext {
        client_ip: Some("192.0.2.7".into()),
        user_agent: Some("test".into()),
        support_id: "RK-TEST-0001".into(),
        ..RequestContext::default()
    }
}

#[test]
fn identify_gives_every_class_the_same_answer_and_mails_only_the_eligible() {
    let w = world(5);
    for who in [
        "normal",
        "disabled",
        "outside",
        "admin",
        "unenrolled",
        "locked",
        "nobody",
        "a(*)b",
    ] {
        let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, who)).unwrap();
        assert_eq!(flow.len(), 64, "{who}: same kind of answer");
        assert!(!run(w.engine.reset_verified(&flow)).unwrap());
    }
    // Only `normal` and `locked` (AD lockout does not bar a reset) got a code.
    let to: Vec<String> = w
        .mail
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.to.clone())
        .collect();
    assert_eq!(to, vec!["u1@home.example", "u6@home.example"]);
    let audit = w.store.with(|m| m.audit.clone());
    assert!(audit.iter().any(|r| r.body.contains(r#""result":"decoy""#)
        && r.body.contains(r#""detail":"privileged_excluded""#)));
    assert!(
        audit.iter().all(|r| !r.body.contains(&w.last_code())),
        "codes never reach the audit"
    );
    w.audit_ok();
}

#[test]
fn reset_happy_path_lands_once_and_ends_all_flows() {
    let w = world(5);
    let other = run(w.engine.start_reset(&ctx(), FlowKind::Unlock, "normal")).unwrap();
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    let code = w.last_code();
    let old_id = flow;
    let flow = run(w.engine.verify_reset_code(&ctx(), &old_id, &code))
        .unwrap()
        .into_id();
    assert_ne!(flow, old_id, "the flow id rotates at the privilege step");
    assert!(run(w.engine.reset_verified(&flow)).unwrap());
    // The old id is dead, and the same code cannot be used twice.
    assert!(matches!(
        run(w.engine.verify_reset_code(&ctx(), &old_id, &code)),
        Err(EngineError::FlowExpired)
    ));
    let out = run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Brand-New-Pass-1")))
    .unwrap();
    assert!(out.landed_everywhere());
    assert_eq!(
        *w.zone.writes.lock().unwrap(),
        vec!["reset normal Brand-New-Pass-1 unlock=true"]
    );
    // All of the user's flows are gone (invariant 8); a replay finds nothing.
    assert!(matches!(
        run(w.engine.reset_verified(&other)),
        Err(EngineError::FlowExpired)
    ));
    assert!(matches!(
        run(w
            .engine
            .complete_reset(&ctx(), &flow, &Password::from("Again-New-Pass-2"))),
        Err(EngineError::FlowExpired)
    ));
    assert!(w.last_mail().body.contains("Not you?"));
    let audit = w.store.with(|m| m.audit.clone());
    assert!(
        audit.iter().all(|r| !r.body.contains("Brand-New-Pass-1")),
        "no password in the audit"
    );
    w.audit_ok();
}

#[test]
fn wrong_codes_stop_at_five_for_real_and_decoy_flows_alike() {
    let w = world(5);
    for who in ["normal", "nobody"] {
        let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, who)).unwrap();
        for i in 1..=5 {
            let r = run(w.engine.verify_reset_code(&ctx(), &flow, "000000"));
            let want_too_many = i == 5;
            assert_eq!(
                matches!(r, Err(EngineError::TooManyAttempts)),
                want_too_many,
                "{who} attempt {i}: {r:?}"
            );
            assert_eq!(
                matches!(r, Err(EngineError::WrongCode)),
                !want_too_many,
                "{who} attempt {i}"
            );
        }
        assert!(matches!(
            run(w.engine.verify_reset_code(&ctx(), &flow, "123456")),
            Err(EngineError::TooManyAttempts)
        ));
    }
}

#[test]
fn five_failures_an_hour_lock_self_service_for_a_day() {
    let w = world(5);
    for _ in 0..5 {
        let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
        let _ = run(w.engine.verify_reset_code(&ctx(), &flow, "000001"));
    }
    let mails = w.mails();
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    assert_eq!(
        w.mails(),
        mails,
        "locked: no code is sent, the page is the same"
    );
    assert!(run(w.engine.verify_reset_code(&ctx(), &flow, "000002")).is_err());
    w.clock.0.fetch_add(86_400 + 1, Ordering::Relaxed);
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    assert_eq!(w.mails(), mails + 1, "unlocked after 24 h");
    let _ = run(w.engine.verify_reset_code(&ctx(), &flow, &w.last_code())).unwrap();
}

#[test]
fn codes_expire_and_a_new_code_voids_the_old() {
    let w = world(5);
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    let first = w.last_code();
    w.clock.0.fetch_add(601, Ordering::Relaxed);
    assert!(matches!(
        run(w.engine.verify_reset_code(&ctx(), &flow, &first)),
        Err(EngineError::WrongCode)
    ));
    let user = Guid([1; 16]);
    run(w.engine.issue_code(
        &w.engine.flow_key(&flow),
        &user,
        "gate:email_otp",
        "u1@home.example",
        "s",
    ))
    .unwrap();
    let second = w.last_code();
    run(w.engine.issue_code(
        &w.engine.flow_key(&flow),
        &user,
        "gate:email_otp",
        "u1@home.example",
        "s",
    ))
    .unwrap();
    if second != w.last_code() {
        assert!(
            run(w.engine.verify_reset_code(&ctx(), &flow, &second)).is_err(),
            "replaced code is void"
        );
    }
    let _ = run(w.engine.verify_reset_code(&ctx(), &flow, &w.last_code())).unwrap();
}

pub(super) fn verified(w: &World, kind: FlowKind) -> FlowId {
    let flow = run(w.engine.start_reset(&ctx(), kind, "normal")).unwrap();
    run(w.engine.verify_reset_code(&ctx(), &flow, &w.last_code()))
        .unwrap()
        .into_id()
}

#[test]
fn live_recheck_before_the_write() {
    let w = world(5);
    let flow = verified(&w, FlowKind::Reset);
    w.dir.set("normal", |a| a.state.enabled = false);
    let r = run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Brand-New-Pass-1")));
    assert!(matches!(r, Err(EngineError::FlowExpired)), "{r:?}");
    w.dir.set("normal", |a| {
        a.state.enabled = true;
        a.groups.push(DOMAIN.parse::<Sid>().unwrap().with_rid(512));
    });
    let r = run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Brand-New-Pass-1")));
    assert!(
        matches!(r, Err(EngineError::FlowExpired)),
        "became privileged: {r:?}"
    );
    assert!(w.zone.writes.lock().unwrap().is_empty());
}

#[test]
fn policy_precheck_and_zone_rejection_keep_the_flow() {
    let w = world(5);
    let flow = verified(&w, FlowKind::Reset);
    let r = run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("short")));
    assert!(matches!(r, Err(EngineError::Policy { .. })), "{r:?}");
    *w.zone.refuse.lock().unwrap() = Some(Rejection::History);
    let r = run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Used-Before-Pass-1")));
    match r {
        Err(EngineError::Landing(e)) => assert_eq!(e.rejection(), Some(Rejection::History)),
        other => panic!("{other:?}"),
    }
    *w.zone.refuse.lock().unwrap() = None;
    run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Fine-New-Pass-1")))
    .unwrap();
}

#[test]
fn unlock_flow_clears_the_lockout_only() {
    let w = world(5);
    let flow = verified(&w, FlowKind::Unlock);
    assert!(matches!(
        run(w.engine.reset_policy(&flow)),
        Err(EngineError::WrongStep)
    ));
    run(w.engine.complete_unlock(&ctx(), &flow)).unwrap();
    assert_eq!(*w.zone.writes.lock().unwrap(), vec!["unlock normal"]);
}

#[test]
fn change_budget_stops_before_the_dc_would_lock() {
    let w = world(5);
    let old = Password::from("Old-Password-1");
    let new = Password::from("New-Password-2x");
    // The DC already counted 2 bad logons; badPwdCount may reach 5 − 2 (margin) = 3: one more.
    w.dir.set("normal", |a| a.state.bad_pwd_count = 2);
    for _ in 0..4 {
        let r = run(w
            .engine
            .change(&ctx(), "normal", &Password::from("Guess-1234"), &new));
        assert!(matches!(r, Err(EngineError::ChangeRefused)));
    }
    let reached: Vec<String> = w.zone.writes.lock().unwrap().clone();
    assert_eq!(
        reached,
        vec!["wrong-old normal"],
        "only 1 guess reached the DC"
    );
    let count = w.dir.accounts.lock().unwrap()[0].state.bad_pwd_count;
    assert!(count < 5, "never locked by Rekey: badPwdCount {count}");
    // Even the right password is refused now: Rekey's own budget is spent (same answer).
    assert!(matches!(
        run(w.engine.change(&ctx(), "normal", &old, &new)),
        Err(EngineError::ChangeRefused)
    ));
    // Unknown and ineligible accounts read the same.
    for who in ["nobody", "disabled", "admin", "locked"] {
        assert!(
            matches!(
                run(w.engine.change(&ctx(), who, &old, &new)),
                Err(EngineError::ChangeRefused)
            ),
            "{who}"
        );
    }
}

#[test]
fn change_lands_and_notifies() {
    let w = world(0);
    let r = run(w.engine.change(
        &ctx(),
        "normal",
        &Password::from("Old-Password-1"),
        &Password::from("New-Password-2x"),
    ));
    r.unwrap();
    assert_eq!(
        w.zone.writes.lock().unwrap().last().unwrap(),
        "change normal New-Password-2x"
    );
    assert!(w.last_mail().subject.contains("was changed"));
}

#[test]
fn per_ip_budget() {
    let w = world(0);
    let p = Password::from("Tr4vel-to-Oslo-in-May");
    for _ in 0..30 {
        let _ = run(w.engine.change(&ctx(), "nobody", &p, &p));
    }
    assert!(matches!(
        run(w.engine.change(&ctx(), "nobody", &p, &p)),
        Err(EngineError::RateLimited)
    ));
}

#[test]
fn enrollment_sign_in_email_confirm_and_cooldown() {
    let w = world(5);
    assert!(matches!(
        run(w
            .engine
            .enroll_sign_in(&ctx(), "normal", &Password::from("wrong"))),
        Err(EngineError::SignInFailed)
    ));
    assert!(matches!(
        run(w
            .engine
            .enroll_sign_in(&ctx(), "normal", &Password::from(""))),
        Err(EngineError::SignInFailed)
    ));
    let flow = run(w
        .engine
        .enroll_sign_in(&ctx(), "normal", &Password::from("Old-Password-1")))
    .unwrap();
    // An address is enrolled already: it must prove the user first (step-up).
    let EnrollStep::StepUp(choices) = run(w.engine.enroll_step(&flow)).unwrap() else {
        panic!("step-up expected");
    };
    assert_eq!(choices.len(), 1);
    assert_eq!(choices[0].hint, "u***@h***.example");
    assert!(matches!(
        run(w
            .engine
            .enroll_email(&ctx(), &flow, "new.me@mail.example.org")),
        Err(EngineError::WrongStep)
    ));
    run(w
        .engine
        .choose_gate(&ctx(), &flow, crate::method::Method::EmailOtp))
    .unwrap();
    assert_eq!(w.last_mail().to, "u1@home.example");
    let flow = run(w.engine.enroll_verify_code(&ctx(), &flow, &w.last_code()))
        .unwrap()
        .into_id();
    let EnrollStep::Manage { methods, .. } = run(w.engine.enroll_step(&flow)).unwrap() else {
        panic!("methods page expected");
    };
    assert_eq!(methods[0].hint, "u***@h***.example");
    assert!(matches!(
        run(w.engine.enroll_email(&ctx(), &flow, "not an address")),
        Err(EngineError::BadAddress)
    ));
    run(w
        .engine
        .enroll_email(&ctx(), &flow, "new.me@mail.example.org"))
    .unwrap();
    assert_eq!(
        run(w.engine.enroll_step(&flow)).unwrap(),
        EnrollStep::AwaitCode {
            masked: "n***@m***.org".into(),
            kind: MethodKind::Email,
        }
    );
    assert_eq!(w.last_mail().to, "new.me@mail.example.org");
    run(w.engine.enroll_confirm(&ctx(), &flow, &w.last_code())).unwrap();
    let mut to: Vec<String> = w
        .mail
        .0
        .lock()
        .unwrap()
        .iter()
        .rev()
        .take(3)
        .map(|m| m.to.clone())
        .collect();
    to.sort();
    assert_eq!(
        to,
        vec![
            "new.me@mail.example.org",
            "normal@corp.example.com",
            "u1@home.example"
        ],
        "every address told: enrolled, the directory's, and the new one"
    );
    // The new address is cooling down: a reset sends nothing for 24 h.
    let mails = w.mails();
    run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    assert_eq!(w.mails(), mails);
    w.clock.0.fetch_add(86_401, Ordering::Relaxed);
    run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    assert_eq!(w.last_mail().to, "new.me@mail.example.org");
    // A sign-in older than 5 minutes cannot add a method.
    let flow = run(w
        .engine
        .enroll_sign_in(&ctx(), "normal", &Password::from("Old-Password-1")))
    .unwrap();
    run(w
        .engine
        .choose_gate(&ctx(), &flow, crate::method::Method::EmailOtp))
    .unwrap();
    let flow = run(w.engine.enroll_verify_code(&ctx(), &flow, &w.last_code()))
        .unwrap()
        .into_id();
    w.clock.0.fetch_add(301, Ordering::Relaxed);
    assert!(matches!(
        run(w.engine.enroll_email(&ctx(), &flow, "x@y.example")),
        Err(EngineError::FlowExpired)
    ));
    w.audit_ok();
}

/// With a spawner, the notice goes out after the answer, not before it.
#[test]
fn notices_can_be_sent_after_answering() {
    struct Later(std::sync::Mutex<Vec<crate::landing::BoxFuture<'static, ()>>>);
    impl crate::clock::Spawn for Later {
        fn spawn(&self, work: crate::landing::BoxFuture<'static, ()>) {
            self.0.lock().unwrap().push(work);
        }
    }
    let w = world(0);
    let later = std::sync::Arc::new(Later(std::sync::Mutex::new(Vec::new())));
    let engine = w.engine.clone().with_background(later.clone());
    let before = w.mails();
    let r = run(engine.change(
        &ctx(),
        "normal",
        &Password::from("Old-Password-1"),
        &Password::from("New-Password-2x"),
    ));
    r.unwrap();
    assert_eq!(w.mails(), before, "not sent while the user waits");
    for work in later.0.lock().unwrap().drain(..) {
        run(work);
    }
    assert_eq!(w.mails(), before + 1);
    assert!(w.last_mail().subject.contains("was changed"));
}
