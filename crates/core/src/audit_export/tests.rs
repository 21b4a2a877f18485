//! The formats parsed back: a crafted user name or user agent forges no line, header or field.

use std::collections::BTreeMap;

use super::*;
use crate::audit::{GENESIS, ZoneResult, chain_hash};

const EVIL: &str = "evil|CEF:0|x\n<13>1 - forged] [x=\"y\" suser=admin\\ \r\u{2028}\u{85}\u{7f}end";

fn event(sam: &str, agent: &str) -> AuditEvent {
    AuditEvent {
        at_ms: 1_764_669_091_123, // 2025-12-02T09:51:31.123Z
        support_id: "S-1234".into(),
        actor: Actor::User,
        operation: Operation::Reset,
        result: "failed".into(),
        client_ip: Some("192.0.2.7".into()),
        user_agent: Some(agent.into()),
        target_guid: Some("g-1".into()),
        target_sam: Some(sam.into()),
        methods: vec!["email_otp".into()],
        zones: vec![ZoneResult {
            zone: "ad".into(),
            outcome: "rejected".into(),
            code: None,
            note: None,
        }],
        error_code: Some("RK-PWD-001".into()),
        detail: Some("policy".into()),
    }
}

fn record(e: &AuditEvent) -> AuditRecord {
    let body = e.canonical();
    AuditRecord {
        seq: 7,
        hash: chain_hash(&GENESIS, 7, &body),
        body,
        prev_hash: GENESIS,
    }
}

fn one_line(s: &str) {
    assert!(!s.chars().any(is_break), "raw control character in {s:?}");
}

/// Split on `sep` where it is not escaped by a backslash; undo `\x` → `x` in each part.
fn split_unescaped(s: &str, sep: char, max: usize) -> Vec<String> {
    let (mut parts, mut cur, mut chars) = (Vec::new(), String::new(), s.chars());
    while let Some(c) = chars.next() {
        if c == '\\' && parts.len() < max {
            cur.push(c);
            cur.extend(chars.next());
        } else if c == sep && parts.len() < max {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts
}

fn unescape_cef(s: &str) -> String {
    let (mut out, mut chars) = (String::new(), s.chars());
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(c) => out.push(c),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A CEF extension: keys are `[A-Za-z0-9]+` followed by an unescaped `=`, after a space.
fn parse_cef_ext(ext: &str) -> BTreeMap<String, String> {
    let b: Vec<char> = ext.chars().collect();
    let mut starts = Vec::new(); // (key start, '=' index)
    let mut i = 0;
    while i < b.len() {
        if b[i] == '\\' {
            i += 2;
            continue;
        }
        if b[i] == '=' {
            let mut k = i;
            while k > 0 && b[k - 1].is_ascii_alphanumeric() {
                k -= 1;
            }
            assert!(k == 0 || b[k - 1] == ' ', "bad key before {i} in {ext}");
            starts.push((k, i));
        }
        i += 1;
    }
    let mut map = BTreeMap::new();
    for (n, &(k, eq)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(b.len(), |&(k2, _)| k2 - 1);
        let key: String = b[k..eq].iter().collect();
        let raw: String = b[eq + 1..end].iter().collect();
        assert!(
            map.insert(key.clone(), unescape_cef(&raw)).is_none(),
            "dup {key}"
        );
    }
    map
}

#[test]
fn cef_cannot_be_forged() {
    let e = event(EVIL, EVIL);
    let line = cef(&record(&e), &e);
    one_line(&line);
    let parts = split_unescaped(&line, '|', 7);
    assert_eq!(parts.len(), 8, "{line}");
    assert_eq!(parts[0], "CEF:0");
    assert_eq!(parts[4], "reset");
    assert_eq!(parts[6], "7");
    let ext = parse_cef_ext(&parts[7]);
    let keys: Vec<&str> = ext.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "act",
            "cs1",
            "cs1Label",
            "cs2",
            "cs2Label",
            "cs3",
            "cs3Label",
            "cs4",
            "cs4Label",
            "duid",
            "duser",
            "externalId",
            "outcome",
            "reason",
            "requestClientApplication",
            "rt",
            "src",
            "suser"
        ]
    );
    let lossy = EVIL.replace(['\u{2028}', '\u{85}', '\u{7f}'], "\u{FFFD}");
    assert_eq!(ext["duser"], lossy);
    assert_eq!(ext["suser"], lossy);
    assert_eq!(ext["requestClientApplication"], lossy);
    assert_eq!(ext["externalId"], "7");
    assert_eq!(ext["rt"], "1764669091123");
    assert_eq!(ext["reason"], "RK-PWD-001 policy");
    assert_eq!(ext["cs2"], "ad:rejected");
    assert!(line.contains(r#"duser=evil|CEF:0|x\n<13>1 - forged] [x\="y" suser\=admin\\ \r"#));
}

#[test]
fn cef_header_escapes() {
    assert_eq!(cef_header("a|b\\c\nd"), r"a\|b\\c d");
    assert_eq!(cef_value("a=b\\c\r\nd|e"), r"a\=b\\c\r\nd|e");
}

/// RFC 5424 structured data → (SD-ID, params), checking the grammar on the way.
fn parse_sd(sd: &str) -> (String, BTreeMap<String, String>, String) {
    let b: Vec<char> = sd.chars().collect();
    assert_eq!(b[0], '[');
    let mut i = 1;
    let id: String = b[i..].iter().take_while(|c| **c != ' ').collect();
    i += id.chars().count();
    let mut params = BTreeMap::new();
    while b[i] == ' ' {
        i += 1;
        let name: String = b[i..].iter().take_while(|c| **c != '=').collect();
        assert!(
            name.chars()
                .all(|c| matches!(c, '!'..='~') && !"=]\" ".contains(c))
        );
        i += name.chars().count();
        assert_eq!((b[i], b[i + 1]), ('=', '"'), "at {i}: {sd}");
        i += 2;
        let mut value = String::new();
        loop {
            match b[i] {
                '\\' if matches!(b[i + 1], '"' | '\\' | ']') => {
                    value.push(b[i + 1]);
                    i += 2;
                }
                '"' => break,
                ']' => panic!("unescaped ] in value at {i}: {sd}"),
                c => {
                    value.push(c);
                    i += 1;
                }
            }
        }
        i += 1;
        assert!(params.insert(name.clone(), value).is_none(), "dup {name}");
    }
    assert_eq!(b[i], ']', "{sd}");
    (id, params, b[i + 1..].iter().collect())
}

#[test]
fn syslog_cannot_be_forged() {
    let e = event(EVIL, EVIL);
    let sys = SyslogOptions {
        facility: FACILITY_AUTHPRIV,
        hostname: "portal.example.org\n<13>".into(),
        ..SyslogOptions::default()
    };
    let line = syslog(&record(&e), &e, &sys);
    one_line(&line);
    let head: Vec<&str> = line.splitn(7, ' ').collect();
    // authpriv (10) * 8 + warning (4)
    assert_eq!(
        &head[..6],
        [
            "<84>1",
            "2025-12-02T09:51:31.123Z",
            "portal.example.org<13>",
            "rekey",
            "-",
            "reset"
        ]
    );
    let (id, params, msg) = parse_sd(head[6]);
    assert_eq!(id, "rekey@32473");
    assert_eq!(msg, " reset failed RK-PWD-001");
    // The RFC keeps `\` before other characters: CR/LF arrive as the text `\r` / `\n`.
    let shown = EVIL
        .replace('\n', "\\n")
        .replace('\r', "\\r")
        .replace(['\u{2028}', '\u{85}', '\u{7f}'], "\u{FFFD}");
    assert_eq!(params["target_sam"], shown);
    assert_eq!(params["user_agent"], shown);
    assert_eq!(params["seq"], "7");
    assert_eq!(params["support_id"], "S-1234");
    assert_eq!(params.len(), 13, "{params:?}");
}

#[test]
fn forwarded_messages_mark_the_chain_and_cannot_be_forged() {
    let e = event(EVIL, EVIL);
    let r = record(&e);
    let sys = SyslogOptions {
        app_name: "rekey portal\n".into(),
        ..SyslogOptions::default()
    };
    for (chain, body) in [
        (Chain::Verified, ForwardBody::Summary),
        (Chain::Broken, ForwardBody::Cef),
    ] {
        let line = forward_message(&r, Some(&e), chain, body, &sys);
        one_line(&line);
        let head: Vec<&str> = line.splitn(7, ' ').collect();
        assert_eq!(&head[2..6], ["-", "rekeyportal", "-", "reset"]);
        let (id, params, msg) = parse_sd(head[6]);
        assert_eq!(id, "rekey@32473");
        assert_eq!(params["chain"], chain.as_str());
        assert_eq!(params["seq"], "7");
        assert_eq!(params.len(), 14, "{params:?}");
        match body {
            ForwardBody::Summary => assert_eq!(msg, " reset failed RK-PWD-001"),
            ForwardBody::Cef => {
                let cef_line = msg.strip_prefix(' ').unwrap_or_default();
                assert_eq!(cef_line, cef(&r, &e));
                let ext = parse_cef_ext(&split_unescaped(cef_line, '|', 7)[7]);
                assert_eq!(ext["externalId"], "7");
                assert_eq!(ext["cs1"], "S-1234");
            }
        }
    }
    // Not an event: still one message naming the record, marked.
    let bad = AuditRecord {
        body: "{not json".into(),
        ..r
    };
    let line = forward_message(&bad, None, Chain::Broken, ForwardBody::Summary, &sys);
    one_line(&line);
    assert!(line.starts_with("<84>1 - - rekeyportal - undecodable [rekey@32473 seq=\"7\" hash=\""));
    assert!(line.contains(" chain=\"broken\"] "), "{line}");
}

/// Every actor has its text; an integration of the JSON API reads `api:NAME` in the actor text,
/// CEF's `suser` and syslog's structured data, never like an operator of the same name.
#[test]
fn actors_and_integrations() {
    for (actor, text) in [
        (Actor::User, "user"),
        (Actor::Helpdesk("jo".into()), "helpdesk:jo"),
        (Actor::Admin("jo".into()), "admin:jo"),
        (Actor::Api("chat-bot".into()), "api:chat-bot"),
        (Actor::System, "system"),
    ] {
        assert_eq!(actor_text(&actor), text);
    }
    let mut e = event("jdoe", "ua");
    e.actor = Actor::Api("chat-bot".into());
    e.operation = Operation::Lookup;
    assert!(
        e.canonical().contains(r#""actor":{"api":"chat-bot"}"#),
        "{}",
        e.canonical()
    );
    let r = record(&e);
    let line = cef(&r, &e);
    let ext = parse_cef_ext(&split_unescaped(&line, '|', 7)[7]);
    assert_eq!(ext["suser"], "api:chat-bot");
    assert_eq!(ext["act"], "lookup");
    let sys = syslog(&r, &e, &SyslogOptions::default());
    assert!(sys.contains(r#"actor="api:chat-bot""#), "{sys}");
}

#[test]
fn syslog_pri_and_names() {
    let mut e = event("jdoe", "ua");
    e.result = "ok".into();
    let sys = SyslogOptions::default();
    assert!(syslog(&record(&e), &e, &sys).starts_with("<85>1 ")); // notice
    e.operation = Operation::Identify;
    assert!(syslog(&record(&e), &e, &sys).starts_with("<86>1 ")); // info
    assert_eq!(sd_name("a b=c]\"d\u{e9}", 32), "abcd");
    assert_eq!(sd_name("\n", 32), "-");
    assert_eq!(sd_value("a\"b\\c]d"), r#"a\"b\\c\]d"#);
}

#[test]
fn jsonl_is_one_object_per_line() {
    let e = event(EVIL, EVIL);
    let r = record(&e);
    let line = jsonl(&r, &e);
    one_line(&line);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["seq"], 7);
    assert_eq!(v["hash"].as_str().unwrap().len(), 64);
    assert_eq!(v["prev_hash"], "0".repeat(64));
    assert_eq!(v["target_sam"], EVIL);
    assert_eq!(v["operation"], "reset");
    assert!(line.contains(r"\r\u2028\u0085\u007fend"), "{line}");
    // The event's own fields come back whole.
    let back: AuditEvent = serde_json::from_value(v).unwrap();
    assert_eq!(back, e);
    assert_eq!(decode(&r), Some(e));
}

#[test]
fn time_round_trips() {
    assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    for days in [-800_000, -1, 0, 59, 10_956, 20_424, 2_932_896] {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
    assert_eq!(days_from_civil(2025, 12, 2), 20_424);
}
