use super::*;

fn chain(n: i64) -> Vec<AuditRecord> {
    crate::audit::test_chain(n, |seq| format!("{{\"support_id\":\"S{seq}\"}}"))
}

fn key(n: u8) -> CheckpointKey {
    CheckpointKey::from_seed(&[n; 32])
}

fn walk(records: &[AuditRecord], valid: &[(i64, Checkpoint)]) -> Result<i64, Problem> {
    let mut w = Walker::new(valid);
    // Two pages, to cross a page boundary.
    let mid = records.len() / 2;
    w.page(&records[..mid])?;
    w.page(&records[mid..])?;
    w.finish().map(|h| h.0)
}

#[test]
fn message_is_the_documented_string() {
    let hash = [0xab; 32];
    assert_eq!(
        message(7, &hash, 1_700_000_000_123),
        format!(
            "rekey-audit-checkpoint-v1\n7\n{}\n1700000000123",
            "ab".repeat(32)
        )
    );
}

#[test]
fn sign_verify_and_key_ids() {
    let k = key(1);
    let cp = k.sign(3, [9; 32], 42);
    assert_eq!(cp.key_id, k.public().key_id());
    assert_eq!(cp.key_id.len(), 16);
    assert!(k.public().verifies(&cp));
    let mut altered = cp.clone();
    altered.seq = 4;
    assert!(!k.public().verifies(&altered));
    assert!(!key(2).public().verifies(&cp));
    let public = PublicKey::from_hex(&format!("{}\n", k.public().to_hex())).unwrap();
    assert_eq!(public, k.public());
    assert_eq!(PublicKey::from_hex("zz"), Err(KeyError::NotHex));
    assert!(CheckpointKey::from_hex(&"0g".repeat(32)).is_err());
    assert!(!format!("{k:?}").contains(&to_hex(&[1; 32])));
}

#[test]
fn signatures_sorted_into_valid_forged_unknown() {
    let (a, b) = (key(1), key(2));
    let good = a.sign(2, [1; 32], 10);
    let mut forged = b.sign(3, [2; 32], 11);
    forged.key_id = a.public().key_id();
    let unknown = b.sign(4, [3; 32], 12);
    let (valid, problems) = check_signatures(
        &[(1, good.clone()), (2, forged), (3, unknown)],
        &[a.public()],
    );
    assert_eq!(valid, vec![(1, good)]);
    assert!(matches!(
        problems[0],
        Problem::BadSignature {
            checkpoint_id: 2,
            seq: 3,
            ..
        }
    ));
    assert!(matches!(
        problems[1],
        Problem::UnknownKey {
            checkpoint_id: 3,
            seq: 4,
            ..
        }
    ));
}

#[test]
fn intact_chain_with_checkpoints_walks() {
    let c = chain(6);
    let k = key(1);
    let cps = [(1, k.sign(3, c[2].hash, 1)), (2, k.sign(6, c[5].hash, 2))];
    assert_eq!(walk(&c, &cps), Ok(6));
    assert_eq!(walk(&[], &[]), Ok(0));
}

#[test]
fn each_kind_of_tampering_is_named() {
    let c = chain(6);
    let sid = |s: &str| Some(s.to_owned());

    let mut edited = c.clone();
    edited[2].body = "{\"support_id\":\"S3\",\"x\":1}".into();
    assert_eq!(
        walk(&edited, &[]),
        Err(Problem::Edited {
            seq: 3,
            support_id: sid("S3")
        })
    );

    let mut deleted = c.clone();
    deleted.remove(2);
    assert_eq!(
        walk(&deleted, &[]),
        Err(Problem::Missing {
            first: 3,
            last: 3,
            next: 4,
            next_support_id: sid("S4")
        })
    );

    let mut swapped = c.clone();
    swapped.swap(2, 3);
    swapped[2].seq = 3;
    swapped[3].seq = 4;
    assert_eq!(
        walk(&swapped, &[]),
        Err(Problem::Moved {
            seq: 3,
            written_as: 4,
            support_id: sid("S4")
        })
    );

    // A forged record at 3, well formed and linked; the old 3.. renumbered up.
    let mut inserted = c.clone();
    let body = "{\"support_id\":\"EVIL\"}".to_owned();
    let hash = chain_hash(&c[1].hash, 3, &body);
    for r in &mut inserted[2..] {
        r.seq += 1;
    }
    inserted.insert(
        2,
        AuditRecord {
            seq: 3,
            body,
            prev_hash: c[1].hash,
            hash,
        },
    );
    assert_eq!(
        walk(&inserted, &[]),
        Err(Problem::Inserted {
            seq: 3,
            support_id: sid("EVIL")
        })
    );

    // Edited and re-hashed: the next record's link breaks.
    let mut rehashed = c.clone();
    rehashed[2].body = "{\"support_id\":\"S3\",\"x\":1}".into();
    rehashed[2].hash = chain_hash(&rehashed[2].prev_hash, 3, &rehashed[2].body);
    assert_eq!(
        walk(&rehashed, &[]),
        Err(Problem::Relinked {
            seq: 4,
            support_id: sid("S4")
        })
    );

    let mut garbage = c.clone();
    garbage[2].prev_hash = [7; 32];
    assert!(matches!(
        walk(&garbage, &[]),
        Err(Problem::Forged { seq: 3, .. })
    ));
}

#[test]
fn checkpoints_catch_truncation_and_rewrites() {
    let c = chain(6);
    let k = key(1);
    let cps = [(5, k.sign(6, c[5].hash, 1_764_669_600_000))];
    let p = walk(&c[..4], &cps).unwrap_err();
    assert_eq!(
        p,
        Problem::Truncated {
            head: 4,
            checkpoint_seq: 6,
            checkpoint_id: 5,
            checkpoint_at_ms: 1_764_669_600_000
        }
    );
    assert!(p.to_string().contains("records 5..6 were removed"), "{p}");
    assert!(walk(&[], &cps).is_err());

    // The whole chain rewritten from record 2 on: intact as a chain, caught by the checkpoint.
    let mut rewritten = c.clone();
    rewritten[1].body = "{\"support_id\":\"S2\",\"x\":1}".into();
    let mut prev = rewritten[0].hash;
    for r in &mut rewritten[1..] {
        r.prev_hash = prev;
        r.hash = chain_hash(&prev, r.seq, &r.body);
        prev = r.hash;
    }
    assert_eq!(walk(&rewritten, &[]), Ok(6));
    assert!(matches!(
        walk(&rewritten, &cps),
        Err(Problem::CheckpointMismatch {
            seq: 6,
            checkpoint_id: 5,
            ..
        })
    ));
}

#[test]
fn utc_formats_dates() {
    assert_eq!(utc(0), "1970-01-01T00:00:00Z");
    assert_eq!(utc(1_764_669_600_000), "2025-12-02T10:00:00Z");
    assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00Z");
}

#[test]
fn dates_parse() {
    assert_eq!(date_ms("1970-01-01"), Some(0));
    assert_eq!(date_ms("2025-12-02"), Some(1_764_633_600_000));
    assert_eq!(date_ms("2000-02-29"), Some(951_782_400_000));
    for bad in [
        "2001-02-29",
        "2025-13-01",
        "2025-1-01",
        "2025-12-00",
        "x",
        "2025-12-02T00",
    ] {
        assert_eq!(date_ms(bad), None, "{bad}");
    }
}

#[test]
fn a_pruned_chain_starts_at_its_anchor() {
    let c = chain(6);
    let k = key(1);
    let anchor = (1, k.sign(3, c[2].hash, 1));
    assert_eq!(walk(&c[3..], std::slice::from_ref(&anchor)), Ok(6));
    // Without the anchor (or with one for another record), the head is missing.
    assert!(matches!(
        walk(&c[3..], &[]),
        Err(Problem::Missing {
            first: 1,
            last: 3,
            next: 4,
            ..
        })
    ));
    let wrong = (1, k.sign(2, c[1].hash, 1));
    assert!(matches!(
        walk(&c[3..], &[wrong]),
        Err(Problem::Missing {
            first: 1,
            last: 3,
            ..
        })
    ));
    // An anchored start followed by a gap is still a gap.
    let mut gappy = c[3..].to_vec();
    gappy.remove(1);
    assert!(matches!(
        walk(&gappy, &[anchor]),
        Err(Problem::Missing {
            first: 5,
            last: 5,
            ..
        })
    ));
}
