//! Audit records as lines for a SIEM: JSON Lines, ArcSight CEF and RFC 5424 syslog.
//!
//! Pure formatting (no I/O): the caller pages records out of the store and writes the lines,
//! each followed by one `\n`. Every function returns exactly ONE line: no raw CR, LF or other
//! control character (C0, DEL, C1, U+2028, U+2029) survives into the output, whatever a user name
//! or user agent holds, so a crafted value can neither start a new line nor forge a field, a
//! header or a structured-data element. Each format names `seq` and the record's chain hash, so a
//! collector can de-duplicate a re-export.

use serde::Serialize;

use crate::audit::{Actor, AuditEvent, AuditRecord, Operation};

/// The IANA private enterprise number in the syslog SD-ID `rekey@32473`. 32473 is the number RFC
/// 5612 reserves for documentation examples: a PLACEHOLDER until Rekey has a number of its own.
pub const ENTERPRISE_NUMBER: u32 = 32473;

/// Syslog facility `authpriv` (10): security/authorization messages, the default.
pub const FACILITY_AUTHPRIV: u8 = 10;

/// What the export is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Cef,
    Syslog,
}

/// Syslog header values that do not come from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogOptions {
    /// 0..=23 (RFC 5424 §6.2.1); larger values are clamped to 23.
    pub facility: u8,
    /// The HOSTNAME field; reduced to PRINTUSASCII, at most 255 characters, `-` when empty.
    pub hostname: String,
    /// The APP-NAME field (default `rekey`); reduced to PRINTUSASCII, at most 48 characters.
    pub app_name: String,
}

impl Default for SyslogOptions {
    fn default() -> Self {
        Self {
            facility: FACILITY_AUTHPRIV,
            hostname: "-".into(),
            app_name: "rekey".into(),
        }
    }
}

/// What the continuous forwarder found when it checked a record's place in the hash chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// The record links to the one sent before it and its hash matches its body.
    Verified,
    /// It does not (edited, missing predecessor, moved, inserted, …): sent anyway, marked, so a
    /// collector sees it; `rekey audit verify` names the problem.
    Broken,
}

impl Chain {
    /// `verified` or `broken`: the `chain` SD-PARAM.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Broken => "broken",
        }
    }
}

/// What the MSG part of a forwarded syslog message holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardBody {
    /// `<operation> <result>[ <error code>]`, as [`syslog`] writes it.
    Summary,
    /// The record's [`cef`] line (for collectors that parse CEF carried over syslog).
    Cef,
}

/// The record's body as an event (`None`: the body is not an `AuditEvent`, e.g. corrupt).
#[must_use]
pub fn decode(record: &AuditRecord) -> Option<AuditEvent> {
    serde_json::from_str(&record.body).ok()
}

/// How `"field":"value"` appears in a canonical body (`AuditEvent::canonical`: serde_json, no
/// spaces): the text a store may search for before decoding the candidates.
#[must_use]
pub fn body_fragment(field: &str, value: &str) -> String {
    let v = serde_json::to_string(value).unwrap_or_default();
    format!("\"{field}\":{v}")
}

/// One line in `format` (no trailing newline).
#[must_use]
pub fn line(
    format: Format,
    record: &AuditRecord,
    event: &AuditEvent,
    sys: &SyslogOptions,
) -> String {
    match format {
        Format::Jsonl => jsonl(record, event),
        Format::Cef => cef(record, event),
        Format::Syslog => syslog(record, event, sys),
    }
}

/// A few words for people (the CEF Name).
fn operation_title(op: Operation) -> &'static str {
    match op {
        Operation::Identify => "Account identified",
        Operation::Verify => "Verification",
        Operation::Reset => "Password reset",
        Operation::Unlock => "Account unlocked",
        Operation::Change => "Password changed",
        Operation::Enroll => "Method enrolled",
        Operation::MethodRemoved => "Method removed",
        Operation::HelpdeskCode => "Helpdesk code issued",
        Operation::Notify => "Notification undeliverable",
        Operation::SyncProof => "Password sync proof",
        Operation::Canary => "Writeback canary",
        Operation::Reminder => "Expiry reminder",
        Operation::HelpdeskSignIn => "Helpdesk sign-in",
        Operation::MustChange => "Password change required at next logon",
        Operation::Approval => "Helpdesk approval",
        Operation::Lookup => "Helpdesk look-up",
    }
}

/// `user`, `helpdesk:NAME`, `admin:NAME`, `api:NAME` or `system`.
#[must_use]
pub fn actor_text(actor: &Actor) -> String {
    match actor {
        Actor::User => "user".into(),
        Actor::Helpdesk(n) => format!("helpdesk:{n}"),
        Actor::Admin(n) => format!("admin:{n}"),
        Actor::Api(n) => format!("api:{n}"),
        Actor::System => "system".into(),
    }
}

/// `zone:outcome` per zone, comma-separated (`ad:landed,entra:queued`).
#[must_use]
pub fn zones_text(event: &AuditEvent) -> String {
    let z: Vec<String> = event
        .zones
        .iter()
        .map(|z| format!("{}:{}", z.zone, z.outcome))
        .collect();
    z.join(",")
}

/// Does the operation change an account or its methods (a state change an auditor looks for)?
fn changes_state(op: Operation) -> bool {
    matches!(
        op,
        Operation::Reset
            | Operation::Unlock
            | Operation::Change
            | Operation::Enroll
            | Operation::MethodRemoved
            | Operation::HelpdeskCode
            | Operation::MustChange
            | Operation::Approval
            | Operation::Canary
    )
}

/// RFC 5424 severity: `failed` and `partial` (some zone did not land) → 4 warning; any other
/// result of a state-changing operation (reset, unlock, change, enroll, method removed, helpdesk
/// code, canary) → 5 notice; everything else (identify, verify, decoys, reminders, sync proofs,
/// notifications) → 6 informational.
#[must_use]
pub fn syslog_severity(event: &AuditEvent) -> u8 {
    match event.result.as_str() {
        "failed" | "partial" => 4,
        _ if changes_state(event.operation) => 5,
        _ => 6,
    }
}

/// CEF severity (0–10): 7 for `failed`, 5 for `partial`, 3 for other state changes, 1 otherwise.
#[must_use]
pub fn cef_severity(event: &AuditEvent) -> u8 {
    match event.result.as_str() {
        "failed" => 7,
        "partial" => 5,
        _ if changes_state(event.operation) => 3,
        _ => 1,
    }
}

fn hex(bytes: &[u8; 32]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A character that must never reach a line raw: C0/C1 controls, DEL, and the Unicode line and
/// paragraph separators (some collectors split on them).
fn is_break(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

// ---------------------------------------------------------------------------------------------
// JSON Lines

#[derive(Serialize)]
struct JsonLine<'a> {
    seq: i64,
    hash: String,
    prev_hash: String,
    #[serde(flatten)]
    event: &'a AuditEvent,
}

/// One JSON object: `seq`, `hash`, `prev_hash` (hex), then the event's fields. serde_json
/// escapes C0 controls (`\n`, `\u0007`, …); DEL, the C1 controls (NEL U+0085 among them) and
/// U+2028/2029, which it leaves raw, are written as `\uXXXX` too (they can only occur inside
/// strings), so the object is one line for any collector.
#[must_use]
pub fn jsonl(record: &AuditRecord, event: &AuditEvent) -> String {
    let line = JsonLine {
        seq: record.seq,
        hash: hex(&record.hash),
        prev_hash: hex(&record.prev_hash),
        event,
    };
    let raw = serde_json::to_string(&line).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if is_break(c) {
            use std::fmt::Write as _;
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// CEF

/// A CEF header field. The CEF specification ("Implementing ArcSight Common Event Format",
/// Header information): a pipe in a header value is escaped as `\|`, a backslash as `\\`; header
/// fields cannot hold a line break, so CR, LF and other controls become a space here.
#[must_use]
pub fn cef_header(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            c if is_break(c) => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A CEF extension value. The CEF specification (Extension): `=` is escaped as `\=`, a
/// backslash as `\\`, a newline as the two characters `\n` and a carriage return as `\r` (the
/// same rules as rsyslog's `cef_ext_escape`); pipes need no escape there. Other control
/// characters have no CEF escape and become U+FFFD. An escaped `=` is what stops a value like
/// `x suser=admin` from being read as a second key.
#[must_use]
pub fn cef_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_break(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `CEF:0|Rekey|Rekey|<version>|<operation>|<name>|<severity>|<extension>`.
///
/// Extension keys (CEF standard dictionary): `rt` (at_ms, ms since the epoch), `externalId`
/// (seq), `act` (operation), `outcome` (result), `suser` (who acted: the operator, `api:NAME` for
/// an integration of the JSON API, or the target account for self-service), `duser`
/// (target_sam), `duid` (target_guid), `src` (client_ip), `requestClientApplication` (user agent), `reason` (error code and detail), `cs1` support id,
/// `cs2` zones (`zone:outcome,…`), `cs3` methods, `cs4` the record's chain hash (hex).
#[must_use]
pub fn cef(record: &AuditRecord, event: &AuditEvent) -> String {
    let op = event.operation;
    let mut ext: Vec<(&str, String)> = vec![
        ("rt", event.at_ms.to_string()),
        ("externalId", record.seq.to_string()),
        ("act", op.as_str().into()),
        ("outcome", event.result.clone()),
    ];
    let suser = match &event.actor {
        Actor::User => event.target_sam.clone(),
        Actor::Helpdesk(n) | Actor::Admin(n) => Some(n.clone()),
        // An integration is never mistaken for an operator of the same name.
        Actor::Api(n) => Some(format!("api:{n}")),
        Actor::System => Some("system".into()),
    };
    let optional = [
        ("suser", suser),
        ("duser", event.target_sam.clone()),
        ("duid", event.target_guid.clone()),
        ("src", event.client_ip.clone()),
        ("requestClientApplication", event.user_agent.clone()),
    ];
    ext.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    let reason: Vec<&str> = [event.error_code.as_deref(), event.detail.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if !reason.is_empty() {
        ext.push(("reason", reason.join(" ")));
    }
    ext.push(("cs1Label", "supportId".into()));
    ext.push(("cs1", event.support_id.clone()));
    if !event.zones.is_empty() {
        ext.push(("cs2Label", "zones".into()));
        ext.push(("cs2", zones_text(event)));
    }
    if !event.methods.is_empty() {
        ext.push(("cs3Label", "methods".into()));
        ext.push(("cs3", event.methods.join(",")));
    }
    ext.push(("cs4Label", "chainHash".into()));
    ext.push(("cs4", hex(&record.hash)));
    let extension: Vec<String> = ext
        .iter()
        .map(|(k, v)| format!("{k}={}", cef_value(v)))
        .collect();
    format!(
        "CEF:0|Rekey|Rekey|{}|{}|{}|{}|{}",
        cef_header(env!("CARGO_PKG_VERSION")),
        cef_header(op.as_str()),
        cef_header(operation_title(op)),
        cef_severity(event),
        extension.join(" ")
    )
}

// ---------------------------------------------------------------------------------------------
// RFC 5424 syslog

/// An RFC 5424 SD-PARAM value (§6.3.3): `"`, `\` and `]` MUST be escaped with a backslash.
/// The RFC allows any UTF-8 there, but a line must not break: CR and LF become the two
/// characters `\r` / `\n` (a conforming parser keeps a backslash before any other character as
/// is, and a real backslash is always doubled, so this stays unambiguous); other controls become
/// U+FFFD.
#[must_use]
pub fn sd_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_break(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// An RFC 5424 SD-NAME / MSGID-like token: PRINTUSASCII (33–126) without `=`, `]`, `"` and
/// space, at most `max` characters; `-` (NILVALUE) when nothing is left.
#[must_use]
pub fn sd_name(value: &str, max: usize) -> String {
    let out: String = value
        .chars()
        .filter(|c| matches!(c, '!'..='~') && !matches!(c, '=' | ']' | '"'))
        .take(max)
        .collect();
    if out.is_empty() { "-".into() } else { out }
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - OPERATION [rekey@32473 seq="…" …] MSG` (APP-NAME
/// `rekey` unless [`SyslogOptions::app_name`] says otherwise).
///
/// PRI = facility × 8 + [`syslog_severity`]; TIMESTAMP is at_ms in UTC with milliseconds;
/// MSGID is the operation name. The user's values live only in SD-PARAMs (escaped by
/// [`sd_value`]); MSG is `<operation> <result>[ <error code>]` reduced to printable ASCII, so it
/// needs no BOM.
#[must_use]
pub fn syslog(record: &AuditRecord, event: &AuditEvent, sys: &SyslogOptions) -> String {
    syslog_with(record, event, sys, None, ForwardBody::Summary)
}

/// One RFC 5424 message for the continuous forwarder (no framing, no newline): as [`syslog`],
/// with `chain="verified"` or `chain="broken"` after `hash`, and the MSG chosen by `body`.
///
/// A record whose body is not an event (`event` is `None`, e.g. written by a newer version or
/// damaged) still yields a message, so the collector sees a record it cannot read rather than a
/// gap: NILVALUE timestamp, severity 4, MSGID `undecodable`, `seq`, `hash` and `chain` only.
#[must_use]
pub fn forward_message(
    record: &AuditRecord,
    event: Option<&AuditEvent>,
    chain: Chain,
    body: ForwardBody,
    sys: &SyslogOptions,
) -> String {
    if let Some(event) = event {
        return syslog_with(record, event, sys, Some(chain), body);
    }
    let pri = u16::from(sys.facility.min(23)) * 8 + 4;
    format!(
        "<{pri}>1 - {} {} - undecodable [rekey@{ENTERPRISE_NUMBER} seq=\"{}\" hash=\"{}\" \
         chain=\"{}\"] audit record {} is not an audit event",
        sd_name(&sys.hostname, 255),
        sd_name(&sys.app_name, 48),
        record.seq,
        hex(&record.hash),
        chain.as_str(),
        record.seq
    )
}

fn syslog_with(
    record: &AuditRecord,
    event: &AuditEvent,
    sys: &SyslogOptions,
    chain: Option<Chain>,
    body: ForwardBody,
) -> String {
    let pri = u16::from(sys.facility.min(23)) * 8 + u16::from(syslog_severity(event));
    let op = event.operation.as_str();
    let mut params: Vec<(&str, String)> =
        vec![("seq", record.seq.to_string()), ("hash", hex(&record.hash))];
    if let Some(chain) = chain {
        params.push(("chain", chain.as_str().into()));
    }
    params.extend([
        ("support_id", event.support_id.clone()),
        ("actor", actor_text(&event.actor)),
        ("result", event.result.clone()),
    ]);
    let optional = [
        ("target_sam", event.target_sam.clone()),
        ("target_guid", event.target_guid.clone()),
        ("client_ip", event.client_ip.clone()),
        ("user_agent", event.user_agent.clone()),
        ("error_code", event.error_code.clone()),
        ("detail", event.detail.clone()),
    ];
    params.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    if !event.methods.is_empty() {
        params.push(("methods", event.methods.join(",")));
    }
    if !event.zones.is_empty() {
        params.push(("zones", zones_text(event)));
    }
    let sd: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", sd_name(k, 32), sd_value(v)))
        .collect();
    let msg = match body {
        ForwardBody::Summary => {
            let mut msg = format!("{op} {}", event.result);
            if let Some(code) = &event.error_code {
                msg.push(' ');
                msg.push_str(code);
            }
            msg.chars()
                .map(|c| if matches!(c, ' '..='~') { c } else { '?' })
                .collect()
        }
        // One line already (`cef` escapes every break); UTF-8 without a BOM: MSG-ANY.
        ForwardBody::Cef => cef(record, event),
    };
    format!(
        "<{pri}>1 {} {} {} - {} [rekey@{ENTERPRISE_NUMBER} {}] {msg}",
        rfc3339_ms(event.at_ms),
        sd_name(&sys.hostname, 255),
        sd_name(&sys.app_name, 48),
        sd_name(op, 32),
        sd.join(" ")
    )
}

// ---------------------------------------------------------------------------------------------
// Time (UTC, proleptic Gregorian; no time crate in core)

pub use crate::clock::{civil_from_days, days_from_civil};

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC).
#[must_use]
pub fn rfc3339_ms(at_ms: i64) -> String {
    let days = at_ms.div_euclid(86_400_000);
    let ms = at_ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests;
