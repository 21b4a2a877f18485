//! The ActiveDirectory landing zone against a real Samba AD DC (`dev/domain up`).
//! Every outcome asserted here is a real DC answer; passwords are proven by an LDAP bind AND a
//! Kerberos ticket (Samba accepts the previous password on simple binds for ~60 min, so the old
//! one is proven dead through Kerberos only).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support code panics by design

mod support;

use std::collections::HashSet;

use ldap3::Mod;
use rekey_core::{
    Directory, Identifier, LandingError, LandingZone, Password, PolicySource, Rejection,
    ResetOptions, Tier, UserFacing, WriteGrant,
};
use rekey_directory::{ActiveDirectory, SetupError};
use support::{Krb, dev};

async fn zone() -> ActiveDirectory {
    let d = dev();
    ActiveDirectory::connect(&support::config(&d, d.urls()))
        .await
        .expect("connect to the dev domain")
}

async fn account(ad: &ActiveDirectory, name: &str) -> rekey_core::Account {
    ad.find(&Identifier::parse(name).unwrap())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{name} not found"))
}

fn pw(s: &str) -> Password {
    Password::from(s)
}

fn rejection(r: Result<rekey_core::Landed, LandingError>) -> Rejection {
    match r {
        Err(LandingError::Rejected { reason, diagnostic }) => {
            // The raw DC text is kept for the log, and never in the user-facing message.
            assert!(!diagnostic.detail.is_empty());
            assert!(!reason.message().contains("0000"), "{}", reason.message());
            reason
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn connect_learns_domain_and_pdc() {
    let d = dev();
    let ad = zone().await;
    assert_eq!(ad.base_dn(), d.get("REKEY_DEV_BASE_DN"));
    assert!(ad.domain_sid().to_string().starts_with("S-1-5-21-"));
    assert_eq!(
        ad.pdc_url(),
        Some(d.dc1_url().as_str()),
        "DC1 holds the PDC emulator role"
    );
}

#[tokio::test]
async fn untrusted_certificate_is_refused() {
    let d = dev();
    let mut c = support::config(&d, d.urls());
    // The system's public roots do not include the dev CA: the DC's certificate must be refused.
    c.ca_file = Some("/etc/ssl/certs/ca-certificates.crt".into());
    let err = ActiveDirectory::connect(&c)
        .await
        .err()
        .expect("must not connect");
    assert!(matches!(err, SetupError::Directory(_)), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn plaintext_needs_the_lab_flag() {
    let d = dev();
    let c = support::config(&d, vec!["ldap://localhost:389".into()]);
    let err = ActiveDirectory::connect(&c)
        .await
        .err()
        .expect("plaintext refused");
    assert!(
        matches!(
            err,
            SetupError::Config {
                key: "directory.urls",
                ..
            }
        ),
        "{err}"
    );
    let mut none = support::config(&d, d.urls());
    none.ca_file = None;
    let err = ActiveDirectory::connect(&none)
        .await
        .err()
        .expect("CA required");
    assert!(
        matches!(
            err,
            SetupError::Config {
                key: "directory.ca_file",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn find_by_every_name_form_with_escaping() {
    let d = dev();
    let ad = zone().await;
    let u = d.user("find").await;
    let realm = d.get("REKEY_DEV_REALM");
    for name in [
        u.sam.clone(),
        format!("CORP\\{}", u.sam),
        format!("{}@{}", u.sam, realm.to_lowercase()),
        format!("{}.find@corp.example.com", u.sam),
    ] {
        let a = account(&ad, &name).await;
        assert_eq!(a.dn, u.dn, "{name}");
        // The stable key: re-reading by objectGUID finds the same account.
        assert_eq!(ad.account_by_guid(&a.guid).await.unwrap().unwrap().dn, u.dn);
    }
    // Filter metacharacters are literal: a wildcard finds nobody, an injection matches nothing.
    for hostile in [
        "rkt*",
        "*",
        "*)(sAMAccountName=*",
        "x)(|(objectClass=*",
        "\\2a",
    ] {
        let found = ad.find(&Identifier::parse(hostile).unwrap()).await.unwrap();
        assert!(found.is_none(), "{hostile} matched {found:?}");
    }
    // A mail value full of metacharacters is found exactly.
    let odd = "o'b*(r)\\ien+x@corp.example.com";
    d.admin_modify(
        &u.dn,
        vec![Mod::Replace(
            b"mail".to_vec(),
            HashSet::from([odd.as_bytes().to_vec()]),
        )],
    )
    .await;
    assert_eq!(account(&ad, odd).await.dn, u.dn);
}

#[tokio::test]
async fn account_states_of_the_fixture() {
    let ad = zone().await;
    let s = |n: &'static str| {
        let ad = &ad;
        async move { account(ad, n).await.state }
    };
    assert!(s("alice.adams").await.enabled);
    assert!(!s("dan.disabled").await.enabled);
    // A lockout lasts 30 min; re-lock lou the way `dev/domain up` does if it has passed.
    let lou = account(&ad, "lou.locked").await;
    if !lou.state.locked {
        dev().lock_out(&lou.dn, 5).await;
    }
    assert!(s("lou.locked").await.locked);
    assert!(s("mike.mustchange").await.must_change);
    let eve = s("eve.expired").await;
    assert!(eve.password_expired && !eve.must_change, "{eve:?}");
    assert!(s("sam.smartcard").await.smartcard_required);
}

#[tokio::test]
async fn tiers_and_nested_groups() {
    let d = dev();
    let ad = zone().await;
    let protected = ad.protected_groups([]);
    let alice = account(&ad, "alice.adams").await;
    assert_eq!(protected.classify(&alice), Tier::Normal);
    let ivan = account(&ad, "ivan.admin").await;
    let Tier::Privileged { via } = protected.classify(&ivan) else {
        panic!("ivan.admin is a Domain Admin through IT-Admins")
    };
    // Domain Admins, and through it BUILTIN\Administrators.
    assert!(via.contains(&ad.domain_sid().with_rid(512)), "{via:?}");
    assert!(via.contains(&"S-1-5-32-544".parse().unwrap()), "{via:?}");
    // SSPR-Users contains Staff-All, which contains alice: transitive membership, both ways.
    let sspr = d.get("REKEY_DEV_SSPR_GROUP_DN");
    assert!(ad.is_transitive_member(&alice.dn, sspr).await.unwrap());
    let sspr_sid = ad.group_sid(sspr).await.unwrap().expect("SSPR group SID");
    assert!(alice.is_member(&sspr_sid));
    let wendy = account(&ad, "wendy.wu").await;
    assert!(!ad.is_transitive_member(&wendy.dn, sspr).await.unwrap());
    assert!(!wendy.is_member(&sspr_sid));
}

#[tokio::test]
async fn effective_policy_domain_and_pso() {
    let ad = zone().await;
    let domain = ad
        .effective_policy(&account(&ad, "alice.adams").await)
        .await
        .unwrap();
    assert_eq!(domain.source, PolicySource::Domain);
    assert_eq!(
        (domain.min_length, domain.complexity, domain.history_length),
        (7, true, 24)
    );
    assert_eq!(domain.lockout_threshold, 5);
    let strict = ad
        .effective_policy(&account(&ad, "frank.finance").await)
        .await
        .unwrap();
    assert!(
        matches!(&strict.source, PolicySource::Pso { name, .. } if name == "PSO-Strict"),
        "{strict:?}"
    );
    assert_eq!((strict.min_length, strict.lockout_threshold), (12, 3));
    assert_eq!(strict.min_age.as_secs(), 86_400);
}

#[tokio::test]
async fn reset_lands_for_ldap_and_kerberos() {
    let d = dev();
    let ad = zone().await;
    let u = d.user("reset").await;
    let a = account(&ad, &u.sam).await;
    let new = "Fresh-Reset-42!";
    let landed = ad
        .reset(
            &WriteGrant::for_zone_tests(&a),
            &pw(new),
            ResetOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(landed.server, d.dc1_url());
    assert_eq!(d.bind(&u.dn, new).await.0, 0);
    assert_eq!(d.kinit(&u.sam, new), Krb::Ok);
    assert_eq!(
        d.kinit(&u.sam, &u.password),
        Krb::WrongPassword,
        "Kerberos refuses the old password"
    );
    assert!(ad.authenticate(&u.dn, &pw(new)).await.unwrap());
}

#[tokio::test]
async fn reset_can_unlock_and_force_change() {
    let d = dev();
    let ad = zone().await;
    let u = d.user("unlockreset").await;
    d.lock_out(&u.dn, 5).await;
    let a = account(&ad, &u.sam).await;
    assert!(a.state.locked);
    let new = "Unlocked-And-New-7";
    let opts = ResetOptions {
        unlock: true,
        must_change: true,
        replay_of: None,
    };
    ad.reset(&WriteGrant::for_zone_tests(&a), &pw(new), opts)
        .await
        .unwrap();
    let after = account(&ad, &u.sam).await.state;
    assert!(!after.locked && after.must_change, "{after:?}");
    // The KDC accepts the password, then says it must be changed: the reset landed.
    assert_eq!(d.kinit(&u.sam, new), Krb::Expired);
}

#[tokio::test]
async fn unlock_clears_lockout_and_keeps_password() {
    let d = dev();
    let ad = zone().await;
    let u = d.user("unlock").await;
    d.lock_out(&u.dn, 5).await;
    let a = account(&ad, &u.sam).await;
    assert!(
        a.state.locked && a.state.bad_pwd_count >= 5,
        "{:?}",
        a.state
    );
    ad.unlock(&WriteGrant::for_zone_tests(&a)).await.unwrap();
    let after = account(&ad, &u.sam).await.state;
    assert!(!after.locked && after.bad_pwd_count == 0, "{after:?}");
    assert_eq!(d.bind(&u.dn, &u.password).await.0, 0);
    assert_eq!(d.kinit(&u.sam, &u.password), Krb::Ok);
}

#[tokio::test]
async fn change_lands_and_kills_the_old_password() {
    let d = dev();
    let ad = zone().await;
    let u = d.user("change").await;
    let a = account(&ad, &u.sam).await;
    let new = "Changed-By-User-9";
    ad.change(&WriteGrant::for_zone_tests(&a), &pw(&u.password), &pw(new))
        .await
        .unwrap();
    assert_eq!(d.bind(&u.dn, new).await.0, 0);
    assert_eq!(d.kinit(&u.sam, new), Krb::Ok);
    assert_eq!(d.kinit(&u.sam, &u.password), Krb::WrongPassword);
}

#[tokio::test]
async fn change_works_for_a_must_change_user_who_cannot_bind() {
    let d = dev();
    let ad = zone().await;
    let u = d.user("mustchange").await;
    d.admin_modify(
        &u.dn,
        vec![Mod::Replace(
            b"pwdLastSet".to_vec(),
            HashSet::from([b"0".to_vec()]),
        )],
    )
    .await;
    let (rc, text) = d.bind(&u.dn, &u.password).await;
    assert_eq!(rc, 49, "a must-change user cannot bind");
    assert!(text.contains("773"), "{text}");
    let a = account(&ad, &u.sam).await;
    assert!(a.state.must_change);
    let new = "After-MustChange-3";
    ad.change(&WriteGrant::for_zone_tests(&a), &pw(&u.password), &pw(new))
        .await
        .unwrap();
    assert!(!account(&ad, &u.sam).await.state.must_change);
    assert_eq!(d.bind(&u.dn, new).await.0, 0);
    assert_eq!(d.kinit(&u.sam, new), Krb::Ok);
}

#[tokio::test]
async fn change_works_for_an_expired_password() {
    let d = dev();
    let ad = zone().await;
    let u = d.user("expired").await;
    // PSO-Expiry: maximum age 2 days (Samba ignores maximum ages under a day); set 3 days ago.
    let pso = d.get("REKEY_DEV_PSO_EXPIRY_DN").to_owned();
    let me = HashSet::from([u.dn.clone().into_bytes()]);
    d.admin_modify(&pso, vec![Mod::Add(b"msDS-PSOAppliesTo".to_vec(), me)])
        .await;
    d.backdate_password(&u.dn, 3);
    let a = account(&ad, &u.sam).await;
    assert!(
        a.state.password_expired && !a.state.must_change,
        "{:?}",
        a.state
    );
    assert_eq!(d.kinit(&u.sam, &u.password), Krb::Expired);
    let new = "After-Expiry-5x";
    ad.change(&WriteGrant::for_zone_tests(&a), &pw(&u.password), &pw(new))
        .await
        .unwrap();
    assert!(!account(&ad, &u.sam).await.state.password_expired);
    assert_eq!(d.bind(&u.dn, new).await.0, 0);
    assert_eq!(d.kinit(&u.sam, new), Krb::Ok);
}

#[tokio::test]
async fn policy_errors_come_from_the_dc() {
    let d = dev();
    let ad = zone().await;
    let u = d.user("policy").await;
    let a = account(&ad, &u.sam).await;
    let grant = WriteGrant::for_zone_tests(&a);
    let reset =
        |p: &'static str| ad.reset(&grant, Box::leak(Box::new(pw(p))), ResetOptions::default());
    assert_eq!(rejection(reset("Ab1!x").await), Rejection::TooShort);
    assert_eq!(
        rejection(reset("alllowercaseletters").await),
        Rejection::Complexity
    );
    // History: A -> B by change, then B -> A again.
    let b = "History-Second-1";
    ad.change(&WriteGrant::for_zone_tests(&a), &pw(&u.password), &pw(b))
        .await
        .unwrap();
    assert_eq!(
        rejection(
            ad.change(&WriteGrant::for_zone_tests(&a), &pw(b), &pw(&u.password))
                .await
        ),
        Rejection::History
    );
}

#[tokio::test]
async fn min_age_error_under_the_strict_pso() {
    let d = dev();
    let ad = zone().await;
    let u = d.user("minage").await;
    let strict = d.get("REKEY_DEV_STRICT_GROUP_DN").to_owned();
    d.admin_modify(
        &strict,
        vec![Mod::Add(
            b"member".to_vec(),
            HashSet::from([u.dn.clone().into_bytes()]),
        )],
    )
    .await;
    let a = account(&ad, &u.sam).await;
    let first = "Strict-Policy-Pass-1";
    ad.reset(
        &WriteGrant::for_zone_tests(&a),
        &pw(first),
        ResetOptions::default(),
    )
    .await
    .unwrap();
    let r = ad
        .change(
            &WriteGrant::for_zone_tests(&a),
            &pw(first),
            &pw("Strict-Policy-Pass-2"),
        )
        .await;
    assert_eq!(rejection(r), Rejection::MinAge);
    let policy = ad
        .effective_policy(&account(&ad, &u.sam).await)
        .await
        .unwrap();
    let allowed = policy.change_allowed_at(
        account(&ad, &u.sam).await.state.pwd_last_set,
        std::time::SystemTime::now(),
    );
    assert!(
        allowed.is_some(),
        "the portal can say when a change becomes allowed"
    );
}

#[tokio::test]
async fn wrong_old_password_and_lockout_errors() {
    let d = dev();
    let ad = zone().await;
    let u = d.user("wrongold").await;
    let a = account(&ad, &u.sam).await;
    let before = a.state.bad_pwd_count;
    let r = ad
        .change(
            &WriteGrant::for_zone_tests(&a),
            &pw("Not-The-Password-1"),
            &pw("Whatever-New-1"),
        )
        .await;
    assert_eq!(rejection(r), Rejection::WrongOldPassword);
    let after = account(&ad, &u.sam).await.state.bad_pwd_count;
    assert_eq!(
        after,
        before + 1,
        "the DC counts a wrong old password (why Rekey needs its own budget)"
    );
    d.lock_out(&u.dn, 5).await;
    let r = ad
        .change(
            &WriteGrant::for_zone_tests(&a),
            &pw(&u.password),
            &pw("Whatever-New-2"),
        )
        .await;
    assert_eq!(
        rejection(r),
        Rejection::AccountLocked,
        "even the right old password fails once locked"
    );
}

#[tokio::test]
async fn rights_and_missing_objects() {
    let d = dev();
    let ad = zone().await;
    // OU=Admins has no delegation to the service account.
    let outside = account(&ad, "adam.outside").await;
    let r = ad
        .reset(
            &WriteGrant::for_zone_tests(&outside),
            &pw("No-Rights-Here-1"),
            ResetOptions::default(),
        )
        .await;
    assert_eq!(rejection(r), Rejection::InsufficientRights);
    let mut ghost = account(&ad, "alice.adams").await;
    ghost.dn = format!("CN=nobody-{},{}", std::process::id(), d.staff_ou());
    let r = ad
        .reset(
            &WriteGrant::for_zone_tests(&ghost),
            &pw("Ghost-Password-1"),
            ResetOptions::default(),
        )
        .await;
    assert_eq!(rejection(r), Rejection::NoSuchUser);
}

#[tokio::test]
async fn blank_passwords_never_reach_the_dc() {
    let d = dev();
    let ad = zone().await;
    let u = d.user("blank").await;
    let a = account(&ad, &u.sam).await;
    assert!(
        !ad.authenticate(&u.dn, &pw("")).await.unwrap(),
        "empty bind is anonymous: refused"
    );
    assert!(!ad.authenticate(&u.dn, &pw("  ")).await.unwrap());
    assert_eq!(
        rejection(
            ad.reset(
                &WriteGrant::for_zone_tests(&a),
                &pw(" "),
                ResetOptions::default()
            )
            .await
        ),
        Rejection::Refused
    );
    assert_eq!(
        rejection(
            ad.change(
                &WriteGrant::for_zone_tests(&a),
                &pw(""),
                &pw("New-Pass-123")
            )
            .await
        ),
        Rejection::Refused
    );
    assert_eq!(account(&ad, &u.sam).await.state.bad_pwd_count, 0);
}

mod pool_and_failover;

/// A name found before is resolved to its GUID without a subtree search, and the live read by
/// GUID proves the name still belongs to it: a rename, a name handed to another account and a
/// deletion are all seen on the very next find (the resolution never goes stale).
#[tokio::test]
async fn a_remembered_name_never_goes_stale() {
    let d = dev();
    let ad = zone().await;
    let first = d.user("stale-a").await;
    let second = d.user("stale-b").await;
    let a = account(&ad, &first.sam).await;
    assert_eq!(account(&ad, &first.sam).await.guid, a.guid, "remembered");
    let sam = |s: &str| {
        vec![Mod::Replace(
            b"sAMAccountName".to_vec(),
            HashSet::from([s.as_bytes().to_vec()]),
        )]
    };
    let renamed = format!("{}r", first.sam);
    // Its UPN goes too: Samba refuses a sAMAccountName whose implied UPN is someone's UPN.
    let mut mods = sam(&renamed);
    mods.push(Mod::Delete(b"userPrincipalName".to_vec(), HashSet::new()));
    d.admin_modify(&first.dn, mods).await;
    d.admin_modify(&second.dn, sam(&first.sam)).await;
    let now = account(&ad, &first.sam).await;
    assert_ne!(
        now.guid, a.guid,
        "the name now belongs to the second account"
    );
    assert_eq!(now.dn, second.dn);
    assert_eq!(account(&ad, &renamed).await.guid, a.guid);
    d.admin().await.delete(&second.dn).await.unwrap();
    let gone = ad.find(&Identifier::parse(&first.sam).unwrap()).await;
    assert_eq!(
        gone.unwrap(),
        None,
        "a deleted account is not found by its old name"
    );
    d.admin().await.delete(&first.dn).await.unwrap();
    let gone = ad.find(&Identifier::parse(&renamed).unwrap()).await;
    assert_eq!(gone.unwrap(), None);
}
