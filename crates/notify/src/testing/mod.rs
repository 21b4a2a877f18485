//! A real SMTP server for tests (feature `test-support`): Debian's `python3-aiosmtpd`, storing
//! every message in a Maildir that the test reads back.
//!
//! ```no_run
//! # async fn demo() {
//! use rekey_notify::testing::SmtpSink;
//! let sink = SmtpSink::start();                   // plaintext on 127.0.0.1:<free port>
//! let config = sink.mailer_config();             // an SmtpConfig pointing at it
//! // … let the code under test send to alice@corp.example.com …
//! let mail = sink.wait_for("alice@corp.example.com", std::time::Duration::from_secs(5)).await;
//! assert!(mail.body.contains("123456"));
//! # }
//! ```
//!
//! The sink answers `reject-*@…` recipients with `550 5.1.1` and `tempfail-*@…` with
//! `451 4.3.0`, so refusal paths are tested against real relay answers, and `slow<ms>-*@…`
//! recipients (e.g. `slow3000-x@corp.example.com`) only after that many milliseconds. A whole
//! relay in trouble ([`Relay`], [`SmtpSink::start_relay`]): slow (every answer to DATA or RCPT
//! late), or failing every recipient temporarily (`451 4.3.0`) or for good (`554 5.7.1`). It runs
//! in its own process group, is killed when the `SmtpSink` is dropped, and exits by itself when
//! the test process dies (it watches its stdin).
//!
//! Needs `python3-aiosmtpd` (`dev/mail install`, or `apt-get install -y python3-aiosmtpd`) and,
//! for the TLS sinks, the `openssl` command. `REKEY_TEST_PYTHON` picks the interpreter.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc,
    reason = "test support: a failure to set up the sink is a test failure"
)]

mod tls;

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use mail_parser::MessageParser;

use crate::{SmtpConfig, TlsMode};

const SINK_PY: &str = include_str!("sink.py");
const POLL: Duration = Duration::from_millis(25);

/// How a test sink protects its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Starttls,
    Smtps,
}

/// How a plaintext sink behaves as a relay. The default accepts every mail (apart from the
/// `reject-*` / `tempfail-*` recipients) at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Relay {
    #[default]
    Healthy,
    /// Answers each message (the reply to DATA's final dot) only after this delay, then stores it:
    /// a slow relay. Keep it below the mailer's timeout (5 s with `mailer_config`) to see a late
    /// success, above it to see a timeout.
    SlowData(Duration),
    /// Answers each `RCPT TO` only after this delay (then as a healthy relay would).
    SlowRcpt(Duration),
    /// Answers every `RCPT TO` with `451 4.3.0` (failing, temporary): nothing is stored.
    TempFail,
    /// Answers every `RCPT TO` with `554 5.7.1` (failing, permanent): nothing is stored.
    PermFail,
}

impl Relay {
    fn args(self) -> Vec<String> {
        let secs = |d: Duration| format!("{:.3}", d.as_secs_f64());
        match self {
            Self::Healthy => vec![],
            Self::SlowData(d) => vec![format!("--data-delay={}", secs(d))],
            Self::SlowRcpt(d) => vec![format!("--rcpt-delay={}", secs(d))],
            Self::TempFail => vec!["--rcpt-answer=temp".into()],
            Self::PermFail => vec!["--rcpt-answer=perm".into()],
        }
    }
}

/// A running SMTP server on a free loopback port; stopped on drop.
pub struct SmtpSink {
    child: Child,
    /// Held open: the sink exits when it reads EOF.
    stdin: Option<ChildStdin>,
    port: u16,
    mode: Mode,
    relay: Relay,
    dir: PathBuf,
    maildir: PathBuf,
    ca_file: Option<PathBuf>,
    seen: Mutex<HashSet<String>>,
}

/// A message as the sink stored it, decoded (transfer encodings, RFC 2047 words undone).
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// File name in the Maildir: unique per message.
    pub id: String,
    /// First address of the `To` header.
    pub to: String,
    /// Envelope recipients (`RCPT TO`), as the sink recorded them.
    pub envelope_to: Vec<String>,
    /// Address of the `From` header.
    pub from: String,
    /// Decoded `Subject`.
    pub subject: String,
    /// Decoded text body, line ends normalised to `\n`.
    pub body: String,
    /// Every header as it was received (name, unfolded raw value), in order.
    pub headers: Vec<(String, String)>,
    /// The whole message as stored.
    pub raw: String,
}

impl ReceivedMail {
    /// The raw value of the first header called `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_for(&self, to: &str) -> bool {
        self.to.eq_ignore_ascii_case(to)
            || self.envelope_to.iter().any(|r| r.eq_ignore_ascii_case(to))
    }
}

impl SmtpSink {
    /// A plaintext sink on `127.0.0.1` (use `tls = "none"`).
    #[must_use]
    pub fn start() -> Self {
        Self::spawn(Mode::Plain, Relay::Healthy)
    }

    /// A plaintext sink that behaves as `relay` (slow or failing; see [`Relay`]).
    #[must_use]
    pub fn start_relay(relay: Relay) -> Self {
        Self::spawn(Mode::Plain, relay)
    }

    /// A plaintext sink that answers every message only after `delay` (a slow relay).
    #[must_use]
    pub fn start_slow(delay: Duration) -> Self {
        Self::start_relay(Relay::SlowData(delay))
    }

    /// A plaintext sink that answers every recipient with `451 4.3.0` (failing, temporary).
    #[must_use]
    pub fn start_tempfail() -> Self {
        Self::start_relay(Relay::TempFail)
    }

    /// A plaintext sink that answers every recipient with `554 5.7.1` (failing, permanent).
    #[must_use]
    pub fn start_permfail() -> Self {
        Self::start_relay(Relay::PermFail)
    }

    /// A sink that requires `STARTTLS`, with a certificate for `localhost` and `127.0.0.1` from a
    /// fresh CA ([`SmtpSink::ca_file`]).
    #[must_use]
    pub fn start_starttls() -> Self {
        Self::spawn(Mode::Starttls, Relay::Healthy)
    }

    /// A `STARTTLS` sink (as [`SmtpSink::start_starttls`]) that requires SMTP AUTH (PLAIN or
    /// LOGIN, after STARTTLS) with this user and password before it takes mail.
    #[must_use]
    pub fn start_starttls_with_login(user: &str, password: &str) -> Self {
        Self::spawn_with(
            Mode::Starttls,
            Relay::Healthy,
            &[format!("--login={user}:{password}")],
        )
    }

    /// A sink speaking TLS from the first byte (SMTPS), certificate as for `start_starttls`.
    #[must_use]
    pub fn start_smtps() -> Self {
        Self::spawn(Mode::Smtps, Relay::Healthy)
    }

    /// How it behaves as a relay.
    #[must_use]
    pub fn relay(&self) -> Relay {
        self.relay
    }

    /// The port it listens on (on `127.0.0.1`).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// PEM of the CA that issued the sink's certificate (TLS sinks only).
    #[must_use]
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The Maildir the messages land in.
    #[must_use]
    pub fn maildir(&self) -> &Path {
        &self.maildir
    }

    /// An `SmtpConfig` for this sink: host `127.0.0.1` (plain) or `localhost` (TLS, checked against
    /// the certificate), the matching TLS mode and CA, sender `Rekey <rekey@corp.example.com>`,
    /// 5 s timeout.
    #[must_use]
    pub fn mailer_config(&self) -> SmtpConfig {
        let host = if self.mode == Mode::Plain {
            "127.0.0.1"
        } else {
            "localhost"
        };
        let mut config = SmtpConfig::new(host, "Rekey <rekey@corp.example.com>");
        config.port = Some(self.port);
        config.tls = match self.mode {
            Mode::Plain => TlsMode::None,
            Mode::Starttls => TlsMode::Starttls,
            Mode::Smtps => TlsMode::Tls,
        };
        config.ca_file.clone_from(&self.ca_file);
        config.timeout_ms = 5_000;
        config
    }

    /// Every message received so far, oldest first.
    #[must_use]
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut files: Vec<(SystemTime, String, PathBuf)> = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                let name = entry.file_name().to_string_lossy().into_owned();
                files.push((modified, name, path));
            }
        }
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, name, path)| Some(parse(name, &std::fs::read(path).ok()?)))
            .collect()
    }

    /// Wait (asynchronously, polling) for a message to `to` that this method has not returned
    /// before, and return it. Panics after `timeout`, listing what did arrive.
    pub async fn wait_for(&self, to: &str, timeout: Duration) -> ReceivedMail {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(mail) = self.take_new(to) {
                return mail;
            }
            if Instant::now() >= deadline {
                self.timed_out(to, timeout);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// [`SmtpSink::wait_for`] for synchronous tests (blocks the thread while polling).
    #[must_use]
    pub fn wait_for_blocking(&self, to: &str, timeout: Duration) -> ReceivedMail {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(mail) = self.take_new(to) {
                return mail;
            }
            if Instant::now() >= deadline {
                self.timed_out(to, timeout);
            }
            std::thread::sleep(POLL);
        }
    }

    fn take_new(&self, to: &str) -> Option<ReceivedMail> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mail = self
            .messages()
            .into_iter()
            .find(|m| !seen.contains(&m.id) && m.is_for(to))?;
        seen.insert(mail.id.clone());
        Some(mail)
    }

    fn timed_out(&self, to: &str, timeout: Duration) -> ! {
        let got: Vec<String> = self
            .messages()
            .iter()
            .map(|m| format!("  to {} {:?}", m.to, m.subject))
            .collect();
        panic!(
            "no new mail to {to} within {timeout:?} at the SMTP sink on port {}; it holds {}:\n{}\nsink log:\n{}",
            self.port,
            got.len(),
            got.join("\n"),
            std::fs::read_to_string(self.dir.join("sink.log")).unwrap_or_default()
        );
    }

    fn spawn(mode: Mode, relay: Relay) -> Self {
        Self::spawn_with(mode, relay, &[])
    }

    fn spawn_with(mode: Mode, relay: Relay, options: &[String]) -> Self {
        let python = python();
        let dir = temp_dir();
        let maildir = dir.join("maildir");
        let script = dir.join("sink.py");
        std::fs::write(&script, SINK_PY).unwrap();
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .args(relay.args())
            .args(options)
            .arg(&maildir);
        let ca_file = match mode {
            Mode::Plain => {
                command.arg("plain");
                None
            }
            Mode::Starttls | Mode::Smtps => {
                let material = tls::generate(&dir);
                command
                    .arg(if mode == Mode::Starttls {
                        "starttls"
                    } else {
                        "smtps"
                    })
                    .arg(&material.cert)
                    .arg(&material.key);
                Some(material.ca)
            }
        };
        let log = File::create(dir.join("sink.log")).unwrap();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        // The sink prints its port once it accepts connections.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let Ok(port) = line.trim().parse::<u16>() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the SMTP sink ({} {}) did not start:\n{}",
                python.display(),
                script.display(),
                std::fs::read_to_string(dir.join("sink.log")).unwrap_or_default()
            );
        };
        Self {
            child,
            stdin,
            port,
            mode,
            relay,
            dir,
            maildir,
            ca_file,
            seen: Mutex::new(HashSet::new()),
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // Its own process group (pgid = its pid): kill the group, then reap.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("port", &self.port)
            .field("mode", &self.mode)
            .field("relay", &self.relay)
            .field("maildir", &self.maildir)
            .finish_non_exhaustive()
    }
}

/// An interpreter that has aiosmtpd: `REKEY_TEST_PYTHON`, else Debian's `/usr/bin/python3`
/// (the package installs there, not into a pyenv/venv `python3`), else `python3`.
fn python() -> PathBuf {
    let candidates: Vec<PathBuf> = match std::env::var_os("REKEY_TEST_PYTHON") {
        Some(p) => vec![p.into()],
        None => vec!["/usr/bin/python3".into(), "python3".into()],
    };
    for candidate in &candidates {
        let ok = Command::new(candidate)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return candidate.clone();
        }
    }
    panic!(
        "the SMTP test sink needs aiosmtpd, which none of {candidates:?} has: \
         run `dev/mail install` (or `apt-get install -y python3-aiosmtpd`)"
    );
}

fn temp_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "rekey-smtp-sink-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn parse(id: String, raw: &[u8]) -> ReceivedMail {
    let text = String::from_utf8_lossy(raw).into_owned();
    let Some(message) = MessageParser::default().parse(raw) else {
        return ReceivedMail {
            id,
            to: String::new(),
            envelope_to: Vec::new(),
            from: String::new(),
            subject: String::new(),
            body: String::new(),
            headers: Vec::new(),
            raw: text,
        };
    };
    let first_address = |addr: Option<&mail_parser::Address<'_>>| {
        addr.and_then(mail_parser::Address::first)
            .and_then(mail_parser::Addr::address)
            .unwrap_or_default()
            .to_owned()
    };
    let headers: Vec<(String, String)> = message
        .headers_raw()
        .map(|(name, value)| (name.to_owned(), unfold(value)))
        .collect();
    let envelope_to = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("X-RcptTo"))
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|r| r.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|r| !r.is_empty())
        .collect();
    ReceivedMail {
        id,
        to: first_address(message.to()),
        envelope_to,
        from: first_address(message.from()),
        subject: message.subject().unwrap_or_default().to_owned(),
        body: message
            .body_text(0)
            .map(|b| b.replace("\r\n", "\n"))
            .unwrap_or_default(),
        headers,
        raw: text,
    }
}

fn unfold(value: &str) -> String {
    value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
