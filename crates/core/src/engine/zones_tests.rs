//! Later landing zones with the fakes: plans before writes, per-zone outcomes, retries and sync
//! proofs from the outbox, the receipt, one audit record per zone attempt.

use std::sync::atomic::Ordering;

use serde_json::Value;

use super::tests::ctx;
use super::*;
use crate::fakes::*;
use crate::landing::{Diagnostic, Plan, Rejection};
use crate::secret::Password;
use crate::store::FlowKind;

const NEW: &str = "Brand-New-Pass-1";

/// A verified reset flow for `normal`.
fn verified(w: &World) -> FlowId {
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    run(w.engine.verify_reset_code(&ctx(), &flow, &w.last_code()))
        .unwrap()
        .into_id()
}

fn reset(w: &World) -> EngineResult<ResetOutcome> {
    let flow = verified(w);
    run(w.engine.complete_reset(&ctx(), &flow, &Password::from(NEW)))
}

fn states(out: &ResetOutcome) -> Vec<&'static str> {
    out.zones.iter().map(|z| z.state.as_str()).collect()
}

fn records(w: &World) -> Vec<Value> {
    w.store.with(|m| {
        m.audit
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    })
}

/// The newest audit record, which must say `ok`; the chain verifies.
fn ok_record(w: &World) -> Value {
    let last = records(w).pop().unwrap();
    assert_eq!(last["result"], "ok", "{last}");
    w.audit_ok();
    last
}

/// `normal` has a synced cloud twin, `obj-1`.
fn synced(cloud: &FakeCloud) {
    cloud.plan(
        "normal",
        Ok(Plan::Sync {
            handle: "obj-1".into(),
        }),
    );
}

fn advance(w: &World, secs: i64) {
    w.clock.0.fetch_add(secs, Ordering::Relaxed);
}

fn deliver(w: &World) {
    run(w.engine.deliver_outbox()).unwrap();
}

fn receipt(w: &World, out: &ResetOutcome) -> ResetOutcome {
    run(w.engine.receipt(out.receipt.as_deref().unwrap())).unwrap()
}

#[test]
fn an_ad_only_user_needs_nothing_in_the_cloud() {
    let (w, cloud) = cloud_world(5);
    let out = reset(&w).unwrap();
    assert_eq!(states(&out), ["landed", "absent"]);
    assert!(out.landed_everywhere());
    assert!(out.receipt.is_none(), "nothing is still moving");
    assert!(cloud.writes().is_empty());
    assert_eq!(ok_record(&w)["zones"][1]["outcome"], "absent");
}

#[test]
fn a_synced_user_is_written_on_premises_and_the_cloud_arrival_is_proven() {
    let (w, cloud) = cloud_world(5);
    synced(&cloud);
    let out = reset(&w).unwrap();
    assert_eq!(states(&out), ["landed", "pending"]);
    assert!(
        cloud.writes().is_empty(),
        "a synced account is never PATCHed"
    );
    assert!(out.landed_everywhere());
    // Not there yet: still pending, and no record for a look that found nothing.
    let before = records(&w).len();
    advance(&w, 10);
    deliver(&w);
    assert_eq!(states(&receipt(&w, &out)), ["landed", "pending"]);
    assert_eq!(records(&w).len(), before);
    // The hash sync ran 94 s after the write; Rekey's next look (every 10 s) sees it at 100 s.
    cloud
        .arrivals
        .lock()
        .unwrap()
        .insert("obj-1".into(), T0 + 94);
    advance(&w, 90);
    deliver(&w);
    let done = receipt(&w, &out);
    assert_eq!(states(&done), ["landed", "synced"]);
    assert_eq!(done.zones[1].secs, Some(100));
    assert!(done.receipt.is_none(), "final: the page stops refreshing");
    let last = records(&w).pop().unwrap();
    assert_eq!(last["operation"], "sync_proof");
    assert_eq!(last["actor"], "system");
    assert_eq!(last["support_id"], "RK-TEST-0001", "the reset's support id");
    assert_eq!(last["zones"][0]["note"], "synced after 100 s");
    assert_eq!(last["result"], "ok");
    w.audit_ok();
}

#[test]
fn a_sync_that_never_comes_ends_not_synced_with_a_record() {
    let (w, cloud) = cloud_world(5);
    synced(&cloud);
    let out = reset(&w).unwrap();
    // An arrival from before the reset is not this password.
    cloud
        .arrivals
        .lock()
        .unwrap()
        .insert("obj-1".into(), T0 - 5);
    for _ in 0..200 {
        advance(&w, 10);
        deliver(&w);
    }
    let done = receipt(&w, &out);
    assert_eq!(states(&done), ["landed", "not_synced"]);
    let last = records(&w).pop().unwrap();
    assert_eq!(last["operation"], "sync_proof");
    assert_eq!(last["result"], "failed");
    assert_eq!(
        last["zones"][0]["note"],
        "not synced within 30 min (check password hash sync)"
    );
    let proofs = records(&w)
        .iter()
        .filter(|r| r["operation"] == "sync_proof")
        .count();
    assert_eq!(proofs, 1, "one record when the proof ends");
    w.audit_ok();
}

#[test]
fn a_cloud_only_account_is_written_after_ad_with_the_cloud_rules_shown_first() {
    let (w, cloud) = cloud_world(5);
    cloud.write("normal");
    *cloud.revoke.lock().unwrap() = Some(true);
    let flow = verified(&w);
    assert!(run(w.engine.reset_policy(&flow)).unwrap().entra_rules);
    // Not printable ASCII: Entra would refuse it, so nothing is written anywhere.
    let refused = run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Grüne-Wiese-42")));
    match refused {
        Err(EngineError::Policy { violations, .. }) => {
            assert_eq!(violations, vec![crate::policy::Violation::CloudCharacters]);
        }
        other => panic!("{other:?}"),
    }
    assert!(w.zone.writes.lock().unwrap().is_empty());
    let out = run(w.engine.complete_reset(&ctx(), &flow, &Password::from(NEW))).unwrap();
    assert_eq!(states(&out), ["landed", "landed"]);
    assert_eq!(out.zones[1].sessions_revoked, Some(true));
    assert_eq!(
        cloud.writes(),
        [format!("reset normal {NEW} replay_of=None")]
    );
    assert_eq!(ok_record(&w)["zones"][1]["note"], "sessions revoked");
}

#[test]
fn a_privileged_cloud_account_stops_everything_before_any_write() {
    let (w, cloud) = cloud_world(5);
    cloud.plan(
        "normal",
        Err(LandingError::Rejected {
            reason: Rejection::Privileged,
            diagnostic: Diagnostic::new(Some("graph"), "Global Administrator"),
        }),
    );
    let flow = verified(&w);
    let r = run(w.engine.complete_reset(&ctx(), &flow, &Password::from(NEW)));
    assert!(matches!(&r, Err(e) if e.code() == "RK-ZONE-002"), "{r:?}");
    // The flow is over: no other password would help.
    assert!(matches!(
        run(w.engine.reset_verified(&flow)),
        Err(EngineError::FlowExpired)
    ));
    assert!(w.zone.writes.lock().unwrap().is_empty(), "AD untouched");
    assert!(cloud.writes().is_empty());
    let last = records(&w).pop().unwrap();
    assert_eq!(last["result"], "failed");
    assert_eq!(last["detail"], "refused_before_writing");
    assert_eq!(last["zones"][0]["zone"], "EntraId");
    assert_eq!(last["zones"][0]["code"], "RK-ZONE-002");
    // The same refusal for an operator.
    let r = run(w
        .engine
        .admin_reset(&ctx(), "normal", &Password::from(NEW), Default::default()));
    assert!(matches!(&r, Err(e) if e.code() == "RK-ZONE-002"));
    assert!(w.zone.writes.lock().unwrap().is_empty());
}

#[test]
fn an_ambiguous_cloud_match_is_shown_and_never_guessed() {
    let (w, cloud) = cloud_world(5);
    cloud.plan("normal", Ok(Plan::Ambiguous));
    let out = reset(&w).unwrap();
    assert_eq!(states(&out), ["landed", "rejected"]);
    assert_eq!(out.zones[1].code.as_deref(), Some("RK-ZONE-001"));
    assert!(!out.landed_everywhere());
    assert!(cloud.writes().is_empty());
    assert_eq!(records(&w).pop().unwrap()["result"], "partial");
}

#[test]
fn a_cloud_failure_after_ad_landed_is_retried_from_the_outbox_from_the_store() {
    let (w, cloud) = cloud_world(5);
    cloud.write("normal");
    cloud.fail_next(unavailable());
    let out = reset(&w).unwrap();
    assert_eq!(states(&out), ["landed", "queued"]);
    assert_eq!(out.zones[1].code.as_deref(), Some("RK-DIR-010"));
    assert_eq!(records(&w).pop().unwrap()["result"], "partial");
    // The sealed job holds the password; the store never sees it in the clear.
    let items = w.store.with(|m| m.outbox.clone());
    let job = items
        .iter()
        .find(|i| i.kind == crate::store::OutboxKind::Landing)
        .unwrap();
    assert!(!String::from_utf8_lossy(&job.payload).contains(NEW));
    // Everything the retry needs is in the store (the e2e test restarts `rekey serve` for real):
    // the second attempt fails too, the third lands (a verified replay: `replay_of` is the AD
    // landing's time).
    let restarted = w.engine.clone();
    cloud.fail_next(unavailable());
    advance(&w, 5);
    run(restarted.deliver_outbox()).unwrap();
    assert_eq!(states(&receipt(&w, &out)), ["landed", "queued"]);
    assert!(cloud.writes().is_empty());
    advance(&w, 10);
    run(restarted.deliver_outbox()).unwrap();
    let done = receipt(&w, &out);
    assert_eq!(states(&done), ["landed", "landed"]);
    assert!(done.receipt.is_none());
    assert_eq!(
        cloud.writes(),
        [format!("reset normal {NEW} replay_of=Some({T0})")]
    );
    assert!(
        w.store.with(|m| m.outbox.is_empty()),
        "the sealed password is gone"
    );
    // One record per zone attempt: the reset (AD + first try), then two retries.
    let recs = records(&w);
    let tail: Vec<(&str, &str)> = recs[recs.len() - 3..]
        .iter()
        .map(|r| {
            (
                r["zones"][r["zones"].as_array().unwrap().len() - 1]["outcome"]
                    .as_str()
                    .unwrap(),
                r["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tail,
        [
            ("queued", "partial"),
            ("queued", "failed"),
            ("landed", "ok")
        ]
    );
    assert_eq!(recs.last().unwrap()["detail"], "outbox retry 2");
    w.audit_ok();
}

#[test]
fn a_throttled_cloud_is_asked_again_only_after_its_retry_after() {
    let (w, cloud) = cloud_world(5);
    cloud.write("normal");
    cloud.fail_next(throttled(1500));
    let out = reset(&w).unwrap();
    assert_eq!(states(&out), ["landed", "queued"]);
    advance(&w, 1);
    deliver(&w);
    assert!(cloud.writes().is_empty(), "1 s < Retry-After 1.5 s");
    advance(&w, 1);
    deliver(&w);
    assert_eq!(cloud.writes().len(), 1);
    assert_eq!(states(&receipt(&w, &out)), ["landed", "landed"]);
}

#[test]
fn a_lost_answer_is_verified_not_written_twice() {
    let (w, cloud) = cloud_world(5);
    cloud.write("normal");
    cloud.fail_next(LandingError::Indeterminate {
        diagnostic: Diagnostic::new(Some("graph"), "timeout after PATCH"),
    });
    let out = reset(&w).unwrap();
    assert_eq!(states(&out), ["landed", "queued"]);
    // The PATCH had landed: the replay sees the password set since and writes nothing.
    *cloud.already_set.lock().unwrap() = true;
    advance(&w, 5);
    deliver(&w);
    assert_eq!(states(&receipt(&w, &out)), ["landed", "landed"]);
    assert!(cloud.writes().is_empty());
}

#[test]
fn a_retry_window_that_closes_ends_failed_with_a_record() {
    let (w, cloud) = cloud_world(5);
    cloud.write("normal");
    for _ in 0..100 {
        cloud.fail_next(unavailable());
    }
    let out = reset(&w).unwrap();
    // The window is an hour; the receipt lives 10 minutes longer.
    for _ in 0..13 {
        advance(&w, 300);
        deliver(&w);
    }
    let done = receipt(&w, &out);
    assert_eq!(states(&done), ["landed", "failed"]);
    assert!(w.store.with(|m| m.outbox.is_empty()));
    assert_eq!(records(&w).pop().unwrap()["result"], "failed");
    w.audit_ok();
}

#[test]
fn a_change_reaches_the_cloud_twin_and_an_unlock_is_ads_alone() {
    let (w, cloud) = cloud_world(5);
    cloud.write("normal");
    let change_from = |old: &str, new: &str| {
        run(w
            .engine
            .change(&ctx(), "normal", &Password::from(old), &Password::from(new)))
    };
    let change = |new: &str| change_from("Old-Password-1", new);
    // AD verifies the old password and changes; the separately managed cloud account gets the
    // new one as after a reset, so the two never drift apart silently.
    let out = change(NEW).unwrap();
    assert_eq!(states(&out), ["landed", "landed"]);
    assert_eq!(
        cloud.writes(),
        [format!("reset normal {NEW} replay_of=None")]
    );
    let last = ok_record(&w);
    assert_eq!(last["operation"], "change");
    // A wrong old password: AD says no, the cloud is never asked.
    assert!(change_from("Not-The-Old-One-9", "Another-New-Pass-2").is_err());
    assert_eq!(cloud.writes().len(), 1);
    // A cloud twin that became privileged: AD's change (the user's own) stands; the cloud side
    // is refused and says so.
    cloud.plan(
        "normal",
        Err(LandingError::Rejected {
            reason: Rejection::Privileged,
            diagnostic: Diagnostic::new(Some("graph"), "Global Administrator"),
        }),
    );
    let out = change("Third-New-Pass-3").unwrap();
    assert_eq!(states(&out), ["landed", "rejected"]);
    assert_eq!(out.zones[1].code.as_deref(), Some("RK-ZONE-002"));
    assert_eq!(records(&w).pop().unwrap()["result"], "partial");
    // An unlock is AD's alone.
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Unlock, "normal")).unwrap();
    let flow = run(w.engine.verify_reset_code(&ctx(), &flow, &w.last_code()))
        .unwrap()
        .into_id();
    let out = run(w.engine.complete_unlock(&ctx(), &flow)).unwrap();
    assert_eq!(states(&out), ["landed"]);
    assert_eq!(cloud.writes().len(), 1);
}

#[test]
fn a_breached_password_is_refused_before_any_zone_and_an_outage_is_noted() {
    let (w, cloud) = cloud_world(5);
    cloud.write("normal");
    const LEAKED: &str = "Summer-Holiday-88";
    w.breached.seen.lock().unwrap().insert(LEAKED.into(), 4021);
    let flow = verified(&w);
    match run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from(LEAKED)))
    {
        Err(EngineError::Policy { violations, .. }) => {
            assert_eq!(violations, vec![crate::policy::Violation::Breached]);
        }
        other => panic!("{other:?}"),
    }
    assert!(w.zone.writes.lock().unwrap().is_empty() && cloud.writes().is_empty());
    // A change is asked before the account is looked up: the same answer for every account.
    let r = run(w.engine.change(
        &ctx(),
        "nobody",
        &Password::from("x"),
        &Password::from(LEAKED),
    ));
    assert!(matches!(r, Err(EngineError::Breached)), "{r:?}");
    let asked = *w.breached.asked.lock().unwrap();
    assert_eq!(asked, 2);
    // The source is down: the reset goes through (fail open, the default) and the record says why.
    *w.breached.down.lock().unwrap() = true;
    let out = run(w.engine.complete_reset(&ctx(), &flow, &Password::from(NEW))).unwrap();
    assert_eq!(states(&out), ["landed", "landed"]);
    let last = records(&w).pop().unwrap();
    assert_eq!(last["detail"], "breach_check_unavailable");
    assert_eq!(last["result"], "ok");
}

#[test]
fn a_breach_source_that_is_down_refuses_when_configured_to_fail_closed() {
    let w = world_config(
        5,
        EngineConfig {
            breached_fail_closed: true,
            ..EngineConfig::default()
        },
    );
    *w.breached.down.lock().unwrap() = true;
    let r = reset(&w);
    assert!(matches!(&r, Err(e) if e.code() == "RK-BREACH-001"), "{r:?}");
    assert!(w.zone.writes.lock().unwrap().is_empty());
    let last = records(&w).pop().unwrap();
    assert_eq!(last["error_code"], "RK-BREACH-001");
}

#[test]
fn a_queued_write_whose_account_became_synced_is_proven_not_left_pending() {
    let (w, cloud) = cloud_world(5);
    cloud.write("normal");
    cloud.fail_next(unavailable());
    let out = reset(&w).unwrap();
    assert_eq!(states(&out), ["landed", "queued"]);
    // Entra Connect took the account over meanwhile: the retry hands it to a sync proof.
    synced(&cloud);
    advance(&w, 5);
    deliver(&w);
    assert_eq!(states(&receipt(&w, &out)), ["landed", "pending"]);
    assert!(cloud.writes().is_empty());
    cloud
        .arrivals
        .lock()
        .unwrap()
        .insert("obj-1".into(), T0 + 20);
    advance(&w, 20);
    deliver(&w);
    assert_eq!(states(&receipt(&w, &out)), ["landed", "synced"]);
    assert_eq!(records(&w).pop().unwrap()["operation"], "sync_proof");
}
