//! Offline tests: a captured exchange with the dev domain's Samba KDC (`tests/data/`, recorded
//! by `capture.rs`) replayed through the state machine with the recorded nonce and time.
//!
//! The fixtures belong to throwaway users (deleted after the capture) whose password is
//! [`FIXTURE_PASSWORD`]; the AS-REP's ticket is a TGT of a dev domain that no longer exists
//! for them. No long-lived secret is in them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests panic by design

mod capture;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use picky_asn1::wrapper::{ExplicitContextTag2, OctetStringAsn1};
use picky_krb::constants::key_usages::{AS_REP_ENC, AS_REQ_TIMESTAMP};
use picky_krb::data_types::{EncryptedData, PaEncTsEnc};
use picky_krb::messages::{AsRep, AsReq, EncAsRepPart, EncTgsRepPart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::exchange::{Exchange, Key, Now, Step, generalized_time, int, ntstatus};
use super::{KerberosError, Verdict, code, run};

/// The throwaway fixture users' password (see the module docs).
const FIXTURE_PASSWORD: &str = "Fixture-Krb-2026!pw";
/// What the `wrong-password` scenario sent instead.
const WRONG_PASSWORD: &str = "Fixture-Krb-2026!wrong";

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

struct Fixture {
    realm: String,
    user: String,
    password: &'static str,
    nonce: u32,
    now: Now,
    files: HashMap<String, Vec<u8>>,
}

impl Fixture {
    fn load(scenario: &str) -> Self {
        let dir = data_dir().join(scenario);
        let meta = std::fs::read_to_string(dir.join("meta.txt")).unwrap();
        let meta: HashMap<&str, &str> = meta.lines().filter_map(|l| l.split_once('=')).collect();
        let files = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "der"))
            .map(|p| {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        Self {
            realm: meta["realm"].to_owned(),
            user: meta["user"].to_owned(),
            password: match meta["password"] {
                "fixture" => FIXTURE_PASSWORD,
                _ => WRONG_PASSWORD,
            },
            nonce: meta["nonce"].parse().unwrap(),
            now: Now {
                unix_secs: meta["unix_secs"].parse().unwrap(),
                micros: meta["micros"].parse().unwrap(),
            },
            files,
        }
    }

    fn file(&self, name: &str) -> &[u8] {
        self.files
            .get(name)
            .unwrap_or_else(|| panic!("fixture file {name}.der missing"))
    }

    fn exchange_with(&self, password: &'static str, nonce: u32) -> Exchange<'_> {
        Exchange::new(&self.realm, &self.user, password, nonce, self.now).unwrap()
    }

    fn exchange(&self) -> Exchange<'_> {
        self.exchange_with(self.password, self.nonce)
    }

    /// Replays the first round trip: our first request must be byte-identical to the captured
    /// one, and the captured KRB-ERROR 25 must lead to a pre-authenticated request.
    fn after_preauth_required(&self, ex: &mut Exchange<'_>) -> Vec<u8> {
        assert_eq!(ex.first_request().unwrap(), self.file("1-as-req"));
        match ex.on_reply(self.file("1-reply")).unwrap() {
            Step::Send(req) => req,
            Step::Done(v) => panic!("expected a second request, got {v:?}"),
        }
    }

    fn verdict(ex: &mut Exchange<'_>, reply: &[u8]) -> Result<Verdict, KerberosError> {
        match ex.on_reply(reply)? {
            Step::Done(v) => Ok(v),
            Step::Send(_) => panic!("expected a verdict"),
        }
    }
}

/// The key an exchange derived (after the first reply).
fn key_of<'e>(ex: &'e Exchange<'_>) -> &'e Key {
    ex.key_for_tests().unwrap()
}

/// The PA-ENC-TIMESTAMP of an AS-REQ, decrypted with `key`.
fn timestamp(req: &[u8], key: &Key) -> PaEncTsEnc {
    let req: AsReq = picky_asn1_der::from_bytes(req).unwrap();
    let padata = req.0.padata.0.as_ref().unwrap().0.0.clone();
    let pa = padata
        .iter()
        .find(|p| int(&p.padata_type.0) == Some(2))
        .expect("PA-ENC-TIMESTAMP");
    let enc: EncryptedData = picky_asn1_der::from_bytes(&pa.padata_data.0.0).unwrap();
    assert_eq!(int(&enc.etype.0), Some(i64::from(key.etype)));
    let plain = key
        .suite
        .cipher()
        .decrypt(&key.bytes, AS_REQ_TIMESTAMP, &enc.cipher.0.0)
        .unwrap();
    picky_asn1_der::from_bytes(&plain).unwrap()
}

#[test]
fn the_captured_exchange_is_accepted() {
    let f = Fixture::load("accepted");
    let mut ex = f.exchange();
    let req2 = f.after_preauth_required(&mut ex);
    let key = key_of(&ex);
    assert_eq!(key.etype, 18, "Samba prefers AES256");
    // Our second request carries the recorded time, under the password's key; so did the
    // captured one that the KDC accepted.
    for req in [req2.as_slice(), f.file("2-as-req")] {
        let ts = timestamp(req, key);
        assert_eq!(
            ts.patimestamp.0.0,
            generalized_time(f.now.unix_secs).unwrap()
        );
        assert_eq!(
            int(&ts.pausec.0.as_ref().unwrap().0),
            Some(i64::from(f.now.micros))
        );
    }
    assert!(ex.preauth_sent());
    let verdict = Fixture::verdict(&mut ex, f.file("2-reply")).unwrap();
    assert_eq!(verdict, Verdict::Accepted);
}

#[test]
fn the_captured_as_rep_does_not_decrypt_with_another_password() {
    let f = Fixture::load("accepted");
    let mut ex = f.exchange_with(WRONG_PASSWORD, f.nonce);
    let _ = ex.first_request().unwrap();
    let _ = ex.on_reply(f.file("1-reply")).unwrap();
    let err = Fixture::verdict(&mut ex, f.file("2-reply")).unwrap_err();
    assert!(matches!(err, KerberosError::Crypto { .. }), "{err}");
    assert!(err.password_may_have_been_tried());
    assert!(err.to_string().starts_with("RK-KRB-005"));
}

#[test]
fn a_reply_to_another_nonce_is_refused() {
    let f = Fixture::load("accepted");
    let mut ex = f.exchange_with(FIXTURE_PASSWORD, f.nonce ^ 1);
    assert_ne!(ex.first_request().unwrap(), f.file("1-as-req"));
    let _ = ex.on_reply(f.file("1-reply")).unwrap();
    let err = Fixture::verdict(&mut ex, f.file("2-reply")).unwrap_err();
    assert!(err.to_string().contains("nonce"), "{err}");
}

#[test]
fn a_tampered_as_rep_is_refused() {
    let f = Fixture::load("accepted");
    let mut rep: AsRep = picky_asn1_der::from_bytes(f.file("2-reply")).unwrap();
    let cipher = &mut rep.0.enc_part.0.cipher.0.0;
    let mid = cipher.len() / 2;
    cipher[mid] ^= 0x01;
    let tampered = picky_asn1_der::to_vec(&rep).unwrap();
    let mut ex = f.exchange();
    f.after_preauth_required(&mut ex);
    let err = Fixture::verdict(&mut ex, &tampered).unwrap_err();
    assert!(matches!(err, KerberosError::Crypto { .. }), "{err}");
}

#[test]
fn an_enc_tgs_rep_part_in_the_as_rep_is_accepted() {
    // Windows KDCs tag the AS-REP's encrypted part [APPLICATION 26]: re-tag the captured one.
    let f = Fixture::load("accepted");
    let mut ex = f.exchange();
    f.after_preauth_required(&mut ex);
    let key = key_of(&ex);
    let cipher = key.suite.cipher();
    let mut rep: AsRep = picky_asn1_der::from_bytes(f.file("2-reply")).unwrap();
    let plain = cipher
        .decrypt(&key.bytes, AS_REP_ENC, &rep.0.enc_part.0.cipher.0.0)
        .unwrap();
    let part: EncAsRepPart = picky_asn1_der::from_bytes(&plain).unwrap();
    let as_tgs = picky_asn1_der::to_vec(&EncTgsRepPart::from(part.0)).unwrap();
    assert_eq!(as_tgs[0], 0x7a);
    rep.0.enc_part.0.cipher = ExplicitContextTag2::from(OctetStringAsn1::from(
        cipher.encrypt(&key.bytes, AS_REP_ENC, &as_tgs).unwrap(),
    ));
    let reply = picky_asn1_der::to_vec(&rep).unwrap();
    assert_eq!(
        Fixture::verdict(&mut ex, &reply).unwrap(),
        Verdict::Accepted
    );
}

#[test]
fn the_captured_wrong_password_is_wrong() {
    let f = Fixture::load("wrong-password");
    let mut ex = f.exchange();
    f.after_preauth_required(&mut ex);
    assert_eq!(
        Fixture::verdict(&mut ex, f.file("2-reply")).unwrap(),
        Verdict::WrongPassword
    );
}

#[test]
fn the_captured_must_change_is_accepted_with_must_change() {
    let f = Fixture::load("must-change");
    assert_eq!(
        ntstatus(error_e_data(f.file("2-reply")).as_slice()),
        Some(code::NT_MUST_CHANGE)
    );
    let mut ex = f.exchange();
    f.after_preauth_required(&mut ex);
    let v = Fixture::verdict(&mut ex, f.file("2-reply")).unwrap();
    assert_eq!(v, Verdict::AcceptedMustChange);
    assert!(v.password_accepted());
}

#[test]
fn the_captured_disabled_account_is_accepted_but_refused() {
    let f = Fixture::load("disabled");
    let mut ex = f.exchange();
    f.after_preauth_required(&mut ex);
    let v = Fixture::verdict(&mut ex, f.file("2-reply")).unwrap();
    assert_eq!(
        v,
        Verdict::AcceptedAccountRefused {
            ntstatus: code::NT_ACCOUNT_DISABLED
        }
    );
    assert!(v.describe().contains("disabled"), "{}", v.describe());
}

#[test]
fn an_account_error_before_preauth_proves_nothing() {
    // The same KRB-ERROR 23 / 18, had the KDC sent it to the request WITHOUT pre-authentication,
    // says nothing about the password.
    for (scenario, code) in [("must-change", 23), ("disabled", 18)] {
        let f = Fixture::load(scenario);
        let mut ex = f.exchange();
        let _ = ex.first_request().unwrap();
        let v = Fixture::verdict(&mut ex, f.file("2-reply")).unwrap();
        assert!(
            matches!(v, Verdict::Other { code: c, .. } if c == code),
            "{v:?}"
        );
        assert!(!v.password_accepted());
    }
}

#[test]
fn a_locked_out_status_proves_nothing() {
    // 18 with C0000234 (what a Windows DC may send): refused whatever the password.
    let f = Fixture::load("disabled");
    let mut ex = f.exchange();
    f.after_preauth_required(&mut ex);
    let reply = with_ntstatus(f.file("2-reply"), code::NT_ACCOUNT_LOCKED_OUT);
    let v = Fixture::verdict(&mut ex, &reply).unwrap();
    assert_eq!(
        v,
        Verdict::Other {
            code: 18,
            ntstatus: Some(code::NT_ACCOUNT_LOCKED_OUT)
        }
    );
}

#[test]
fn the_captured_unknown_user_is_unknown() {
    let f = Fixture::load("unknown");
    let mut ex = f.exchange();
    assert_eq!(ex.first_request().unwrap(), f.file("1-as-req"));
    assert_eq!(
        Fixture::verdict(&mut ex, f.file("1-reply")).unwrap(),
        Verdict::UnknownPrincipal
    );
    assert!(!ex.preauth_sent());
}

#[test]
fn windows_kerb_error_data_yields_the_ntstatus() {
    // KERB-ERROR-DATA { data-type [1] 3, data-value [2] KERB-EXT-ERROR } (not in a SEQUENCE OF).
    let mut ext = 0xC000_0072_u32.to_le_bytes().to_vec();
    ext.extend_from_slice(&[0; 8]);
    let mut der = vec![
        0x30, 0x15, 0xa1, 0x03, 0x02, 0x01, 0x03, 0xa2, 0x0e, 0x04, 0x0c,
    ];
    der.extend_from_slice(&ext);
    assert_eq!(ntstatus(&der), Some(code::NT_ACCOUNT_DISABLED));
    assert_eq!(ntstatus(&[0x30, 0x00]), None);
    assert_eq!(ntstatus(b"junk"), None);
}

#[test]
fn garbage_is_a_protocol_error() {
    let f = Fixture::load("accepted");
    let mut ex = f.exchange();
    for reply in [
        &b""[..],
        b"\x30\x00",
        b"\x7e\x03\x02\x01\x05",
        b"\x6b\x02\x30\x00",
    ] {
        let err = ex.on_reply(reply).unwrap_err();
        assert!(matches!(err, KerberosError::Protocol { .. }), "{err}");
    }
}

#[test]
fn input_is_checked_before_anything_is_built() {
    let now = Now {
        unix_secs: 0,
        micros: 0,
    };
    for (realm, user, pw) in [
        ("R", "u", ""),
        ("", "u", "p"),
        ("R", "", "p"),
        ("R", "us er", "p"),
        ("R", "jürgen", "p"),
    ] {
        let err = Exchange::new(realm, user, pw, 1, now).err().unwrap();
        assert!(matches!(err, KerberosError::Input(_)), "{err}");
        assert!(!err.password_may_have_been_tried());
    }
}

#[test]
fn generalized_time_from_unix_seconds() {
    for (secs, expect) in [
        (0, (1970, 1, 1, 0, 0, 0)),
        (951_782_400, (2000, 2, 29, 0, 0, 0)),
        (1_767_225_599, (2025, 12, 31, 23, 59, 59)),
        (4_102_444_800, (2100, 1, 1, 0, 0, 0)),
    ] {
        let t = generalized_time(secs).unwrap();
        let got = (
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
        );
        assert_eq!(got, expect, "{secs}");
    }
}

#[test]
fn descriptions_are_plain_and_labels_stable() {
    let all = [
        Verdict::Accepted,
        Verdict::AcceptedMustChange,
        Verdict::AcceptedAccountRefused {
            ntstatus: 0xC000_0193,
        },
        Verdict::WrongPassword,
        Verdict::UnknownPrincipal,
        Verdict::Other {
            code: 37,
            ntstatus: None,
        },
    ];
    let labels: Vec<_> = all.iter().map(Verdict::label).collect();
    assert_eq!(
        labels,
        [
            "accepted",
            "accepted_must_change",
            "accepted_account_refused",
            "wrong_password",
            "unknown_principal",
            "other"
        ]
    );
    assert!(all[2].describe().contains("account expired"));
    assert!(all[5].describe().contains("clock skew"));
    let accepted: Vec<_> = all.iter().map(Verdict::password_accepted).collect();
    assert_eq!(accepted, [true, true, true, false, false, false]);
}

/// The e-data of a captured KRB-ERROR.
fn error_e_data(reply: &[u8]) -> Vec<u8> {
    let err: picky_krb::messages::KrbError = picky_asn1_der::from_bytes(reply).unwrap();
    err.0.e_data.0.unwrap().0.0
}

/// A captured KRB-ERROR with its KERB-EXT-ERROR status replaced by `nt`.
fn with_ntstatus(reply: &[u8], nt: u32) -> Vec<u8> {
    let mut err: picky_krb::messages::KrbError = picky_asn1_der::from_bytes(reply).unwrap();
    let e_data = &mut err.0.e_data.0.as_mut().unwrap().0.0;
    let old = ntstatus(e_data).unwrap().to_le_bytes();
    let at = e_data.windows(4).position(|w| w == old).unwrap();
    e_data[at..at + 4].copy_from_slice(&nt.to_le_bytes());
    picky_asn1_der::to_vec(&err).unwrap()
}

/// A one-shot fake KDC on loopback answering each connection with the next of `replies`
/// (length-prefixed), after reading one framed request.
async fn fake_kdc(replies: Vec<Vec<u8>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        for reply in replies {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut len = [0u8; 4];
            s.read_exact(&mut len).await.unwrap();
            let mut req = vec![0u8; u32::from_be_bytes(len) as usize];
            s.read_exact(&mut req).await.unwrap();
            s.write_all(&reply).await.unwrap();
        }
    });
    addr
}

fn framed(message: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(message.len()).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(message);
    v
}

#[tokio::test]
async fn the_captured_exchange_replays_over_tcp() {
    let f = Fixture::load("accepted");
    let kdc = fake_kdc(vec![framed(f.file("1-reply")), framed(f.file("2-reply"))]).await;
    let mut ex = f.exchange();
    let v = tokio::time::timeout(Duration::from_secs(5), run(&mut ex, &kdc))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, Verdict::Accepted);
}

#[tokio::test]
async fn an_oversized_or_truncated_reply_is_refused() {
    let f = Fixture::load("accepted");
    let huge = (u32::try_from(crate::transport::MAX_REPLY).unwrap() + 1)
        .to_be_bytes()
        .to_vec();
    let truncated = framed(f.file("1-reply"))[..20].to_vec();
    for (reply, want) in [(huge, "RK-KRB-004"), (truncated, "RK-KRB-003")] {
        let kdc = fake_kdc(vec![reply]).await;
        let mut ex = f.exchange();
        let err = run(&mut ex, &kdc).await.unwrap_err();
        assert!(err.to_string().starts_with(want), "{err}");
        assert!(!err.password_may_have_been_tried());
    }
}
