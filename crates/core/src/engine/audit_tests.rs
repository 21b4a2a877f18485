//! Every engine entry point writes exactly one audit record whatever the outcome (invariant 34),
//! failures leave no orphan flow, the flow id never reaches the store, operators write through
//! the engine, and the anonymous attempt budget holds (invariant 35). In-memory fakes.

use std::sync::atomic::Ordering;

use serde_json::Value;

use super::tests::{ctx, verified};
use super::*;
use crate::account::Guid;
use crate::fakes::*;
use crate::landing::{Diagnostic, Rejection, ResetOptions};
use crate::secret::Password;
use crate::store::FlowKind;
use crate::store::Store;

/// Run `f` and return the ONE audit record it wrote.
fn one_record<T>(w: &World, f: impl FnOnce() -> T) -> (T, Value) {
    let before = w.store.with(|m| m.audit.len());
    let out = f();
    let after = w.store.with(|m| m.audit.clone());
    assert_eq!(after.len(), before + 1, "exactly one audit record");
    let v = serde_json::from_str(&after[before].body).unwrap();
    (out, v)
}

fn flows(w: &World) -> usize {
    w.store.with(|m| m.flows.len())
}

#[track_caller]
fn says(v: &Value, op: &str, result: &str, code: Option<&str>, detail: Option<&str>) {
    assert_eq!(v["operation"], op, "{v}");
    assert_eq!(v["result"], result, "{v}");
    assert_eq!(v["error_code"].as_str(), code, "{v}");
    if let Some(d) = detail {
        assert_eq!(v["detail"], d, "{v}");
    }
}

fn pw(s: &str) -> Password {
    Password::from(s)
}

fn down() -> LandingError {
    LandingError::Unavailable {
        diagnostic: Diagnostic::new(None, "no DC"),
    }
}

#[test]
fn identify_records_every_outcome_once() {
    let w = world(5);
    w.dir.ambiguous.lock().unwrap().push("twins".into());
    let table = [
        ("normal", "ok", None),
        ("nobody", "decoy", Some("unknown")),
        ("twins", "decoy", Some("ambiguous")),
        ("admin", "decoy", Some("privileged_excluded")),
        ("disabled", "decoy", Some("disabled")),
        ("outside", "decoy", Some("out_of_scope")),
        ("unenrolled", "decoy", Some("not_enrolled")),
    ];
    for (who, result, detail) in table {
        let (r, v) = one_record(&w, || {
            run(w.engine.start_reset(&ctx(), FlowKind::Reset, who))
        });
        assert!(r.is_ok(), "{who}: the same answer for every class");
        says(&v, "identify", result, None, detail);
    }
    // The relay is down: the same answer, the code waits in the outbox.
    w.mail.1.store(true, Ordering::Relaxed);
    let (r, v) = one_record(&w, || {
        run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal"))
    });
    assert!(r.is_ok());
    says(&v, "identify", "ok", None, None);
    assert_eq!(w.store.with(|m| m.outbox.len()), 1, "queued, not lost");
    // The directory is down: a failure record, and no flow behind it.
    let n = flows(&w);
    w.dir.down.store(true, Ordering::Relaxed);
    let (r, v) = one_record(&w, || {
        run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal"))
    });
    assert!(matches!(r, Err(EngineError::Directory(_))));
    says(&v, "identify", "failed", Some("RK-DIR-010"), None);
    w.dir.down.store(false, Ordering::Relaxed);
    // The store fails after the flow was created: the flow is removed again.
    w.faults.fail(&["enqueue"]);
    let (r, v) = one_record(&w, || {
        run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal"))
    });
    assert!(matches!(r, Err(EngineError::Store(_))));
    says(&v, "identify", "failed", Some("RK-STORE-001"), None);
    w.faults.fail(&[]);
    assert_eq!(flows(&w), n, "no orphan flow");
    // The audit itself fails: the operation fails closed and leaves no flow.
    w.faults.fail(&["append_audit"]);
    let r = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal"));
    assert!(matches!(r, Err(EngineError::Store(_))));
    w.faults.fail(&[]);
    assert_eq!(flows(&w), n, "no flow without its record");
    w.audit_ok();
}

#[test]
fn verify_reset_and_unlock_record_every_outcome_once() {
    let w = world(5);
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    let (_, v) = one_record(&w, || {
        run(w.engine.verify_reset_code(&ctx(), &flow, "000000"))
    });
    says(&v, "verify", "failed", Some("RK-VERIFY-001"), None);
    let (_, v) = one_record(&w, || {
        run(w.engine.verify_reset_code(&ctx(), "f0", "000000"))
    });
    says(&v, "verify", "failed", Some("RK-FLOW-001"), None);
    let decoy = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "nobody")).unwrap();
    let (_, v) = one_record(&w, || {
        run(w.engine.verify_reset_code(&ctx(), &decoy, "000000"))
    });
    says(&v, "verify", "failed", Some("RK-VERIFY-001"), None);
    let (r, v) = one_record(&w, || {
        run(w.engine.verify_reset_code(&ctx(), &flow, &w.last_code()))
    });
    says(&v, "verify", "ok", None, None);
    let flow = r.unwrap().into_id();

    let (_, v) = one_record(&w, || {
        run(w.engine.complete_reset(&ctx(), &flow, &pw("short")))
    });
    says(&v, "reset", "failed", Some("RK-PWD-010"), None);
    *w.zone.refuse.lock().unwrap() = Some(Rejection::History);
    let (_, v) = one_record(&w, || {
        run(w.engine.complete_reset(&ctx(), &flow, &pw("Used-Before-1")))
    });
    says(&v, "reset", "failed", Some("RK-PWD-003"), None);
    *w.zone.refuse.lock().unwrap() = None;
    *w.zone.fail.lock().unwrap() = Some(down());
    let (r, v) = one_record(&w, || {
        run(w
            .engine
            .complete_reset(&ctx(), &flow, &pw("Fine-New-Pass-1")))
    });
    assert!(!r.unwrap().landed_everywhere());
    says(&v, "reset", "failed", Some("RK-DIR-010"), None);
    *w.zone.fail.lock().unwrap() = None;

    let flow = verified(&w, FlowKind::Reset);
    w.dir.set("normal", |a| a.state.enabled = false);
    let (_, v) = one_record(&w, || {
        run(w
            .engine
            .complete_reset(&ctx(), &flow, &pw("Fine-New-Pass-1")))
    });
    says(
        &v,
        "reset",
        "failed",
        Some("RK-FLOW-001"),
        Some("no_longer_eligible"),
    );
    w.dir.set("normal", |a| a.state.enabled = true);
    let (_, v) = one_record(&w, || {
        run(w
            .engine
            .complete_reset(&ctx(), &flow, &pw("Fine-New-Pass-1")))
    });
    says(&v, "reset", "ok", None, None);
    assert_eq!(v["zones"][0]["outcome"], "landed");
    assert_eq!(v["target_sam"], "normal");

    let flow = verified(&w, FlowKind::Unlock);
    let (_, v) = one_record(&w, || run(w.engine.complete_unlock(&ctx(), &flow)));
    says(&v, "unlock", "ok", None, None);
    w.audit_ok();
}

#[test]
fn change_and_enrollment_record_every_outcome_once() {
    let w = world(5);
    let new = pw("New-Password-2x");
    w.dir.ambiguous.lock().unwrap().push("twins".into());
    for (who, detail) in [
        ("nobody", "unknown"),
        ("twins", "ambiguous"),
        ("outside", "out_of_scope"),
        ("locked", "locked_or_blank"),
        ("normal", "bad_password"),
    ] {
        let (r, v) = one_record(&w, || {
            run(w.engine.change(&ctx(), who, &pw("Guess-1"), &new))
        });
        assert!(matches!(r, Err(EngineError::ChangeRefused)), "{who}");
        says(&v, "change", "failed", Some("RK-CHANGE-001"), Some(detail));
    }
    *w.zone.fail.lock().unwrap() = Some(down());
    let (_, v) = one_record(&w, || {
        run(w
            .engine
            .change(&ctx(), "normal", &pw("Old-Password-1"), &new))
    });
    says(&v, "change", "failed", Some("RK-DIR-010"), None);
    *w.zone.fail.lock().unwrap() = None;
    let (_, v) = one_record(&w, || {
        run(w
            .engine
            .change(&ctx(), "normal", &pw("Old-Password-1"), &new))
    });
    says(&v, "change", "ok", None, None);
    w.audit_ok();

    let w = world(5);
    let (_, v) = one_record(&w, || {
        run(w.engine.enroll_sign_in(&ctx(), "normal", &pw("nope")))
    });
    says(&v, "enroll", "failed", Some("RK-ENROLL-001"), None);
    let (_, v) = one_record(&w, || {
        run(w.engine.enroll_sign_in(&ctx(), "nobody", &pw("nope")))
    });
    says(
        &v,
        "enroll",
        "failed",
        Some("RK-ENROLL-001"),
        Some("unknown"),
    );
    w.dir
        .passwords
        .lock()
        .unwrap()
        .insert("normal".into(), "Old-Password-1".into());
    let (flow, v) = one_record(&w, || {
        run(w
            .engine
            .enroll_sign_in(&ctx(), "normal", &pw("Old-Password-1")))
    });
    says(&v, "enroll", "ok", None, Some("signed_in"));
    let flow = flow.unwrap();
    // The enrolled address proves the user first: one record per step.
    let (_, v) = one_record(&w, || {
        run(w
            .engine
            .choose_gate(&ctx(), &flow, crate::method::Method::EmailOtp))
    });
    says(&v, "verify", "ok", None, Some("chosen"));
    let (flow, v) = one_record(&w, || {
        run(w.engine.enroll_verify_code(&ctx(), &flow, &w.last_code()))
    });
    says(&v, "enroll", "ok", None, None);
    let flow = flow.unwrap().into_id();
    let (_, v) = one_record(&w, || {
        run(w.engine.enroll_email(&ctx(), &flow, "not an address"))
    });
    says(
        &v,
        "enroll",
        "failed",
        Some("RK-ENROLL-002"),
        Some("address"),
    );
    let (_, v) = one_record(&w, || {
        run(w.engine.enroll_email(&ctx(), &flow, "me@mail.example.org"))
    });
    says(&v, "enroll", "ok", None, Some("address"));
    let (_, v) = one_record(&w, || run(w.engine.enroll_confirm(&ctx(), &flow, "000000")));
    says(
        &v,
        "enroll",
        "failed",
        Some("RK-VERIFY-001"),
        Some("confirm"),
    );
    let (_, v) = one_record(&w, || {
        run(w.engine.enroll_confirm(&ctx(), &flow, &w.last_code()))
    });
    says(&v, "enroll", "ok", None, Some("confirm"));
    w.audit_ok();
}

#[test]
fn the_old_address_is_told_where_the_method_moved() {
    let w = world(5);
    let operator = RequestContext {
        actor: crate::audit::Actor::Admin("root".into()),
        ..ctx()
    };
    run(w
        .engine
        .admin_enroll(&operator, "normal", "fresh@mail.example.org"))
    .unwrap();
    let mails = w.mail.0.lock().unwrap().clone();
    let old = mails.iter().find(|m| m.to == "u1@home.example").unwrap();
    assert!(old.body.contains("changed"), "{}", old.body);
    assert!(
        old.body.contains("f***@"),
        "masked new address: {}",
        old.body
    );
    assert!(!old.body.contains("fresh@mail.example.org"));
    let new = mails
        .iter()
        .find(|m| m.to == "fresh@mail.example.org")
        .unwrap();
    assert!(
        new.body.contains("was registered by an operator"),
        "{}",
        new.body
    );
}

#[test]
fn operators_write_through_the_engine_and_are_named() {
    let w = world(5);
    let op = RequestContext {
        actor: crate::audit::Actor::Admin("alice-ops".into()),
        ..ctx()
    };
    let opts = ResetOptions {
        unlock: true,
        must_change: true,
        replay_of: None,
    };
    let (r, v) = one_record(&w, || {
        run(w
            .engine
            .admin_reset(&op, "normal", &pw("Operator-Set-1"), opts))
    });
    assert!(r.unwrap().landed_everywhere());
    says(&v, "reset", "ok", None, None);
    assert_eq!(v["actor"]["admin"], "alice-ops");
    assert_eq!(v["methods"][0], "operator");
    let (r, v) = one_record(&w, || {
        run(w.engine.admin_reset(&op, "normal", &pw("x"), opts))
    });
    assert!(
        matches!(r, Err(EngineError::Policy { .. })),
        "AD's policy pre-check applies"
    );
    says(&v, "reset", "failed", Some("RK-PWD-010"), None);
    let (r, v) = one_record(&w, || {
        run(w
            .engine
            .admin_reset(&op, "admin", &pw("Operator-Set-2"), opts))
    });
    assert!(matches!(r, Err(EngineError::Ineligible(_))));
    says(&v, "reset", "failed", Some("RK-TIER-001"), None);
    let (r, v) = one_record(&w, || run(w.engine.admin_unlock(&op, "ghost")));
    assert!(matches!(r, Err(EngineError::NoSuchAccount)));
    says(&v, "unlock", "failed", Some("RK-DIR-002"), None);
    let (_, v) = one_record(&w, || run(w.engine.admin_unlock(&op, "locked")));
    says(&v, "unlock", "ok", None, None);
    assert_eq!(
        *w.zone.writes.lock().unwrap(),
        vec!["reset normal Operator-Set-1 unlock=true", "unlock locked"]
    );
    w.audit_ok();
}

#[test]
fn the_store_never_sees_the_flow_id_or_a_code() {
    let w = world(5);
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    let code = w.last_code();
    let rows: Vec<String> = w.store.with(|m| m.flows.keys().cloned().collect());
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0], flow, "only a keyed hash of the id is stored");
    // A database reader who copies the stored key into a cookie gets nowhere.
    assert!(matches!(
        run(w.engine.verify_reset_code(&ctx(), &rows[0], &code)),
        Err(EngineError::FlowExpired)
    ));
    // The code mail waits in the outbox sealed: neither the code nor the address is readable.
    w.mail.1.store(true, Ordering::Relaxed);
    let _ = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    let item = w.store.with(|m| m.outbox[0].clone());
    let raw = String::from_utf8_lossy(&item.payload);
    assert!(!raw.contains("home.example") && !raw.contains("verification"));
}

#[test]
fn the_outbox_retries_a_relay_that_is_down_and_gives_up_with_a_record() {
    let w = world(5);
    w.mail.1.store(true, Ordering::Relaxed);
    let _ = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    assert_eq!(w.mails(), 0);
    // Due again after the backoff; the relay is back: delivered once.
    assert_eq!(run(w.engine.deliver_outbox()).unwrap(), 0, "not due yet");
    w.mail.1.store(false, Ordering::Relaxed);
    w.clock.0.fetch_add(6, Ordering::Relaxed);
    assert_eq!(run(w.engine.deliver_outbox()).unwrap(), 1);
    assert_eq!(w.mails(), 1);
    assert!(w.store.with(|m| m.outbox.is_empty()));
    // A code nobody could deliver in time ends with a record, not silently.
    w.mail.1.store(true, Ordering::Relaxed);
    let _ = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    w.clock.0.fetch_add(601, Ordering::Relaxed);
    let (_, v) = one_record(&w, || run(w.engine.deliver_outbox()));
    says(&v, "notify", "failed", Some("RK-MAIL-001"), Some("expired"));
    assert_eq!(v["actor"], "system");
    assert!(w.store.with(|m| m.outbox.is_empty()));
}

#[test]
fn anonymous_attempts_stop_with_a_margin_and_lost_answers_count() {
    // Threshold 5, margin 2: badPwdCount never passes 3.
    let w = world(5);
    let new = pw("New-Password-2x");
    for _ in 0..10 {
        let _ = run(w.engine.change(&ctx(), "normal", &pw("Guess-1"), &new));
    }
    let bad = w.dir.set("normal", |a| a.state.bad_pwd_count);
    assert_eq!(bad, 3, "stopped at threshold − 2");
    // An unreachable or lost answer costs a unit too (it may have reached a DC).
    let w = world(5);
    *w.zone.fail.lock().unwrap() = Some(LandingError::Indeterminate {
        diagnostic: Diagnostic::new(None, "answer lost"),
    });
    for _ in 0..5 {
        let _ = run(w
            .engine
            .change(&ctx(), "normal", &pw("Old-Password-1"), &new));
    }
    *w.zone.fail.lock().unwrap() = None;
    let r = run(w
        .engine
        .change(&ctx(), "normal", &pw("Old-Password-1"), &new));
    assert!(
        matches!(r, Err(EngineError::ChangeRefused)),
        "budget spent: {r:?}"
    );
    // A right password gives its unit back: the owner is never locked out of Rekey by use.
    let w = world(5);
    for i in 0..6 {
        let (old, next) = (
            format!("Tr4vel-{i}-to-Oslo"),
            format!("Tr4vel-{}-to-Oslo", i + 1),
        );
        w.dir
            .passwords
            .lock()
            .unwrap()
            .insert("normal".into(), old.clone());
        run(w.engine.change(&ctx(), "normal", &pw(&old), &pw(&next))).unwrap();
    }
    // The enrollment sign-in shares the budget.
    let w = world(5);
    for _ in 0..10 {
        let _ = run(w.engine.enroll_sign_in(&ctx(), "normal", &pw("Guess-1")));
    }
    assert_eq!(w.dir.set("normal", |a| a.state.bad_pwd_count), 3);
}

#[test]
fn banned_passwords_are_refused_before_any_zone_is_written() {
    let w = world(5);
    // Reset: after the gate, with the user's names and the organisation's (Rekey) counted.
    let flow = verified(&w, FlowKind::Reset);
    for banned in ["P@ssw0rd2026!", "Welcome123!", "Rekey!Rekey"] {
        let r = run(w.engine.complete_reset(&ctx(), &flow, &pw(banned)));
        match r {
            Err(EngineError::Policy { violations, .. }) => {
                assert_eq!(violations, [crate::policy::Violation::Banned], "{banned}");
            }
            other => panic!("{banned}: {other:?}"),
        }
    }
    // Change: refused before the account is even looked up, so an unknown name and a real one
    // get the same answer, and the DC never sees the attempt.
    for who in ["normal", "nobody"] {
        let (r, v) = one_record(&w, || {
            run(w
                .engine
                .change(&ctx(), who, &pw("Old-Password-1"), &pw("Qwerty123!")))
        });
        assert!(matches!(r, Err(EngineError::Banned)), "{who}: {r:?}");
        says(&v, "change", "failed", Some("RK-PWD-007"), None);
    }
    let op = RequestContext {
        actor: crate::audit::Actor::Admin("ops".into()),
        ..ctx()
    };
    let r = run(w
        .engine
        .admin_reset(&op, "normal", &pw("Summer2025!"), ResetOptions::default()));
    assert!(matches!(r, Err(EngineError::Policy { .. })), "{r:?}");
    assert!(
        w.zone.writes.lock().unwrap().is_empty(),
        "no zone was written"
    );
    // A passphrase passes.
    let out = run(w
        .engine
        .complete_reset(&ctx(), &flow, &pw("Tr4vel-to-Oslo-in-May")))
    .unwrap();
    assert!(out.landed_everywhere());
}

#[test]
fn one_attempt_per_account_is_in_flight_at_a_time() {
    let w = world(5);
    let new = pw("New-Password-2x");
    // Another replica holds the account's in-flight lease: no second DC attempt meanwhile.
    let guid = Guid([1; 16]);
    let held = w.store.with(|m| m.rate_events.len());
    let lease = run(w.faults.reserve(&format!("pw-inflight:{guid}"), T0, 60, 1)).unwrap();
    assert!(lease.is_some());
    let (r, v) = one_record(&w, || {
        run(w.engine.change(&ctx(), "normal", &pw("Guess-1"), &new))
    });
    assert!(matches!(r, Err(EngineError::ChangeRefused)));
    says(
        &v,
        "change",
        "failed",
        Some("RK-CHANGE-001"),
        Some("budget"),
    );
    assert!(
        w.zone.writes.lock().unwrap().is_empty(),
        "the DC was not asked"
    );
    // Released (or expired after a minute): attempts go on, and each ends its own lease.
    run(w
        .faults
        .release(&format!("pw-inflight:{guid}"), lease.unwrap()))
    .unwrap();
    let _ = run(w.engine.change(&ctx(), "normal", &pw("Guess-1"), &new));
    let _ = run(w.engine.change(&ctx(), "normal", &pw("Guess-2"), &new));
    assert_eq!(w.zone.writes.lock().unwrap().len(), 2);
    let leases = w.store.with(|m| {
        m.rate_events
            .iter()
            .filter(|e| e.key.starts_with("pw-inflight:"))
            .count()
    });
    assert_eq!(leases, 0, "no lease left behind ({held} events before)");
}

#[test]
fn the_canary_writes_through_the_engine_with_one_record_each() {
    let w = world(5);
    let op = RequestContext {
        actor: crate::audit::Actor::System,
        ..ctx()
    };
    let (r, v) = one_record(&w, || run(w.engine.canary_reset(&op, "normal")));
    let landed = r.unwrap();
    says(&v, "canary", "ok", None, None);
    assert_eq!(v["actor"], "system");
    assert_eq!(v["zones"][0]["outcome"], "landed");
    let pw = landed.password.expose().to_owned();
    assert_eq!(pw.chars().count(), 32);
    assert!(pw.bytes().any(|b| b.is_ascii_uppercase()) && pw.bytes().any(|b| b.is_ascii_digit()));
    assert!(
        !format!("{landed:?}").contains(&pw),
        "Debug never shows the password"
    );
    let again = run(w.engine.canary_reset(&op, "normal")).unwrap();
    assert_ne!(again.password.expose(), pw, "a fresh password every run");
    // The same gates as any write: privileged and unknown accounts are refused, audited.
    let (r, v) = one_record(&w, || run(w.engine.canary_reset(&op, "admin")));
    assert!(matches!(r, Err(EngineError::Ineligible(_))));
    says(&v, "canary", "failed", Some("RK-TIER-001"), None);
    let (r, v) = one_record(&w, || run(w.engine.canary_reset(&op, "ghost")));
    assert!(matches!(r, Err(EngineError::NoSuchAccount)));
    says(&v, "canary", "failed", Some("RK-DIR-002"), None);
    // Lost rights: the DC refuses the write; the record says so.
    *w.zone.fail.lock().unwrap() = Some(down());
    let (r, v) = one_record(&w, || run(w.engine.canary_reset(&op, "normal")));
    assert!(matches!(r, Err(EngineError::Landing(_))));
    assert_eq!(v["result"], "failed");
    assert_eq!(v["zones"][0]["outcome"], "failed");
    w.audit_ok();
}

#[test]
fn expiry_reminders_once_per_password_only_to_enabled_users_in_scope() {
    let w = world(5);
    let op = RequestContext {
        actor: crate::audit::Actor::System,
        ..ctx()
    };
    let guid = |sam: &str| {
        w.dir
            .accounts
            .lock()
            .unwrap()
            .iter()
            .find(|a| a.sam_account_name == sam)
            .unwrap()
            .guid
    };
    let expires = crate::clock::unix(w.clock.now()) + 3 * 86_400 + 60;
    // A dry run decides but sends and records nothing.
    let before = w.store.with(|m| m.audit.len());
    let r = run(w
        .engine
        .expiry_reminder(&op, &guid("normal"), expires, true))
    .unwrap();
    assert!(matches!(r, Reminder::Mail { .. }), "{r:?}");
    assert_eq!(w.store.with(|m| m.audit.len()), before);
    assert_eq!(w.mails(), 0);
    // The real run mails once, audited.
    let (r, v) = one_record(&w, || {
        run(w
            .engine
            .expiry_reminder(&op, &guid("normal"), expires, false))
    });
    assert!(matches!(r.unwrap(), Reminder::Mail { .. }));
    says(&v, "reminder", "ok", None, Some("expires_in_days:3"));
    run(w.engine.deliver_outbox()).unwrap();
    let mail = w.last_mail();
    assert_eq!(mail.to, "normal@corp.example.com");
    assert!(mail.subject.contains("in 3 days"), "{}", mail.subject);
    assert!(
        mail.body.contains("https://localhost/change"),
        "{}",
        mail.body
    );
    // Not twice for the same password; again for the next one.
    let r = run(w
        .engine
        .expiry_reminder(&op, &guid("normal"), expires, false))
    .unwrap();
    assert_eq!(r, Reminder::AlreadySent);
    let r = run(w
        .engine
        .expiry_reminder(&op, &guid("normal"), expires + 86_400 * 42, false));
    assert!(matches!(r.unwrap(), Reminder::Mail { .. }));
    // Never the disabled, the out-of-scope or the (excluded) privileged.
    for (sam, why) in [
        ("disabled", "disabled"),
        ("outside", "out_of_scope"),
        ("admin", "out_of_scope"),
    ] {
        let r = run(w.engine.expiry_reminder(&op, &guid(sam), expires, false)).unwrap();
        assert_eq!(r, Reminder::Skipped(why), "{sam}");
    }
    w.audit_ok();
}
