//! Operations against the real dev domain: `/metrics`, `/healthz` and `/readyz` (also on their
//! own listener), counters that move after a real reset and a real change, and the writeback
//! canary — proven on both DCs by LDAPS bind and Kerberos, failing when the service account
//! loses its right to reset the canary and recovering when it comes back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use ldap3::{Mod, Scope, SearchEntry};
use rekey::config::Config;
use rekey_core::audit::Actor;
use rekey_core::engine::RequestContext;
use rekey_core::landing::ResetOptions;
use rekey_core::secret::Password;
use rekey_e2e::dev::{Dev, dev};
use rekey_e2e::http::{Client, request};
use rekey_notify::testing::SmtpSink;

/// The dev domain's config in a fresh temp dir (key file written), adjusted by `tune`.
fn config(d: &Dev, sink: &SmtpSink, tune: impl FnOnce(&mut Config)) -> (Config, TempDir) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rekey-ops-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).unwrap();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join("rekey.key"), hex).unwrap();
    let mut c = rekey_e2e::portal::dev_config(d, &sink.mailer_config(), &dir);
    tune(&mut c);
    (c, TempDir(dir))
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn get(port: u16, path: &str) -> (u16, String) {
    let a = request(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
    .await;
    (a.status, a.body)
}

/// The value of one sample line (`name{labels} value`) whose name and labels contain all of
/// `parts`; 0 when absent.
fn sample(text: &str, name: &str, parts: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_move_after_a_real_reset_and_a_real_change() {
    let d = dev();
    let sink = SmtpSink::start();
    let portal = rekey_e2e::portal::start(&d, &sink.mailer_config(), |_| {})
        .await
        .unwrap();
    assert_eq!(get(portal.port, "/healthz").await.0, 200);
    let (status, body) = get(portal.port, "/readyz").await;
    assert_eq!((status, body.trim()), (200, "ready"));
    let (status, before) = get(portal.port, "/metrics").await;
    assert_eq!(status, 200, "{before}");
    assert!(before.contains("rekey_build_info"), "{before}");

    // A reset by an operator through the engine (the same write path as the portal's).
    let (c, _dir) = config(&d, &sink, |_| {});
    let built = rekey::portal::engine(&c, false).await.unwrap();
    let u = d.staff_user("metricsreset").await;
    let ctx = RequestContext {
        client_ip: None,
        user_agent: None,
        support_id: built.engine.support_id(),
        actor: Actor::Admin("ops-test".into()),
    };
    let new = "Metric-Reset-Pw-4821";
    built
        .engine
        .admin_reset(
            &ctx,
            &u.sam,
            &Password::new(new.into()),
            ResetOptions::default(),
        )
        .await
        .unwrap();
    // A change through the portal's HTTP form.
    let client = Client::new(portal.port).await;
    let changed = "Metric-Change-Pw-9377";
    let a = client
        .post(
            "/change",
            None,
            &[
                ("username", u.sam.as_str()),
                ("current_password", new),
                ("new_password", changed),
                ("confirm_password", changed),
            ],
        )
        .await;
    assert!(a.body.contains("changed"), "{}", a.gist());
    assert_eq!(d.bind(&u.dn, changed).await.0, 0);

    let (_, after) = get(portal.port, "/metrics").await;
    for (name, parts) in [
        (
            "rekey_operations_total",
            &["operation=\"reset\"", "result=\"ok\""][..],
        ),
        (
            "rekey_landings_total",
            &[
                "operation=\"reset\"",
                "zone=\"ActiveDirectory\"",
                "outcome=\"landed\"",
            ][..],
        ),
        (
            "rekey_operations_total",
            &["operation=\"change\"", "result=\"ok\""][..],
        ),
        (
            "rekey_landings_total",
            &["operation=\"change\"", "outcome=\"landed\""][..],
        ),
    ] {
        let (b, a) = (sample(&before, name, parts), sample(&after, name, parts));
        assert!(a >= b + 1.0, "{name} {parts:?}: {b} -> {a}\n{after}");
    }
    assert!(
        sample(
            &after,
            "rekey_ldap_operation_duration_seconds_count",
            &["op=\"modify\""]
        ) >= 2.0,
        "{after}"
    );
    assert!(sample(&after, "rekey_dc_up", &[]) >= 1.0, "{after}");
    assert!(
        sample(&after, "rekey_audit_chain_head", &[]) >= 1.0,
        "{after}"
    );
}

#[tokio::test]
async fn ops_listen_keeps_metrics_off_the_portal() {
    let d = dev();
    let sink = SmtpSink::start();
    let (c, _dir) = config(&d, &sink, |c| {
        let s = c.server.as_mut().unwrap();
        s.ops_listen = Some("127.0.0.1:0".into());
    });
    let portal = rekey::portal::build_portal(&c).await.unwrap();
    let ops = portal.ops_addr().expect("bound at build").port();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(portal.serve(listener, std::future::pending()));
    assert_eq!(get(ops, "/metrics").await.0, 200);
    assert_eq!(get(ops, "/readyz").await.0, 200);
    assert_eq!(get(ops, "/healthz").await.0, 200);
    assert_eq!(get(port, "/metrics").await.0, 404, "not on the portal");
    assert_eq!(get(port, "/reset").await.0, 200);
    server.abort();
}

/// A TCP relay to DC1's LDAPS port that the test can cut: a DC that goes away after start.
struct Relay {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn to(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Self { port, task }
    }

    /// Stop accepting and drop every relayed connection (the JoinSet aborts them).
    fn cut(&self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn readyz_says_which_dependency_is_missing() {
    let d = dev();
    let sink = SmtpSink::start();
    let relay = Relay::to("127.0.0.1:636".parse().unwrap()).await;
    let (c, _dir) = config(&d, &sink, |c| {
        c.directory.urls = vec![format!("ldaps://localhost:{}", relay.port)];
    });
    let portal = rekey::portal::build_portal(&c).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(portal.serve(listener, std::future::pending()));
    assert_eq!(get(port, "/readyz").await, (200, "ready\n".into()));
    relay.cut();
    let (status, body) = get(port, "/readyz").await;
    assert_eq!((status, body.as_str()), (503, "not ready: directory\n"));
    assert_eq!(get(port, "/healthz").await.0, 200, "alive, not ready");
    let (_, metrics) = get(port, "/metrics").await;
    let dc = format!("dc=\"ldaps://localhost:{}\"", relay.port);
    assert_eq!(sample(&metrics, "rekey_dc_up", &[&dc]), 0.0, "{metrics}");
    server.abort();
}

/// objectSid of `dn` as S-1-5-…
async fn sid_of(d: &Dev, dn: &str) -> String {
    let mut admin = d.admin().await;
    let (found, _) = admin
        .search(dn, Scope::Base, "(objectClass=*)", vec!["objectSid"])
        .await
        .unwrap()
        .success()
        .unwrap();
    let e = SearchEntry::construct(found.into_iter().next().unwrap());
    let raw = e.bin_attrs["objectSid"][0].clone();
    rekey_core::Sid::from_bytes(&raw).unwrap().to_string()
}

/// The object's whole security descriptor (binary), read as Administrator.
async fn security_descriptor(d: &Dev, dn: &str) -> Vec<u8> {
    let mut admin = d.admin().await;
    let (found, _) = admin
        .search(
            dn,
            Scope::Base,
            "(objectClass=*)",
            vec!["nTSecurityDescriptor"],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    let e = SearchEntry::construct(found.into_iter().next().unwrap());
    e.bin_attrs["nTSecurityDescriptor"][0].clone()
}

#[tokio::test]
async fn canary_proves_every_dc_fails_without_the_right_and_recovers() {
    let d = dev();
    let sink = SmtpSink::start();
    let u = d.staff_user("canary").await;
    let (c, _dir) = config(&d, &sink, |c| {
        c.canary.enabled = true;
        c.canary.user = Some(u.sam.clone());
        c.canary.replication_wait_secs = 120;
    });
    let handle = rekey::ops::metrics_handle().expect("the recorder");
    let built = rekey::portal::engine(&c, false).await.unwrap();
    let canary = rekey::canary::Canary::from_config(&c.canary, built.directory.base_dn())
        .unwrap()
        .expect("enabled");
    assert_eq!(canary.realm, d.get("REKEY_DEV_REALM").to_uppercase());

    let run = canary.run_once(&built.engine, &built.directory).await;
    assert!(run.ok(), "{run:#?}");
    assert_eq!(run.dcs.len(), d.urls().len(), "every configured DC");
    if d.has_dc2() {
        let lag = run.dcs[1].replication.clone().unwrap();
        println!("canary: replication to {} after {lag:?}", run.dcs[1].dc);
    }
    let text = handle.render();
    for dc in d.urls() {
        let label = format!("dc=\"{dc}\"");
        assert_eq!(sample(&text, "rekey_canary_up", &[&label]), 1.0, "{text}");
        assert!(
            sample(
                &text,
                "rekey_canary_last_success_timestamp_seconds",
                &[&label]
            ) > 0.0
        );
    }

    // Take the right away on this one account: an explicit deny of Reset Password for the
    // service account (what AdminSDHolder or a hardened OU does), written with samba-tool.
    let original = security_descriptor(&d, &u.dn).await;
    let svc = sid_of(&d, d.get("REKEY_DEV_SVC_DN")).await;
    let ldb = format!("{}/dc1/private/sam.ldb", d.get("REKEY_DEV_DIR"));
    let status = std::process::Command::new("samba-tool")
        .args([
            "dsacl",
            "set",
            "-H",
            &ldb,
            &format!("--objectdn={}", u.dn),
            &format!("--sddl=(OD;;CR;00299570-246d-11d0-a768-00aa006e0529;;{svc})"),
        ])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let failed_before = sample(
        &handle.render(),
        "rekey_canary_runs_total",
        &["result=\"failed\""],
    );
    let run = canary.run_once(&built.engine, &built.directory).await;
    assert!(!run.ok(), "{run:#?}");
    let why = run.reset_error.clone().unwrap();
    assert!(why.contains("RK-"), "{why}");
    let text = handle.render();
    let dc1 = format!("dc=\"{}\"", d.urls()[0]);
    assert_eq!(sample(&text, "rekey_canary_up", &[&dc1]), 0.0, "{text}");
    assert!(
        sample(&text, "rekey_canary_runs_total", &["result=\"failed\""]) >= failed_before + 1.0
    );

    // Give the right back (the descriptor as it was) and the next run recovers.
    d.admin_modify(
        &u.dn,
        vec![Mod::Replace(
            b"nTSecurityDescriptor".to_vec(),
            HashSet::from([original]),
        )],
    )
    .await;
    let run = canary.run_once(&built.engine, &built.directory).await;
    assert!(run.ok(), "{run:#?}");
    let text = handle.render();
    assert_eq!(sample(&text, "rekey_canary_up", &[&dc1]), 1.0, "{text}");
}

#[tokio::test]
async fn expiry_reminders_reach_exactly_the_users_due() {
    let d = dev();
    let sink = SmtpSink::start();
    let (c, _dir) = config(&d, &sink, |_| {});
    let built = rekey::portal::engine(&c, false).await.unwrap();
    // PSO-Expiry (maximum age 2 days) makes a fresh password due within 5 days; the domain's
    // 42 days does not. The reminder job must see the PSO (msDS-UserPasswordExpiryTimeComputed).
    let due = d.staff_user("reminddue").await;
    let later = d.staff_user("remindlater").await;
    let disabled = d.staff_user("reminddisabled").await;
    let outside = d.user("remindoutside").await;
    let pso = d.get("REKEY_DEV_PSO_EXPIRY_DN");
    for u in [&due, &disabled, &outside] {
        d.admin_modify(
            pso,
            vec![Mod::Add(
                b"msDS-PSOAppliesTo".to_vec(),
                HashSet::from([u.dn.clone().into_bytes()]),
            )],
        )
        .await;
    }
    d.admin_modify(
        &disabled.dn,
        vec![Mod::Replace(
            b"userAccountControl".to_vec(),
            HashSet::from([b"514".to_vec()]),
        )],
    )
    .await;
    let mine = [&due, &later, &disabled, &outside];
    let find = |list: &[rekey::remind::Due], sam: &str| {
        list.iter()
            .find(|x| x.sam_account_name == sam)
            .map(|x| x.outcome.clone())
    };

    let dry = rekey::remind::run_once(&built.engine, &built.directory, 5, true)
        .await
        .unwrap();
    println!("{}", rekey::remind::table(&dry, true));
    assert!(
        matches!(
            find(&dry, &due.sam),
            Some(Ok(rekey_core::engine::Reminder::Mail { .. }))
        ),
        "{dry:#?}"
    );
    assert!(find(&dry, &later.sam).is_none(), "42 days away: not due");
    assert!(
        find(&dry, &disabled.sam).is_none(),
        "disabled: never listed"
    );
    assert_eq!(
        find(&dry, &outside.sam),
        Some(Ok(rekey_core::engine::Reminder::Skipped("out_of_scope")))
    );
    built.engine.deliver_outbox().await.unwrap();
    let to = |u: &rekey_e2e::dev::User| {
        sink.messages()
            .into_iter()
            .filter(|m| m.to.starts_with(&format!("{}.", u.sam)))
            .count()
    };
    assert!(mine.iter().all(|u| to(u) == 0), "a dry run mails nobody");

    let real = rekey::remind::run_once(&built.engine, &built.directory, 5, false)
        .await
        .unwrap();
    assert!(matches!(
        find(&real, &due.sam),
        Some(Ok(rekey_core::engine::Reminder::Mail { .. }))
    ));
    built.engine.deliver_outbox().await.unwrap();
    let mail = sink
        .wait_for(
            &format!("{}.reminddue@corp.example.com", due.sam),
            std::time::Duration::from_secs(10),
        )
        .await;
    assert!(
        mail.subject.contains("expires in 1 day")
            || mail.subject.contains("expires tomorrow")
            || mail.subject.contains("expires in 2 days"),
        "{}",
        mail.subject
    );
    assert!(mail.body.contains("/change"), "{}", mail.body);
    for u in [&later, &disabled, &outside] {
        assert_eq!(to(u), 0, "{} must not be mailed", u.sam);
    }
    // Once per password.
    let again = rekey::remind::run_once(&built.engine, &built.directory, 5, false)
        .await
        .unwrap();
    assert_eq!(
        find(&again, &due.sam),
        Some(Ok(rekey_core::engine::Reminder::AlreadySent))
    );
    built.engine.deliver_outbox().await.unwrap();
    assert_eq!(to(&due), 1);
}

/// `rekey serve` with `[audit] checkpoint_key_file` signs the chain's head at once; verify with
/// the public key then checks chain and checkpoint.
#[tokio::test]
async fn serve_signs_audit_checkpoints() {
    let d = dev();
    let sink = SmtpSink::start();
    let (mut c, dir) = config(&d, &sink, |_| {});
    let key_file = dir.0.join("checkpoint.key");
    let public = rekey::audit_chain::keygen(&key_file).unwrap();
    c.audit.checkpoint_key_file = Some(key_file);
    let portal = rekey::portal::build_portal(&c).await.unwrap();
    let store = portal.built.store.clone();
    // One audited write so the chain has a head.
    let u = d.staff_user("checkpointed").await;
    let ctx = RequestContext {
        client_ip: None,
        user_agent: None,
        support_id: portal.built.engine.support_id(),
        actor: Actor::Admin("ops-test".into()),
    };
    portal
        .built
        .engine
        .admin_reset(
            &ctx,
            &u.sam,
            &Password::new("Checkpoint-Pw-5521".into()),
            ResetOptions::default(),
        )
        .await
        .unwrap();
    let workers = portal.start_workers();
    let mut stored = Vec::new();
    for _ in 0..50 {
        stored = store.checkpoints().await.unwrap();
        if !stored.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(workers);
    assert!(!stored.is_empty(), "a checkpoint right after start");
    let report = rekey::audit_chain::verify(&store, &[public]).await.unwrap();
    assert!(report.intact(), "{}", report.render());
}
