//! The proof of work on identify (invariant 28): asked for over the rate, checked, spent once.

use std::sync::atomic::Ordering;

use super::tests::ctx;
use super::*;
use crate::fakes::*;
use crate::store::FlowKind;

fn pow_world(per_ip: u32, per_all: u32) -> World {
    let config = EngineConfig {
        pow_per_ip_per_minute: per_ip,
        pow_per_minute: per_all,
        pow_bits: 8,
        pow_fallback_secs: 10,
        ..EngineConfig::default()
    };
    world_config(5, config)
}

/// The puzzle the engine asks for, after `n` identify requests within the rate.
fn puzzle(w: &World) -> (String, u8) {
    match run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")) {
        Err(EngineError::ProofOfWork {
            challenge, bits, ..
        }) => (challenge, bits),
        other => panic!("a proof of work was expected, got {other:?}"),
    }
}

#[test]
fn over_the_rate_identify_needs_a_solved_puzzle_once() {
    let w = pow_world(2, 0);
    for _ in 0..2 {
        run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    }
    let (challenge, bits) = puzzle(&w);
    assert_eq!(bits, 8);
    let key = w.engine.pow_key();
    let wrong = (0u64..)
        .map(|n| n.to_string())
        .find(|n| crate::pow::check(&key, &challenge, n, T0, 60).is_err())
        .unwrap();
    let answer = crate::pow::solve(&challenge, 8).to_string();
    // A wrong counter gets a new puzzle, not a flow.
    assert!(matches!(
        run(w.engine.start_reset_pow(
            &ctx(),
            FlowKind::Reset,
            "normal",
            Some((&challenge, &wrong))
        )),
        Err(EngineError::ProofOfWork { .. })
    ));
    let flow = run(w.engine.start_reset_pow(
        &ctx(),
        FlowKind::Reset,
        "normal",
        Some((&challenge, &answer)),
    ));
    assert!(flow.is_ok(), "{flow:?}");
    // Spent: the same answer does not open a second flow.
    assert!(matches!(
        run(w.engine.start_reset_pow(
            &ctx(),
            FlowKind::Reset,
            "normal",
            Some((&challenge, &answer))
        )),
        Err(EngineError::ProofOfWork { .. })
    ));
    // Another client address is not over its own rate.
    let other = RequestContext {
        client_ip: Some("198.51.100.9".into()),
        ..ctx()
    };
    run(w.engine.start_reset(&other, FlowKind::Reset, "normal")).unwrap();
    let records: Vec<serde_json::Value> = w.store.with(|m| {
        m.audit
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    });
    assert!(
        records
            .iter()
            .any(|r| r["detail"] == "proof_of_work_required" && r["operation"] == "identify"),
        "each refusal is audited"
    );
}

#[test]
fn without_javascript_waiting_is_the_answer() {
    let w = pow_world(0, 1);
    run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    let (challenge, _) = puzzle(&w);
    let early = run(w.engine.start_reset_pow(
        &ctx(),
        FlowKind::Reset,
        "normal",
        Some((&challenge, "wait")),
    ));
    assert!(matches!(early, Err(EngineError::ProofOfWork { .. })));
    w.clock.0.fetch_add(10, Ordering::Relaxed);
    run(w.engine.start_reset_pow(
        &ctx(),
        FlowKind::Reset,
        "normal",
        Some((&challenge, "wait")),
    ))
    .unwrap();
}

#[test]
fn thirty_parallel_uses_of_one_solution_open_one_flow() {
    let w = pow_world(1, 0);
    run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    let (challenge, bits) = puzzle(&w);
    let answer = crate::pow::solve(&challenge, bits).to_string();
    w.faults.yielding.store(true, Ordering::Relaxed);
    let c = ctx();
    let results = run_all(
        (0..30)
            .map(|_| {
                w.engine.start_reset_pow(
                    &c,
                    FlowKind::Reset,
                    "nobody",
                    Some((challenge.as_str(), answer.as_str())),
                )
            })
            .collect(),
    );
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
}

#[test]
fn a_forged_or_foreign_challenge_is_refused() {
    let w = pow_world(1, 0);
    run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    let foreign = crate::pow::issue(
        &[1; 32],
        &Counter(std::sync::atomic::AtomicU64::new(7)),
        T0,
        8,
        0,
    );
    let answer = crate::pow::solve(&foreign.challenge, 8).to_string();
    assert!(matches!(
        run(w.engine.start_reset_pow(
            &ctx(),
            FlowKind::Reset,
            "normal",
            Some((&foreign.challenge, &answer))
        )),
        Err(EngineError::ProofOfWork { .. })
    ));
}
