//! The outsider's HTTP client and the comparison of answers per account class: one request per
//! connection, the raw answer, normalised (CSRF token, support ids, echoed names) before bytes
//! are compared; p50 per class.

use super::*;
/// One HTTP answer, as the raw bytes said it.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// Lowercase names, in order.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
    pub(crate) took: Duration,
}

/// One request per connection (`Connection: close`), the whole answer back, within 30 s.
pub(crate) async fn request(port: u16, raw: String) -> Answer {
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
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .find_map(|(_, v)| v.strip_prefix(&format!("{name}=")))
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
    }

    /// Status, headers and body with what legitimately differs per request replaced: the date,
    /// the length (the change form echoes the typed user name), cookie values, the CSRF token,
    /// support ids and the echoed user name.
    pub(crate) fn normalised(&self, csrf: &str, typed: &str) -> String {
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
    pub(crate) fn gist(&self) -> String {
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
pub(crate) fn mask_support_ids(s: &str) -> String {
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
pub(crate) struct Client {
    pub(crate) port: u16,
    pub(crate) csrf: String,
}

impl Client {
    pub(crate) async fn new(port: u16) -> Self {
        let get = "GET /change HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        let a = request(port, get.to_owned()).await;
        let csrf = a.cookie("__Host-rekey-csrf").expect("a CSRF cookie");
        Self { port, csrf }
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        flow: Option<&str>,
        fields: &[(&str, &str)],
    ) -> Answer {
        let body = urlencoded(&self.csrf, fields);
        let mut cookies = format!("__Host-rekey-csrf={}", self.csrf);
        if let Some(f) = flow {
            cookies += &format!("; __Host-rekey-flow={f}");
        }
        let raw = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: {cookies}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        request(self.port, raw).await
    }
}

/// `csrf` and the fields, urlencoded (a plain function: the serializer is not `Send`).
pub(crate) fn urlencoded(csrf: &str, fields: &[(&str, &str)]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("csrf", csrf);
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    form.finish()
}

/// Answers and times per account class, in the order the classes were given.
#[derive(Default)]
pub(crate) struct Samples {
    pub(crate) classes: Vec<String>,
    pub(crate) answers: BTreeMap<String, Vec<(String, String)>>,
    pub(crate) times: BTreeMap<String, Vec<Duration>>,
}

impl Samples {
    pub(crate) fn add(&mut self, class: &str, normalised: String, a: &Answer) {
        if !self.classes.iter().any(|c| c == class) {
            self.classes.push(class.to_owned());
        }
        let gists = self.answers.entry(class.to_owned()).or_default();
        gists.push((normalised, a.gist()));
        self.times.entry(class.to_owned()).or_default().push(a.took);
    }

    pub(crate) fn p50(&self, class: &str) -> Duration {
        let mut t = self.times[class].clone();
        t.sort();
        t[t.len() / 2]
    }

    /// Print per class p50 and answers; return what breaks invariant 9 (empty: nothing).
    pub(crate) fn check(&self, title: &str) -> Vec<String> {
        println!("{title}:");
        let mut distinct: Vec<(&str, Vec<&str>)> = Vec::new();
        for class in &self.classes {
            let mut gists: BTreeMap<&str, usize> = BTreeMap::new();
            for (norm, gist) in &self.answers[class] {
                *gists.entry(gist.as_str()).or_default() += 1;
                match distinct.iter_mut().find(|(n, _)| *n == norm.as_str()) {
                    Some((_, cs)) if cs.contains(&class.as_str()) => {}
                    Some((_, cs)) => cs.push(class),
                    None => distinct.push((norm, vec![class])),
                }
            }
            println!(
                "  {class:<18} p50 {:>9.2?}  n={:<3} {gists:?}",
                self.p50(class),
                self.times[class].len()
            );
        }
        let p50s: Vec<Duration> = self.classes.iter().map(|c| self.p50(c)).collect();
        let spread = *p50s.iter().max().unwrap() - *p50s.iter().min().unwrap();
        println!(
            "  p50 spread {spread:.2?} (allowed {MAX_SPREAD:?}); {} distinct answer(s)",
            distinct.len()
        );
        let mut failures = Vec::new();
        if spread > MAX_SPREAD {
            let p: Vec<String> = (self.classes.iter().zip(&p50s))
                .map(|(c, t)| format!("{c} {t:.2?}"))
                .collect();
            failures.push(format!(
                "{title}: p50 spread {spread:.2?} > {MAX_SPREAD:?}: {}",
                p.join(", ")
            ));
        }
        if distinct.len() > 1 {
            let first = distinct[0].0;
            for (other, classes) in &distinct[1..] {
                failures.push(format!(
                    "{title}: answers differ: {:?} vs {classes:?}: {}",
                    distinct[0].1,
                    difference(first, other)
                ));
            }
        }
        failures
    }
}

/// Where two answers first differ, with some context.
pub(crate) fn difference(a: &str, b: &str) -> String {
    let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let around = |s: &str| {
        let (mut start, mut end) = (at.saturating_sub(60), (at + 140).min(s.len()));
        while !s.is_char_boundary(start) {
            start -= 1;
        }
        while !s.is_char_boundary(end) {
            end += 1;
        }
        s[start..end].replace('\n', "⏎")
    };
    format!("at byte {at}: «{}» vs «{}»", around(a), around(b))
}

pub(crate) fn assert_none(failures: &[String]) {
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
