use rekey_core::audit::{AuditEvent, GENESIS, chain_hash, verify};
use rekey_core::store::Store;
use rekey_store::SqlStore;
use sqlx::{Connection, Executor, PgConnection};

use crate::race;
use crate::support::{self, Kind, NOW, TestDb, event};

contract!(
    audit_chain_is_unbroken_across_replicas,
    audit_after_pages_in_order,
    recent_audit_of_is_one_accounts_newest_events,
);

/// What the helpdesk console shows of a user: that account's events since a time, newest
/// first, at most `limit` — the same from the SQL query as from the trait's walk (MemStore).
async fn recent_audit_of_is_one_accounts_newest_events(db: TestDb) {
    let s = db.store().await;
    let other = support::guid(2).to_string();
    for n in 1..=8 {
        let mut e = event(n);
        if n % 3 == 0 {
            e.target_guid = Some(other.clone());
        }
        s.append_audit(&e).await.unwrap();
    }
    let mine = support::guid(1).to_string();
    let since = NOW * 1000 + 2;
    let got = s.recent_audit_of(&mine, since, 3).await.unwrap();
    let ids: Vec<&str> = got.iter().map(|e| e.support_id.as_str()).collect();
    assert_eq!(ids, ["RK-000008", "RK-000007", "RK-000005"]);
    let all = s.recent_audit_of(&mine, 0, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(
        s.recent_audit_of("no-such-account", 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn audit_chain_is_unbroken_across_replicas(db: TestDb) {
    let (a, b) = (db.store().await, db.store().await);
    // Twice: the second round starts with each replica's cached chain head set (and stale
    // whenever the other replica appended last).
    let mut appended = Vec::new();
    for round in 0..2 {
        appended.extend(
            race(50, |i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                async move {
                    s.append_audit(&event(i64::try_from(round * 50 + i).unwrap()))
                        .await
                        .unwrap()
                }
            })
            .await,
        );
    }
    // A lone append on each after the other moved the head.
    appended.push(a.append_audit(&event(100)).await.unwrap());
    appended.push(b.append_audit(&event(101)).await.unwrap());

    let records = a.audit_after(0, 1000).await.unwrap();
    let seqs: Vec<i64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=102).collect::<Vec<i64>>());
    let (last, head) = verify(&records, (0, GENESIS)).unwrap();
    assert_eq!(last, 102);
    assert_eq!(head, records[101].hash);
    // Each append returned exactly what was stored.
    for r in &appended {
        assert_eq!(&records[usize::try_from(r.seq - 1).unwrap()], r);
    }
    // Every event is in the chain once.
    let mut bodies: Vec<&str> = records.iter().map(|r| r.body.as_str()).collect();
    bodies.sort_unstable();
    bodies.dedup();
    assert_eq!(bodies.len(), 102);
}

async fn audit_after_pages_in_order(db: TestDb) {
    let s = db.store().await;
    assert_eq!(s.audit_after(0, 10).await.unwrap(), vec![]);
    for n in 1..=5 {
        let e = event(n);
        let r = s.append_audit(&e).await.unwrap();
        assert_eq!(r.seq, n);
        assert_eq!(r.body, e.canonical());
        assert_eq!(r.hash, chain_hash(&r.prev_hash, n, &r.body));
        let back: AuditEvent = serde_json::from_str(&r.body).unwrap();
        assert_eq!(back, e);
    }
    // Verify page by page, continuing from the previous page's head.
    let mut at = (0, GENESIS);
    loop {
        let page = s.audit_after(at.0, 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        at = verify(&page, at).unwrap();
    }
    assert_eq!(at.0, 5);
    let tail = s.audit_after(3, 10).await.unwrap();
    assert_eq!(tail.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(s.audit_after(5, 10).await.unwrap(), vec![]);
    assert_eq!(s.audit_after(0, 0).await.unwrap(), vec![]);
}

/// The operator setup the crate docs describe: the schema owned by `postgres`, the service running
/// as a role that may only read and append the audit table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_postgres_role_can_append_but_not_rewrite() {
    let db = TestDb::new(Kind::Postgres).await;
    db.sql().await.append_audit(&event(1)).await.unwrap();

    let role = format!("{}_app", db.name);
    let mut owner = PgConnection::connect(&db.url).await.unwrap();
    for sql in [
        format!("DROP ROLE IF EXISTS {role}"),
        format!("CREATE ROLE {role} LOGIN"),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON flows, enrollments, challenges, rate_events, \
             locks, outbox TO {role}"
        ),
        format!("GRANT SELECT, INSERT ON audit TO {role}"),
        format!("GRANT SELECT ON _sqlx_migrations TO {role}"),
    ] {
        owner.execute(sql.as_str()).await.unwrap();
    }

    let server = support::postgres_server();
    let app_url = format!(
        "{}/{}",
        server.replacen("://postgres@", &format!("://{role}@"), 1),
        db.name
    );
    let app = SqlStore::connect(&app_url).await.unwrap();
    assert_eq!(app.append_audit(&event(2)).await.unwrap().seq, 2);
    assert_eq!(app.hit("k", NOW, 60).await.unwrap(), 1);
    // Identity columns need no sequence privilege.
    let id = app.reserve("k", NOW, 60, 5).await.unwrap().unwrap();
    assert!(app.release("k", id).await.unwrap());
    app.enqueue(&support::outbox_item("o1", NOW)).await.unwrap();
    assert_eq!(app.claim(NOW, 60, 10).await.unwrap().len(), 1);
    assert!(app.finish("o1", 1).await.unwrap());
    app.close().await;

    let mut raw = PgConnection::connect(&app_url).await.unwrap();
    for sql in [
        "UPDATE audit SET body = '{}'",
        "DELETE FROM audit",
        "TRUNCATE audit",
        "DROP TRIGGER audit_no_update_delete ON audit",
    ] {
        let err = raw.execute(sql).await.unwrap_err().to_string();
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{sql}: {err}"
        );
    }
    raw.close().await.unwrap();

    let records = db.sql().await.audit_after(0, 10).await.unwrap();
    assert_eq!(verify(&records, (0, GENESIS)).unwrap().0, 2);
    for sql in [format!("DROP OWNED BY {role}"), format!("DROP ROLE {role}")] {
        owner.execute(sql.as_str()).await.unwrap();
    }
}
