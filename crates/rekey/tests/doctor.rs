//! `rekey doctor` against the dev domain (`dev/domain up`): every failing check provoked for
//! real. Clock skew cannot be provoked on a live DC (its clock is this host's); its evaluation is
//! unit-tested in `src/doctor.rs`.
//!
//! Nothing here touches svc-rekey's rights or the fixture users: the accounts and OUs a test
//! needs are its own (unique names) and deleted at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rekey::config::Config;
use rekey::doctor::{Finding, Report, Status, diagnose};
use rekey_directory::AdConfig;
use rekey_directory::probe::Session;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

static N: AtomicUsize = AtomicUsize::new(0);

fn dev() -> rekey_e2e::dev::Dev {
    rekey_e2e::dev::dev()
}

fn tmp(name: &str) -> PathBuf {
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("rekey-doctor-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A minimal SMTP server: greets, answers EHLO/NOOP/RSET/QUIT, never takes mail.
async fn smtp_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 doctor-test ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-doctor-test\r\n250 8BITMIME\r\n",
                        "QUIT" => b"221 bye\r\n",
                        _ => b"250 OK\r\n",
                    };
                    if w.write_all(answer).await.is_err() || verb == "QUIT" {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// A port with nothing listening.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The dev domain as an admin would configure it (scope: SSPR-Users), written as TOML and
/// loaded like `rekey` does, with a migrated SQLite store and a listening SMTP server.
async fn config_file(dir: &Path, smtp_port: u16, extra: &str) -> PathBuf {
    let e = dev();
    let urls: Vec<String> = e.urls().iter().map(|u| format!("{u:?}")).collect();
    let key = dir.join("rekey.key");
    std::fs::write(&key, "5a".repeat(32)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let db = format!("sqlite://{}", dir.join("rekey.db").display());
    rekey_store::SqlStore::connect(&db)
        .await
        .unwrap()
        .close()
        .await;
    let path = dir.join("rekey.toml");
    let toml = format!(
        "version = 1\n[directory]\nurls = [{}]\nca_file = {:?}\nbind_dn = {:?}\nbind_password_file = {:?}\n\
         [server]\nlisten = \"0.0.0.0:8099\"\npublic_base_url = \"https://sspr.corp.example.com\"\n\
         secret_key_file = {:?}\n[store]\nurl = {db:?}\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\nfrom = \"Rekey <rekey@corp.example.com>\"\ntls = \"none\"\n\
         [scope]\ngroups = [{:?}]\n{extra}",
        urls.join(", "),
        e.get("REKEY_DEV_CA_FILE"),
        e.get("REKEY_DEV_SVC_DN"),
        e.get("REKEY_DEV_SVC_PASSWORD_FILE"),
        key,
        e.get("REKEY_DEV_SSPR_GROUP_DN"),
    );
    std::fs::write(&path, toml).unwrap();
    path
}

async fn config(name: &str) -> Config {
    let dir = tmp(name);
    let port = smtp_server().await;
    Config::load(&config_file(&dir, port, "").await).unwrap()
}

fn of<'a>(r: &'a Report, check: &'a str) -> Vec<&'a Finding> {
    r.of(check).collect()
}

fn one<'a>(r: &'a Report, check: &str, target: &str) -> &'a Finding {
    r.findings
        .iter()
        .find(|f| {
            f.check == check
                && f.target
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(target))
        })
        .unwrap_or_else(|| panic!("no {check} finding for {target}:\n{r}"))
}

#[tokio::test]
async fn dev_config_only_warns_where_the_dev_domain_deserves_it() {
    let e = dev();
    let mut c = config("dev").await;
    c.canary.enabled = true;
    c.canary.user = Some("alice.adams".into());
    let r = diagnose(&c).await;
    println!("{r}");
    assert_eq!(r.worst(), Status::Warn, "{r}");
    for url in e.urls() {
        assert_eq!(one(&r, "dc.certificate", &url).status, Status::Pass);
        assert_eq!(one(&r, "dc.bind", &url).status, Status::Pass);
        assert_eq!(one(&r, "dc.clock", &url).status, Status::Pass);
    }
    assert_eq!(of(&r, "pdc")[0].status, Status::Pass, "{r}");
    assert_eq!(one(&r, "rights", e.staff_ou()).status, Status::Pass);
    assert_eq!(
        one(&r, "rights", e.get("REKEY_DEV_CONTRACTORS_OU")).status,
        Status::Pass
    );
    assert_eq!(
        one(&r, "rights", e.get("REKEY_DEV_BASE_DN")).status,
        Status::Pass
    );
    // adam.outside is in SSPR-Users but lives in OU=Admins without delegation: a warning
    // (only the members there are affected), not a failure.
    let admins = one(&r, "rights", e.get("REKEY_DEV_ADMINS_OU"));
    assert_eq!(admins.status, Status::Warn);
    assert_eq!(admins.code, Some("RK-DOC-021"));
    // ivan.admin: privileged through IT-Admins → Domain Admins, in scope through Staff-All.
    let p = of(&r, "privileged")[0];
    assert_eq!(p.status, Status::Warn);
    assert!(
        p.details
            .iter()
            .any(|d| d == "ivan.admin: IT-Admins → Domain Admins"),
        "{p:?}"
    );
    for check in [
        "smtp",
        "store",
        "policy",
        "adminsdholder",
        "inheritance",
        "canary",
    ] {
        assert!(
            of(&r, check).iter().all(|f| f.status == Status::Pass),
            "{check}: {r}"
        );
    }
    let psos: Vec<&str> = of(&r, "policy.pso")
        .iter()
        .map(|f| f.summary.as_str())
        .collect();
    assert!(
        psos.iter()
            .any(|s| s.starts_with("PSO-Strict (precedence 10): min length 12")),
        "{psos:?}"
    );
    // With [gates.privileged] the privileged accounts are served: no warning.
    let mut c = config("dev-priv").await;
    c.gates.privileged = Some(toml_rule(
        "gates = 2\nmethods = [\"email_otp\", \"totp\", \"passkey\"]\nphishing_resistant = true\n",
    ));
    let r = diagnose(&c).await;
    assert_eq!(of(&r, "privileged")[0].status, Status::Pass, "{r}");
}

fn toml_rule(text: &str) -> rekey::config::methods::RuleSection {
    // Parsed through a whole config file, as rekey reads it.
    let path = tmp("rule").join("rekey.toml");
    let full = format!(
        "version = 1\n[directory]\nurls = [\"ldaps://x\"]\nbind_dn = \"CN=x\"\n[gates.privileged]\n{text}"
    );
    std::fs::write(&path, full).unwrap();
    Config::load(&path).unwrap().gates.privileged.unwrap()
}

#[tokio::test]
async fn a_dead_dc_url_fails() {
    let mut c = config("dead").await;
    let dead = format!("ldaps://127.0.0.1:{}", dead_port());
    c.directory.urls.push(dead.clone());
    let r = diagnose(&c).await;
    let f = one(&r, "dc.reachable", &dead);
    assert_eq!(
        (f.status, f.code),
        (Status::Fail, Some("RK-DOC-010")),
        "{r}"
    );
    assert_eq!(r.worst(), Status::Fail);
}

#[tokio::test]
async fn a_ca_that_did_not_issue_the_certificate_fails() {
    let mut c = config("ca").await;
    c.directory.ca_file = Some("/etc/ssl/certs/ca-certificates.crt".into());
    let r = diagnose(&c).await;
    for url in dev().urls() {
        let f = one(&r, "dc.certificate", &url);
        assert_eq!(
            (f.status, f.code),
            (Status::Fail, Some("RK-DOC-011")),
            "{r}"
        );
        assert!(f.summary.contains("not trusted"), "{f:?}");
    }
    assert!(
        of(&r, "directory")[0]
            .summary
            .contains("no DC could be bound"),
        "{r}"
    );
}

#[tokio::test]
async fn a_wrong_service_password_fails() {
    // A fresh account as bind_dn: wrong binds count toward a lockout, and svc-rekey is shared
    // by every test running now.
    let e = dev();
    let user = e.user("doctor-bind").await;
    let dir = tmp("bind");
    let mut c = config("bind").await;
    c.directory.bind_dn = user.dn.clone();
    c.directory.urls = vec![e.dc1_url()];
    std::fs::write(dir.join("wrong.pass"), "Not-The-Password-1!").unwrap();
    c.directory.bind_password_file = Some(dir.join("wrong.pass"));
    let r = diagnose(&c).await;
    let f = one(&r, "dc.bind", &e.dc1_url());
    assert_eq!(
        (f.status, f.code),
        (Status::Fail, Some("RK-DOC-013")),
        "{r}"
    );
    assert!(!r.to_string().contains("Not-The-Password-1!"));
    delete(&[user.dn]).await;
}

#[tokio::test]
async fn a_certificate_inside_the_warning_window_warns() {
    let mut c = config("warn-days").await;
    c.doctor.cert_warn_days = 100_000;
    let r = diagnose(&c).await;
    for url in dev().urls() {
        let f = one(&r, "dc.certificate", &url);
        assert_eq!(
            (f.status, f.code),
            (Status::Warn, Some("RK-DOC-012")),
            "{r}"
        );
    }
}

#[tokio::test]
async fn an_ou_without_delegation_in_allow_ous_fails_naming_the_rights() {
    let e = dev();
    let mut c = config("admins").await;
    c.scope.allow_ous = vec![e.get("REKEY_DEV_ADMINS_OU").to_owned()];
    let r = diagnose(&c).await;
    let f = one(&r, "rights", e.get("REKEY_DEV_ADMINS_OU"));
    assert_eq!(
        (f.status, f.code),
        (Status::Fail, Some("RK-DOC-020")),
        "{r}"
    );
    for right in [
        "Reset Password",
        "Change Password",
        "Write lockoutTime",
        "Write pwdLastSet",
    ] {
        assert!(f.summary.contains(right), "{right}: {f:?}");
    }
    assert!(
        f.fix.as_deref().unwrap_or_default().contains("svc-rekey"),
        "{f:?}"
    );
}

/// An LDAPS session to DC1 as Administrator (fixture set-up only).
async fn admin() -> Session {
    let e = dev();
    let mut a = AdConfig::new(vec![e.dc1_url()], e.get("REKEY_DEV_ADMIN_DN"));
    a.ca_file = Some(e.get("REKEY_DEV_CA_FILE").into());
    a.bind_password_file = Some(e.get("REKEY_DEV_ADMIN_PASSWORD_FILE").into());
    Session::open(&a, &e.dc1_url()).await.unwrap()
}

async fn delete(dns: &[String]) {
    let mut ldap = dev().admin().await;
    for dn in dns {
        let _ = ldap.delete(dn).await;
    }
}

/// A self-relative SD with a protected DACL: BUILTIN\Administrators full control, Authenticated
/// Users read.
fn protected_sd() -> Vec<u8> {
    let admins = [1u8, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0];
    let auth_users = [1u8, 1, 0, 0, 0, 0, 0, 5, 11, 0, 0, 0];
    let ace = |mask: u32, sid: &[u8]| {
        let mut a = vec![0u8, 0];
        a.extend(u16::try_from(8 + sid.len()).unwrap().to_le_bytes());
        a.extend(mask.to_le_bytes());
        a.extend(sid);
        a
    };
    let aces = [ace(0x000f_01ff, &admins), ace(0x0002_0094, &auth_users)].concat();
    let mut acl = vec![2u8, 0];
    acl.extend(u16::try_from(8 + aces.len()).unwrap().to_le_bytes());
    acl.extend(2u16.to_le_bytes());
    acl.extend([0, 0]);
    acl.extend(aces);
    // Header (20) | owner | group | DACL.
    let owner = 20u32;
    let group = owner + 16;
    let dacl = group + 16;
    let mut sd = vec![1u8, 0];
    sd.extend((0x8000u16 | 0x1000 | 0x0004).to_le_bytes());
    sd.extend(owner.to_le_bytes());
    sd.extend(group.to_le_bytes());
    sd.extend(0u32.to_le_bytes());
    sd.extend(dacl.to_le_bytes());
    sd.extend(admins);
    sd.extend(admins);
    sd.extend(acl);
    sd
}

#[tokio::test]
async fn admin_count_and_blocked_inheritance_in_scope_warn() {
    let e = dev();
    let tag = format!(
        "rkdoc{}x{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    );
    let ou = format!("OU={tag},{}", e.get("REKEY_DEV_BASE_DN"));
    let mut ldap = e.admin().await;
    let set = |v: &[u8]| HashSet::from([v.to_vec()]);
    ldap.add(
        &ou,
        vec![(b"objectClass".to_vec(), set(b"organizationalUnit"))],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    let held = format!("CN={tag}a,{ou}");
    let blocked = format!("CN={tag}b,{ou}");
    ldap.add(
        &held,
        vec![
            (b"objectClass".to_vec(), set(b"user")),
            (
                b"sAMAccountName".to_vec(),
                set(format!("{tag}a").as_bytes()),
            ),
            (b"adminCount".to_vec(), set(b"1")),
        ],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    ldap.add(
        &blocked,
        vec![
            (b"objectClass".to_vec(), set(b"user")),
            (
                b"sAMAccountName".to_vec(),
                set(format!("{tag}b").as_bytes()),
            ),
            (b"nTSecurityDescriptor".to_vec(), set(&protected_sd())),
        ],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    // The DC really stored a protected DACL.
    let mut a = admin().await;
    assert!(
        a.security_descriptor(&blocked)
            .await
            .unwrap()
            .dacl_protected()
    );
    a.close().await;

    let mut c = config("adminsdholder").await;
    c.scope.allow_ous = vec![ou.clone()];
    c.scope.groups = Vec::new();
    let r = diagnose(&c).await;
    delete(&[held, blocked, ou.clone()]).await;
    let f = of(&r, "adminsdholder")[0];
    assert_eq!(
        (f.status, f.code),
        (Status::Warn, Some("RK-DOC-030")),
        "{r}"
    );
    assert!(
        f.details
            .iter()
            .any(|d| d.starts_with(&format!("{tag}a ("))),
        "{f:?}"
    );
    assert!(f.fix.is_some());
    let f = of(&r, "inheritance")[0];
    assert_eq!(
        (f.status, f.code),
        (Status::Warn, Some("RK-DOC-031")),
        "{r}"
    );
    assert!(
        f.details
            .iter()
            .any(|d| d.starts_with(&format!("{tag}b ("))),
        "{f:?}"
    );
    // The fresh OU has no delegation: rights fail there, naming it.
    assert_eq!(one(&r, "rights", &ou).status, Status::Fail);
}

#[tokio::test]
async fn an_smtp_port_with_nothing_listening_fails() {
    let dir = tmp("smtp");
    let c = Config::load(&config_file(&dir, dead_port(), "").await).unwrap();
    let r = diagnose(&c).await;
    let f = of(&r, "smtp")[0];
    assert_eq!(
        (f.status, f.code),
        (Status::Fail, Some("RK-DOC-060")),
        "{r}"
    );
}

#[tokio::test]
async fn an_unreachable_store_fails_and_an_unmigrated_one_warns() {
    let dir = tmp("store");
    let mut c = config("store").await;
    c.store.as_mut().unwrap().url = format!("sqlite://{}", dir.join("missing/rekey.db").display());
    let r = diagnose(&c).await;
    let f = of(&r, "store")[0];
    assert_eq!(
        (f.status, f.code),
        (Status::Fail, Some("RK-DOC-070")),
        "{r}"
    );
    assert!(!dir.join("missing").exists(), "doctor must create nothing");

    std::fs::write(dir.join("empty.db"), b"").unwrap();
    c.store.as_mut().unwrap().url = format!("sqlite://{}", dir.join("empty.db").display());
    let r = diagnose(&c).await;
    let f = of(&r, "store")[0];
    assert_eq!(
        (f.status, f.code),
        (Status::Warn, Some("RK-DOC-071")),
        "{r}"
    );
    assert!(f.details.iter().any(|d| d.starts_with("1 ")), "{f:?}");
}

#[tokio::test]
async fn another_reset_authority_overlapping_the_scope_warns_unless_a_boundary_is_set() {
    let e = dev();
    let dir = tmp("authority");
    let port = smtp_server().await;
    let extra = format!(
        "[[doctor.other_reset_authorities]]\nname = \"Entra SSPR writeback\"\nous = [{:?}]\n\
         [[doctor.other_reset_authorities]]\nname = \"Helpdesk tool\"\nous = [{:?}]\nboundary = \"helpdesk resets contractors by phone only; audit in ServiceNow\"\n\
         [[doctor.other_reset_authorities]]\nname = \"Lab\"\nous = [\"OU=Lab,{}\"]\n",
        e.staff_ou(),
        e.get("REKEY_DEV_CONTRACTORS_OU"),
        e.get("REKEY_DEV_BASE_DN"),
    );
    let c = Config::load(&config_file(&dir, port, &extra).await).unwrap();
    let r = diagnose(&c).await;
    let f = one(&r, "authorities", "Entra SSPR writeback");
    assert_eq!(
        (f.status, f.code),
        (Status::Warn, Some("RK-DOC-080")),
        "{r}"
    );
    assert_eq!(f.details, vec![e.staff_ou().to_owned()]);
    let f = one(&r, "authorities", "Helpdesk tool");
    assert_eq!(f.status, Status::Pass);
    assert!(f.summary.contains("phone only"), "{f:?}");
    assert_eq!(one(&r, "authorities", "Lab").status, Status::Pass);
}

#[tokio::test]
async fn a_config_listing_only_dc2_warns_about_the_pdc() {
    let e = dev();
    if !e.has_dc2() {
        eprintln!("skipped: no DC2 (dev/domain up --dc2)");
        return;
    }
    let mut c = config("dc2").await;
    c.directory.urls = vec![e.get("REKEY_DEV_LDAP_URL_DC2").to_owned()];
    let r = diagnose(&c).await;
    let f = of(&r, "pdc")[0];
    assert_eq!(
        (f.status, f.code),
        (Status::Warn, Some("RK-DOC-014")),
        "{r}"
    );
    assert!(f.summary.contains("REKEYDC"), "{f:?}");
}

/// The built binary, off the runtime thread (the test's SMTP server runs on it).
async fn run(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_rekey"))
            .args(&args)
            .env_remove("REKEY_CONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_binary_prints_json_and_exits_with_the_worst_result() {
    let dir = tmp("bin");
    let port = smtp_server().await;
    let path = config_file(&dir, port, "").await;
    let out = run(vec![
        "--config".into(),
        path.display().to_string(),
        "doctor".into(),
        "--json".into(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    // The dev domain warns (adam.outside's OU, ivan.admin): exit 1.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["worst"], "warn");
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["counts"]["fail"], 0);
    let findings = json["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .all(|f| f["check"].is_string() && f["status"].is_string() && f["summary"].is_string())
    );
    assert!(
        findings.iter().any(|f| f["check"] == "privileged"
            && f["code"] == "RK-DOC-040"
            && f["fix"].is_string())
    );

    // A config with a failing check exits 2.
    let bad = dir.join("bad.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        &format!("port = {port}"),
        &format!("port = {}", dead_port()),
    );
    std::fs::write(&bad, text).unwrap();
    let out = run(vec![
        "--config".into(),
        bad.display().to_string(),
        "doctor".into(),
    ])
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("FAIL  smtp"), "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap_or_default()
            .starts_with("doctor: "),
        "{text}"
    );
}

#[tokio::test]
async fn the_sms_gateway_is_checked_by_a_tcp_connect_when_enabled() {
    let mut c = config("sms").await;
    let listening = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = format!(
        "http://127.0.0.1:{}",
        listening.local_addr().unwrap().port()
    );
    c.sms = Some(rekey::config::methods::SmsSection {
        enabled: true,
        base_url: up.clone(),
        ..Default::default()
    });
    let r = diagnose(&c).await;
    assert_eq!(one(&r, "sms", &up).status, Status::Pass, "{r}");
    let down = format!("http://127.0.0.1:{}", dead_port());
    c.sms.as_mut().unwrap().base_url.clone_from(&down);
    let r = diagnose(&c).await;
    let f = one(&r, "sms", &down);
    assert_eq!(
        (f.status, f.code),
        (Status::Fail, Some("RK-DOC-061")),
        "{r}"
    );
    // Disabled: not checked at all.
    c.sms.as_mut().unwrap().enabled = false;
    assert!(of(&diagnose(&c).await, "sms").is_empty());
}

#[tokio::test]
async fn a_missing_or_privileged_canary_fails() {
    let mut c = config("canary").await;
    c.canary.enabled = true;
    c.canary.user = Some("no.such.canary".into());
    let r = diagnose(&c).await;
    let f = of(&r, "canary")[0];
    assert_eq!(
        (f.status, f.code),
        (Status::Fail, Some("RK-DOC-090")),
        "{r}"
    );
    assert!(f.summary.contains("does not exist"), "{f:?}");
    c.canary.user = Some("ivan.admin".into());
    let r = diagnose(&c).await;
    let f = of(&r, "canary")[0];
    assert_eq!(f.status, Status::Fail, "{r}");
    assert!(f.summary.contains("privileged"), "{f:?}");
    // wendy.wu lives in a delegated OU but is not in SSPR-Users.
    c.canary.user = Some("wendy.wu".into());
    let r = diagnose(&c).await;
    assert!(of(&r, "canary")[0].summary.contains("not in scope"), "{r}");
}

#[tokio::test]
async fn an_invalid_setting_fails_the_config_check() {
    let mut c = config("invalid").await;
    c.engine.max_code_attempts = Some(0);
    let r = diagnose(&c).await;
    let f = of(&r, "config")[0];
    assert_eq!(
        (f.status, f.code),
        (Status::Fail, Some("RK-DOC-001")),
        "{r}"
    );
    assert!(f.details.iter().any(|d| d.starts_with("engine: ")), "{f:?}");
}

/// `[server] tls_cert_file`/`tls_key_file`: the dev DC's certificate (valid for years) passes,
/// inside the warning window warns, and a key that does not match the certificate fails.
#[tokio::test]
async fn the_portal_certificate_is_checked_when_rekey_serves_https() {
    let e = dev();
    let ca_dir = std::path::Path::new(e.get("REKEY_DEV_CA_FILE"))
        .parent()
        .unwrap()
        .to_owned();
    let cert = ca_dir.join("server.pem");
    let mut c = config("portal-tls").await;
    let server = c.server.as_mut().unwrap();
    server.tls_cert_file = Some(cert.clone());
    server.tls_key_file = Some(ca_dir.join("server.key"));
    let target = cert.display().to_string();
    let r = diagnose(&c).await;
    assert_eq!(one(&r, "portal.tls", &target).status, Status::Pass, "{r}");
    c.doctor.cert_warn_days = 100_000;
    let r = diagnose(&c).await;
    let f = one(&r, "portal.tls", &target);
    assert_eq!(
        (f.status, f.code),
        (Status::Warn, Some("RK-DOC-064")),
        "{r}"
    );
    // Another private key than the certificate's.
    let other = tmp("portal-tls-key").join("other.key");
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(&other, key.serialize_pem()).unwrap();
    c.server.as_mut().unwrap().tls_key_file = Some(other);
    let r = diagnose(&c).await;
    let f = one(&r, "portal.tls", &target);
    assert_eq!(
        (f.status, f.code),
        (Status::Fail, Some("RK-DOC-063")),
        "{r}"
    );
}
