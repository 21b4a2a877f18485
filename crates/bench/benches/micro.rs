//! Micro-benchmarks of the non-directory hot path (DESIGN §6: ≥ 5k page renders/s and ≥ 2k OTP
//! verifications/s on SQLite, 1 core; `audit verify` of 1M records ≤ 5 s).
//! `cargo bench -p rekey-bench` (no dev domain needed).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark set-up panics by design

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use rekey_core::audit::{self, Actor, AuditEvent, AuditRecord, Operation};
use rekey_core::store::{Challenge, FlowKind, FlowRecord, Store};
use rekey_core::{Guid, Password, PasswordPolicy, PolicySource, otp};
use rekey_store::SqlStore;
use tower::ServiceExt;

fn main() {
    divan::main();
}

/// One current-thread runtime: the numbers are per core.
fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fn temp_store(name: &str) -> Arc<SqlStore> {
    // One fixed name per store: a rerun replaces it instead of piling up files.
    let db = std::env::temp_dir().join(format!("rekey-micro-{name}.db"));
    for s in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{s}", db.display()));
    }
    let url = format!("sqlite://{}", db.display());
    Arc::new(rt().block_on(SqlStore::connect(&url)).unwrap())
}

/// A full page through the router (headers middleware, CSRF cookie, askama render, i18n).
#[divan::bench(args = ["/", "/reset", "/change"])]
fn page_render(b: divan::Bencher, path: &str) {
    let world = rekey_core::fakes::world(5);
    let app = rekey_web::router(world.engine.clone(), rekey_web::WebConfig::default());
    b.bench_local(|| {
        rt().block_on(async {
            let req = Request::get(path).body(Body::empty()).unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            divan::black_box(bytes.len())
        })
    });
}

const KEY: [u8; 32] = [7; 32];
const PURPOSE: &str = "reset:email";

/// What the gate does per typed code: read the flow's challenge from SQLite, check the HMAC.
#[divan::bench]
fn otp_verify_sqlite(b: divan::Bencher) {
    let store = temp_store("otp");
    let user = Guid([3; 16]);
    let code = "123456";
    let challenge = Challenge {
        id: "c1".into(),
        flow_id: "flow-1".into(),
        user,
        purpose: PURPOSE.into(),
        code_hash: otp::hash(&KEY, "flow-1", &user, PURPOSE, code),
        expires_at: i64::MAX / 2,
        failed_attempts: 0,
    };
    let flow = FlowRecord {
        id: "flow-1".into(),
        kind: FlowKind::Reset,
        user: Some(user),
        state: "{}".into(),
        version: 0,
        created_at: 1_700_000_000,
        expires_at: i64::MAX / 2,
    };
    rt().block_on(store.insert_flow(&flow)).unwrap();
    rt().block_on(store.put_challenge(&challenge)).unwrap();
    b.bench_local(|| {
        rt().block_on(async {
            let c = store
                .challenge("flow-1", PURPOSE, 1_700_000_000)
                .await
                .unwrap()
                .unwrap();
            assert!(otp::matches(
                &KEY,
                &c.flow_id,
                &c.user,
                PURPOSE,
                code,
                &c.code_hash
            ));
        })
    });
}

/// The HMAC check alone.
#[divan::bench]
fn otp_matches(b: divan::Bencher) {
    let user = Guid([3; 16]);
    let h = otp::hash(&KEY, "flow-1", &user, PURPOSE, "123456");
    b.bench(|| {
        otp::matches(
            &KEY,
            "flow-1",
            &user,
            PURPOSE,
            divan::black_box("123 456"),
            &h,
        )
    });
}

/// AD's complexity rules as Rekey's local pre-check.
#[divan::bench]
fn policy_precheck(b: divan::Bencher) {
    let p = PasswordPolicy {
        source: PolicySource::Domain,
        min_length: 7,
        complexity: true,
        history_length: 24,
        min_age: Duration::ZERO,
        max_age: Some(Duration::from_secs(42 * 86_400)),
        lockout_threshold: 5,
        lockout_duration: Duration::from_secs(1800),
        lockout_window: Duration::from_secs(1800),
        entra_rules: false,
    };
    let pw = Password::new("Correct-Horse-9-Battery".to_owned());
    b.bench(|| p.precheck(divan::black_box(&pw), "alice.adams", Some("Alice Adams")));
}

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        at_ms: 1_700_000_000_000 + i as i64,
        support_id: format!("S{i:08}"),
        actor: Actor::User,
        operation: Operation::Reset,
        result: "ok".into(),
        client_ip: Some("192.0.2.7".into()),
        user_agent: Some("Mozilla/5.0".into()),
        target_guid: Some("0f0e0d0c-0b0a-0908-0706-050403020100".into()),
        target_sam: Some("alice.adams".into()),
        methods: vec!["email".into()],
        zones: vec![],
        error_code: None,
        detail: None,
    }
}

/// One audit append on SQLite: a locked transaction (`BEGIN IMMEDIATE`) and a commit.
#[divan::bench(sample_count = 50, sample_size = 4)]
fn audit_append_sqlite(b: divan::Bencher) {
    let store = temp_store("audit-append");
    let mut i = 0;
    b.bench_local(|| {
        i += 1;
        rt().block_on(store.append_audit(&event(i))).unwrap()
    });
}

/// `audit::verify` over 10k records in memory (1M ≤ 5 s means ≤ 50 ms here).
#[divan::bench(sample_count = 20)]
fn audit_verify_10k(b: divan::Bencher) {
    let mut prev = audit::GENESIS;
    let records: Vec<AuditRecord> = (1..=10_000)
        .map(|seq| {
            let body = event(seq).canonical();
            let seq = seq as i64;
            let hash = audit::chain_hash(&prev, seq, &body);
            let r = AuditRecord {
                seq,
                body,
                prev_hash: prev,
                hash,
            };
            prev = hash;
            r
        })
        .collect();
    b.bench(|| audit::verify(divan::black_box(&records), (0, audit::GENESIS)).unwrap());
}

/// Read 10k records back from SQLite (pages of 1000) and verify them: `audit verify`.
#[divan::bench(sample_count = 10)]
fn audit_read_and_verify_10k_sqlite(b: divan::Bencher) {
    let store = temp_store("audit-verify");
    rt().block_on(async {
        for i in 0..10_000 {
            store.append_audit(&event(i)).await.unwrap();
        }
    });
    b.bench_local(|| {
        rt().block_on(async {
            let mut at = (0, audit::GENESIS);
            loop {
                let page = store.audit_after(at.0, 1000).await.unwrap();
                if page.is_empty() {
                    break at;
                }
                at = audit::verify(&page, at).unwrap();
            }
        })
    });
}
