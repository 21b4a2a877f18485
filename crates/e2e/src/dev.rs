//! The dev domain for tests: the real Samba AD DC(s) started by `dev/domain up`, throwaway users
//! created as Administrator, binds checked independently of the code under test, and Kerberos
//! checks with MIT `kinit`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)] // test fixtures panic by design

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use tokio::sync::OnceCell;

/// The dev domain's facts, read from `.dev/env` (written by `dev/domain up`).
pub struct Dev {
    env: HashMap<String, String>,
}

static SWEPT: OnceCell<()> = OnceCell::const_new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The repository root (this crate lives in `crates/e2e`).
#[must_use]
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The dev domain's facts; panics with a hint when `dev/domain up` has not run.
#[must_use]
pub fn dev() -> Dev {
    let dir = std::env::var("REKEY_DEV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.dev"));
    let path = dir.join("env");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. These tests need the dev domain: run `dev/domain up` first",
            path.display()
        )
    });
    let env = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect();
    Dev { env }
}

/// What `kinit` made of a password.
#[derive(Debug, PartialEq, Eq)]
pub enum Krb {
    /// A ticket was issued.
    Ok,
    /// KDC_ERR_PREAUTH_FAILED: wrong password.
    WrongPassword,
    /// KDC_ERR_KEY_EXPIRED: the password was right but must be changed.
    Expired,
    Other(String),
}

pub struct User {
    pub dn: String,
    pub sam: String,
    pub password: String,
}

/// An account's lockout state as the DCs hold it, read as Administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    /// The highest `badPwdCount` of any DC (the attribute is not replicated: each DC counts the
    /// wrong passwords it saw itself).
    pub bad_pwd_count: u32,
    /// `badPwdCount` per DC URL (DCs the account has not replicated to yet are left out).
    pub per_dc: Vec<(String, u32)>,
    /// `lockoutTime` on DC1 (0 or absent: not locked).
    pub lockout_time: i64,
    /// `msDS-User-Account-Control-Computed` has UF_LOCKOUT (0x10) on DC1.
    pub locked: bool,
}

impl Dev {
    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from .dev/env"))
    }

    pub fn urls(&self) -> Vec<String> {
        self.get("REKEY_DEV_LDAP_URLS")
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    pub fn dc1_url(&self) -> String {
        self.urls()[0].clone()
    }

    pub fn has_dc2(&self) -> bool {
        self.env.get("REKEY_DEV_DC2").is_some_and(|v| v == "1")
    }

    pub fn staff_ou(&self) -> &str {
        self.get("REKEY_DEV_STAFF_OU")
    }

    fn admin_password(&self) -> String {
        std::fs::read_to_string(self.get("REKEY_DEV_ADMIN_PASSWORD_FILE"))
            .expect("admin password file")
            .trim_end()
            .to_owned()
    }

    fn tls(&self) -> LdapConnSettings {
        let pem = std::fs::read(self.get("REKEY_DEV_CA_FILE")).expect("CA file");
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile_certs(&pem) {
            roots.add(cert).expect("CA cert");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        LdapConnSettings::new().set_config(Arc::new(cfg))
    }

    /// A minimal `rekey.toml` for the dev domain in `dir` (directory, server with a fresh key
    /// file, SQLite store), plus `extra` TOML appended; returns its path. For tests that run
    /// the `rekey` binary.
    pub fn write_config(&self, dir: &std::path::Path, extra: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let urls: Vec<String> = self.urls().iter().map(|u| format!("{u:?}")).collect();
        let key = dir.join("rekey.key");
        std::fs::write(&key, format!("{}\n", "5a".repeat(32))).expect("write the key file");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .expect("chmod the key file");
        let path = dir.join("rekey.toml");
        let toml = format!(
            "version = 1\n[directory]\nurls = [{}]\nca_file = {:?}\nbind_dn = {:?}\nbind_password_file = {:?}\n\
             [server]\nlisten = \"127.0.0.1:8099\"\npublic_base_url = \"https://sspr.corp.example.com\"\n\
             secret_key_file = {:?}\n[store]\nurl = \"sqlite://{}\"\n{extra}",
            urls.join(", "),
            self.get("REKEY_DEV_CA_FILE"),
            self.get("REKEY_DEV_SVC_DN"),
            self.get("REKEY_DEV_SVC_PASSWORD_FILE"),
            key,
            dir.join("rekey.db").display(),
        );
        std::fs::write(&path, toml).expect("write rekey.toml");
        path
    }

    /// A simple bind on a fresh LDAPS connection to DC1, independent of the code under test.
    /// Returns the DC's result code and text (49 + `data 52e` wrong, `data 773` must change …).
    pub async fn bind(&self, dn: &str, password: &str) -> (u32, String) {
        assert!(
            !password.is_empty(),
            "an empty bind is anonymous and proves nothing"
        );
        let (conn, mut ldap) = LdapConnAsync::with_settings(self.tls(), &self.dc1_url())
            .await
            .expect("connect DC1");
        ldap3::drive!(conn);
        let r = ldap.simple_bind(dn, password).await.expect("bind");
        let _ = ldap.unbind().await;
        (r.rc, r.text)
    }

    /// An LDAPS connection to DC1 bound as Administrator (fixture set-up only).
    pub async fn admin(&self) -> Ldap {
        self.admin_at(&self.dc1_url()).await
    }

    /// An LDAPS connection to the DC at `url` bound as Administrator.
    pub async fn admin_at(&self, url: &str) -> Ldap {
        let (conn, mut ldap) = LdapConnAsync::with_settings(self.tls(), url)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        ldap3::drive!(conn);
        ldap.simple_bind(self.get("REKEY_DEV_ADMIN_DN"), &self.admin_password())
            .await
            .unwrap()
            .success()
            .expect("Administrator bind");
        ldap
    }

    /// Delete test users left by earlier runs (once per test binary).
    async fn sweep(&self, admin: &mut Ldap) {
        let mine = format!("rkt{}x", std::process::id() % 100_000);
        let (found, _) = admin
            .search(
                self.staff_ou(),
                Scope::Subtree,
                "(sAMAccountName=rkt*)",
                vec!["sAMAccountName"],
            )
            .await
            .unwrap()
            .success()
            .unwrap();
        for e in found.into_iter().map(SearchEntry::construct) {
            let sam = e
                .attrs
                .get("sAMAccountName")
                .and_then(|v| v.first())
                .cloned()
                .unwrap_or_default();
            if !sam.starts_with(&mine) {
                let _ = admin.delete(&e.dn).await;
            }
        }
    }

    /// A fresh enabled user in OU=Staff (where the service account is delegated) with a known
    /// password. Unique per test; deleted by later runs' sweep.
    pub async fn user(&self, tag: &str) -> User {
        self.user_in(tag, self.staff_ou()).await
    }

    pub async fn user_in(&self, tag: &str, ou: &str) -> User {
        let mut admin = self.admin().await;
        SWEPT
            .get_or_init(|| async { self.sweep(&mut self.admin().await).await })
            .await;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let sam = format!("rkt{}x{n}", std::process::id() % 100_000);
        let dn = format!("CN={sam} {tag},{ou}");
        let password = format!("Init-{n}-Pw!x{}", std::process::id());
        let upn = format!("{sam}@{}", self.get("REKEY_DEV_REALM").to_lowercase());
        let mail = format!("{sam}.{tag}@corp.example.com");
        let pwd = unicode_pwd(&password);
        let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![
            (b"objectClass".to_vec(), HashSet::from([b"user".to_vec()])),
            (
                b"sAMAccountName".to_vec(),
                HashSet::from([sam.clone().into_bytes()]),
            ),
            (
                b"userPrincipalName".to_vec(),
                HashSet::from([upn.into_bytes()]),
            ),
            (b"mail".to_vec(), HashSet::from([mail.into_bytes()])),
            (
                b"displayName".to_vec(),
                HashSet::from([format!("Test {tag}").into_bytes()]),
            ),
            (b"unicodePwd".to_vec(), HashSet::from([pwd])),
            (
                b"userAccountControl".to_vec(),
                HashSet::from([b"512".to_vec()]),
            ),
        ];
        admin
            .add(&dn, attrs)
            .await
            .unwrap()
            .success()
            .expect("create test user");
        User { dn, sam, password }
    }

    /// A fresh staff user in the SSPR scope (member of Staff-All, nested in SSPR-Users).
    pub async fn staff_user(&self, tag: &str) -> User {
        let u = self.user(tag).await;
        let member = HashSet::from([u.dn.clone().into_bytes()]);
        self.admin_modify(
            self.get("REKEY_DEV_STAFF_ALL_GROUP_DN"),
            vec![Mod::Add(b"member".to_vec(), member)],
        )
        .await;
        u
    }

    /// The mail two in-scope staff users share (`pat.shared`, `kim.shared`): finding it yields
    /// two accounts. `REKEY_DEV_AMBIGUOUS_MAIL`, else the fixture's value.
    #[must_use]
    pub fn ambiguous_mail(&self) -> String {
        self.env
            .get("REKEY_DEV_AMBIGUOUS_MAIL")
            .cloned()
            .unwrap_or_else(|| format!("shared.mailbox@{}", self.get("REKEY_DEV_DNS_DOMAIN")))
    }

    /// One attribute's first value of `dn` (base search as Administrator on `ldap`).
    async fn attr(ldap: &mut Ldap, dn: &str, name: &str) -> Option<String> {
        Self::attr_if_there(ldap, dn, name)
            .await
            .unwrap_or_else(|| panic!("{dn} not found"))
    }

    /// [`Dev::attr`], or `None` when `dn` does not exist on that DC (not replicated yet).
    async fn attr_if_there(ldap: &mut Ldap, dn: &str, name: &str) -> Option<Option<String>> {
        let res = ldap
            .search(dn, Scope::Base, "(objectClass=*)", vec![name])
            .await
            .unwrap();
        if res.1.rc == 32 {
            return None;
        }
        let (found, _) = res
            .success()
            .unwrap_or_else(|e| panic!("read {name} of {dn}: {e}"));
        let entry = SearchEntry::construct(found.into_iter().next()?);
        Some(
            entry
                .attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.first().cloned()),
        )
    }

    /// The lockout threshold that applies to `dn`: its resultant PSO's, else the domain's.
    pub async fn lockout_threshold(&self, dn: &str) -> u32 {
        let mut admin = self.admin().await;
        let (at, attr) = match Self::attr(&mut admin, dn, "msDS-ResultantPSO").await {
            Some(pso) => (pso, "msDS-LockoutThreshold"),
            None => (self.get("REKEY_DEV_BASE_DN").to_owned(), "lockoutThreshold"),
        };
        Self::attr(&mut admin, &at, attr)
            .await
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {attr} on {at}"))
    }

    /// `badPwdCount` on every DC, `lockoutTime` and the computed lockout bit (invariant 35 checks).
    pub async fn lockout(&self, dn: &str) -> Lockout {
        let mut per_dc = Vec::new();
        for url in self.urls() {
            let mut admin = self.admin_at(&url).await;
            // A DC the new account has not reached yet saw no wrong password for it either.
            if let Some(v) = Self::attr_if_there(&mut admin, dn, "badPwdCount").await {
                per_dc.push((url, v.and_then(|v| v.parse().ok()).unwrap_or(0)));
            }
        }
        let mut admin = self.admin().await;
        let lockout_time = Self::attr(&mut admin, dn, "lockoutTime")
            .await
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let computed: u32 = Self::attr(&mut admin, dn, "msDS-User-Account-Control-Computed")
            .await
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Lockout {
            bad_pwd_count: per_dc.iter().map(|(_, n)| *n).max().unwrap_or(0),
            per_dc,
            lockout_time,
            locked: computed & 0x10 != 0,
        }
    }

    /// Modify anything as Administrator (fixture set-up only).
    pub async fn admin_modify(&self, dn: &str, mods: Vec<Mod<Vec<u8>>>) {
        let mut admin = self.admin().await;
        admin
            .modify(dn, mods)
            .await
            .unwrap()
            .success()
            .expect("admin modify");
    }

    /// Lock an account the way an attacker would: wrong simple binds up to the threshold.
    pub async fn lock_out(&self, dn: &str, threshold: u32) {
        for i in 0..threshold {
            let (rc, _) = self.bind(dn, &format!("wrong-{i}-password")).await;
            assert_eq!(rc, 49);
        }
    }

    /// Backdate `pwdLastSet` (Samba-only fixture step of `dev/domain`; LDAP allows only 0 / -1).
    pub fn backdate_password(&self, dn: &str, days: u32) {
        let script = repo().join("dev/domain");
        let out = Command::new(script)
            .args(["backdate-pwd", dn, &days.to_string()])
            .env("REKEY_DEV_DIR", self.get("REKEY_DEV_DIR"))
            .output()
            .expect("dev/domain");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Get a Kerberos ticket with MIT kinit (from krb5-user) against the dev KDC.
    pub fn kinit(&self, sam: &str, password: &str) -> Krb {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let ccache = std::env::temp_dir().join(format!("rekey-test-cc-{}-{n}", std::process::id()));
        let principal = format!("{sam}@{}", self.get("REKEY_DEV_REALM"));
        let mut child = Command::new("kinit")
            .arg(&principal)
            .env("KRB5_CONFIG", self.get("REKEY_DEV_KRB5_CONFIG"))
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kinit (krb5-user) installed");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let _ = std::fs::remove_file(&ccache);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Krb::Ok
        } else if text.contains("Preauthentication failed") || text.contains("Password incorrect") {
            Krb::WrongPassword
        } else if text.to_lowercase().contains("expired") {
            Krb::Expired
        } else {
            Krb::Other(text)
        }
    }
}

pub fn unicode_pwd(p: &str) -> Vec<u8> {
    format!("\"{p}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM")
}
