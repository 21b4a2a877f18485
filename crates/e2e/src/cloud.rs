//! The cloud landing zone for tests: the local Graph TEST DOUBLE (`rekey-graph-double`, not
//! Microsoft Graph) started in-process, with the dev domain as its on-prem side over LDAPS, so a
//! synced cloud user's password is whatever the dev DC says (after the simulated password hash
//! sync). One app registration with a client secret (in a 0600 file), the permissions Rekey
//! needs and the role User Administrator.
//!
//! ```no_run
//! # async fn demo() {
//! use rekey_e2e::cloud::Cloud;
//! let dev = rekey_e2e::dev::dev();
//! let dir = std::env::temp_dir().join("my-test");
//! let cloud = Cloud::start(&dev, &dir).await;          // sync delay 1 s, every 200 ms
//! let u = dev.staff_user("cloudy").await;
//! let id = cloud.synced(&dev, &u).await;                // immutableId = base64(objectGUID)
//! assert!(cloud.cloud_sign_in(&cloud.upn_of(&id), &u.password).await);
//! let dave = cloud.cloud_only("dave.diaz@corp.example.com", "Cloud-Only-Pw-1");
//! cloud.admin_role(&dave, "Global Administrator");
//! # }
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)] // test fixtures panic by design

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::{Scope, SearchEntry};
use rekey_graph_double::ad::{AdConfig, LdapOnPrem};
use rekey_graph_double::{
    AppSpec, Double, MemOnPrem, OnPremUser, Options, PasswordOracle, SyncSettings, UserSpec,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::dev::{Dev, User};

/// The tenant name the harness uses (the double accepts any).
pub const TENANT: &str = "corp-dev";
/// What the app registration is granted.
pub const PERMISSIONS: &[&str] = &[
    "User-PasswordProfile.ReadWrite.All",
    "User.Read.All",
    "User.RevokeSessions.All",
];
/// The directory role of the app's service principal.
pub const APP_ROLE: &str = "User Administrator";

/// A running double with the dev domain as its on-prem side.
pub struct Cloud {
    /// The double itself (control methods: `set_sync`, `throttle`, `requests`, `user`, …).
    pub double: Double,
    /// The tenant in the token URL.
    pub tenant: String,
    /// The app registration's client id.
    pub client_id: String,
    /// Its client secret (also in `secret_file`).
    pub client_secret: String,
    /// A 0600 file holding the client secret, no trailing newline.
    pub secret_file: PathBuf,
    /// The on-prem side the double reads (service account `svc-rekey`, DC1 over LDAPS).
    pub on_prem: Arc<LdapOnPrem>,
}

impl Cloud {
    /// [`Cloud::start_with`] with sync running, 1 s delay.
    pub async fn start(dev: &Dev, dir: &Path) -> Cloud {
        Self::start_with(
            dev,
            dir,
            SyncSettings {
                paused: false,
                delay_ms: 1000,
            },
        )
        .await
    }

    /// Starts the double on a free loopback port (sync loop every 200 ms) and registers the
    /// app; writes `dir/entra-secret` (0600). `dir` is created if missing.
    pub async fn start_with(dev: &Dev, dir: &Path, sync: SyncSettings) -> Cloud {
        let bind_password = std::fs::read_to_string(dev.get("REKEY_DEV_SVC_PASSWORD_FILE"))
            .expect("service account password file")
            .trim_end()
            .to_owned();
        let on_prem = Arc::new(
            LdapOnPrem::new(AdConfig {
                url: dev.dc1_url(),
                ca_file: dev.get("REKEY_DEV_CA_FILE").into(),
                bind_dn: dev.get("REKEY_DEV_SVC_DN").to_owned(),
                bind_password,
                base_dn: dev.get("REKEY_DEV_BASE_DN").to_owned(),
            })
            .expect("LDAPS on-prem side"),
        );
        let mut opts = Options::in_memory(&MemOnPrem::new());
        opts.oracle = on_prem.clone();
        opts.source = on_prem.clone();
        opts.sync = sync;
        let double = Double::start_with(opts)
            .await
            .expect("start the Graph double");
        let client_id = rekey_graph_double::new_object_id();
        let client_secret = format!(
            "dbl~{}",
            rekey_graph_double::new_object_id().replace('-', "")
        );
        double
            .add_app(
                AppSpec::new(&client_id)
                    .secret(&client_secret)
                    .permissions(PERMISSIONS)
                    .roles(&[APP_ROLE]),
            )
            .expect("app registration");
        std::fs::create_dir_all(dir).expect("harness dir");
        let secret_file = dir.join("entra-secret");
        let _ = std::fs::remove_file(&secret_file);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&secret_file)
            .and_then(|mut f| f.write_all(client_secret.as_bytes()))
            .expect("write the client secret file");
        Cloud {
            double,
            tenant: TENANT.to_owned(),
            client_id,
            client_secret,
            secret_file,
            on_prem,
        }
    }

    /// `http://127.0.0.1:PORT`: both the login base and the Graph base (Graph is under `/v1.0`).
    #[must_use]
    pub fn base_url(&self) -> String {
        self.double.base_url().to_owned()
    }

    /// The tenant's token endpoint.
    #[must_use]
    pub fn token_url(&self) -> String {
        self.double.token_url(&self.tenant)
    }

    /// `objectGUID` of `dn` as an immutableId: standard base64 of its 16 raw bytes, read as
    /// Administrator (independently of the double).
    pub async fn objectguid_b64(dev: &Dev, dn: &str) -> String {
        let (_, guid) = ad_facts(dev, dn).await;
        rekey_graph_double::immutable_id(&guid)
    }

    /// Registers a synced cloud user for `user` (see [`Cloud::synced_with_roles`]).
    pub async fn synced(&self, dev: &Dev, user: &User) -> String {
        self.synced_with_roles(dev, user, &[]).await
    }

    /// Registers a synced cloud user for the AD account `user`: a fresh object id, the UPN as
    /// AD has it (else `{sam}@{dns domain}`), immutableId = base64(objectGUID),
    /// onPremisesSamAccountName and onPremisesDistinguishedName from AD, directory `roles`.
    /// Its lastPasswordChangeDateTime starts at now (already in sync).
    ///
    /// Then checks `user.password` once against the DC through the double's oracle, so the
    /// oracle remembers it: Samba keeps accepting a previous password on simple binds for an
    /// hour, and the double refuses an old password only if it saw it work (a wrong
    /// `user.password` here costs one bad bind on the account). Returns the object id.
    pub async fn synced_with_roles(&self, dev: &Dev, user: &User, roles: &[&str]) -> String {
        let (upn, guid) = ad_facts(dev, &user.dn).await;
        let upn =
            upn.unwrap_or_else(|| format!("{}@{}", user.sam, dev.get("REKEY_DEV_DNS_DOMAIN")));
        let id = rekey_graph_double::new_object_id();
        let mut spec = UserSpec::synced(
            &id,
            &upn,
            &rekey_graph_double::immutable_id(&guid),
            &user.sam,
        )
        .roles(roles);
        spec.on_premises_distinguished_name = Some(user.dn.clone());
        let on_prem = OnPremUser {
            sam_account_name: Some(user.sam.clone()),
            distinguished_name: Some(user.dn.clone()),
            user_principal_name: upn,
        };
        self.double.add_user(spec);
        let _ = self.on_prem.check(&on_prem, &user.password).await;
        id
    }

    /// Registers a separately managed cloud-only account (matched to AD by UPN only) with a
    /// cloud password. Returns its object id.
    pub fn cloud_only(&self, upn: &str, password: &str) -> String {
        self.cloud_only_with_roles(upn, password, &[])
    }

    /// [`Cloud::cloud_only`] holding directory `roles`.
    pub fn cloud_only_with_roles(&self, upn: &str, password: &str, roles: &[&str]) -> String {
        let id = rekey_graph_double::new_object_id();
        self.double
            .add_user(UserSpec::cloud(&id, upn, password).roles(roles));
        id
    }

    /// Adds a directory role (e.g. `Global Administrator`) to an existing cloud user.
    pub fn admin_role(&self, id_or_upn: &str, role: &str) {
        assert!(
            self.double.grant_roles(id_or_upn, &[role]),
            "no cloud user {id_or_upn}"
        );
    }

    /// The user's full view (every property, plus the double's `syncPending`, `directoryRoles`).
    #[must_use]
    pub fn user(&self, id_or_upn: &str) -> Value {
        self.double
            .user(id_or_upn)
            .unwrap_or_else(|| panic!("no cloud user {id_or_upn}"))
    }

    /// The cloud user's userPrincipalName.
    #[must_use]
    pub fn upn_of(&self, id: &str) -> String {
        self.user(id)["userPrincipalName"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `lastPasswordChangeDateTime` (ISO 8601, seconds).
    #[must_use]
    pub fn last_password_change(&self, id_or_upn: &str) -> String {
        self.user(id_or_upn)["lastPasswordChangeDateTime"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Pauses the password hash sync (nothing is observed or applied until resumed).
    pub fn pause_sync(&self) {
        let delay_ms = self.double.sync_settings().delay_ms;
        self.double.set_sync(SyncSettings {
            paused: true,
            delay_ms,
        });
    }

    /// Resumes the sync with a delay.
    pub fn resume_sync(&self, delay: Duration) {
        self.double.set_sync(SyncSettings {
            paused: false,
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        });
    }

    /// Waits until `lastPasswordChangeDateTime` differs from `before`; how long that took, or
    /// `None` after `timeout`.
    pub async fn wait_last_change_moves(
        &self,
        id: &str,
        before: &str,
        timeout: Duration,
    ) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.last_password_change(id) != before {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// An app-only access token (client credentials with the secret), as Rekey gets one.
    pub async fn app_token(&self) -> String {
        let body = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("scope", rekey_graph_double::GRAPH_DEFAULT_SCOPE),
        ]);
        let path = format!("/{}/oauth2/v2.0/token", self.tenant);
        let (status, text) =
            request(&self.double.addr().to_string(), "POST", &path, &[], &body).await;
        assert_eq!(status, 200, "client credentials: {text}");
        let v: Value = serde_json::from_str(&text).expect("token JSON");
        v["access_token"].as_str().expect("access_token").to_owned()
    }

    /// `GET {graph}{path_and_query}` with an app token (`path_and_query` starts with `/v1.0/`,
    /// query already percent-encoded): status and JSON body.
    pub async fn graph_get(&self, path_and_query: &str) -> (u16, Value) {
        let auth = format!("Bearer {}", self.app_token().await);
        let (status, text) = request(
            &self.double.addr().to_string(),
            "GET",
            path_and_query,
            &[("Authorization", &auth)],
            "",
        )
        .await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// ROPC (`grant_type=password`) at the double's token endpoint over plain HTTP: does the
    /// cloud accept this password now? (For a synced user: the sync caught up and the DC
    /// accepts it.)
    pub async fn cloud_sign_in(&self, upn: &str, password: &str) -> bool {
        let body = form(&[
            ("grant_type", "password"),
            ("client_id", &self.client_id),
            ("scope", "openid profile offline_access"),
            ("username", upn),
            ("password", password),
        ]);
        let path = format!("/{}/oauth2/v2.0/token", self.tenant);
        let (status, text) =
            request(&self.double.addr().to_string(), "POST", &path, &[], &body).await;
        match status {
            200 => true,
            400 if text.contains("invalid_grant") => false,
            _ => panic!("ROPC answered {status}: {text}"),
        }
    }
}

/// `userPrincipalName` and the raw `objectGUID` of `dn`, read as Administrator.
async fn ad_facts(dev: &Dev, dn: &str) -> (Option<String>, Vec<u8>) {
    let mut admin = dev.admin().await;
    let (found, _) = admin
        .search(
            dn,
            Scope::Base,
            "(objectClass=*)",
            vec!["objectGUID", "userPrincipalName"],
        )
        .await
        .unwrap()
        .success()
        .unwrap_or_else(|e| panic!("read {dn}: {e}"));
    let _ = admin.unbind().await;
    let entry = SearchEntry::construct(found.into_iter().next().expect("the entry"));
    let guid = entry
        .bin_attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("objectGUID"))
        .and_then(|(_, v)| v.first().cloned())
        .unwrap_or_else(|| panic!("{dn} has no objectGUID"));
    assert_eq!(guid.len(), 16, "objectGUID of {dn}");
    let upn = entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("userPrincipalName"))
        .and_then(|(_, v)| v.first().cloned());
    (upn, guid)
}

fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes a query value (for `$filter=… eq '…'`).
#[must_use]
pub fn query_value(s: &str) -> String {
    form(&[("x", s)])[2..].to_owned()
}

/// One request on a fresh connection (`Connection: close`, body as a form): status and body
/// (de-chunked).
async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method != "GET" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    (
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_owned()
        },
    )
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
