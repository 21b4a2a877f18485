//! Test support: the Graph test double with one app, accounts as the AD zone reads them, a
//! certificate made by the openssl CLI, a ROPC probe, and a scripted HTTP stub for the answers
//! the double never gives (500, dropped connections, hangs).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rekey_core::{Account, Guid};
use rekey_entra::{Credential, EntraConfig, EntraId};
use rekey_graph_double::{AppSpec, Double, MemOnPrem, Options, SyncSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zeroize::Zeroizing;

pub const TENANT: &str = "contoso-tenant";
pub const APP: &str = "rekey-app";
/// Form-encoding matters: `+`, `/`, `=`, `&`, `%` must arrive as they are.
pub const SECRET: &str = "s3cr+t/V=lu&%~x";
pub const PERMS: &[&str] = &[
    "User.Read.All",
    "User-PasswordProfile.ReadWrite.All",
    "User.RevokeSessions.All",
];

/// `err` is a refusal for `reason`; its diagnostic.
pub fn refused(
    err: &rekey_core::LandingError,
    reason: rekey_core::Rejection,
) -> &rekey_core::Diagnostic {
    match err {
        rekey_core::LandingError::Rejected {
            reason: r,
            diagnostic,
        } if *r == reason => diagnostic,
        other => panic!("expected {reason:?}, got {other:?}"),
    }
}

pub fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// A double whose sync is paused (tests start it when they want it), and its on-prem side.
pub async fn double() -> (Double, MemOnPrem) {
    let on_prem = MemOnPrem::new();
    let mut opts = Options::in_memory(&on_prem);
    opts.sync = SyncSettings {
        paused: true,
        delay_ms: 0,
    };
    (Double::start_with(opts).await.unwrap(), on_prem)
}

/// A double with the app registered (secret and certificate), User Administrator.
pub async fn with_app() -> (Double, MemOnPrem) {
    let (d, on_prem) = double().await;
    d.add_app(
        AppSpec::new(APP)
            .secret(SECRET)
            .certificate(&cert().pem)
            .permissions(PERMS)
            .roles(&["User Administrator"]),
    )
    .unwrap();
    (d, on_prem)
}

pub fn config_at(base: &str, credential: Credential) -> EntraConfig {
    let mut cfg = EntraConfig::new(TENANT, APP, credential);
    cfg.login_base_url = base.to_owned();
    cfg.graph_base_url = base.to_owned();
    cfg
}

pub fn secret() -> Credential {
    Credential::Secret(Zeroizing::new(SECRET.to_owned()))
}

pub fn config(d: &Double) -> EntraConfig {
    config_at(d.base_url(), secret())
}

pub fn zone(cfg: EntraConfig) -> EntraId {
    EntraId::new(cfg).unwrap()
}

/// An AD account (objectGUID = `[n; 16]`).
pub fn account(n: u8, sam: &str, upn: Option<&str>) -> Account {
    let mut a = rekey_core::fakes::account(n, sam, &[]);
    a.user_principal_name = upn.map(str::to_owned);
    a
}

pub fn b64(g: Guid) -> String {
    STANDARD.encode(g.0)
}

/// Requests the double saw with this method whose path ends with `suffix`.
pub fn count(d: &Double, method: &str, suffix: &str) -> usize {
    d.requests()
        .iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix))
        .count()
}

pub fn token_requests(d: &Double) -> usize {
    count(d, "POST", "/oauth2/v2.0/token")
}

/// ROPC at the double: does `password` sign `upn` in? (HTTP status.)
pub async fn ropc(d: &Double, upn: &str, password: &str) -> u16 {
    let form: String = [
        ("grant_type", "password"),
        ("client_id", APP),
        ("scope", "openid"),
        ("username", upn),
        ("password", password),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", enc(v)))
    .collect::<Vec<_>>()
    .join("&");
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .build()
        .unwrap();
    http.post(d.token_url(TENANT))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A self-signed RSA certificate and its PKCS#8 key (PEM), made once by the openssl CLI.
pub struct TestCert {
    pub pem: String,
    pub key: String,
}

pub fn cert() -> &'static TestCert {
    static CERT: OnceLock<TestCert> = OnceLock::new();
    CERT.get_or_init(|| make_cert("a"))
}

/// A second, unrelated certificate.
pub fn other_cert() -> &'static TestCert {
    static CERT: OnceLock<TestCert> = OnceLock::new();
    CERT.get_or_init(|| make_cert("b"))
}

fn make_cert(tag: &str) -> TestCert {
    let (pem, key) =
        rekey_graph_double::self_signed_cert(&format!("rekey-entra-test-{tag}")).unwrap();
    TestCert { pem, key }
}

/// One request as the stub saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub authorization: Option<String>,
    pub client_request_id: Option<String>,
    pub content_length: Option<String>,
    pub body: String,
}

/// What the stub does with a Graph request.
pub enum Answer {
    Reply(u16, &'static [(&'static str, &'static str)], String),
    /// Read the request, close without a byte of answer.
    Drop,
    /// Read the request, never answer.
    Hang,
}

/// A scripted HTTP/1.1 server on loopback. Token requests get `tok-1`, `tok-2`, …; every other
/// request goes to the script. One request per connection (`Connection: close`).
pub struct Stub {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    pub async fn start(script: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, script) = (seen.clone(), Arc::new(script));
        tokio::spawn(async move {
            let mut tokens = 0u32;
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let Some((req, conn)) = read_request(conn).await else {
                    continue;
                };
                log.lock().unwrap().push(req.clone());
                let answer = if req.target.ends_with("/oauth2/v2.0/token") {
                    tokens += 1;
                    Answer::Reply(
                        200,
                        &[],
                        format!(
                            r#"{{"token_type":"Bearer","expires_in":3599,"access_token":"tok-{tokens}"}}"#
                        ),
                    )
                } else {
                    script(&req)
                };
                tokio::spawn(respond(conn, answer));
            }
        });
        Self { base, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn read_request(mut conn: TcpStream) -> Option<(Seen, TcpStream)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    Some((
        Seen {
            method,
            target,
            authorization: header("authorization"),
            client_request_id: header("client-request-id"),
            content_length: header("content-length"),
            body,
        },
        conn,
    ))
}

async fn respond(mut conn: TcpStream, answer: Answer) {
    match answer {
        Answer::Drop => drop(conn),
        Answer::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            drop(conn);
        }
        Answer::Reply(status, headers, body) => {
            let mut out = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&body);
            let _ = conn.write_all(out.as_bytes()).await;
            let _ = conn.shutdown().await;
        }
    }
}
