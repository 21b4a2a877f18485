//! Tampering with the audit chain is detected by `rekey audit verify` (`rekey::audit_chain`), on
//! SQLite and on PostgreSQL.
//!
//! The triggers stop the application from changing audit rows, so each test tampers the way an
//! attacker with database superuser rights would: on SQLite it drops the triggers, on PostgreSQL
//! it runs `ALTER TABLE … DISABLE TRIGGER USER` as `postgres`, then edits rows directly.
//!
//! PostgreSQL: the server at `$REKEY_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`,
//! trust auth); a fresh database per test, dropped at the end. No server → the PostgreSQL
//! variants fail, they never skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rekey::audit_chain::{
    AuditChainError, Checkpointed, checkpoint_now, keygen, load_key, load_public_key, prune, verify,
};
use rekey_core::audit::{Actor, AuditEvent, AuditRecord, Operation, chain_hash};
use rekey_core::audit_checkpoint::{CheckpointKey, Problem, to_hex};
use rekey_core::store::Store;
use sqlx::{Connection, PgConnection, SqliteConnection};

#[path = "../src/config/audit.rs"]
#[allow(dead_code)]
mod audit_section;

#[path = "common/databases.rs"]
#[macro_use]
mod databases;

use databases::{Env, Kind};

both!(
    intact_chain_with_checkpoints_verifies,
    edited_body_is_named,
    deleted_record_is_named,
    swapped_records_are_named,
    inserted_record_is_named,
    truncated_tail_is_detected_by_the_checkpoint,
    rewritten_chain_differs_from_the_checkpoint,
    forged_checkpoints_are_named,
    checkpoint_now_refuses_a_broken_chain,
    checkpoints_are_append_only,
    pruned_chain_verifies_from_its_anchor,
);

impl Env {
    /// SQL as the database superuser / file owner (several statements).
    async fn superuser(&self, sql: &str) {
        match self.kind {
            Kind::Sqlite => {
                let mut c = SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
            Kind::Postgres => {
                let mut c = PgConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
        }
    }

    /// Whether `sql` fails (without the attacker's preparation).
    async fn fails(&self, sql: &str) -> bool {
        match self.kind {
            Kind::Sqlite => {
                let mut c = SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.is_err()
            }
            Kind::Postgres => {
                let mut c = PgConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.is_err()
            }
        }
    }

    /// What an attacker with superuser rights does first: switch the append-only triggers off.
    async fn disable_triggers(&self) {
        self.superuser(match self.kind {
            Kind::Sqlite => {
                "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; \
                 DROP TRIGGER audit_checkpoints_no_update; \
                 DROP TRIGGER audit_checkpoints_no_delete;"
            }
            Kind::Postgres => {
                "ALTER TABLE audit DISABLE TRIGGER USER; \
                 ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;"
            }
        })
        .await;
    }

    /// A blob literal in this dialect.
    fn blob(&self, bytes: &[u8]) -> String {
        match self.kind {
            Kind::Sqlite => format!("x'{}'", to_hex(bytes)),
            Kind::Postgres => format!("decode('{}', 'hex')", to_hex(bytes)),
        }
    }

    async fn records(&self) -> Vec<AuditRecord> {
        self.store.audit_after(0, 10_000).await.unwrap()
    }

    async fn append(&self, from: i64, to: i64) {
        for n in from..=to {
            self.store.append_audit(&event(n)).await.unwrap();
        }
    }

    async fn checkpoint(&self, at_ms: i64) -> i64 {
        match checkpoint_now(&self.store, &key(), at_ms).await.unwrap() {
            Checkpointed::Written { id, .. } => id,
            other => panic!("expected a new checkpoint, got {other:?}"),
        }
    }

    /// The first problem, with the trusted key.
    async fn first_problem(&self) -> Problem {
        let report = verify(&self.store, &[key().public()]).await.unwrap();
        assert!(!report.intact());
        let text = report.render();
        assert!(text.contains("RK-AUDIT-001"), "{text}");
        report.problems[0].clone()
    }
}

fn key() -> CheckpointKey {
    CheckpointKey::from_seed(&[7; 32])
}

fn event(n: i64) -> AuditEvent {
    AuditEvent {
        at_ms: 1_764_669_600_000 + n,
        support_id: format!("S{n}"),
        actor: Actor::User,
        operation: Operation::Reset,
        result: "ok".into(),
        client_ip: Some("192.0.2.1".into()),
        user_agent: None,
        target_guid: None,
        target_sam: Some("alice".into()),
        methods: vec!["email".into()],
        zones: vec![],
        error_code: None,
        detail: None,
    }
}

fn sid(s: &str) -> Option<String> {
    Some(s.to_owned())
}

async fn intact_chain_with_checkpoints_verifies(env: Arc<Env>) {
    let empty = verify(&env.store, &[key().public()]).await.unwrap();
    assert!(empty.intact());
    assert_eq!(
        checkpoint_now(&env.store, &key(), 1).await.unwrap(),
        Checkpointed::Empty
    );
    env.append(1, 3).await;
    env.checkpoint(1_000).await;
    env.append(4, 6).await;
    let id = env.checkpoint(2_000).await;
    assert_eq!(
        checkpoint_now(&env.store, &key(), 3_000).await.unwrap(),
        Checkpointed::Unchanged { seq: 6 }
    );
    let report = verify(&env.store, &[key().public()]).await.unwrap();
    assert!(report.intact(), "{}", report.render());
    assert_eq!(report.records, 6);
    assert_eq!((report.checkpoints, report.valid_checkpoints), (2, 2));
    assert_eq!(
        report.newest_valid.as_ref().map(|(i, cp)| (*i, cp.seq)),
        Some((id, 6))
    );
    let text = report.render();
    assert!(text.ends_with("audit chain intact\n"), "{text}");
    assert!(
        text.contains("audit chain: 6 records, head record 6"),
        "{text}"
    );
    // Without a public key the chain still verifies, and the report says what was not checked.
    let unkeyed = verify(&env.store, &[]).await.unwrap();
    assert!(unkeyed.intact());
    assert!(unkeyed.render().contains("NOT checked"));
}

async fn edited_body_is_named(env: Arc<Env>) {
    env.append(1, 6).await;
    env.checkpoint(1_000).await;
    env.disable_triggers().await;
    env.superuser(
        "UPDATE audit SET body = replace(body, '\"result\":\"ok\"', '\"result\":\"failed\"') \
         WHERE seq = 3",
    )
    .await;
    let report = verify(&env.store, &[key().public()]).await.unwrap();
    assert_eq!(report.records, 2);
    assert!(
        report
            .render()
            .contains("audit chain: 2 records verified, then the walk stopped")
    );
    let p = env.first_problem().await;
    assert_eq!(
        p,
        Problem::Edited {
            seq: 3,
            support_id: sid("S3")
        }
    );
    assert_eq!(
        p.to_string(),
        "record 3 (support id S3): content does not match its hash (edited)"
    );
}

async fn deleted_record_is_named(env: Arc<Env>) {
    env.append(1, 6).await;
    env.checkpoint(1_000).await;
    env.disable_triggers().await;
    env.superuser("DELETE FROM audit WHERE seq = 3").await;
    let p = env.first_problem().await;
    assert_eq!(
        p,
        Problem::Missing {
            first: 3,
            last: 3,
            next: 4,
            next_support_id: sid("S4")
        }
    );
    assert_eq!(
        p.to_string(),
        "record 3 is missing (deleted): the chain jumps to record 4 (support id S4)"
    );
}

async fn swapped_records_are_named(env: Arc<Env>) {
    env.append(1, 6).await;
    env.checkpoint(1_000).await;
    env.disable_triggers().await;
    env.superuser(
        "UPDATE audit SET seq = 1000 WHERE seq = 3; \
         UPDATE audit SET seq = 3 WHERE seq = 4; \
         UPDATE audit SET seq = 4 WHERE seq = 1000;",
    )
    .await;
    let p = env.first_problem().await;
    assert_eq!(
        p,
        Problem::Moved {
            seq: 3,
            written_as: 4,
            support_id: sid("S4")
        }
    );
    assert!(
        p.to_string()
            .starts_with("record 3 (support id S4) is out of place: it was written as record 4"),
        "{p}"
    );
}

async fn inserted_record_is_named(env: Arc<Env>) {
    env.append(1, 6).await;
    env.checkpoint(1_000).await;
    let records = env.records().await;
    env.disable_triggers().await;
    // Make room at 3 and insert a well-formed record linked to record 2.
    let body = event(99).canonical().replace("S99", "FORGED");
    let prev = records[1].hash;
    let hash = chain_hash(&prev, 3, &body);
    env.superuser(&format!(
        "UPDATE audit SET seq = seq + 1000 WHERE seq >= 3; \
         UPDATE audit SET seq = seq - 999 WHERE seq > 1000; \
         INSERT INTO audit (seq, body, prev_hash, hash, at_ms) VALUES (3, '{body}', {}, {}, 0);",
        env.blob(&prev),
        env.blob(&hash)
    ))
    .await;
    let p = env.first_problem().await;
    assert_eq!(
        p,
        Problem::Inserted {
            seq: 3,
            support_id: sid("FORGED")
        }
    );
    assert_eq!(
        p.to_string(),
        "record 3 (support id FORGED) was inserted: the record after it was written as record 3"
    );
}

async fn truncated_tail_is_detected_by_the_checkpoint(env: Arc<Env>) {
    env.append(1, 6).await;
    let id = env.checkpoint(1_764_669_600_000).await;
    env.disable_triggers().await;
    env.superuser("DELETE FROM audit WHERE seq > 4").await;
    // As a chain alone, what is left is valid.
    assert!(verify(&env.store, &[]).await.unwrap().intact());
    let p = env.first_problem().await;
    assert_eq!(
        p,
        Problem::Truncated {
            head: 4,
            checkpoint_seq: 6,
            checkpoint_id: id,
            checkpoint_at_ms: 1_764_669_600_000
        }
    );
    assert_eq!(
        p.to_string(),
        format!(
            "tail truncated: the chain ends at record 4 but signed checkpoint #{id} of \
             2025-12-02T10:00:00Z covers record 6 (records 5..6 were removed)"
        )
    );
    // Everything removed: still caught.
    env.superuser("DELETE FROM audit").await;
    assert!(matches!(
        env.first_problem().await,
        Problem::Truncated {
            head: 0,
            checkpoint_seq: 6,
            ..
        }
    ));
}

async fn rewritten_chain_differs_from_the_checkpoint(env: Arc<Env>) {
    env.append(1, 6).await;
    let id = env.checkpoint(1_000).await;
    let mut records = env.records().await;
    env.disable_triggers().await;
    // Edit record 2 and re-hash everything after it: a valid chain, but not the signed one.
    records[1].body = records[1].body.replace("\"ok\"", "\"failed\"");
    let mut sql = String::new();
    let mut prev = records[0].hash;
    for r in &mut records[1..] {
        r.prev_hash = prev;
        r.hash = chain_hash(&prev, r.seq, &r.body);
        prev = r.hash;
        sql.push_str(&format!(
            "UPDATE audit SET body = '{}', prev_hash = {}, hash = {} WHERE seq = {};",
            r.body,
            env.blob(&r.prev_hash),
            env.blob(&r.hash),
            r.seq
        ));
    }
    env.superuser(&sql).await;
    assert!(verify(&env.store, &[]).await.unwrap().intact());
    let p = env.first_problem().await;
    assert_eq!(
        p,
        Problem::CheckpointMismatch {
            seq: 6,
            support_id: sid("S6"),
            checkpoint_id: id,
            checkpoint_at_ms: 1_000
        }
    );
    assert!(
        p.to_string().starts_with(&format!(
            "record 6 (support id S6): differs from signed checkpoint #{id}"
        )),
        "{p}"
    );
}

async fn forged_checkpoints_are_named(env: Arc<Env>) {
    env.append(1, 6).await;
    env.checkpoint(1_000).await;
    let records = env.records().await;
    let attacker = CheckpointKey::from_seed(&[9; 32]);
    // Signed with another key but claiming ours.
    let mut forged = attacker.sign(5, records[4].hash, 2_000);
    forged.key_id = key().public().key_id();
    let forged_id = env.store.append_checkpoint(&forged).await.unwrap();
    // Signed with the attacker's own key.
    let foreign = attacker.sign(6, records[5].hash, 3_000);
    let foreign_id = env.store.append_checkpoint(&foreign).await.unwrap();

    let report = verify(&env.store, &[key().public()]).await.unwrap();
    assert_eq!((report.checkpoints, report.valid_checkpoints), (3, 1));
    assert_eq!(
        report.problems,
        vec![
            Problem::BadSignature {
                checkpoint_id: forged_id,
                seq: 5,
                key_id: key().public().key_id()
            },
            Problem::UnknownKey {
                checkpoint_id: foreign_id,
                seq: 6,
                key_id: attacker.public().key_id()
            },
        ]
    );
    let text = report.render();
    assert!(
        text.contains(&format!(
            "PROBLEM: checkpoint #{forged_id} (record 5, key id {}): bad signature (forged or altered)",
            key().public().key_id()
        )),
        "{text}"
    );
    // Trusting both keys, only the forged one is wrong.
    let both = verify(&env.store, &[key().public(), attacker.public()])
        .await
        .unwrap();
    assert_eq!(both.problems.len(), 1);
    // A forged checkpoint cannot hide a truncation below the real one.
    env.disable_triggers().await;
    env.superuser("DELETE FROM audit WHERE seq > 2").await;
    let truncated = verify(&env.store, &[key().public()]).await.unwrap();
    assert!(
        truncated.problems.iter().any(|p| matches!(
            p,
            Problem::Truncated {
                head: 2,
                checkpoint_seq: 6,
                ..
            }
        )),
        "{}",
        truncated.render()
    );
}

async fn checkpoint_now_refuses_a_broken_chain(env: Arc<Env>) {
    env.append(1, 3).await;
    env.checkpoint(1_000).await;
    env.append(4, 6).await;
    env.disable_triggers().await;
    // After the newest checkpoint: found by the incremental walk.
    env.superuser("UPDATE audit SET body = body || ' ' WHERE seq = 5")
        .await;
    match checkpoint_now(&env.store, &key(), 2_000).await {
        Err(e @ AuditChainError::Broken(Problem::Edited { seq: 5, .. })) => {
            assert_eq!(e.exit_code(), 1);
        }
        other => panic!("{other:?}"),
    }
    // At the checkpoint's record: named by the full walk.
    env.superuser("DELETE FROM audit WHERE seq = 3").await;
    assert!(matches!(
        checkpoint_now(&env.store, &key(), 3_000).await,
        Err(AuditChainError::Broken(Problem::Missing { first: 3, .. }))
    ));
    assert_eq!(env.store.checkpoints().await.unwrap().len(), 1);
}

async fn checkpoints_are_append_only(env: Arc<Env>) {
    env.append(1, 2).await;
    env.checkpoint(1_000).await;
    assert!(env.fails("UPDATE audit_checkpoints SET seq = 1").await);
    assert!(env.fails("DELETE FROM audit_checkpoints").await);
    if env.kind == Kind::Postgres {
        assert!(env.fails("TRUNCATE audit_checkpoints").await);
    }
    assert_eq!(env.store.checkpoints().await.unwrap().len(), 1);
    assert!(
        verify(&env.store, &[key().public()])
            .await
            .unwrap()
            .intact()
    );
}

#[test]
fn keygen_writes_a_private_file_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("rekey_keygen_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("checkpoint.key");
    let _ = std::fs::remove_file(&path);
    let public = keygen(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 64);
    assert_eq!(load_key(&path).unwrap().public(), public);
    assert!(matches!(keygen(&path), Err(AuditChainError::Exists(_))));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    let pub_path = dir.join("checkpoint.pub");
    std::fs::write(&pub_path, format!("{}\n", public.to_hex())).unwrap();
    assert_eq!(load_public_key(&pub_path).unwrap(), public);
    std::fs::write(&pub_path, "nope").unwrap();
    let e = load_public_key(&pub_path).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    // The error about a bad private key file never quotes its content.
    std::fs::write(&path, "secretsecret").unwrap();
    assert!(
        !load_key(&path)
            .unwrap_err()
            .to_string()
            .contains("secretsecret")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn audit_section_defaults() {
    let s = audit_section::AuditSection::default();
    assert_eq!(s.checkpoint_every_secs, 3600);
    assert!(s.checkpoint_key_file.is_none());
}

async fn pruned_chain_verifies_from_its_anchor(env: Arc<Env>) {
    env.append(1, 6).await;
    // Records 1..=3 are older than the cut-off.
    let pruned = prune(&env.store, &key(), 1_764_669_600_004, 9_000)
        .await
        .unwrap();
    assert_eq!(pruned.deleted, 3);
    assert_eq!(pruned.kept_from, Some(4));
    assert_eq!(pruned.anchor.as_ref().map(|(_, cp)| cp.seq), Some(3));
    assert_eq!(env.records().await.first().map(|r| r.seq), Some(4));
    let report = verify(&env.store, &[key().public()]).await.unwrap();
    assert!(report.intact(), "{}", report.render());
    assert_eq!(report.records, 3);
    // The append-only trigger is back.
    assert!(env.fails("DELETE FROM audit WHERE seq = 4").await);
    // Appends and checkpoints go on; nothing more to prune for the same date.
    env.append(7, 7).await;
    env.checkpoint(10_000).await;
    let again = prune(&env.store, &key(), 1_764_669_600_004, 11_000)
        .await
        .unwrap();
    assert_eq!((again.deleted, again.kept_from), (0, Some(4)));
    assert!(
        verify(&env.store, &[key().public()])
            .await
            .unwrap()
            .intact()
    );
    // Without a trusted key, the pruned head reads as missing records.
    assert!(matches!(
        verify(&env.store, &[]).await.unwrap().problems[..],
        [Problem::Missing {
            first: 1,
            last: 3,
            ..
        }]
    ));
    // A prune far in the future keeps the newest record.
    let all = prune(&env.store, &key(), i64::MAX, 12_000).await.unwrap();
    assert_eq!((all.deleted, all.kept_from), (3, Some(7)));
    assert!(
        verify(&env.store, &[key().public()])
            .await
            .unwrap()
            .intact()
    );
    // Deleting the first kept record is still caught.
    env.disable_triggers().await;
    env.superuser("DELETE FROM audit WHERE seq = 7").await;
    assert!(matches!(
        env.first_problem().await,
        Problem::Truncated { head: 0, .. }
    ));
}
