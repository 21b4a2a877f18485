//! What the peer model's shortcut costs in correctness, on the dev domain (Samba), side by side
//! with the AD-native change Rekey sends. Peer model (`rekey_bench::peer`, the code `peer-change`
//! measures): bind as the user with the old credential, re-bind as the service account, REPLACE
//! `unicodePwd` (a reset). AD-native change: ONE modify by the service account, delete old + add
//! new (what `rekey-directory`'s `change` sends).
//!
//! Each case runs on fresh users; the facts are asserted, so a change in Samba's behaviour fails
//! here. The table is printed (`--nocapture`). Windows differs where noted in the README
//! ("Performance"): there a reset with the policy-hints control also enforces history.
//! Needs `dev/domain up`: fails (never skips) when the domain is down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use ldap3::controls::RawControl;
use ldap3::{Ldap, Mod, Scope, SearchEntry};
use rekey_bench::dc;
use rekey_bench::peer::{Peer, Step, Stopped};
use rekey_e2e::dev::{Dev, User, dev, unicode_pwd};

/// 100 ns ticks per day (FILETIME intervals, negative in policy attributes).
const DAY: i64 = 864_000_000_000;

/// What one path did.
#[derive(Debug)]
struct Outcome {
    rc: u32,
    text: String,
    /// Peer model only: the step it stopped at.
    step: Option<Step>,
    /// The write was accepted AND the new credential binds on a fresh connection.
    landed: bool,
}

impl Outcome {
    fn short(&self) -> String {
        if self.landed {
            return "landed".into();
        }
        if self.rc == 0 {
            return "rc 0 but the new one does not bind".into();
        }
        let at = self.step.map(|s| format!("at {s:?}: ")).unwrap_or_default();
        let data = self
            .text
            .find("data ")
            .map(|i| format!(" {}", &self.text[i..(i + 8).min(self.text.len())]));
        let why = if self.text.contains("in history") {
            " (history)"
        } else if self.text.contains("too young") {
            " (minimum age)"
        } else if self.text.contains("insufficient access") {
            " (no right)"
        } else if self.text.contains("doesn't match") {
            " (wrong old)"
        } else {
            ""
        };
        let werr = self
            .text
            .get(..8)
            .filter(|w| w.bytes().all(|b| b.is_ascii_hexdigit()) && data.is_none())
            .map(|w| format!(" {w}"))
            .unwrap_or_default();
        format!(
            "{at}refused rc {}{}{werr}{why}",
            self.rc,
            data.unwrap_or_default()
        )
    }
}

struct Fact {
    case: &'static str,
    peer: Outcome,
    native: Outcome,
}

/// A fresh credential meeting the dev domain's complexity, unique per process.
fn fresh(n: &str) -> String {
    format!("Pm-{n}-{}-Xy7!", std::process::id())
}

async fn peer(dev: &Dev, p: &Peer, u: &User, old: &str, new: &str) -> Outcome {
    match p.change(&u.sam, old, new).await {
        Ok(()) => Outcome {
            rc: 0,
            text: String::new(),
            step: None,
            landed: dev.bind(&u.dn, new).await.0 == 0,
        },
        Err(Stopped { step, rc, text }) => Outcome {
            rc,
            text,
            step: Some(step),
            landed: false,
        },
    }
}

/// The AD-native change on `ldap` (the service account's, or the user's own connection).
async fn native(dev: &Dev, ldap: &mut Ldap, u: &User, old: &str, new: &str) -> Outcome {
    let m = vec![
        Mod::Delete(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(old)])),
        Mod::Add(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(new)])),
    ];
    let r = ldap.modify(&u.dn, m).await.unwrap();
    written(dev, u, new, r).await
}

/// What a write's result says, and whether `new` binds afterwards.
async fn written(dev: &Dev, u: &User, new: &str, r: ldap3::LdapResult) -> Outcome {
    let landed = r.rc == 0 && dev.bind(&u.dn, new).await.0 == 0;
    Outcome {
        rc: r.rc,
        text: r.text,
        step: None,
        landed,
    }
}

/// Rekey's reset with LDAP_SERVER_POLICY_HINTS (1.2.840.113556.1.4.2239, flags 1, non-critical).
async fn hinted_reset(dev: &Dev, ldap: &mut Ldap, u: &User, new: &str) -> Outcome {
    let m = vec![Mod::Replace(
        b"unicodePwd".to_vec(),
        HashSet::from([unicode_pwd(new)]),
    )];
    let hints = RawControl {
        ctype: "1.2.840.113556.1.4.2239".into(),
        crit: false,
        val: Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
    };
    let r = ldap
        .with_controls(vec![hints])
        .modify(&u.dn, m)
        .await
        .unwrap();
    written(dev, u, new, r).await
}

async fn attr(dev: &Dev, dn: &str, name: &str) -> Option<String> {
    let mut a = dev.admin().await;
    let (found, _) = a
        .search(dn, Scope::Base, "(objectClass=*)", vec![name])
        .await
        .unwrap()
        .success()
        .unwrap();
    let e = SearchEntry::construct(found.into_iter().next()?);
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first().cloned())
}

fn one(v: impl Into<Vec<u8>>) -> HashSet<Vec<u8>> {
    HashSet::from([v.into()])
}

/// A PSO's DN in the fixture's PSO container (the one PSO-Strict lives in).
fn pso_dn(dev: &Dev, name: &str) -> String {
    let strict = dev.get("REKEY_DEV_PSO_STRICT_DN");
    let container = strict.split_once(',').map_or(strict, |(_, c)| c);
    format!("CN={name},{container}")
}

/// Remove what earlier runs of this test left (a PSO, an OU with its users) when they panicked.
async fn sweep(dev: &Dev, admin: &mut Ldap) {
    let base = dev.get("REKEY_DEV_BASE_DN");
    let psc = pso_dn(dev, "x");
    let psc = psc.trim_start_matches("CN=x,");
    for (at, filter) in [
        (psc, "(cn=rkt-peer-*)"),
        (base, "(&(objectClass=organizationalUnit)(ou=rkt-peer-*))"),
    ] {
        let (found, _) = admin
            .search(at, Scope::OneLevel, filter, vec!["1.1"])
            .await
            .unwrap()
            .success()
            .unwrap();
        for dn in found.into_iter().map(|e| SearchEntry::construct(e).dn) {
            let (kids, _) = admin
                .search(&dn, Scope::OneLevel, "(objectClass=*)", vec!["1.1"])
                .await
                .unwrap()
                .success()
                .unwrap();
            for kid in kids.into_iter().map(|e| SearchEntry::construct(e).dn) {
                let _ = admin.delete(&kid).await;
            }
            let _ = admin.delete(&dn).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
#[allow(clippy::too_many_lines)] // one story, case by case
async fn peer_shortcut_skips_what_a_change_enforces() {
    let dev = dev();
    let p = Peer::from_dev(&dev).unwrap();
    let mut svc = dc::connect_service(&dev).await.unwrap();
    let mut admin = dev.admin().await;
    sweep(&dev, &mut admin).await;
    let pid = std::process::id();
    let mut facts = Vec::new();

    // (a) History (24 on the dev domain): go back to the credential set one write ago.
    let (a, b) = (dev.user("peer-hist-n").await, dev.user("peer-hist-p").await);
    let (a1, b1) = (fresh("a1"), fresh("b1"));
    assert!(native(&dev, &mut svc, &a, &a.password, &a1).await.landed);
    assert!(peer(&dev, &p, &b, &b.password, &b1).await.landed);
    facts.push(Fact {
        case: "(a) reuse the previous one (history 24)",
        peer: peer(&dev, &p, &b, &b1, &b.password).await,
        native: native(&dev, &mut svc, &a, &a1, &a.password).await,
    });
    // The same with Rekey's reset control: Samba ignores the non-critical policy hints.
    let hinted = hinted_reset(&dev, &mut svc, &b, &b1).await;

    // (b) Must change at next logon (pwdLastSet = 0).
    let (c, d) = (dev.user("peer-mc-n").await, dev.user("peer-mc-p").await);
    for u in [&c, &d] {
        dev.admin_modify(&u.dn, vec![Mod::Replace(b"pwdLastSet".to_vec(), one("0"))])
            .await;
    }
    facts.push(Fact {
        case: "(b) must change at next logon (pwdLastSet=0)",
        peer: peer(&dev, &p, &d, &d.password, &fresh("d1")).await,
        native: native(&dev, &mut svc, &c, &c.password, &fresh("c1")).await,
    });
    let c_last_set: i64 = attr(&dev, &c.dn, "pwdLastSet")
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);

    // (c) Expired: pwdLastSet 43 days ago, domain maxPwdAge 42 days.
    let (e, f) = (dev.user("peer-exp-n").await, dev.user("peer-exp-p").await);
    dev.backdate_password(&e.dn, 43);
    dev.backdate_password(&f.dn, 43);
    let f_computed: u32 = attr(&dev, &f.dn, "msDS-User-Account-Control-Computed")
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // The backdating wrote sam.ldb directly; a fresh service connection sees the new state.
    let mut svc = dc::connect_service(&dev).await.unwrap();
    facts.push(Fact {
        case: "(c) expired (pwdLastSet older than maxPwdAge)",
        peer: peer(&dev, &p, &f, &f.password, &fresh("f1")).await,
        native: native(&dev, &mut svc, &e, &e.password, &fresh("e1")).await,
    });

    // (d) Minimum age: a PSO made for the test (min age 1 day) on two users just created.
    let (g, h) = (dev.user("peer-age-n").await, dev.user("peer-age-p").await);
    let pso = pso_dn(&dev, &format!("rkt-peer-age-{pid}"));
    let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![
        (b"objectClass".to_vec(), one("msDS-PasswordSettings")),
        (b"msDS-PasswordSettingsPrecedence".to_vec(), one("1")),
        (
            b"msDS-PasswordReversibleEncryptionEnabled".to_vec(),
            one("FALSE"),
        ),
        (b"msDS-PasswordHistoryLength".to_vec(), one("24")),
        (b"msDS-PasswordComplexityEnabled".to_vec(), one("TRUE")),
        (b"msDS-MinimumPasswordLength".to_vec(), one("7")),
        (b"msDS-MinimumPasswordAge".to_vec(), one(format!("-{DAY}"))),
        (
            b"msDS-MaximumPasswordAge".to_vec(),
            one(format!("-{}", 42 * DAY)),
        ),
        (b"msDS-LockoutThreshold".to_vec(), one("0")),
        (
            b"msDS-LockoutObservationWindow".to_vec(),
            one("-18000000000"),
        ),
        (b"msDS-LockoutDuration".to_vec(), one("-18000000000")),
        (
            b"msDS-PSOAppliesTo".to_vec(),
            HashSet::from([g.dn.clone().into_bytes(), h.dn.clone().into_bytes()]),
        ),
    ];
    admin.add(&pso, attrs).await.unwrap().success().unwrap();
    let resultant = attr(&dev, &g.dn, "msDS-ResultantPSO").await;
    facts.push(Fact {
        case: "(d) minimum age (PSO minPwdAge 1 day, set just now)",
        peer: peer(&dev, &p, &h, &h.password, &fresh("h1")).await,
        native: native(&dev, &mut svc, &g, &g.password, &fresh("g1")).await,
    });
    let pso_deleted = admin.delete(&pso).await.unwrap().rc;

    // (e) No delegation: an OU made for the test, where the service account has no reset right.
    let ou = format!("OU=rkt-peer-{pid},{}", dev.get("REKEY_DEV_BASE_DN"));
    admin
        .add(
            &ou,
            vec![(b"objectClass".to_vec(), one("organizationalUnit"))],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    let (i, j, k) = (
        dev.user_in("peer-right-n", &ou).await,
        dev.user_in("peer-right-p", &ou).await,
        dev.user_in("peer-right-s", &ou).await,
    );
    facts.push(Fact {
        case: "(e) no reset right on the user (OU not delegated)",
        peer: peer(&dev, &p, &j, &j.password, &fresh("j1")).await,
        native: native(&dev, &mut svc, &i, &i.password, &fresh("i1")).await,
    });
    let mut own = dc::connect(&dev, &k.dn, &k.password).await.unwrap();
    let self_change = native(&dev, &mut own, &k, &k.password, &fresh("k1")).await;
    let _ = own.unbind().await;
    for u in [&i, &j, &k] {
        let _ = admin.delete(&u.dn).await;
    }
    let ou_deleted = admin.delete(&ou).await.unwrap().rc;

    // (f) A wrong old credential: both paths count it in badPwdCount.
    let (l, m) = (dev.user("peer-bad-n").await, dev.user("peer-bad-p").await);
    facts.push(Fact {
        case: "(f) wrong old credential",
        peer: peer(&dev, &p, &m, "Wrong-Old-1x!", &fresh("m1")).await,
        native: native(&dev, &mut svc, &l, "Wrong-Old-1x!", &fresh("l1")).await,
    });
    let (bad_peer, bad_native) = (
        dev.lockout(&m.dn).await.bad_pwd_count,
        dev.lockout(&l.dn).await.bad_pwd_count,
    );

    eprintln!("\n| case | peer model (user bind + replace) | AD-native change (delete+add) |");
    eprintln!("|---|---|---|");
    for x in &facts {
        eprintln!("| {} | {} | {} |", x.case, x.peer.short(), x.native.short());
    }
    eprintln!(
        "| (a') replace + policy hints 2239, non-critical | {} | — |",
        hinted.short()
    );
    eprintln!(
        "| (e') change bound as the user itself, no delegation | — | {} |",
        self_change.short()
    );
    eprintln!("| (f') badPwdCount after (f) | {bad_peer} | {bad_native} |\n");

    // Clean-up worked (else the next run's sweep removes the leftovers).
    assert_eq!(pso_deleted, 0, "delete the test PSO");
    assert_eq!(ou_deleted, 0, "delete the test OU");

    // (a) The shortcut takes a credential from history; the change refuses it; so does Rekey's
    // reset on Samba (the hints control is ignored there; Windows 2012+ would enforce history).
    let [fa, fb, fc, fd, fe, ff] = &facts[..] else {
        panic!("six cases")
    };
    assert!(fa.peer.landed, "(a) peer: {:?}", fa.peer);
    assert_eq!(fa.native.rc, 19, "(a) change: {:?}", fa.native);
    assert!(fa.native.text.starts_with("0000052D") && fa.native.text.contains("in history"));
    assert!(hinted.landed, "(a') hinted reset: {hinted:?}");

    // (b) Must change: the user cannot bind (49, data 773), so the peer model stops there; the
    // change lands and clears the must-change state.
    assert_eq!((fb.peer.step, fb.peer.rc), (Some(Step::UserBind), 49));
    assert!(fb.peer.text.contains("data 773"), "(b) peer: {:?}", fb.peer);
    assert!(fb.native.landed, "(b) change: {:?}", fb.native);
    assert!(c_last_set > 0, "(b) the change set pwdLastSet to now");

    // (c) Expired: bind 49 data 532; the change lands.
    assert_ne!(f_computed & 0x80_0000, 0, "(c) UF_PASSWORD_EXPIRED before");
    assert_eq!((fc.peer.step, fc.peer.rc), (Some(Step::UserBind), 49));
    assert!(fc.peer.text.contains("data 532"), "(c) peer: {:?}", fc.peer);
    assert!(fc.native.landed, "(c) change: {:?}", fc.native);

    // (d) Minimum age: the replace bypasses it; the change holds it.
    assert_eq!(
        resultant.as_deref(),
        Some(pso.as_str()),
        "(d) the test PSO wins"
    );
    assert!(fd.peer.landed, "(d) peer: {:?}", fd.peer);
    assert_eq!(fd.native.rc, 19, "(d) change: {:?}", fd.native);
    assert!(fd.native.text.starts_with("0000052D") && fd.native.text.contains("too young"));

    // (e) The peer model needs the reset right (it gets past the user bind, then 50); the change
    // needs none: Everyone holds Change Password on a user by default, so the service account's
    // change and the user's own change both land.
    assert_eq!((fe.peer.step, fe.peer.rc), (Some(Step::Replace), 50));
    assert!(fe.native.landed, "(e) change: {:?}", fe.native);
    assert!(self_change.landed, "(e') self change: {self_change:?}");

    // (f) Both refuse a wrong old credential and count it: no difference here.
    assert_eq!((ff.peer.step, ff.peer.rc), (Some(Step::UserBind), 49));
    assert!(ff.peer.text.contains("data 52e"), "(f) peer: {:?}", ff.peer);
    assert_eq!(ff.native.rc, 19, "(f) change: {:?}", ff.native);
    assert!(
        ff.native.text.starts_with("00000056"),
        "(f) change: {:?}",
        ff.native
    );
    assert_eq!((bad_peer, bad_native), (1, 1), "(f) badPwdCount");
}
