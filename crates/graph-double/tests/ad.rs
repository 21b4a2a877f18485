//! Feature `ad` against the real dev Samba DC (`dev/domain up`): lookup, the bind oracle and its
//! digest memory, `pwdLastSet` as the change source, CA pinning, and the sync story end to end.
//! Skipped (with a note on stderr) when `.dev/env` does not exist.
#![cfg(feature = "ad")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use rekey_graph_double::ad::{AdConfig, LdapOnPrem};
use rekey_graph_double::{
    AppSpec, ChangeSource, Double, OnPremUser, Options, PasswordOracle, SyncSettings, UserSpec,
    immutable_id, new_object_id,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use support::*;

static N: AtomicUsize = AtomicUsize::new(0);

struct Env(HashMap<String, String>);

impl Env {
    fn load() -> Option<Self> {
        let dir = std::env::var("REKEY_DEV_DIR").map_or_else(
            |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.dev"),
            PathBuf::from,
        );
        let Ok(text) = std::fs::read_to_string(dir.join("env")) else {
            eprintln!("skipped: no {}/env (run dev/domain up)", dir.display());
            return None;
        };
        Some(Self(
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
                .collect(),
        ))
    }
    fn get(&self, k: &str) -> String {
        self.0.get(k).cloned().unwrap_or_else(|| panic!("{k}"))
    }
    fn url(&self) -> String {
        self.get("REKEY_DEV_LDAP_URLS")
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }
    fn read(&self, k: &str) -> String {
        std::fs::read_to_string(self.get(k))
            .unwrap()
            .trim_end()
            .to_owned()
    }
    fn config(&self) -> AdConfig {
        AdConfig {
            url: self.url(),
            ca_file: self.get("REKEY_DEV_CA_FILE").into(),
            bind_dn: self.get("REKEY_DEV_SVC_DN"),
            bind_password: self.read("REKEY_DEV_SVC_PASSWORD_FILE"),
            base_dn: self.get("REKEY_DEV_BASE_DN"),
        }
    }
    /// Administrator over LDAPS (fixture set-up only, independent of the code under test).
    async fn admin(&self) -> Ldap {
        let mut ldap = self.connect().await;
        ldap.simple_bind(
            &self.get("REKEY_DEV_ADMIN_DN"),
            &self.read("REKEY_DEV_ADMIN_PASSWORD_FILE"),
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        ldap
    }
    async fn connect(&self) -> Ldap {
        let pem = std::fs::read(self.get("REKEY_DEV_CA_FILE")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&pem) {
            roots.add(c.unwrap()).unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let settings = LdapConnSettings::new().set_config(Arc::new(tls));
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.url())
            .await
            .unwrap();
        ldap3::drive!(conn);
        ldap
    }
}

/// A simple bind on a fresh connection, independent of the code under test: the result code.
async fn bind(env: &Env, dn: &str, password: &str) -> u32 {
    let mut ldap = env.connect().await;
    let rc = ldap.simple_bind(dn, password).await.unwrap().rc;
    let _ = ldap.unbind().await;
    rc
}

fn unicode_pwd(p: &str) -> Vec<u8> {
    format!("\"{p}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// A throwaway enabled user in OU=Staff (`gdt<pid>x<n>`; earlier runs' are deleted first).
struct Throwaway {
    dn: String,
    sam: String,
    upn: String,
    password: String,
}

async fn throwaway(env: &Env, admin: &mut Ldap) -> Throwaway {
    let staff = env.get("REKEY_DEV_STAFF_OU");
    let pid = std::process::id() % 100_000;
    let (old, _) = admin
        .search(
            &staff,
            Scope::OneLevel,
            "(sAMAccountName=gdt*)",
            vec!["1.1"],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    for e in old.into_iter().map(SearchEntry::construct) {
        if !e.dn.starts_with(&format!("CN=gdt{pid}x")) {
            let _ = admin.delete(&e.dn).await;
        }
    }
    let n = N.fetch_add(1, Ordering::Relaxed);
    let sam = format!("gdt{pid}x{n}");
    let dn = format!("CN={sam},{staff}");
    let upn = format!("{sam}@{}", env.get("REKEY_DEV_DNS_DOMAIN"));
    let password = format!("Gd-Init-{n}-{pid}!");
    let attr = |k: &str, v: Vec<u8>| (k.as_bytes().to_vec(), HashSet::from([v]));
    admin
        .add(
            &dn,
            vec![
                attr("objectClass", b"user".to_vec()),
                attr("sAMAccountName", sam.clone().into_bytes()),
                attr("userPrincipalName", upn.clone().into_bytes()),
                attr("unicodePwd", unicode_pwd(&password)),
                attr("userAccountControl", b"512".to_vec()),
            ],
        )
        .await
        .unwrap()
        .success()
        .expect("create throwaway user");
    Throwaway {
        dn,
        sam,
        upn,
        password,
    }
}

async fn set_password(admin: &mut Ldap, dn: &str, password: &str) {
    let pwd = HashSet::from([unicode_pwd(password)]);
    admin
        .modify(dn, vec![Mod::Replace(b"unicodePwd".to_vec(), pwd)])
        .await
        .unwrap()
        .success()
        .expect("admin password reset");
}

async fn read_attr(admin: &mut Ldap, dn: &str, name: &str) -> (Option<String>, Option<Vec<u8>>) {
    let (found, _) = admin
        .search(dn, Scope::Base, "(objectClass=*)", vec![name])
        .await
        .unwrap()
        .success()
        .unwrap();
    let e = SearchEntry::construct(found.into_iter().next().unwrap());
    (
        e.attrs.values().next().and_then(|v| v.first().cloned()),
        e.bin_attrs.values().next().and_then(|v| v.first().cloned()),
    )
}

fn on_prem_user(t: &Throwaway) -> OnPremUser {
    OnPremUser {
        sam_account_name: Some(t.sam.clone()),
        distinguished_name: None,
        user_principal_name: t.upn.clone(),
    }
}

#[tokio::test]
async fn lookup_oracle_and_change_source_against_samba() {
    let Some(env) = Env::load() else { return };
    let mut admin = env.admin().await;
    let t = throwaway(&env, &mut admin).await;
    let ad = LdapOnPrem::new(env.config()).unwrap();
    let user = on_prem_user(&t);

    let at = Instant::now();
    let acct = ad
        .account(&t.sam)
        .await
        .unwrap()
        .expect("found by sAMAccountName");
    eprintln!(
        "first lookup (connect + TLS + service bind + search): {:?}",
        at.elapsed()
    );
    let at = Instant::now();
    let again = ad.lookup(&user).await.unwrap().unwrap();
    eprintln!("lookup on the kept service connection: {:?}", at.elapsed());
    assert_eq!(acct, again);
    assert!(acct.dn.eq_ignore_ascii_case(&t.dn), "{}", acct.dn);
    assert_eq!(acct.user_principal_name.as_deref(), Some(t.upn.as_str()));
    assert_eq!(acct.object_guid.len(), 16);
    let (_, raw) = read_attr(&mut admin, &t.dn, "objectGUID").await;
    assert_eq!(acct.immutable_id(), immutable_id(&raw.unwrap()));
    // By DN as well; unknown accounts are None, not errors.
    let by_dn = OnPremUser {
        distinguished_name: Some(t.dn.clone()),
        ..user.clone()
    };
    assert_eq!(ad.lookup(&by_dn).await.unwrap(), Some(acct.clone()));
    assert_eq!(ad.account("no.such.user").await.unwrap(), None);
    let gone = OnPremUser {
        distinguished_name: Some(format!("CN=nobody,{}", env.get("REKEY_DEV_STAFF_OU"))),
        ..user.clone()
    };
    assert_eq!(ad.lookup(&gone).await.unwrap(), None);

    let set = ad.last_change(&user).await.unwrap().expect("pwdLastSet");
    let age = SystemTime::now().duration_since(set).unwrap_or_default();
    assert!(age < Duration::from_secs(60), "pwdLastSet {age:?} ago");

    let at = Instant::now();
    assert!(ad.check(&user, &t.password).await.unwrap());
    eprintln!(
        "oracle, first check (lookup + user bind): {:?}",
        at.elapsed()
    );
    let at = Instant::now();
    assert!(ad.check(&user, &t.password).await.unwrap());
    eprintln!("oracle, remembered (lookup only): {:?}", at.elapsed());
    assert!(!ad.check(&user, "Wrong-Passw0rd!").await.unwrap());
    assert!(!ad.check(&user, "").await.unwrap());
    // The remembered digest answered: the wrong password never reached the DC.
    let (bad, _) = read_attr(&mut admin, &t.dn, "badPwdCount").await;
    assert_eq!(bad.as_deref().unwrap_or("0"), "0");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new = format!("{}-New2", t.password);
    set_password(&mut admin, &t.dn, &new).await;
    let moved = ad.last_change(&user).await.unwrap().unwrap();
    assert!(moved > set, "pwdLastSet moved forward");
    // Samba itself still accepts the previous password on a simple bind (60 min) ...
    assert_eq!(
        bind(&env, &t.dn, &t.password).await,
        0,
        "Samba's old password period"
    );
    // ... the oracle does not, because it saw that password work under the old pwdLastSet.
    assert!(!ad.check(&user, &t.password).await.unwrap(), "old password");
    assert!(ad.check(&user, &new).await.unwrap(), "new password");
    assert!(
        !ad.check(&user, &t.password).await.unwrap(),
        "old password, new one known"
    );
    let unknown = OnPremUser {
        sam_account_name: Some("no.such.user".into()),
        ..user
    };
    assert!(!ad.check(&unknown, &new).await.unwrap());
    let _ = admin.delete(&t.dn).await;
}

#[tokio::test]
async fn another_ca_is_not_trusted() {
    let Some(env) = Env::load() else { return };
    let other = make_cert();
    let dir = std::env::temp_dir().join(format!("rekey-gd-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("other-ca.pem");
    std::fs::write(&ca, &other.pem).unwrap();
    let ad = LdapOnPrem::new(AdConfig {
        ca_file: ca,
        ..env.config()
    })
    .unwrap();
    let err = ad.account("carol.chen").await.unwrap_err();
    assert!(err.contains("connect"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sync_carries_an_ad_change_into_the_cloud() {
    let Some(env) = Env::load() else { return };
    let mut admin = env.admin().await;
    let t = throwaway(&env, &mut admin).await;
    let ad = Arc::new(LdapOnPrem::new(env.config()).unwrap());
    let anchor = ad.account(&t.sam).await.unwrap().unwrap().immutable_id();
    let mut opts = Options::in_memory(&rekey_graph_double::MemOnPrem::new());
    opts.oracle = ad.clone();
    opts.source = ad;
    opts.sync = SyncSettings {
        paused: false,
        delay_ms: 1000,
    };
    let d = Double::start_with(opts).await.unwrap();
    d.add_app(AppSpec::new("app").secret("s3cret")).unwrap();
    let id = new_object_id();
    d.add_user(UserSpec::synced(&id, &t.upn, &anchor, &t.sam));
    let before = d.user(&id).unwrap()["lastPasswordChangeDateTime"].clone();
    assert_eq!(ropc(&d, &t.upn, &t.password).await.status, 200);

    tokio::time::sleep(Duration::from_millis(1100)).await; // a new second for the timestamp
    let new = format!("{}-New3", t.password);
    set_password(&mut admin, &t.dn, &new).await;
    let changed = Instant::now();
    let mut landed = None;
    while changed.elapsed() < Duration::from_secs(10) {
        if d.user(&id).unwrap()["lastPasswordChangeDateTime"] != before {
            landed = Some(changed.elapsed());
            break;
        }
        if changed.elapsed() < Duration::from_millis(700) {
            assert_eq!(ropc(&d, &t.upn, &new).await.status, 400, "not before sync");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let landed = landed.expect("the change landed");
    eprintln!("AD change landed in the cloud after {landed:?} (delay 1 s)");
    assert!(landed >= Duration::from_millis(900), "{landed:?}");
    assert_eq!(ropc(&d, &t.upn, &new).await.status, 200);
    assert_eq!(ropc(&d, &t.upn, &t.password).await.status, 400);
    let _ = admin.delete(&t.dn).await;
}
