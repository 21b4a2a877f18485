//! Secrets at rest (invariant 29): every sealed value the store holds — TOTP seeds, question
//! hashes, values sealed before envelopes, queued messages — stays readable through
//! `rekey admin rotate-key`'s re-sealing while a "server" keeps sealing new values beside it, on
//! SQLite and PostgreSQL; afterwards the old key file can go; and a store whose values name a
//! key the server does not have is a clear start-up error (RK-KEY-001), never "not enrolled".

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rekey::keys::{DirKeys, check_store, legacy, reseal};
use rekey_core::account::Guid;
use rekey_core::keyring::{KeyRing, StaticKeys, envelope_key_id, method_binding, open, seal};
use rekey_core::store::{Enrollment, MethodKind, OutboxItem, OutboxKind, Store};
use rekey_core::system::OsRandom;

#[path = "common/databases.rs"]
#[macro_use]
mod databases;

use databases::Env;

const OTP_KEY: [u8; 32] = [5; 32];

fn key_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rekey-keys-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_key(dir: &Path, id: &str, byte: u8) {
    std::fs::write(dir.join(format!("{id}.key")), hex(&[byte; 32])).unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sealed(user: u8, kind: MethodKind, key_id: &str, data: Vec<u8>) -> Enrollment {
    Enrollment {
        user: Guid([user; 16]),
        method: kind,
        value: kind.as_str().into(),
        data,
        key_id: key_id.into(),
        lookup: None,
        verified_at: 1,
        last_used_at: None,
    }
}

/// The plain value every test user's secret holds.
fn plain(user: u8) -> Vec<u8> {
    format!("secret material of user {user}").into_bytes()
}

async fn assert_all_open(env: &Env, ring: &dyn KeyRing, users: &[(u8, MethodKind)]) {
    for &(user, kind) in users {
        let e = env
            .store
            .enrollments(&Guid([user; 16]))
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.method == kind)
            .unwrap();
        let got = open(ring, &e.key_id, &method_binding(&e.user, kind), &e.data)
            .unwrap_or_else(|err| panic!("user {user} {kind:?}: {err}"));
        assert_eq!(got.as_slice(), plain(user), "user {user}");
        // The column names the key the value is sealed under.
        assert_eq!(envelope_key_id(&e.data), Some(e.key_id.as_str()));
    }
}

async fn rotation_keeps_every_secret_readable(env: Arc<Env>) {
    let dir = key_dir(&format!("{:?}", env.kind));
    write_key(&dir, "20260101T000000Z", 1);
    let old_legacy = legacy(&OTP_KEY);
    let server_ring = Arc::new(DirKeys::open(&dir, Some(old_legacy.clone())).unwrap());
    let k1 = server_ring.current();
    assert_eq!(k1.id, "20260101T000000Z");

    // What a server sealed: seeds and hashes under k1, one value from before envelopes (nonce
    // and ciphertext directly under the derived key), one queued message.
    let mut users = Vec::new();
    for user in 1..=20u8 {
        let kind = if user % 2 == 0 {
            MethodKind::Totp
        } else {
            MethodKind::Questions
        };
        let data = seal(
            &k1,
            &OsRandom,
            &method_binding(&Guid([user; 16]), kind),
            &plain(user),
        );
        env.store
            .upsert_enrollment(&sealed(user, kind, &k1.id, data))
            .await
            .unwrap();
        users.push((user, kind));
    }
    let before_envelopes = {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let nonce = [9u8; 12];
        let ct = aes_gcm::Aes256Gcm::new((&*old_legacy.key).into())
            .encrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain(21),
                    aad: &method_binding(&Guid([21; 16]), MethodKind::Totp),
                },
            )
            .unwrap();
        [nonce.as_slice(), &ct].concat()
    };
    env.store
        .upsert_enrollment(&sealed(
            21,
            MethodKind::Totp,
            &old_legacy.id,
            before_envelopes,
        ))
        .await
        .unwrap();
    users.push((21, MethodKind::Totp));
    let item = OutboxItem {
        id: "item-1".into(),
        kind: OutboxKind::Mail,
        payload: seal(&k1, &OsRandom, b"item-1", b"queued code mail"),
        user: None,
        not_before: 0,
        expires_at: i64::MAX / 2,
        attempts: 0,
    };
    env.store.enqueue(&item).await.unwrap();

    // A server without the key refuses to start, naming the key.
    let lost = key_dir(&format!("{:?}-lost", env.kind));
    write_key(&lost, "20250101T000000Z", 7);
    let wrong = DirKeys::open(&lost, Some(old_legacy.clone())).unwrap();
    let refused = check_store(&wrong, &env.store)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.starts_with("RK-KEY-001"), "{refused}");
    assert!(refused.contains("20260101T000000Z"), "{refused}");
    check_store(server_ring.as_ref(), &env.store).await.unwrap();

    // Rotate while the server keeps sealing: a new key file, then re-sealing passes, while a
    // task re-enrolls user 22 over and over with whatever key the running server has.
    write_key(&dir, "20260201T000000Z", 2);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store_env, ring, stop) = (
            Arc::clone(&env),
            Arc::clone(&server_ring),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let binding = method_binding(&Guid([22; 16]), MethodKind::Totp);
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let kek = ring.current();
                let data = seal(&kek, &OsRandom, &binding, &plain(22));
                store_env
                    .store
                    .upsert_enrollment(&sealed(22, MethodKind::Totp, &kek.id, data))
                    .await
                    .unwrap();
                n += 1;
                tokio::task::yield_now().await;
            }
            n
        })
    };
    let mut all = rekey::keys::load_dir(&dir)
        .unwrap()
        .into_values()
        .rev()
        .collect::<Vec<_>>();
    all.push(old_legacy.clone());
    let tool_ring = StaticKeys(all);
    let k2 = tool_ring.current();
    assert_eq!(k2.id, "20260201T000000Z");
    let first = reseal(&env.store, &tool_ring, &k2).await.unwrap();
    assert_eq!(first.missing.len(), 0, "{first:?}");
    assert_eq!(first.damaged, 0, "{first:?}");
    // The running server picks the new key up within its rescan interval…
    tokio::time::sleep(rekey::keys::RESCAN_EVERY + std::time::Duration::from_millis(500)).await;
    assert_eq!(server_ring.current().id, k2.id);
    stop.store(true, Ordering::SeqCst);
    let writes = writer.await.unwrap();
    assert!(writes > 10, "the writer sealed {writes} values");
    users.push((22, MethodKind::Totp));
    // …so a second pass leaves nothing under the old keys.
    let second = reseal(&env.store, &tool_ring, &k2).await.unwrap();
    assert_eq!((second.raced, second.damaged), (0, 0), "{second:?}");
    assert!(second.missing.is_empty(), "{second:?}");
    assert_eq!(
        first.resealed, 22,
        "20 envelopes, one value from before them, one queued item"
    );

    // The old key files go: a server with only the new key reads everything, and starts.
    std::fs::remove_file(dir.join("20260101T000000Z.key")).unwrap();
    let only_new = DirKeys::open(&dir, None).unwrap();
    check_store(&only_new, &env.store).await.unwrap();
    assert_all_open(&env, &only_new, &users).await;
    let queued = env.store.sealed_outbox().await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(
        open(&only_new, "", b"item-1", &queued[0].payload)
            .unwrap()
            .as_slice(),
        b"queued code mail"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&lost);
}

both!(rotation_keeps_every_secret_readable);

#[test]
fn a_key_directory_with_a_bad_file_is_refused_with_its_name() {
    let dir = key_dir("bad");
    std::fs::write(dir.join("k1.key"), "not hex").unwrap();
    let err = DirKeys::open(&dir, None).err().unwrap().to_string();
    assert!(
        err.contains("secrets.key_dir") && err.contains("k1.key"),
        "{err}"
    );
    let empty = key_dir("empty");
    let err = DirKeys::open(&empty, None).err().unwrap().to_string();
    assert!(err.contains("no key file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}
