//! The continuous audit forwarder (`rekey::forward`) against Debian's real rsyslogd: TLS (server
//! checked against a CA; mutual TLS), plain TCP, a receiver down at start or restarted, the
//! forwarder stopped mid-stream and started again (a `rekey serve` restart), a crafted user name
//! as rsyslog parses it, a tampered record, and the cursor's lease on SQLite and PostgreSQL.
//!
//! rsyslogd runs as a child per test with its own config, pid file, work directory and output
//! files in a temporary directory (`imtcp`, `gtls` for TLS, `mmpstrucdata` to parse the
//! structured data). Without `/usr/sbin/rsyslogd` (packages `rsyslog`, `rsyslog-gnutls`; dev/test
//! installs them) these tests FAIL with that message; they never skip. PostgreSQL: the server at
//! `$REKEY_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rekey::config::audit::{ForwardFormat, ForwardSection, Transport};
use rekey::forward::{Forwarder, checked};
use rekey_core::audit::{Actor, AuditEvent, Operation};
use rekey_core::store::Store;
use rekey_store::SqlStore;
use serde_json::Value;
use sqlx::Connection;

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
const EVIL: &str = "evil\n<13>1 2026-01-01T00:00:00Z h rekey - reset [rekey@32473 seq=\"1\"] forged\
                    \r\"quoted\" back\\slash ]bracket x=y|pipe CEF:0|a|b suser=admin cs1=S-x";

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn temp_dir(what: &str) -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("rekey-forward-{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("work")).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---- certificates -----------------------------------------------------------------------------

/// A CA, a server certificate for localhost / 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn make_pki(dir: &Path, name: &str) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let leaf = |cn: &str, eku: ExtendedKeyUsagePurpose| {
        let mut p =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![eku];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server, server_key) = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (client, client_key) = leaf("rekey", ExtendedKeyUsagePurpose::ClientAuth);
    let write = |file: &str, text: &str| {
        let path = dir.join(format!("{name}-{file}"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let pki = Pki {
        ca: write("ca.pem", &ca.pem()),
        server_cert: write("server.pem", &server),
        server_key: write("server-key.pem", &server_key),
        client_cert: write("client.pem", &client),
        client_key: write("client-key.pem", &client_key),
    };
    use std::os::unix::fs::PermissionsExt;
    for key in [&pki.server_key, &pki.client_key] {
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    pki
}

// ---- rsyslogd ---------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Tcp,
    /// TLS, any client (`anon`).
    Tls,
    /// TLS, the client's certificate must chain to the CA (`x509/certvalid`).
    MutualTls,
}

/// A running rsyslogd writing what it receives to `raw.log` (`%rawmsg%`) and `sd.log`
/// (`mmpstrucdata`'s parse of the structured data, and msgid / app-name / msg, as JSON).
struct Rsyslog {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Rsyslog {
    fn config(dir: &Path, port: u16, mode: Mode, pki: &Pki) -> PathBuf {
        let d = dir.display();
        let (global_tls, module) = match mode {
            Mode::Tcp => (String::new(), r#"module(load="imtcp")"#.to_owned()),
            Mode::Tls | Mode::MutualTls => (
                format!(
                    r#"DefaultNetstreamDriverCAFile="{}" DefaultNetstreamDriverCertFile="{}" DefaultNetstreamDriverKeyFile="{}""#,
                    pki.ca.display(),
                    pki.server_cert.display(),
                    pki.server_key.display()
                ),
                format!(
                    r#"module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="{}")"#,
                    if mode == Mode::Tls {
                        "anon"
                    } else {
                        "x509/certvalid"
                    }
                ),
            ),
        };
        let conf = format!(
            r#"global(workDirectory="{d}/work" maxMessageSize="64k" {global_tls})
{module}
input(type="imtcp" port="{port}" address="127.0.0.1")
module(load="mmpstrucdata")
template(name="raw" type="string" string="%rawmsg%\n")
template(name="sd" type="list" option.jsonf="on") {{
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="sd" name="$!rfc5424-sd" format="jsonf")
}}
action(type="mmpstrucdata")
action(type="omfile" file="{d}/raw.log" template="raw")
action(type="omfile" file="{d}/sd.log" template="sd")
"#
        );
        let path = dir.join("rsyslog.conf");
        std::fs::write(&path, conf).unwrap();
        path
    }

    fn start(dir: &Path, port: u16, mode: Mode, pki: &Pki) -> Self {
        assert!(
            Path::new(RSYSLOGD).exists(),
            "{RSYSLOGD} not found: install Debian's rsyslog and rsyslog-gnutls (dev/test does)"
        );
        Self::config(dir, port, mode, pki);
        let mut r = Self {
            dir: dir.to_owned(),
            port,
            child: None,
        };
        r.resume();
        r
    }

    /// Start (again) with the same config and port; wait until it accepts connections.
    fn resume(&mut self) {
        let conf = self.dir.join("rsyslog.conf");
        let pid = self.dir.join("rsyslogd.pid");
        let _ = std::fs::remove_file(&pid);
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(&pid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("rsyslogd.err")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not listen on {}: {}",
                self.port,
                std::fs::read_to_string(self.dir.join("rsyslogd.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop it the way systemd does (SIGTERM), and wait for it to exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn raw(&self) -> Vec<String> {
        lines(&self.dir.join("raw.log"))
    }

    /// Each message as rsyslog parsed it.
    fn parsed(&self) -> Vec<Value> {
        lines(&self.dir.join("sd.log"))
            .iter()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                // `jsonf` writes the parsed tree as a JSON string.
                if let Some(sd) = v["sd"].as_str() {
                    v["sd"] = serde_json::from_str(sd).unwrap_or_else(|e| panic!("{e}: {sd}"));
                }
                v
            })
            .collect()
    }

    /// `seq` → how many times it arrived, from the parsed structured data.
    fn seqs(&self) -> BTreeMap<i64, usize> {
        let mut seen = BTreeMap::new();
        for v in self.parsed() {
            let seq: i64 = v["sd"]["rekey@32473"]["seq"]
                .as_str()
                .unwrap_or_else(|| panic!("no seq in {v}"))
                .parse()
                .unwrap();
            *seen.entry(seq).or_default() += 1;
        }
        seen
    }

    /// Wait until records `1..=n` all arrived (at least once).
    async fn wait_for(&self, n: i64, within: Duration) -> BTreeMap<i64, usize> {
        let deadline = Instant::now() + within;
        loop {
            let seen = self.seqs();
            if (1..=n).all(|s| seen.contains_key(&s)) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "records missing after {within:?}: {:?}; rsyslogd said: {}",
                (1..=n)
                    .filter(|s| !seen.contains_key(s))
                    .collect::<Vec<_>>(),
                std::fs::read_to_string(self.dir.join("rsyslogd.err")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

// ---- records and forwarders -------------------------------------------------------------------

fn event(n: i64, sam: &str) -> AuditEvent {
    AuditEvent {
        at_ms: 1_796_119_200_000 + n * 1000,
        support_id: format!("S-{n:04}"),
        actor: Actor::User,
        operation: Operation::Reset,
        result: "ok".into(),
        client_ip: Some("192.0.2.7".into()),
        user_agent: Some(format!("agent {sam}")),
        target_guid: Some(format!("g-{n}")),
        target_sam: Some(sam.into()),
        methods: vec!["email_otp".into()],
        zones: vec![],
        error_code: None,
        detail: None,
    }
}

async fn sqlite(dir: &Path) -> (Arc<SqlStore>, String) {
    let url = format!("sqlite://{}", dir.join("rekey.db").display());
    (Arc::new(SqlStore::connect(&url).await.unwrap()), url)
}

async fn append(store: &SqlStore, from: i64, to: i64) {
    for n in from..=to {
        store
            .append_audit(&event(n, &format!("user{n}")))
            .await
            .unwrap();
    }
}

fn section(port: u16, mode: Mode, pki: &Pki) -> ForwardSection {
    let mut s = ForwardSection::to(&format!("localhost:{port}"));
    s.hostname = Some("portal.example.org".into());
    s.poll_ms = 100;
    s.retry_max_secs = 1;
    s.timeout_secs = 3;
    match mode {
        Mode::Tcp => s.transport = Transport::Tcp,
        Mode::Tls => s.ca_file = Some(pki.ca.clone()),
        Mode::MutualTls => {
            s.ca_file = Some(pki.ca.clone());
            s.client_cert_file = Some(pki.client_cert.clone());
            s.client_key_file = Some(pki.client_key.clone());
        }
    }
    s
}

fn start(s: &ForwardSection, store: &Arc<SqlStore>) -> tokio::task::JoinHandle<()> {
    let f = Forwarder::new(s).unwrap().expect("a target is set");
    tokio::spawn(f.run(store.clone()))
}

/// A duplicate is the same message again (same seq, same hash, same text).
fn duplicates_are_identical(r: &Rsyslog) -> usize {
    let mut by_seq: BTreeMap<String, String> = BTreeMap::new();
    let mut dups = 0;
    for line in r.raw() {
        let seq = line
            .split("seq=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_owned();
        if let Some(before) = by_seq.insert(seq.clone(), line.clone()) {
            assert_eq!(before, line, "record {seq} arrived twice, differently");
            dups += 1;
        }
    }
    dups
}

// ---- tests ------------------------------------------------------------------------------------

/// TLS: every record arrives with its seq; stopped (aborted, like a killed `rekey serve`) and
/// started again many times while records are being written, nothing is missing and every
/// duplicate is the same message with the same seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_restarts_lose_nothing() {
    let dir = temp_dir("tls");
    let pki = make_pki(&dir, "rx");
    let port = free_port();
    let rx = Rsyslog::start(&dir, port, Mode::Tls, &pki);
    let (store, _) = sqlite(&dir).await;
    append(&store, 1, 40).await;
    let mut s = section(port, Mode::Tls, &pki);
    s.batch = 7;
    let started = Instant::now();
    let task = start(&s, &store);
    rx.wait_for(40, Duration::from_secs(20)).await;
    let first = started.elapsed();
    // Writers keep appending while the forwarder is stopped and started again 8 times.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 41..=200 {
                store
                    .append_audit(&event(n, &format!("user{n}")))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    task.abort();
    for i in 0..8 {
        let task = start(&s, &store);
        tokio::time::sleep(Duration::from_millis(150 + 60 * i)).await;
        task.abort();
        let _ = task.await;
    }
    writer.await.unwrap();
    let task = start(&s, &store);
    let seen = rx.wait_for(200, Duration::from_secs(30)).await;
    task.abort();
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (1..=200).collect::<Vec<_>>()
    );
    let dups = duplicates_are_identical(&rx);
    let cursor = store
        .forward_cursor(&format!("localhost:{port}"))
        .await
        .unwrap();
    assert!(
        cursor.is_some_and(|c| c.seq <= 200 && c.seq > 40),
        "{cursor:?}"
    );
    eprintln!(
        "tls: 200 records, {dups} duplicate(s) over 9 restarts; first 40 in {first:?}, total {:?}",
        started.elapsed()
    );
    // Every message as rsyslog parsed it: ours, verified, with its support id.
    for v in rx.parsed() {
        let sd = &v["sd"]["rekey@32473"];
        assert_eq!(v["app"], "rekey");
        assert_eq!(v["host"], "portal.example.org");
        assert_eq!(v["msgid"], "reset");
        assert_eq!(sd["chain"], "verified", "{v}");
        let seq: i64 = sd["seq"].as_str().unwrap().parse().unwrap();
        assert_eq!(sd["support_id"], format!("S-{seq:04}"));
    }
}

/// Mutual TLS: rsyslog requires a client certificate from the CA, and gets one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls() {
    let dir = temp_dir("mtls");
    let pki = make_pki(&dir, "rx");
    let port = free_port();
    let rx = Rsyslog::start(&dir, port, Mode::MutualTls, &pki);
    let (store, _) = sqlite(&dir).await;
    append(&store, 1, 5).await;
    // Without the client certificate, rsyslog refuses: nothing arrives.
    let anon = start(&section(port, Mode::Tls, &pki), &store);
    tokio::time::sleep(Duration::from_secs(2)).await;
    anon.abort();
    assert!(rx.seqs().is_empty(), "{:?}", rx.raw());
    let task = start(&section(port, Mode::MutualTls, &pki), &store);
    rx.wait_for(5, Duration::from_secs(20)).await;
    task.abort();
}

/// A receiver whose certificate is not from the configured CA, or not for the configured name,
/// gets nothing: there is no "accept any certificate".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_an_unknown_receiver() {
    let dir = temp_dir("badca");
    let pki = make_pki(&dir, "rx");
    let other = make_pki(&dir, "other");
    let port = free_port();
    let rx = Rsyslog::start(&dir, port, Mode::Tls, &pki);
    let (store, _) = sqlite(&dir).await;
    append(&store, 1, 3).await;
    let wrong_ca = start(&section(port, Mode::Tls, &other), &store);
    let mut wrong_name = section(port, Mode::Tls, &pki);
    wrong_name.server_name = Some("siem.example.org".into());
    wrong_name.name = Some("second".into());
    let wrong_name = start(&wrong_name, &store);
    tokio::time::sleep(Duration::from_secs(3)).await;
    wrong_ca.abort();
    wrong_name.abort();
    assert!(rx.raw().is_empty(), "{:?}", rx.raw());
    let cursor = store
        .forward_cursor(&format!("localhost:{port}"))
        .await
        .unwrap();
    assert_eq!(cursor.map(|c| c.seq), Some(0));
}

/// Plain TCP with the CEF line as MSG; the receiver is down at start, comes up, is restarted
/// (records written meanwhile), and still gets everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_receiver_down_and_restarted() {
    let dir = temp_dir("tcp");
    let pki = make_pki(&dir, "rx");
    let port = free_port();
    let (store, _) = sqlite(&dir).await;
    append(&store, 1, 20).await;
    let mut s = section(port, Mode::Tcp, &pki);
    s.format = ForwardFormat::Cef;
    let task = start(&s, &store);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut rx = Rsyslog::start(&dir, port, Mode::Tcp, &pki);
    rx.wait_for(20, Duration::from_secs(20)).await;
    // Stopped at once: the batch just written may not be confirmed yet (sent again), and the
    // records written next go to a connection the receiver already closed (sent again).
    rx.stop();
    append(&store, 21, 30).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rx.resume();
    append(&store, 31, 40).await;
    let seen = rx.wait_for(40, Duration::from_secs(20)).await;
    task.abort();
    let dups = duplicates_are_identical(&rx);
    eprintln!("tcp: 40 records, receiver down at start and restarted once, {dups} duplicate(s)");
    assert_eq!(seen.len(), 40);
    for v in rx.parsed() {
        let msg = v["msg"].as_str().unwrap();
        let seq = v["sd"]["rekey@32473"]["seq"].as_str().unwrap();
        assert!(msg.starts_with("CEF:0|Rekey|Rekey|"), "{msg}");
        assert!(msg.contains(&format!(" externalId={seq} ")), "{msg}");
    }
}

/// A user name full of syslog and CEF metacharacters (a newline and a whole forged syslog
/// line, `]`, `"`, `\`, `=`, `|`, ` suser=admin`) forges no line, message, SD-PARAM or CEF key,
/// as rsyslog itself parses what it received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_user_name_forges_nothing() {
    let dir = temp_dir("evil");
    let pki = make_pki(&dir, "rx");
    let port = free_port();
    let rx = Rsyslog::start(&dir, port, Mode::Tls, &pki);
    let (store, _) = sqlite(&dir).await;
    append(&store, 1, 1).await;
    store.append_audit(&event(2, EVIL)).await.unwrap();
    append(&store, 3, 3).await;
    let mut syslog = section(port, Mode::Tls, &pki);
    syslog.name = Some("syslog".into());
    let mut cef = section(port, Mode::Tls, &pki);
    cef.name = Some("cef".into());
    cef.format = ForwardFormat::Cef;
    let a = start(&syslog, &store);
    let b = start(&cef, &store);
    let deadline = Instant::now() + Duration::from_secs(20);
    while rx.raw().len() < 6 {
        assert!(Instant::now() < deadline, "{:?}", rx.raw());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.abort();
    b.abort();
    let raw = rx.raw();
    assert_eq!(raw.len(), 6, "one line per message: {raw:#?}");
    assert!(raw.iter().all(|l| l.starts_with("<85>1 ")), "{raw:#?}");
    let expected = EVIL.replace('\n', "\\n").replace('\r', "\\r");
    for v in rx.parsed() {
        let sd = v["sd"].as_object().unwrap();
        assert_eq!(sd.len(), 1, "one SD-ELEMENT: {v}");
        let params = sd["rekey@32473"].as_object().unwrap();
        let mut names: Vec<&str> = params.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "actor",
                "chain",
                "client_ip",
                "hash",
                "methods",
                "result",
                "seq",
                "support_id",
                "target_guid",
                "target_sam",
                "user_agent",
            ],
            "{v}"
        );
        let seq = params["seq"].as_str().unwrap();
        assert_eq!(params["support_id"], format!("S-000{seq}"));
        assert_eq!(params["actor"], "user");
        let msg = v["msg"].as_str().unwrap();
        if seq == "2" {
            assert_eq!(params["target_sam"], expected.as_str(), "{v}");
            assert_eq!(params["user_agent"], format!("agent {expected}").as_str());
        }
        if msg.starts_with("CEF:") {
            // The header holds no user text: its 7 pipes come first. In the extension a pipe
            // needs no escape, but every `=` of the user's is escaped: no forged key.
            let unescaped = msg
                .replace("\\\\", "")
                .replace("\\|", "")
                .replace("\\=", "");
            let parts: Vec<&str> = unescaped.splitn(8, '|').collect();
            assert_eq!(
                parts[..7],
                [
                    "CEF:0",
                    "Rekey",
                    "Rekey",
                    env!("CARGO_PKG_VERSION"),
                    "reset",
                    "Password reset",
                    "3"
                ],
                "{msg}"
            );
            let keys: Vec<&str> = parts[7]
                .split(' ')
                .filter_map(|w| w.split_once('=').map(|(k, _)| k))
                .collect();
            assert_eq!(keys.iter().filter(|k| **k == "suser").count(), 1, "{msg}");
            assert_eq!(keys.iter().filter(|k| **k == "cs1").count(), 1, "{msg}");
            assert!(msg.contains(&format!(" cs1=S-000{seq} ")), "{msg}");
        } else {
            assert_eq!(msg, "reset ok");
        }
    }
}

/// A record edited in the database is still forwarded, marked `chain="broken"`; the records
/// around it verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_record_is_forwarded_marked_broken() {
    let dir = temp_dir("broken");
    let pki = make_pki(&dir, "rx");
    let port = free_port();
    let rx = Rsyslog::start(&dir, port, Mode::Tcp, &pki);
    let (store, url) = sqlite(&dir).await;
    append(&store, 1, 5).await;
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "DROP TRIGGER audit_no_update; \
         UPDATE audit SET body = replace(body, 'user3', 'someone-else') WHERE seq = 3;",
    )
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    let task = start(&section(port, Mode::Tcp, &pki), &store);
    rx.wait_for(5, Duration::from_secs(20)).await;
    task.abort();
    for v in rx.parsed() {
        let sd = &v["sd"]["rekey@32473"];
        let want = if sd["seq"] == "3" {
            "broken"
        } else {
            "verified"
        };
        assert_eq!(sd["chain"], want, "{v}");
    }
}

// ---- the cursor in the store ------------------------------------------------------------------

async fn cursor_contract(store: &SqlStore) {
    const LEASE: i64 = 30_000;
    let c = store
        .claim_forward("t", "a", 1000, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.seq, c.hash), (0, None));
    // Another holder waits for the lease…
    assert!(
        store
            .claim_forward("t", "b", 2000, LEASE)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !store
            .advance_forward("t", "b", 5, &[5; 32], 2000)
            .await
            .unwrap()
    );
    // …the holder moves the cursor forward only.
    assert!(
        store
            .advance_forward("t", "a", 5, &[5; 32], 2000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .advance_forward("t", "a", 4, &[4; 32], 2000)
            .await
            .unwrap()
    );
    let c = store
        .claim_forward("t", "a", 3000, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.seq, c.hash), (5, Some([5; 32])));
    // After the lease ends, another takes over from the same place.
    let c = store
        .claim_forward("t", "b", 3000 + LEASE, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.seq, 5);
    assert!(
        !store
            .advance_forward("t", "a", 9, &[9; 32], 3000 + LEASE)
            .await
            .unwrap()
    );
    assert!(
        store
            .advance_forward("t", "b", 9, &[9; 32], 3000 + LEASE)
            .await
            .unwrap()
    );
    // Targets are independent.
    let other = store
        .claim_forward("u", "a", 4000, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.seq, 0);
    assert_eq!(
        store.forward_cursor("t").await.unwrap().map(|c| c.seq),
        Some(9)
    );
    assert_eq!(store.forward_cursor("nothing").await.unwrap(), None);
}

#[tokio::test]
async fn cursor_on_sqlite() {
    let dir = temp_dir("cursor");
    let (store, _) = sqlite(&dir).await;
    cursor_contract(&store).await;
}

#[tokio::test]
async fn cursor_on_postgres() {
    let server = std::env::var("REKEY_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("rekey_forward_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("PostgreSQL at REKEY_TEST_POSTGRES (default 127.0.0.1:5432, user postgres)");
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(&sql).execute(&mut admin).await.unwrap();
    }
    let store = SqlStore::connect(&format!("{server}/{name}"))
        .await
        .unwrap();
    cursor_contract(&store).await;
    store.close().await;
    sqlx::raw_sql(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// Two instances with different host names on one database: one forwards, the other stands by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_send_once() {
    let dir = temp_dir("replicas");
    let pki = make_pki(&dir, "rx");
    let port = free_port();
    let rx = Rsyslog::start(&dir, port, Mode::Tcp, &pki);
    let (store, _) = sqlite(&dir).await;
    append(&store, 1, 30).await;
    let s = section(port, Mode::Tcp, &pki);
    let a = Forwarder::new(&s)
        .unwrap()
        .unwrap()
        .with_holder("replica-a");
    let b = Forwarder::new(&s)
        .unwrap()
        .unwrap()
        .with_holder("replica-b");
    let a = tokio::spawn(a.run(store.clone()));
    let b = tokio::spawn(b.run(store.clone()));
    let seen = rx.wait_for(30, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.abort();
    b.abort();
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    assert_eq!(rx.raw().len(), 30);
}

// ---- configuration ----------------------------------------------------------------------------

#[test]
fn bad_config_names_the_key() {
    let dir = temp_dir("config");
    let pki = make_pki(&dir, "rx");
    let err = |s: &ForwardSection| checked(Some(s)).unwrap_err().to_string();
    let tls = ForwardSection::to("siem.example.org:6514");
    assert!(
        err(&tls).starts_with("RK-CFG-001: audit.forward.ca_file: required"),
        "{}",
        err(&tls)
    );
    for target in ["siem.example.org", ":6514", "siem:0", "siem:x", "[::1]6514"] {
        let mut s = ForwardSection::to(target);
        s.transport = Transport::Tcp;
        assert!(
            err(&s).contains("audit.forward.target"),
            "{target}: {}",
            err(&s)
        );
    }
    let mut s = section(6514, Mode::Tls, &pki);
    s.ca_file = Some(pki.server_key.clone());
    assert!(err(&s).contains("audit.forward.ca_file"), "{}", err(&s));
    let mut s = section(6514, Mode::MutualTls, &pki);
    s.client_key_file = None;
    assert!(err(&s).contains("audit.forward.client_key_file: required"));
    let mut s = section(6514, Mode::Tls, &pki);
    s.facility = "kern".into();
    assert!(err(&s).contains("audit.forward.facility"));
    // Fine: TLS with a CA, mutual TLS, TCP to an IPv6 address; no target: off.
    for s in [
        section(6514, Mode::Tls, &pki),
        section(6514, Mode::MutualTls, &pki),
        ForwardSection {
            transport: Transport::Tcp,
            ..ForwardSection::to("[::1]:514")
        },
    ] {
        assert!(checked(Some(&s)).unwrap().is_some());
    }
    let off = ForwardSection {
        target: None,
        ..ForwardSection::to("x:1")
    };
    assert!(Forwarder::new(&off).unwrap().is_none());
}
