//! The portal attacked through HTTP like an outsider would, against the real Samba DC(s), a real
//! SMTP server (aiosmtpd, healthy, slow or failing) and SQLite: parallel wrong passwords must
//! never lock an AD account (invariant 35), and every answer that depends on the account must be
//! byte-identical with p50 timing within 5 ms per account class (invariant 9), also while the mail
//! relay is slow or failing. Every test prints what it measured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rekey::config::Config;
use rekey_directory::{ActiveDirectory, AdConfig};
use rekey_e2e::dev::{Dev, User, dev};
use rekey_notify::testing::{Relay, SmtpSink};

mod http;
use http::*;
use rekey_e2e::http::{Answer, Client};

/// Largest allowed difference between the p50 of two account classes (invariant 9).
const MAX_SPREAD: Duration = Duration::from_millis(5);
/// Change and enrollment sign-in answer at this delay (the DC's change takes ≈ 80 ms here).
const PASSWORD_DEADLINE_MS: u64 = 400;
/// Code posts answer at this delay.
const ANSWER_DEADLINE_MS: u64 = 150;
const IDENTIFY_DEADLINE_MS: u64 = 150;
const PARALLEL: usize = 30;
/// One attack at a time: timings measured while another test hammers the same DCs on a 2-core
/// machine would measure that test, not the portal.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const SAMPLES: usize = 15;
const WAIT: Duration = Duration::from_secs(10);
const UNKNOWN: &str = "nobody.at.all";

/// The shipped configuration with short deadlines, and the per-IP and mail budgets raised so the
/// tests exercise the per-account limits (the engine's bounds still apply: `build_portal`
/// validates them like `rekey serve`).
fn tune(identify_deadline_ms: u64) -> impl FnOnce(&mut Config) {
    move |c| {
        c.engine.per_ip_attempts_per_hour = Some(100_000);
        c.engine.emails_per_user_per_hour = Some(10_000);
        if let Some(s) = c.server.as_mut() {
            s.identify_deadline_ms = identify_deadline_ms;
            s.answer_deadline_ms = ANSWER_DEADLINE_MS;
            s.password_deadline_ms = PASSWORD_DEADLINE_MS;
        }
    }
}

/// The whole stack in this process: real DC, real SMTP server (aiosmtpd), SQLite.
struct Stack {
    portal: rekey_e2e::portal::Portal,
    sink: SmtpSink,
    ad: Arc<ActiveDirectory>,
}

async fn stack(d: &Dev, relay: Relay, identify_deadline_ms: u64) -> Stack {
    let mut cfg = AdConfig::new(d.urls(), d.get("REKEY_DEV_SVC_DN"));
    cfg.ca_file = Some(d.get("REKEY_DEV_CA_FILE").into());
    cfg.bind_password_file = Some(d.get("REKEY_DEV_SVC_PASSWORD_FILE").into());
    let ad = Arc::new(ActiveDirectory::connect(&cfg).await.unwrap());
    let sink = SmtpSink::start_relay(relay);
    let portal = rekey_e2e::portal::start(d, &sink.mailer_config(), tune(identify_deadline_ms))
        .await
        .unwrap();
    Stack { portal, sink, ad }
}

impl Stack {
    fn port(&self) -> u16 {
        self.portal.port
    }

    /// Enroll `u`'s recovery address directly in the store; returns the address.
    async fn enroll(&self, u: &User) -> String {
        rekey_e2e::portal::enroll(&self.portal, &self.ad, u).await
    }
}

/// 30 wrong passwords at once from one client, then the account as the DCs see it (35).
async fn parallel_wrong_passwords(path: &str, tag: &str, field: &str) {
    let d = dev();
    let s = stack(&d, Relay::Healthy, IDENTIFY_DEADLINE_MS).await;
    let u = d.staff_user(tag).await;
    let threshold = d.lockout_threshold(&u.dn).await;
    let client = Client::new(s.port()).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(PARALLEL));
    let started = Instant::now();
    let tasks: Vec<_> = (0..PARALLEL)
        .map(|i| {
            let (c, b, sam, path, field) = (
                client.clone(),
                barrier.clone(),
                u.sam.clone(),
                path.to_owned(),
                field.to_owned(),
            );
            tokio::spawn(async move {
                let wrong = format!("Wrong-{i}-Guess-x");
                let fields = [
                    ("username", sam.as_str()),
                    (field.as_str(), wrong.as_str()),
                    ("new_password", "Whatever-New-1x"),
                    ("confirm_password", "Whatever-New-1x"),
                ];
                let n = if field == "password" { 2 } else { 4 };
                b.wait().await;
                c.post(&path, None, &fields[..n]).await
            })
        })
        .collect();
    let mut gists: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        *gists.entry(t.await.unwrap().gist()).or_default() += 1;
    }
    let elapsed = started.elapsed();
    let after = d.lockout(&u.dn).await;
    let bind = d.bind(&u.dn, &u.password).await;
    println!(
        "{PARALLEL} parallel POST {path} with wrong guesses for {} in {elapsed:.2?}:\n  answers {gists:?}\n  \
         lockout threshold {threshold}; after: badPwdCount {} (per DC {:?}), lockoutTime {}, locked {}\n  \
         bind as the owner: rc {} {:?}",
        u.sam, after.bad_pwd_count, after.per_dc, after.lockout_time, after.locked, bind.0, bind.1
    );
    assert!(
        !after.locked && after.lockout_time == 0,
        "anonymous requests locked the account: {after:?}"
    );
    assert!(
        after.bad_pwd_count + 2 <= threshold,
        "badPwdCount {} > threshold {threshold} − 2: the real user's next typo locks them",
        after.bad_pwd_count
    );
    assert_eq!(bind.0, 0, "the real user cannot sign in: {}", bind.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_change_attempts_never_lock_the_account() {
    let _one_at_a_time = SERIAL.lock().await;
    parallel_wrong_passwords("/change", "parchange", "current_password").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_enroll_sign_ins_never_lock_the_account() {
    let _one_at_a_time = SERIAL.lock().await;
    parallel_wrong_passwords("/enroll", "parenroll", "password").await;
}

/// Wrong current passwords for every account class: one answer, one time (9, 35).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_answers_alike_for_every_account_class() {
    let _one_at_a_time = SERIAL.lock().await;
    let d = dev();
    let s = stack(&d, Relay::Healthy, IDENTIFY_DEADLINE_MS).await;
    // A fresh normal user every 2 samples: each sample reaches the DC (budget 3 per account).
    let mut normal = Vec::new();
    for _ in 0..SAMPLES.div_ceil(2) {
        normal.push(d.staff_user("chgnormal").await.sam);
    }
    let ambiguous = d.ambiguous_mail();
    let classes: [(&str, &str); 7] = [
        ("unknown", UNKNOWN),
        ("disabled", "dan.disabled"),
        ("out of scope", "wendy.wu"),
        ("privileged", "ivan.admin"),
        ("locked", "lou.locked"),
        ("ambiguous", &ambiguous),
        ("normal", ""),
    ];
    let client = Client::new(s.port()).await;
    let mut samples = Samples::default();
    for round in 0..SAMPLES {
        for k in 0..classes.len() {
            let (class, who) = classes[(round + k) % classes.len()];
            let who = if class == "normal" {
                normal[round / 2].as_str()
            } else {
                who
            };
            let a = client
                .post(
                    "/change",
                    None,
                    &[
                        ("username", who),
                        ("current_password", &format!("Wrong-{round}-Current-x")),
                        ("new_password", "Whatever-New-1x"),
                        ("confirm_password", "Whatever-New-1x"),
                    ],
                )
                .await;
            samples.add(class, a.normalised(&client.csrf, who), &a);
        }
    }
    assert_none(&samples.check("POST /change, wrong current password"));
}

/// A wrong code in a real flow and in decoy flows: one answer, one time (9).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn code_answers_alike_for_real_and_decoy_flows() {
    let _one_at_a_time = SERIAL.lock().await;
    let d = dev();
    let s = stack(&d, Relay::Healthy, 50).await;
    let unenrolled = d.staff_user("codeunenr").await;
    let classes = [
        ("real", ""),
        ("unknown", UNKNOWN),
        ("unenrolled", unenrolled.sam.as_str()),
        ("privileged", "ivan.admin"),
    ];
    // Five failed verifications an hour lock a user's self-service (then identify hands out
    // decoys, invariant 3): a fresh enrolled user every 4 real samples keeps each one real.
    let mut real: Option<(User, String)> = None;
    let mut real_samples = 0;
    let client = Client::new(s.port()).await;
    let mut failures = Vec::new();
    for kind in ["reset", "unlock"] {
        let mut samples = Samples::default();
        for round in 0..SAMPLES {
            for k in 0..classes.len() {
                let (class, mut who) = classes[(round + k) % classes.len()];
                if class == "real" {
                    if real_samples % 4 == 0 {
                        let u = d.staff_user(&format!("codereal{real_samples}")).await;
                        let address = s.enroll(&u).await;
                        real = Some((u, address));
                    }
                    real_samples += 1;
                }
                let (real_user, address) = real
                    .as_ref()
                    .map_or(("", ""), |(u, a)| (u.sam.as_str(), a.as_str()));
                if class == "real" {
                    who = real_user;
                }
                let start = client
                    .post(&format!("/{kind}"), None, &[("username", who)])
                    .await;
                let flow = start
                    .cookie("__Host-rekey-flow")
                    .unwrap_or_else(|| panic!("{kind} {class}: no flow: {}", start.gist()));
                let mut wrong = "123456".to_owned();
                if class == "real" {
                    let mail = s.sink.wait_for(address, WAIT).await;
                    if mail.body.contains(&wrong) {
                        wrong = "654321".into();
                    }
                }
                let a = client
                    .post(&format!("/{kind}/code"), Some(&flow), &[("code", &wrong)])
                    .await;
                samples.add(class, a.normalised(&client.csrf, ""), &a);
            }
        }
        failures.extend(samples.check(&format!("POST /{kind}/code, wrong code")));
    }
    assert_none(&failures);
}

/// Identify while the relay is slow (2 s per mail) or refuses every mail (4xx, 5xx): one
/// answer, one time, no error page (9); a healthy relay then delivers the code after the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identify_answers_alike_while_the_relay_is_slow_or_failing() {
    let _one_at_a_time = SERIAL.lock().await;
    let d = dev();
    let enrolled = d.staff_user("relayenr").await;
    let unenrolled = d.staff_user("relayunenr").await;
    let ambiguous = d.ambiguous_mail();
    let classes = [
        ("enrolled", enrolled.sam.as_str()),
        ("unknown", UNKNOWN),
        ("ambiguous", ambiguous.as_str()),
        ("unenrolled", unenrolled.sam.as_str()),
    ];
    let relays = [
        ("slow relay (2 s)", Relay::SlowData(Duration::from_secs(2))),
        ("relay answering 451", Relay::TempFail),
        ("relay answering 554", Relay::PermFail),
    ];
    let mut failures = Vec::new();
    for (name, relay) in relays {
        let s = stack(&d, relay, IDENTIFY_DEADLINE_MS).await;
        s.enroll(&enrolled).await;
        let client = Client::new(s.port()).await;
        let mut samples = Samples::default();
        let mut not_code_page: BTreeMap<String, usize> = BTreeMap::new();
        for round in 0..9 {
            for k in 0..classes.len() {
                let (class, who) = classes[(round + k) % classes.len()];
                let a = client.post("/reset", None, &[("username", who)]).await;
                if a.status != 303 || a.header("location") != Some("/reset/code") {
                    *not_code_page
                        .entry(format!("{class}: {}", a.gist()))
                        .or_default() += 1;
                }
                samples.add(class, a.normalised(&client.csrf, who), &a);
            }
        }
        for (what, n) in not_code_page {
            failures.push(format!("{name}: not the code page ×{n}: {what}"));
        }
        failures.extend(samples.check(&format!("POST /reset with a {name}")));
    }
    // A healthy relay: the code arrives after the answer.
    let s = stack(&d, Relay::Healthy, IDENTIFY_DEADLINE_MS).await;
    let address = s.enroll(&enrolled).await;
    let client = Client::new(s.port()).await;
    let a = client
        .post("/reset", None, &[("username", &enrolled.sam)])
        .await;
    let answered = Instant::now();
    let mail = s.sink.wait_for(&address, Duration::from_secs(5)).await;
    println!(
        "healthy relay: identify answered in {:.2?} ({}), the code mail arrived {:.2?} after the answer",
        a.took,
        a.gist(),
        answered.elapsed()
    );
    assert!(
        mail.body
            .split(|c: char| !c.is_ascii_digit())
            .any(|w| w.len() == 6)
    );
    assert_none(&failures);
}

/// A name that matches two accounts gets exactly the answer of an unknown name (9).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ambiguous_name_gets_the_decoy_answer() {
    let _one_at_a_time = SERIAL.lock().await;
    let d = dev();
    let s = stack(&d, Relay::Healthy, IDENTIFY_DEADLINE_MS).await;
    let ambiguous = d.ambiguous_mail();
    let client = Client::new(s.port()).await;
    let posts: [(&str, &[(&str, &str)]); 4] = [
        ("/reset", &[]),
        ("/unlock", &[]),
        (
            "/change",
            &[
                ("current_password", "Wrong-Current-1x"),
                ("new_password", "Whatever-New-1x"),
                ("confirm_password", "Whatever-New-1x"),
            ],
        ),
        ("/enroll", &[("password", "Wrong-Current-1x")]),
    ];
    let mut failures = Vec::new();
    for (path, rest) in posts {
        let mut answers = Vec::new();
        for who in [UNKNOWN, ambiguous.as_str()] {
            let mut fields = vec![("username", who)];
            fields.extend_from_slice(rest);
            let a = client.post(path, None, &fields).await;
            println!("POST {path} {who:<32} {:>9.2?} {}", a.took, a.gist());
            answers.push(a.normalised(&client.csrf, who));
        }
        if answers[0] != answers[1] {
            failures.push(format!(
                "POST {path}: the ambiguous name's answer differs from an unknown name's: {}",
                difference(&answers[0], &answers[1])
            ));
        }
    }
    assert_none(&failures);
}
