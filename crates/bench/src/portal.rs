//! The portal — `rekey serve` in its own process (`process.rs`, the default: its CPU is read
//! apart from the bench's) or in this process (`rekey_e2e::portal`, wired like `rekey serve`) —
//! with the bench's budgets, a minimal in-process SMTP sink that hands each code to the waiting worker at once (no
//! Maildir polling: the sink's latency must not count as Rekey's), and a minimal HTTP/1.1 client.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rekey_core::store::{Enrollment, MethodKind, Store};
use rekey_directory::ActiveDirectory;
use rekey_e2e::dev::Dev;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::dc::{BenchResult, BenchUser};

/// The running portal (its store files go with it).
pub struct Portal {
    pub port: u16,
    /// Codes mailed to each bench user's enrolled address, in order.
    pub codes: HashMap<String, tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>>,
    web: Web,
}

enum Web {
    /// Kept only to keep the server running (aborted on drop).
    InProcess(#[expect(dead_code, reason = "held for its Drop")] Box<rekey_e2e::portal::Portal>),
    Process(crate::process::RekeyProcess),
}

impl Portal {
    /// The pid of `rekey serve`, when Rekey runs in its own process.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        match &self.web {
            Web::Process(p) => Some(p.pid()),
            Web::InProcess(_) => None,
        }
    }

    /// `rekey serve`'s CPU while idle, ms per second, when Rekey runs in its own process.
    #[must_use]
    pub fn idle_ms_per_s(&self) -> Option<f64> {
        match &self.web {
            Web::Process(p) => Some(p.idle_ms_per_s),
            Web::InProcess(_) => None,
        }
    }
}

/// Start the portal with the bench's engine limits: per-IP and per-user mail budgets raised (one
/// client IP drives thousands of operations), identify deadline `identify_deadline`; `rekey serve`
/// in its own process when `process`.
pub async fn start(
    dev: &Dev,
    ad: Arc<ActiveDirectory>,
    users: &[BenchUser],
    identify_deadline: Duration,
    process: bool,
) -> BenchResult<Portal> {
    let (smtp_port, codes) = smtp_sink(users).await?;
    let deadline_ms = u64::try_from(identify_deadline.as_millis()).unwrap_or(u64::MAX);
    let mut enrollments = Vec::new();
    for u in users {
        let account = ad
            .account_by_dn(&u.dn)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} not found", u.sam))?;
        enrollments.push(Enrollment::contact(
            account.guid,
            MethodKind::Email,
            &u.address,
            0,
        ));
    }
    if process {
        let p = crate::process::start(dev, smtp_port, deadline_ms, &enrollments).await?;
        return Ok(Portal {
            port: p.port,
            codes,
            web: Web::Process(p),
        });
    }
    let mut smtp = rekey_notify::SmtpConfig::new("127.0.0.1", "Rekey <rekey@corp.example.com>");
    smtp.port = Some(smtp_port);
    smtp.tls = rekey_notify::TlsMode::None;
    smtp.timeout_ms = 5_000;
    let web = rekey_e2e::portal::start(dev, &smtp, |c| {
        c.engine.per_ip_attempts_per_hour = Some(u32::MAX);
        c.engine.emails_per_user_per_hour = Some(u32::MAX);
        if let Some(s) = c.server.as_mut() {
            // Every fixed answer deadline at the bench's (1 ms by default): the bench measures
            // the work, production adds the deadlines by design (invariant 9).
            s.identify_deadline_ms = deadline_ms;
            s.answer_deadline_ms = deadline_ms;
            s.password_deadline_ms = deadline_ms;
        }
    })
    .await?;
    for e in &enrollments {
        web.store
            .upsert_enrollment(e)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(Portal {
        port: web.port,
        codes,
        web: Web::InProcess(Box::new(web)),
    })
}

type Codes = HashMap<String, tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>>;

/// A minimal SMTP server on 127.0.0.1:0: accepts everything, and sends the 6-digit code of every
/// "verification code" mail to the receiver of its recipient. Notices are dropped.
pub(crate) async fn smtp_sink(users: &[BenchUser]) -> BenchResult<(u16, Codes)> {
    let mut senders = HashMap::new();
    let mut receivers = HashMap::new();
    for u in users {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.insert(u.address.to_lowercase(), tx);
        receivers.insert(u.address.clone(), tokio::sync::Mutex::new(rx));
    }
    let senders = Arc::new(senders);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let senders = senders.clone();
            tokio::spawn(async move {
                let _ = smtp_session(stream, &senders).await;
            });
        }
    });
    Ok((port, receivers))
}

async fn smtp_session(
    stream: TcpStream,
    senders: &HashMap<String, mpsc::UnboundedSender<String>>,
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 bench ESMTP\r\n").await?;
    let mut rcpt: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            w.write_all(b"250-bench\r\n250 8BITMIME\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            let addr = line[8..].trim().trim_matches(['<', '>']).to_lowercase();
            rcpt.push(addr);
            w.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("DATA") {
            w.write_all(b"354 go\r\n").await?;
            let mut msg = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                msg.push_str(&line);
            }
            if let Some(code) = code_in_mail(&msg) {
                for a in &rcpt {
                    if let Some(tx) = senders.get(a) {
                        let _ = tx.send(code.clone());
                    }
                }
            }
            rcpt.clear();
            w.write_all(b"250 queued\r\n").await?;
        } else if upper.starts_with("QUIT") {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            // MAIL FROM, RSET, NOOP …
            if upper.starts_with("RSET") {
                rcpt.clear();
            }
            w.write_all(b"250 OK\r\n").await?;
        }
    }
}

/// The code of a "verification code" mail (plain, quoted-printable or base64 body).
fn code_in_mail(msg: &str) -> Option<String> {
    let (head, body) = msg
        .split_once("\r\n\r\n")
        .or_else(|| msg.split_once("\n\n"))?;
    let head_l = head.to_ascii_lowercase();
    if !head_l.contains("verification code") {
        return None;
    }
    let text = if head_l.contains("content-transfer-encoding: base64") {
        String::from_utf8_lossy(&base64_decode(body)).into_owned()
    } else {
        body.replace("=\r\n", "")
    };
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .map(str::to_owned)
}

fn base64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// A response: status, `Set-Cookie` name=value pairs, `Location`, body.
pub struct Answer {
    pub status: u16,
    pub cookies: Vec<(String, String)>,
    pub location: Option<String>,
    pub body: String,
}

impl Answer {
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), like a browser's first
/// request; loopback connects cost microseconds.
pub async fn http(
    port: u16,
    method: &str,
    path: &str,
    cookies: &str,
    form: Option<&str>,
) -> BenchResult<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect portal: {e}"))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if !cookies.is_empty() {
        req.push_str(&format!("Cookie: {cookies}\r\n"));
    }
    match form {
        Some(body) => req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => req.push_str("\r\n"),
    }
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("truncated response")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let (mut cookies, mut location) = (Vec::new(), None);
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("set-cookie") {
            let pair = v.split(';').next().unwrap_or_default();
            if let Some((n, val)) = pair.split_once('=') {
                cookies.push((n.to_owned(), val.to_owned()));
            }
        } else if k.eq_ignore_ascii_case("location") {
            location = Some(v.to_owned());
        }
    }
    Ok(Answer {
        status,
        cookies,
        location,
        body: body.to_owned(),
    })
}

/// `application/x-www-form-urlencoded` value encoding.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_in_plain_qp_and_base64_bodies() {
        let plain = "Subject: Your Corp verification code\r\n\r\nYour code: 123456\r\n";
        assert_eq!(code_in_mail(plain).as_deref(), Some("123456"));
        let b64 = "Subject: Your Corp verification code\r\nContent-Transfer-Encoding: base64\r\n\r\nWW91ciBjb2RlOiA2NTQzMjE=\r\n";
        assert_eq!(code_in_mail(b64).as_deref(), Some("654321"));
        let notice = "Subject: Your Corp account password was reset\r\n\r\n123456\r\n";
        assert_eq!(code_in_mail(notice), None);
    }
}
