//! An outsider's HTTP client for the portal: one request per connection (`Connection: close`),
//! the raw answer back, cookies and the CSRF token handled like a browser would, nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)] // test fixtures panic by design

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one request may take before the test fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP answer, as the raw bytes said it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Lowercase names, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub took: Duration,
}

/// One request per connection (`Connection: close`), the whole answer back, within 30 s.
pub async fn request(port: u16, raw: String) -> Answer {
    let started = Instant::now();
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(raw.as_bytes()).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    let bytes = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer within {REQUEST_TIMEOUT:?}"))
        .unwrap();
    let took = started.elapsed();
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
        took,
    }
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .find_map(|(_, v)| v.strip_prefix(&format!("{name}=")))
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
    }

    /// Status, headers and body with what legitimately differs per request replaced: the date,
    /// the length (the change form echoes the typed user name), cookie values, the CSRF token,
    /// support ids and the echoed user name.
    pub fn normalised(&self, csrf: &str, typed: &str) -> String {
        let mut out = format!("{}\n", self.status);
        for (k, v) in &self.headers {
            match k.as_str() {
                "date" | "content-length" => {}
                "set-cookie" => {
                    let (name, rest) = v.split_once('=').unwrap_or((v, ""));
                    let attrs = rest.split_once(';').map_or("", |(_, a)| a);
                    out += &format!("set-cookie: {name}=*;{attrs}\n");
                }
                _ => out += &format!("{k}: {v}\n"),
            }
        }
        let mut body = self.body.replace(csrf, "{csrf}");
        if !typed.is_empty() {
            body = body.replace(&format!("value=\"{typed}\""), "value=\"{typed}\"");
        }
        out + "\n" + &mask_support_ids(&body)
    }

    /// Status and the alert / result text, for the log.
    pub fn gist(&self) -> String {
        let text = ["id=\"alert\"", "id=\"result\"", "id=\"code-error\""]
            .iter()
            .find_map(|id| {
                let at = self.body.find(id)?;
                let rest = &self.body[at..];
                let start = rest.find('>')? + 1;
                let end = rest[start..].find('<')? + start;
                Some(rest[start..end].trim().to_owned())
            });
        match (self.header("location"), text) {
            (Some(to), _) => format!("{} → {to}", self.status),
            (None, Some(t)) => format!("{} {t:?}", self.status),
            (None, None) => self.status.to_string(),
        }
    }
}

/// `RK-XXXX-XXXX` (the support id alphabet) → `RK-{support-id}`; error codes stay.
pub fn mask_support_ids(s: &str) -> String {
    const ALPHABET: &str = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let b = s.as_bytes();
    let is_id = |i: usize| {
        b.len() >= i + 12
            && &b[i..i + 3] == b"RK-"
            && b[i + 7] == b'-'
            && (3..7)
                .chain(8..12)
                .all(|j| ALPHABET.as_bytes().contains(&b[i + j]))
            && b.get(i + 12).is_none_or(|c| !c.is_ascii_alphanumeric())
    };
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if is_id(i) {
            out += "RK-{support-id}";
            i += 12;
        } else {
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// An outside client: its CSRF cookie and token from a first GET, then form posts.
#[derive(Clone)]
pub struct Client {
    pub port: u16,
    pub csrf: String,
}

impl Client {
    pub async fn new(port: u16) -> Self {
        let get = "GET /change HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        let a = request(port, get.to_owned()).await;
        let csrf = a.cookie("__Host-rekey-csrf").expect("a CSRF cookie");
        Self { port, csrf }
    }

    /// GET `path` with the CSRF cookie and, if given, the flow cookie.
    pub async fn get(&self, path: &str, flow: Option<&str>) -> Answer {
        let raw = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: {}\r\n\r\n",
            self.cookies(flow)
        );
        request(self.port, raw).await
    }

    fn cookies(&self, flow: Option<&str>) -> String {
        let mut cookies = format!("__Host-rekey-csrf={}", self.csrf);
        if let Some(f) = flow {
            cookies += &format!("; __Host-rekey-flow={f}");
        }
        cookies
    }

    pub async fn post(&self, path: &str, flow: Option<&str>, fields: &[(&str, &str)]) -> Answer {
        let body = urlencoded(&self.csrf, fields);
        let cookies = self.cookies(flow);
        let raw = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: {cookies}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        request(self.port, raw).await
    }
}

/// `csrf` and the fields, urlencoded (a plain function: the serializer is not `Send`).
pub fn urlencoded(csrf: &str, fields: &[(&str, &str)]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("csrf", csrf);
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    form.finish()
}
