//! Test support: a minimal HTTP/1.1 client over a TcpStream, an openssl-made certificate, and
//! client assertions signed with the rsa crate.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rekey_graph_double::{AppSpec, Double, GRAPH_DEFAULT_SCOPE};
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TENANT: &str = "contoso-tenant";

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`), read to EOF.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or(("application/json", b""));
    if !body.1.is_empty() || method != "GET" {
        req.push_str(&format!(
            "Content-Type: {}\r\nContent-Length: {}\r\n",
            body.0,
            body.1.len()
        ));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body.1).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// Percent-encodes a query value.
pub fn q(s: &str) -> String {
    String::from_utf8(form(&[("x", s)])).unwrap()[2..].to_owned()
}

pub async fn post_form(d: &Double, pairs: &[(&str, &str)]) -> Resp {
    let path = format!("/{TENANT}/oauth2/v2.0/token");
    let body = form(pairs);
    http(
        d.addr(),
        "POST",
        &path,
        &[],
        Some(("application/x-www-form-urlencoded", &body)),
    )
    .await
}

pub async fn token_by_secret(d: &Double, client: &str, secret: &str) -> Resp {
    post_form(
        d,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret),
            ("scope", GRAPH_DEFAULT_SCOPE),
        ],
    )
    .await
}

/// A double with one app `app` (secret `s3cret`) holding `perms` and `roles`; its token.
pub async fn with_app(perms: &[&str], roles: &[&str]) -> (Double, String) {
    let d = Double::start().await.unwrap();
    d.add_app(
        AppSpec::new("app")
            .secret("s3cret")
            .permissions(perms)
            .roles(roles),
    )
    .unwrap();
    let t = token_by_secret(&d, "app", "s3cret").await;
    assert_eq!(t.status, 200, "{}", t.body);
    let token = t.json()["access_token"].as_str().unwrap().to_owned();
    (d, token)
}

/// A Graph GET with the bearer token.
pub async fn get(d: &Double, path: &str, token: &str) -> Resp {
    graph(d, "GET", path, token, None).await
}

pub async fn graph(d: &Double, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
    let auth = format!("Bearer {token}");
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    http(
        d.addr(),
        method,
        path,
        &[("Authorization", &auth)],
        Some(("application/json", &bytes)),
    )
    .await
}

/// A self-signed RSA certificate and its key, made by the openssl CLI.
pub struct TestCert {
    pub pem: String,
    pub der: Vec<u8>,
    pub key: RsaPrivateKey,
}

pub fn make_cert() -> TestCert {
    let (pem, key_pem) = rekey_graph_double::self_signed_cert("rekey-test").unwrap();
    let der = CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec();
    let key_der = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let key = RsaPrivateKey::from_pkcs8_der(key_der.secret_pkcs8_der()).unwrap();
    TestCert { pem, der, key }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A client assertion: `alg` PS256 (x5t#S256) or RS256 (x5t), claims as documented.
pub fn assertion(cert: &TestCert, alg: &str, claims: Value) -> String {
    let header = if alg == "PS256" {
        json!({"alg": "PS256", "typ": "JWT", "x5t#S256": URL_SAFE_NO_PAD.encode(Sha256::digest(&cert.der))})
    } else {
        json!({"alg": "RS256", "typ": "JWT", "x5t": URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&cert.der))})
    };
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = if alg == "PS256" {
        let k = rsa::pss::BlindedSigningKey::<Sha256>::new(cert.key.clone());
        k.sign_with_rng(&mut rand_core::OsRng, signed.as_bytes())
            .to_vec()
    } else {
        let k = rsa::pkcs1v15::SigningKey::<Sha256>::new(cert.key.clone());
        k.sign(signed.as_bytes()).to_vec()
    };
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

pub fn claims(d: &Double, client: &str, jti: &str) -> Value {
    let n = now();
    json!({"aud": d.token_url(TENANT), "iss": client, "sub": client, "jti": jti,
           "nbf": n, "iat": n, "exp": n + 600})
}

pub async fn token_by_assertion(d: &Double, client: &str, jwt: &str) -> Resp {
    post_form(
        d,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("scope", GRAPH_DEFAULT_SCOPE),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt),
        ],
    )
    .await
}

pub async fn ropc(d: &Double, upn: &str, password: &str) -> Resp {
    post_form(
        d,
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("scope", "openid"),
            ("username", upn),
            ("password", password),
        ],
    )
    .await
}
