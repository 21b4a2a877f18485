//! `check_password` against the real Samba KDCs of the dev domain (`dev/domain up --dc2`).
//! Every user is a fresh throwaway account from `Dev::staff_user`; a wrong password is tried at
//! most ONCE per account (each try adds 1 to `badPwdCount`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic by design

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ldap3::{Mod, Scope, SearchEntry};
use rekey_e2e::dev::{Dev, dev};
use rekey_kerberos::{KerberosError, Verdict, check_password, code};

/// DC1's and DC2's KDCs (`dev/domain` binds DC1 to 127.0.0.1 and DC2 to 127.0.0.2).
const KDC1: &str = "127.0.0.1:88";
const KDC2: &str = "127.0.0.2:88";
const TIMEOUT: Duration = Duration::from_secs(10);

async fn check(d: &Dev, kdc: &str, sam: &str, password: &str) -> Verdict {
    check_password(kdc, d.get("REKEY_DEV_REALM"), sam, password, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("check against {kdc}: {e}"))
}

fn replace(attr: &str, value: &str) -> Vec<Mod<Vec<u8>>> {
    vec![Mod::Replace(
        attr.as_bytes().to_vec(),
        HashSet::from([value.as_bytes().to_vec()]),
    )]
}

#[tokio::test]
async fn the_right_password_is_accepted() {
    let d = dev();
    let u = d.staff_user("krb-ok").await;
    let started = Instant::now();
    let verdict = check(&d, KDC1, &u.sam, &u.password).await;
    let first = started.elapsed();
    assert_eq!(verdict, Verdict::Accepted, "{}", verdict.describe());
    assert!(verdict.password_accepted());
    // A few more for the latency (the canary's cost per DC); printed with --nocapture.
    let mut times = vec![first];
    for _ in 0..9 {
        let t = Instant::now();
        assert_eq!(
            check(&d, KDC1, &u.sam, &u.password).await,
            Verdict::Accepted
        );
        times.push(t.elapsed());
    }
    times.sort();
    eprintln!(
        "check_password latency against DC1: first {first:?}, p50 {:?}, max {:?} (10 checks)",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    assert_eq!(d.lockout(&u.dn).await.bad_pwd_count, 0);
}

#[tokio::test]
async fn must_change_is_accepted_with_must_change() {
    let d = dev();
    let u = d.staff_user("krb-must").await;
    d.admin_modify(&u.dn, replace("pwdLastSet", "0")).await;
    let verdict = check(&d, KDC1, &u.sam, &u.password).await;
    assert_eq!(
        verdict,
        Verdict::AcceptedMustChange,
        "{}",
        verdict.describe()
    );
    assert!(verdict.password_accepted());
}

#[tokio::test]
async fn a_disabled_account_is_refused_after_the_password_was_accepted() {
    let d = dev();
    let u = d.staff_user("krb-off").await;
    // userAccountControl |= ACCOUNTDISABLE (the user was created with 512).
    d.admin_modify(&u.dn, replace("userAccountControl", "514"))
        .await;
    let verdict = check(&d, KDC1, &u.sam, &u.password).await;
    assert_eq!(
        verdict,
        Verdict::AcceptedAccountRefused {
            ntstatus: code::NT_ACCOUNT_DISABLED
        },
        "{}",
        verdict.describe()
    );
    assert!(verdict.password_accepted());
    assert!(verdict.describe().contains("disabled"));
}

#[tokio::test]
async fn a_locked_account_proves_nothing() {
    let d = dev();
    let u = d.staff_user("krb-lock").await;
    let threshold = d.lockout_threshold(&u.dn).await;
    assert!(threshold > 0, "the dev domain has no lockout threshold");
    d.lock_out(&u.dn, threshold).await; // wrong simple binds, on this throwaway user only
    assert!(d.lockout(&u.dn).await.locked);
    // Samba refuses a locked account with 18 and no NTSTATUS, whatever the password.
    let right = check(&d, KDC1, &u.sam, &u.password).await;
    let wrong = check(&d, KDC1, &u.sam, &format!("{}-not", u.password)).await;
    let refused = Verdict::Other {
        code: code::CLIENT_REVOKED,
        ntstatus: None,
    };
    assert_eq!(right, refused, "{}", right.describe());
    assert_eq!(wrong, refused, "{}", wrong.describe());
    assert!(!right.password_accepted());
}

#[tokio::test]
async fn one_wrong_password_is_wrong_and_counts_once() {
    let d = dev();
    let u = d.staff_user("krb-bad").await;
    let wrong = format!("{}-not", u.password);
    let verdict = check(&d, KDC1, &u.sam, &wrong).await;
    assert_eq!(verdict, Verdict::WrongPassword, "{}", verdict.describe());
    assert!(!verdict.password_accepted());
    // Exactly one attempt reached the DC: no hidden retry.
    let l = d.lockout(&u.dn).await;
    let dc1 = l
        .per_dc
        .iter()
        .find(|(url, _)| *url == d.dc1_url())
        .unwrap();
    assert_eq!(dc1.1, 1, "{l:?}");
}

#[tokio::test]
async fn an_unknown_user_is_an_unknown_principal() {
    let d = dev();
    let sam = format!("rkt-nobody-{}", std::process::id());
    let verdict = check(&d, KDC1, &sam, "Whatever-1!").await;
    assert_eq!(verdict, Verdict::UnknownPrincipal, "{}", verdict.describe());
    assert!(!verdict.password_accepted());
}

#[tokio::test]
async fn a_port_with_nothing_listening_is_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let kdc = format!("127.0.0.1:{port}");
    let err = check_password(&kdc, "CORP.EXAMPLE.COM", "nobody", "Pw-1!", TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, KerberosError::Connect { .. }), "{err}");
    assert!(err.to_string().starts_with("RK-KRB-001"), "{err}");
    assert!(!err.password_may_have_been_tried());
}

#[tokio::test]
async fn a_kdc_that_never_answers_times_out_within_the_bound() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let kdc = listener.local_addr().unwrap().to_string();
    // Accept and hold connections without answering.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let started = Instant::now();
    let bound = Duration::from_millis(300);
    let err = check_password(&kdc, "CORP.EXAMPLE.COM", "nobody", "Pw-1!", bound)
        .await
        .unwrap_err();
    assert!(started.elapsed() < bound + Duration::from_millis(500));
    assert!(matches!(err, KerberosError::Timeout { .. }), "{err}");
    assert!(err.to_string().starts_with("RK-KRB-002"), "{err}");
    assert!(!err.password_may_have_been_tried());
    holder.abort();
}

#[tokio::test]
async fn a_blank_password_is_never_sent() {
    // The KDC address is unroutable on purpose: an input error must come before any I/O.
    let err = check_password("192.0.2.1:88", "CORP.EXAMPLE.COM", "x", "", TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, KerberosError::Input(_)), "{err}");
}

/// `pwdLastSet` of `dn` on the DC at `url`, or `None` while the user has not replicated there.
async fn pwd_last_set(d: &Dev, url: &str, dn: &str) -> Option<String> {
    let mut admin = d.admin_at(url).await;
    let res = admin
        .search(dn, Scope::Base, "(objectClass=*)", vec!["pwdLastSet"])
        .await
        .unwrap();
    if res.1.rc == 32 {
        return None;
    }
    let (found, _) = res.success().unwrap();
    let entry = SearchEntry::construct(found.into_iter().next()?);
    entry
        .attrs
        .get("pwdLastSet")
        .and_then(|v| v.first().cloned())
}

#[tokio::test]
async fn dc2_accepts_the_password_once_it_has_replicated() {
    let d = dev();
    assert!(
        d.has_dc2(),
        "the dev domain runs without DC2; start it with `dev/domain up --dc2`"
    );
    let u = d.staff_user("krb-dc2").await;
    let dc2 = d.get("REKEY_DEV_LDAP_URL_DC2").to_owned();
    let on_dc1 = pwd_last_set(&d, &d.dc1_url(), &u.dn)
        .await
        .expect("the user is on DC1");
    // Wait for replication by reading DC2 as Administrator, never by trying passwords (a DC
    // that does not know the password yet would count a bad attempt).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if pwd_last_set(&d, &dc2, &u.dn).await.as_deref() == Some(on_dc1.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} has not replicated to DC2 within 90 s",
            u.dn
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let verdict = check(&d, KDC2, &u.sam, &u.password).await;
    assert_eq!(verdict, Verdict::Accepted, "{}", verdict.describe());
}
