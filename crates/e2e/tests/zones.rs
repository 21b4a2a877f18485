//! One reset, every landing zone: the portal over HTTP against the real Samba DC(s), a real SMTP
//! server (aiosmtpd), SQLite, and the local Graph TEST DOUBLE (`rekey-graph-double`, written
//! from Microsoft's documented contract; not Microsoft Graph) whose simulated password hash sync
//! reads the dev DC. Each test prints what it measured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rekey::config::{Config, EntraSection};
use rekey_core::store::Store;
use rekey_directory::{ActiveDirectory, AdConfig};
use rekey_e2e::cloud::Cloud;
use rekey_e2e::dev::{Dev, Krb, User, dev};
use rekey_e2e::http::{Answer, Client};
use rekey_e2e::{Browser, portal};
use rekey_notify::testing::SmtpSink;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

/// The portal with `[entra]` pointing at the double.
struct Stack {
    portal: Option<portal::Portal>,
    sink: SmtpSink,
    ad: Arc<ActiveDirectory>,
    cloud: Cloud,
    sync_deadline_secs: i64,
}

fn tune(cloud: &Cloud, sync_deadline_secs: i64) -> impl FnOnce(&mut Config) + use<> {
    let section = EntraSection {
        enabled: true,
        tenant: Some(cloud.tenant.clone()),
        client_id: Some(cloud.client_id.clone()),
        client_secret_file: Some(cloud.secret_file.clone()),
        login_base_url: cloud.base_url(),
        graph_base_url: cloud.base_url(),
        anchor: "object_guid".into(),
        revoke_sessions: true,
        sync_deadline_secs: Some(sync_deadline_secs),
        sync_poll_secs: Some(1),
        ..EntraSection::default()
    };
    move |c: &mut Config| {
        c.entra = Some(section);
        c.engine.per_ip_attempts_per_hour = Some(10_000);
        c.engine.emails_per_user_per_hour = Some(10_000);
        if let Some(s) = c.server.as_mut() {
            s.identify_deadline_ms = 150;
            s.answer_deadline_ms = 150;
            s.password_deadline_ms = 300;
        }
    }
}

async fn stack(d: &Dev, sync_deadline_secs: i64) -> Stack {
    stack_with(d, sync_deadline_secs, |_| {}).await
}

/// [`stack`] with `more` applied to the configuration after the `[entra]` tuning.
async fn stack_with(d: &Dev, sync_deadline_secs: i64, more: impl FnOnce(&mut Config)) -> Stack {
    let mut cfg = AdConfig::new(d.urls(), d.get("REKEY_DEV_SVC_DN"));
    cfg.ca_file = Some(d.get("REKEY_DEV_CA_FILE").into());
    cfg.bind_password_file = Some(d.get("REKEY_DEV_SVC_PASSWORD_FILE").into());
    let ad = Arc::new(ActiveDirectory::connect(&cfg).await.unwrap());
    let dir = std::env::temp_dir().join(format!(
        "rekey-zones-{}-{}",
        std::process::id(),
        rekey_graph_double::new_object_id()
    ));
    let cloud = Cloud::start(d, &dir).await;
    let sink = SmtpSink::start();
    let entra = tune(&cloud, sync_deadline_secs);
    let portal = portal::start(d, &sink.mailer_config(), |c| {
        entra(c);
        more(c);
    })
    .await
    .unwrap();
    Stack {
        portal: Some(portal),
        sink,
        ad,
        cloud,
        sync_deadline_secs,
    }
}

fn code_in(body: &str) -> Option<String> {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .map(str::to_owned)
}

impl Stack {
    fn portal(&self) -> &portal::Portal {
        self.portal.as_ref().unwrap()
    }

    /// `rekey serve` killed and started again over the same store and key.
    async fn restart(&mut self, d: &Dev) {
        let old = self.portal.take().unwrap();
        let new = old
            .restart(
                d,
                &self.sink.mailer_config(),
                tune(&self.cloud, self.sync_deadline_secs),
            )
            .await
            .unwrap();
        self.portal = Some(new);
    }

    /// Enroll `u`'s recovery address directly in the store; returns the address.
    async fn enroll(&self, u: &User) -> String {
        portal::enroll(self.portal(), &self.ad, u).await
    }

    /// Identify, the mailed code, the new password: the answer to the last post.
    async fn reset(&self, u: &User, new: &str) -> (Client, Answer) {
        let address = self.enroll(u).await;
        let c = Client::new(self.portal().port).await;
        let a = c.post("/reset", None, &[("username", &u.sam)]).await;
        let flow = a.cookie("__Host-rekey-flow").unwrap();
        let mail = self.sink.wait_for(&address, WAIT).await;
        let code = code_in(&mail.body).unwrap();
        let a = c.post("/reset/code", Some(&flow), &[("code", &code)]).await;
        let flow = a.cookie("__Host-rekey-flow").unwrap();
        let a = c
            .post(
                "/reset/password",
                Some(&flow),
                &[("new_password", new), ("confirm_password", new)],
            )
            .await;
        (c, a)
    }

    /// Follow the result page (`/reset/done`, as its refresh does) until `zone_state` shows.
    async fn until(
        &self,
        c: &Client,
        answer: &Answer,
        zone_state: &str,
        within: Duration,
    ) -> (Answer, Duration) {
        let receipt = answer
            .cookie("__Host-rekey-flow")
            .expect("a receipt cookie");
        let started = Instant::now();
        loop {
            let c = Client {
                port: self.portal().port,
                csrf: c.csrf.clone(),
            };
            let a = c.get("/reset/done", Some(&receipt)).await;
            if a.body.contains(zone_state) {
                return (a, started.elapsed());
            }
            assert!(
                started.elapsed() < within,
                "no {zone_state} within {within:?}: {}",
                a.body
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The newest audit record of `operation`.
    async fn last(&self, operation: &str) -> Value {
        let records = self.audit().await;
        let found = records
            .into_iter()
            .rev()
            .find(|r| r["operation"] == operation);
        found.unwrap_or_else(|| panic!("no {operation} record"))
    }

    /// The audit records, newest last.
    async fn audit(&self) -> Vec<Value> {
        let records = self.portal().store.audit_after(0, 100_000).await.unwrap();
        records
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    }
}

/// A synced cloud twin of `u`. The double dates its last password change "now", in whole
/// seconds like Graph: wait past that second, so the reset's change is a later one (as it is
/// for a real user, whose last change was days ago).
async fn synced(s: &Stack, d: &Dev, u: &User, roles: &[&str]) -> String {
    let id = s.cloud.synced_with_roles(d, u, roles).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    id
}

/// A fresh staff user with a separately managed cloud-only account of the same UPN (cloud
/// password `OLD_CLOUD`); returns the user and the UPN.
async fn cloud_only(s: &Stack, d: &Dev, tag: &str) -> (User, String) {
    let u = d.staff_user(tag).await;
    let upn = format!("{}@{}", u.sam, d.get("REKEY_DEV_REALM").to_lowercase());
    s.cloud.cloud_only(&upn, OLD_CLOUD);
    (u, upn)
}

const OLD_CLOUD: &str = "Cloud-Old-Pw-1!";

fn row(zone: &str, state: &str) -> String {
    format!(r#"<tr data-state="{state}"><td>{zone}"#)
}
const AD: &str = "Active Directory";
const M365: &str = "Microsoft 365 (Entra ID)";

/// A new password for a test (never the tag itself: that is the user's display name, which
/// AD's complexity rule keeps out of passwords).
fn new_password(tag: &str) -> String {
    format!("Harbor-Lamp-{}-{}", tag.len(), std::process::id() % 100_000)
}

#[tokio::test]
async fn a_synced_users_reset_lands_in_ad_and_is_proven_in_the_cloud() {
    let d = dev();
    let mut s = stack(&d, 60).await;
    s.cloud.resume_sync(Duration::from_secs(3));
    let u = d.staff_user("synced").await;
    let id = synced(&s, &d, &u, &[]).await;
    let upn = s.cloud.upn_of(&id);
    let new = new_password("sync");
    let (c, a) = s.reset(&u, &new).await;
    assert!(a.body.contains(&row(AD, "landed")), "{}", a.body);
    assert!(a.body.contains(&row(M365, "pending")));
    assert!(
        a.body
            .contains(r#"<meta http-equiv="refresh" content="5; url=/reset/done">"#)
    );
    // On-premises at once: LDAP bind and Kerberos; the cloud not yet.
    assert_eq!(d.bind(&u.dn, &new).await.0, 0);
    assert_eq!(d.kinit(&u.sam, &new), Krb::Ok);
    assert!(!s.cloud.cloud_sign_in(&upn, &new).await, "before the sync");
    // The pending proof is in the store: a restarted portal finishes it.
    s.restart(&d).await;
    let (done, waited) = s
        .until(&c, &a, "synced after", Duration::from_secs(30))
        .await;
    assert!(done.body.contains(&row(M365, "synced")));
    assert!(!done.body.contains("http-equiv=\"refresh\""), "final");
    assert!(s.cloud.cloud_sign_in(&upn, &new).await, "after the sync");
    let proof = s.last("sync_proof").await;
    let note = proof["zones"][0]["note"].as_str().unwrap().to_owned();
    let secs: u64 = note
        .strip_prefix("synced after ")
        .and_then(|r| r.strip_suffix(" s"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{proof}"));
    assert!(
        secs >= 3,
        "not before the double's 3 s sync delay: {secs} s"
    );
    assert_eq!(proof["result"], "ok");
    assert!(
        s.cloud
            .double
            .requests()
            .iter()
            .all(|r| r.method != "PATCH"),
        "a synced user is never PATCHed"
    );
    println!(
        "synced user: AD landed at once; portal restarted while pending; Microsoft 365 {note} \
         (double's sync delay 3 s; the page saw it {waited:?} after the restart)"
    );
}

#[tokio::test]
async fn with_the_sync_stopped_the_proof_ends_not_synced_and_says_so() {
    let d = dev();
    let s = stack(&d, 4).await;
    s.cloud.pause_sync();
    let u = d.staff_user("nosync").await;
    synced(&s, &d, &u, &[]).await;
    let new = new_password("nosync");
    let (c, a) = s.reset(&u, &new).await;
    assert!(a.body.contains(&row(M365, "pending")));
    let (done, _) = s
        .until(&c, &a, "not synced within", Duration::from_secs(20))
        .await;
    assert!(
        done.body.contains(&row(M365, "not_synced")),
        "{}",
        done.body
    );
    let proof = s.last("sync_proof").await;
    assert_eq!(proof["result"], "failed");
    assert_eq!(
        proof["zones"][0]["note"],
        "not synced within 1 min (check password hash sync)"
    );
    assert_eq!(d.bind(&u.dn, &new).await.0, 0, "AD has it");
    println!("sync paused: {}", proof["zones"][0]["note"]);
}

#[tokio::test]
async fn a_cloud_only_account_is_written_after_ad_and_signs_in() {
    let d = dev();
    let s = stack(&d, 60).await;
    let (u, upn) = cloud_only(&s, &d, "cloudonly").await;
    let new = new_password("cloud");
    let started = Instant::now();
    let (_, a) = s.reset(&u, &new).await;
    let took = started.elapsed();
    assert!(a.body.contains(&row(AD, "landed")), "{}", a.body);
    assert!(a.body.contains(&row(M365, "landed")));
    assert!(!a.body.contains("http-equiv=\"refresh\""));
    assert_eq!(d.bind(&u.dn, &new).await.0, 0);
    assert!(
        s.cloud.cloud_sign_in(&upn, &new).await,
        "the token endpoint takes it"
    );
    assert!(!s.cloud.cloud_sign_in(&upn, OLD_CLOUD).await);
    let patches: Vec<_> = s
        .cloud
        .double
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0].status, 204);
    let last = s.audit().await.pop().unwrap();
    assert_eq!(last["result"], "ok");
    assert_eq!(last["zones"][1]["outcome"], "landed");
    // revoke_sessions: the user's cloud sessions end, and the page and the audit say so.
    assert!(
        a.body.contains("signed out of existing sessions"),
        "{}",
        a.body
    );
    assert_eq!(last["zones"][1]["note"], "sessions revoked");
    let revokes = s.cloud.double.requests().into_iter();
    let revokes: Vec<_> = revokes
        .filter(|r| r.path.ends_with("/revokeSignInSessions"))
        .collect();
    assert_eq!(revokes.len(), 1, "{revokes:?}");
    println!(
        "cloud-only account: both zones landed, sessions revoked; identify → result took {took:?}"
    );
}

#[tokio::test]
async fn a_cloud_admin_is_refused_before_anything_is_written() {
    let d = dev();
    let s = stack(&d, 60).await;
    let u = d.staff_user("cloudadmin").await;
    s.cloud
        .synced_with_roles(&d, &u, &["Global Administrator"])
        .await;
    let new = new_password("admin");
    let (_, a) = s.reset(&u, &new).await;
    assert!(a.body.contains("administrator role"), "{}", a.body);
    assert!(
        a.body.contains("RK-ZONE-002"),
        "the error page with its code"
    );
    assert!(
        !a.body.contains("new_password"),
        "not the password form again"
    );
    assert_ne!(d.bind(&u.dn, &new).await.0, 0, "AD untouched");
    assert_eq!(d.bind(&u.dn, &u.password).await.0, 0);
    let last = s.audit().await.pop().unwrap();
    assert_eq!(last["detail"], "refused_before_writing");
    assert_eq!(last["zones"][0]["code"], "RK-ZONE-002");
}

#[tokio::test]
async fn retry_after_one_and_a_half_seconds_is_honoured() {
    let d = dev();
    let s = stack(&d, 60).await;
    let (u, upn) = cloud_only(&s, &d, "throttle").await;
    let new = new_password("throttle");
    // The next Graph request (the plan's look-up, before AD is written) answers 429.
    let before = s.cloud.double.requests().len();
    s.cloud.double.throttle(1, "1.5");
    let (_, a) = s.reset(&u, &new).await;
    assert!(a.body.contains(&row(M365, "landed")), "{}", a.body);
    let log = s.cloud.double.requests();
    let log = &log[before..];
    let at = log.iter().position(|r| r.status == 429).expect("a 429");
    let gap = log[at + 1].at_unix_ms - log[at].at_unix_ms;
    assert!(gap >= 1500, "asked again after {gap} ms");
    assert!(s.cloud.cloud_sign_in(&upn, &new).await);
    println!("429 Retry-After 1.5: asked again after {gap} ms, then landed");
}

#[tokio::test]
async fn a_cloud_failure_after_ad_landed_is_retried_from_the_outbox_after_a_restart() {
    let d = dev();
    let mut s = stack(&d, 60).await;
    let (u, upn) = cloud_only(&s, &d, "restart").await;
    let new = new_password("restart");
    // Graph throttles with a wait longer than Rekey waits inside a request: AD lands, the
    // cloud write is queued for 4 s.
    s.cloud.double.throttle(1, "4");
    let (c, a) = s.reset(&u, &new).await;
    assert!(a.body.contains(&row(AD, "landed")), "{}", a.body);
    assert!(a.body.contains(&row(M365, "queued")));
    assert_eq!(d.bind(&u.dn, &new).await.0, 0);
    // Killed before the retry was due; a new process finds the job in the store.
    s.restart(&d).await;
    let started = Instant::now();
    let (done, _) = s
        .until(&c, &a, &row(M365, "landed"), Duration::from_secs(30))
        .await;
    assert!(!done.body.contains("http-equiv=\"refresh\""));
    assert!(s.cloud.cloud_sign_in(&upn, &new).await);
    let records = s.audit().await;
    let retry = records
        .iter()
        .rev()
        .find(|r| {
            r["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("outbox retry"))
        })
        .unwrap();
    assert_eq!(retry["actor"], "system");
    assert_eq!(retry["zones"][0]["outcome"], "landed");
    let reset = records
        .iter()
        .find(|r| r["operation"] == "reset" && r["actor"] == "user")
        .unwrap();
    assert_eq!(
        reset["support_id"], retry["support_id"],
        "one support id for the whole reset"
    );
    assert_eq!(reset["zones"][1]["outcome"], "queued");
    println!(
        "cloud write queued (429, Retry-After 4), portal restarted, landed {:?} after the restart",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_banned_password_is_refused_before_either_zone_is_written() {
    let d = dev();
    let s = stack(&d, 60).await;
    let (u, upn) = cloud_only(&s, &d, "bannedz").await;
    let (_, a) = s.reset(&u, "P@ssw0rd2026").await;
    assert!(a.body.contains("Too easy to guess"), "{}", a.body);
    assert_ne!(d.bind(&u.dn, "P@ssw0rd2026").await.0, 0);
    assert!(!s.cloud.cloud_sign_in(&upn, "P@ssw0rd2026").await);
    assert!(
        s.cloud
            .double
            .requests()
            .iter()
            .all(|r| r.method != "PATCH")
    );
}

/// The per-zone result page in Chromium: pending, then (its own refresh) synced.
#[tokio::test]
async fn the_browser_shows_each_zone_and_the_page_follows_the_sync() {
    let d = dev();
    let s = stack(&d, 60).await;
    s.cloud.resume_sync(Duration::from_secs(4));
    let u = d.staff_user("zonesbrowser").await;
    synced(&s, &d, &u, &[]).await;
    let address = s.enroll(&u).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/reset", s.portal().url)).await.unwrap();
    b.fill("#username", &u.sam).await.unwrap();
    b.submit("button[type=submit]").await.unwrap();
    b.wait_for("#code", WAIT).await.unwrap();
    let mail = s.sink.wait_for(&address, WAIT).await;
    b.fill("#code", &code_in(&mail.body).unwrap())
        .await
        .unwrap();
    b.submit("button[type=submit]").await.unwrap();
    b.wait_for("#new_password", WAIT).await.unwrap();
    let new = new_password("browser");
    b.fill("#new_password", &new).await.unwrap();
    b.fill("#confirm_password", &new).await.unwrap();
    b.submit("button[type=submit]").await.unwrap();
    b.wait_for("tr[data-state=pending]", WAIT).await.unwrap();
    b.screenshot("zones-01-pending").await.unwrap();
    // No script: the page's own <meta> refresh brings the proof.
    b.wait_for("tr[data-state=synced]", Duration::from_secs(30))
        .await
        .unwrap();
    let text = b.text("table.zones").await.unwrap();
    assert!(text.contains("synced after"), "{text}");
    b.screenshot("zones-02-synced").await.unwrap();
}

/// A local HIBP-style range server (`GET /range/{5 hex}` → `SUFFIX:COUNT` lines) that knows one
/// password; returns its base URL and the paths it was asked.
async fn range_server(leaked: &str) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use sha1::Digest as _;
    let hex: String = sha1::Sha1::digest(leaked.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let (prefix, suffix) = hex.split_at(5);
    let body = format!("0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n{suffix}:4021\r\n");
    let (prefix, asked) = (
        prefix.to_owned(),
        Arc::new(std::sync::Mutex::new(Vec::new())),
    );
    let seen = asked.clone();
    let app = axum::Router::new().route(
        "/range/{prefix}",
        axum::routing::get(move |axum::extract::Path(p): axum::extract::Path<String>| {
            seen.lock().unwrap().push(format!("/range/{p}"));
            let answer = if p == prefix {
                body.clone()
            } else {
                String::new() + "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n"
            };
            async move { answer }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, asked)
}

#[tokio::test]
async fn a_breached_password_is_refused_before_either_zone_and_only_a_prefix_leaves() {
    let d = dev();
    const LEAKED: &str = "Harbor-Lamp-Leaked-77";
    let (url, asked) = range_server(LEAKED).await;
    let s = stack_with(&d, 60, |c| c.passwords.breached_range_url = Some(url)).await;
    let (u, upn) = cloud_only(&s, &d, "breachedz").await;
    let (_, a) = s.reset(&u, LEAKED).await;
    assert!(a.body.contains("leaked in data breaches"), "{}", a.body);
    assert_ne!(d.bind(&u.dn, LEAKED).await.0, 0, "AD untouched");
    assert!(
        !s.cloud.cloud_sign_in(&upn, LEAKED).await,
        "Entra untouched"
    );
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(
        asked[0].len(),
        "/range/".len() + 5,
        "only a 5-hex prefix: {asked:?}"
    );
    // Another password passes the same check and lands in both zones.
    let new = new_password("breachedz");
    let (_, a) = s.reset(&u, &new).await;
    assert!(a.body.contains(&row(M365, "landed")), "{}", a.body);
}

#[tokio::test]
async fn a_change_with_the_current_password_reaches_the_cloud_twin_too() {
    let d = dev();
    let s = stack(&d, 60).await;
    let (u, upn) = cloud_only(&s, &d, "changez").await;
    let new = new_password("changez");
    let c = Client::new(s.portal().port).await;
    let a = c
        .post(
            "/change",
            None,
            &[
                ("username", u.sam.as_str()),
                ("current_password", u.password.as_str()),
                ("new_password", new.as_str()),
                ("confirm_password", new.as_str()),
            ],
        )
        .await;
    assert!(a.body.contains(&row(AD, "landed")), "{}", a.body);
    assert!(a.body.contains(&row(M365, "landed")));
    assert_eq!(d.bind(&u.dn, &new).await.0, 0);
    assert!(s.cloud.cloud_sign_in(&upn, &new).await);
    assert!(!s.cloud.cloud_sign_in(&upn, OLD_CLOUD).await);
    let last = s.last("change").await;
    assert_eq!(last["result"], "ok");
    assert_eq!(last["zones"][1]["outcome"], "landed");
}
