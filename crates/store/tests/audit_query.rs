//! `SqlStore::audit_by_support_id` / `audit_by_target` on SQLite AND PostgreSQL: exact matches
//! only (LIKE's `%`/`_`, SQLite's case folding and JSON escapes decide nothing), the time window,
//! and paging past one page of candidates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rekey_core::audit::{Actor, AuditEvent, Operation};
use rekey_core::store::Store;
use rekey_store::SqlStore;

#[macro_use]
#[allow(dead_code, unused_imports)]
#[path = "store/support.rs"]
mod support;

use support::TestDb;

fn ev(at_ms: i64, sid: &str, guid: Option<&str>) -> AuditEvent {
    AuditEvent {
        at_ms,
        support_id: sid.into(),
        actor: Actor::User,
        operation: Operation::Identify,
        result: "ok".into(),
        client_ip: None,
        user_agent: None,
        target_guid: guid.map(Into::into),
        target_sam: Some("x\"support_id\":\"S-1\"".into()),
        methods: vec![],
        zones: vec![],
        error_code: None,
        detail: None,
    }
}

fn seqs(records: &[rekey_core::audit::AuditRecord]) -> Vec<i64> {
    records.iter().map(|r| r.seq).collect()
}

both!(exact_matches_and_windows, pages_past_one_page);

async fn exact_matches_and_windows(db: TestDb) {
    let s = db.sql().await;
    let events = [
        ev(1_000, "S-1", Some("g1")),
        ev(2_000, "s-1", Some("g1")),
        ev(3_000, "S-10", Some("g2")),
        ev(4_000, "a_b%", Some("g1")),
        ev(5_000, "aXbYZ", None),
        ev(6_000, "quo\"te\\back\nline", Some("g%")),
        ev(7_000, "S-1", Some("g1")),
    ];
    for e in &events {
        s.append_audit(e).await.unwrap();
    }
    assert_eq!(seqs(&s.audit_by_support_id("S-1").await.unwrap()), [1, 7]);
    assert_eq!(seqs(&s.audit_by_support_id("s-1").await.unwrap()), [2]);
    assert_eq!(seqs(&s.audit_by_support_id("a_b%").await.unwrap()), [4]);
    assert_eq!(
        seqs(&s.audit_by_support_id("quo\"te\\back\nline").await.unwrap()),
        [6]
    );
    assert!(s.audit_by_support_id("S-").await.unwrap().is_empty());
    assert!(s.audit_by_support_id("%").await.unwrap().is_empty());
    assert_eq!(
        seqs(&s.audit_by_target("g1", 0, 10_000).await.unwrap()),
        [1, 2, 4, 7]
    );
    assert_eq!(
        seqs(&s.audit_by_target("g1", 2_000, 4_000).await.unwrap()),
        [2, 4]
    );
    assert_eq!(
        seqs(&s.audit_by_target("g%", 0, 10_000).await.unwrap()),
        [6]
    );
    assert!(s.audit_by_target("g", 0, 10_000).await.unwrap().is_empty());
}

/// More candidates than one page (500): SQLite's case-insensitive LIKE returns the `s-1`
/// records too; the page boundary must neither lose nor repeat a match.
async fn pages_past_one_page(db: TestDb) {
    let s = db.sql().await;
    for i in 0..1_203_i64 {
        let sid = if i % 100 == 0 { "S-1" } else { "s-1" };
        s.append_audit(&ev(i, sid, Some("g1"))).await.unwrap();
    }
    let found = seqs(&s.audit_by_support_id("S-1").await.unwrap());
    assert_eq!(found, (0..13).map(|k| k * 100 + 1).collect::<Vec<_>>());
    assert_eq!(
        s.audit_by_target("g1", 0, 2_000).await.unwrap().len(),
        1_203
    );
}
