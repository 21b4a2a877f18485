//! The `rekey` binary against the dev domain (`dev/domain up`): what an operator types.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn dev() -> rekey_e2e::dev::Dev {
    rekey_e2e::dev::dev()
}

/// A config file for the dev domain, in a per-test temp dir, with its own SQLite store and
/// server key (every write goes through the engine and is audited). `extra` is appended.
fn config(name: &str, extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rekey-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dev().write_config(&dir, extra)
}

/// The audit records of a config's store, as JSON bodies.
fn audit(config: &std::path::Path) -> Vec<String> {
    let db = config.with_file_name("rekey.db");
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; [print(r[0]) for r in sqlite3.connect(sys.argv[1]).execute('SELECT body FROM audit ORDER BY seq')]",
        ])
        .arg(&db)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn rekey(config: &PathBuf, args: &[&str], stdin: &str) -> Output {
    rekey_logging(config, args, stdin, "warn")
}

fn rekey_logging(config: &PathBuf, args: &[&str], stdin: &str, log: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rekey"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("REKEY_LOG", log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Run `python` (a python3 program) with the SQLite file `db` as its argument, as someone with
/// file access to the store would.
fn sqlite_python(db: &std::path::Path, python: &str) {
    let out = Command::new("python3")
        .args(["-c", python])
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn admin_user_shows_state_tier_and_policy() {
    let c = config("user", "");
    let o = rekey(&c, &["admin", "user", "alice.adams"], "");
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("tier          normal"), "{t}");
    assert!(
        t.contains("domain policy: min length 7, complexity on, history 24"),
        "{t}"
    );
    let t = text(&rekey(&c, &["admin", "user", "frank.finance"], ""));
    assert!(
        t.contains("fine-grained policy PSO-Strict: min length 12"),
        "{t}"
    );
    let t = text(&rekey(&c, &["admin", "user", "ivan.admin"], ""));
    assert!(t.contains("PRIVILEGED via Domain Admins"), "{t}");
    // A lockout lasts 30 min (and demos unlock lou): lock him again the way dev/domain does.
    let d = dev();
    let lou = format!("CN=Lou Locked,{}", d.staff_ou());
    if !text(&rekey(&c, &["admin", "user", "lou.locked"], "")).contains("LOCKED OUT") {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(d.lock_out(&lou, 5));
    }
    let t = text(&rekey(&c, &["admin", "user", "lou.locked"], ""));
    assert!(t.contains("LOCKED OUT"), "{t}");
    let o = rekey(&c, &["admin", "user", "nobody.here"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("RK-DIR-002"), "{}", text(&o));
}

#[test]
fn reset_and_change_read_passwords_from_stdin_only() {
    let c = config("reset", "");
    let user = "trent.turner";
    let first = format!("Cli-Reset-{}-Aa1", std::process::id());
    // --unlock also zeroes badPwdCount left by earlier runs' wrong-password checks below.
    let o = rekey(
        &c,
        &["admin", "reset", "--unlock", user],
        &format!("{first}\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(&first), "the password is never echoed");
    // Changing from `first` succeeds only if the reset landed (the DC checks the old password).
    let second = format!("Cli-Change-{}-Bb2", std::process::id());
    let o = rekey(&c, &["change", user], &format!("{first}\n{second}\n"));
    assert!(o.status.success(), "{}", text(&o));
    // A wrong current password: refused like in the portal (the same budget, invariant 35).
    let o = rekey(
        &c,
        &["change", user],
        "Not-The-Current-1\nWhatever-New-1x\n",
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("RK-CHANGE-001"), "{t}");
    assert!(
        !t.contains("00000056"),
        "the DC's raw text is not shown by default: {t}"
    );
    // The operator's log (REKEY_LOG=info) has the DC's own words.
    let o = rekey_logging(
        &c,
        &["change", user],
        "Not-The-Current-1\nWhatever-New-1x\n",
        "info",
    );
    assert!(text(&o).contains("00000056"), "{}", text(&o));
    // Too short for the domain policy: the engine's pre-check names the rule.
    let o = rekey(&c, &["admin", "reset", user], "Ab1!\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("RK-PWD-010"), "{}", text(&o));
    assert!(
        text(&o).contains("shorter than 7 characters"),
        "{}",
        text(&o)
    );
    // Every command left one record naming the operator (the OS user) and the outcome.
    let records = audit(&c);
    let ops: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            let field = |k: &str| {
                let at = r.find(&format!("\"{k}\":\"")).unwrap() + k.len() + 4;
                &r[at..at + r[at..].find('"').unwrap()]
            };
            (field("operation"), field("result"))
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("reset", "ok"),
            ("change", "ok"),
            ("change", "failed"),
            ("change", "failed"),
            ("reset", "failed")
        ],
        "{records:#?}"
    );
    assert!(
        records.iter().all(|r| r.contains(r#""actor":{"admin":"#)),
        "{records:#?}"
    );
    assert!(
        records
            .iter()
            .all(|r| !r.contains(&first) && !r.contains(&second))
    );
    // Back to the demo password so the demo keeps working.
    let demo = dev().get("REKEY_DEV_DEMO_PASSWORD").to_owned();
    let o = rekey(
        &c,
        &["admin", "reset", "--unlock", user],
        &format!("{demo}\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn privileged_accounts_are_refused() {
    let c = config("priv", "");
    let o = rekey(&c, &["admin", "reset", "ivan.admin"], "Never-Landed-1x\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("RK-TIER-001"), "{}", text(&o));
    // A configured extra protected group makes its members privileged too.
    let pilot = dev().get("REKEY_DEV_PILOT_GROUP_DN").to_owned();
    let c = config(
        "priv2",
        &format!("[tier]\nprotected_groups = [{pilot:?}]\n"),
    );
    let o = rekey(&c, &["admin", "unlock", "alice.adams"], "");
    assert!(text(&o).contains("RK-TIER-001"), "{}", text(&o));
}

#[test]
fn config_errors_name_the_key() {
    let c = config("cfg", "pool_sise = 3\n");
    let o = rekey(&c, &["config", "check"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("pool_sise"), "{}", text(&o));
    let missing = PathBuf::from("/nonexistent/rekey.toml");
    let o = rekey(&missing, &["config", "check"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("RK-CFG-003"), "{}", text(&o));
    let o = rekey(&config("ok", ""), &["config", "check"], "");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("PDC emulator  ldaps://localhost:636"),
        "{}",
        text(&o)
    );
}

#[test]
fn audit_verify_detects_an_edit() {
    let c = config("audit", "");
    let db = c.with_file_name("rekey.db");
    for user in ["alice.adams", "bob.baker"] {
        let o = rekey(
            &c,
            &[
                "admin",
                "enroll",
                user,
                "--email",
                &format!("{user}@home.example"),
            ],
            "",
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = rekey(&c, &["audit", "verify"], "");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("audit chain: 2 records") && text(&o).contains("audit chain intact"),
        "{}",
        text(&o)
    );
    // Someone with file access drops the append-only trigger and edits a record.
    let py = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DROP TRIGGER audit_no_update'); \
              c.execute(\"UPDATE audit SET body=replace(body,'alice','mallory') WHERE seq=1\"); c.commit()";
    sqlite_python(&db, py);
    let o = rekey(&c, &["audit", "verify"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("record 1") && text(&o).contains("edited"),
        "{}",
        text(&o)
    );
}

/// `config check` proves the `[entra]` credential against the Graph test double (a token and
/// one Graph read), and names the key when the secret is wrong.
#[test]
fn config_check_proves_the_entra_credential() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let d = dev();
    let dir = std::env::temp_dir().join(format!("rekey-cli-{}-entra", std::process::id()));
    let cloud = rt.block_on(rekey_e2e::cloud::Cloud::start(&d, &dir));
    let section = |secret: &std::path::Path| {
        format!(
            "[entra]\nenabled = true\ntenant = {:?}\nclient_id = {:?}\nclient_secret_file = {:?}\n\
             login_base_url = {:?}\ngraph_base_url = {:?}\n",
            cloud.tenant,
            cloud.client_id,
            secret,
            cloud.base_url(),
            cloud.base_url()
        )
    };
    let o = rekey(
        &config("entra-ok", &section(&cloud.secret_file)),
        &["config", "check"],
        "",
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("token by client secret"), "{t}");
    let wrong = dir.join("wrong-secret");
    std::fs::write(&wrong, "not-the-secret").unwrap();
    let o = rekey(
        &config("entra-bad", &section(&wrong)),
        &["config", "check"],
        "",
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("entra") && t.contains("AADSTS"), "{t}");
    assert!(!t.contains("not-the-secret"), "the secret never shows: {t}");
    drop(cloud);
}

/// `rekey admin rotate-key` makes the first key of `[secrets] key_dir` (mode 0600) and a second
/// that sorts after it; a store whose values name a key the server does not have stops every
/// command that builds the engine (as `rekey serve` does) with RK-KEY-001 naming the key.
#[test]
fn rotate_key_adds_keys_and_a_missing_key_stops_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("rekey-cli-{}-rotate", std::process::id()));
    let keys = dir.join("keys");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&keys).unwrap();
    let c = config(
        "rotate",
        &format!("[secrets]\nkey_dir = {:?}\n", keys.display().to_string()),
    );
    let key_files = || {
        let mut names: Vec<String> = std::fs::read_dir(&keys)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let o = rekey(&c, &["admin", "rotate-key"], "");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("new key"), "{}", text(&o));
    let first = key_files();
    assert_eq!(first.len(), 1, "{first:?}");
    let mode = std::fs::metadata(keys.join(&first[0]))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Key ids are UTC seconds: the second must sort after the first.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let o = rekey(&c, &["admin", "rotate-key"], "");
    assert!(o.status.success(), "{}", text(&o));
    let second = key_files();
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(second[1] > first[0]);

    // A value sealed under a key that is not in key_dir (a lost or forgotten file).
    let db = c.with_file_name("rekey.db");
    sqlite_python(
        &db,
        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"INSERT INTO enrollments (user_guid, method, value, verified_at, data, key_id) VALUES (randomblob(16), 'totp', 'app', 1, x'00', '20200101T000000Z')\"); c.commit()",
    );
    let o = rekey(&c, &["admin", "enrollment-report"], "");
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("RK-KEY-001") && t.contains("20200101T000000Z"),
        "{t}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
