//! `rekey audit show SUPPORT-ID` and `rekey audit export`: audit evidence for people and SIEMs.
//!
//! `show` asks the SQL store for the records of one support id and then, for every account
//! those records name (`target_guid`), for that account's records from 15 minutes before the
//! first to 15 minutes after the last of them (the flow rule: a flow's requests each get their
//! own support id, but they act on one account within its lifetime; flows expire well within
//! 15 minutes). Decoys name no account, so they show alone. Both look-ups pre-select in SQL and
//! decide in Rust (`rekey_store::SqlStore::audit_by_support_id` / `audit_by_target`).
//!
//! `export` walks the WHOLE chain with `Store::audit_after` (pages of 1,000), verifying every
//! link as it goes, and writes the records whose event time falls in `[since, until)` and whose
//! operation is listed (all when none is): a broken chain stops the export with RK-AUDIT-001
//! after the records before the break. The time filter reads the hashed body, not a column, and
//! the walk needs no index; correctness over speed.
//!
//! What is printed comes from audit records, which hold no secret by design (invariant 30).
//! Text a user typed (names, user agents) is shown with control characters escaped, so it cannot
//! move a terminal's cursor or fake a line.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use rekey_core::audit::{AuditEvent, AuditRecord, GENESIS, Operation, chain_hash, verify};
use rekey_core::audit_export::{
    Format, SyslogOptions, actor_text, days_from_civil, decode, line, rfc3339_ms, zones_text,
};
use rekey_core::store::{Store, StoreError};
use rekey_store::SqlStore;

use crate::admin::CliError;
use crate::config::Config;

/// The flow rule's margin on both sides (ms).
pub const FLOW_MARGIN_MS: i64 = 15 * 60 * 1000;
/// Records per `audit_after` page during an export.
const EXPORT_PAGE: u32 = 1000;

/// The export's line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line: seq, hash, prev_hash and the event's fields.
    Jsonl,
    /// ArcSight Common Event Format 0.
    Cef,
    /// RFC 5424 syslog lines (facility authpriv), SD-ID rekey@32473.
    Syslog,
}

impl From<ExportFormat> for Format {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Jsonl => Self::Jsonl,
            ExportFormat::Cef => Self::Cef,
            ExportFormat::Syslog => Self::Syslog,
        }
    }
}

/// What `rekey audit export` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportArgs {
    pub format: ExportFormat,
    /// Ms since the epoch, inclusive ([`parse_since`]).
    pub since: Option<i64>,
    /// Ms since the epoch, exclusive ([`parse_until`]).
    pub until: Option<i64>,
    /// Operation names (`reset`, `method_removed`, …, see [`parse_operation`]); empty: all.
    pub operations: Vec<String>,
    /// A file (created or truncated, mode 0600), else stdout.
    pub out: Option<PathBuf>,
}

fn input(message: String) -> CliError {
    CliError::Input(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        message,
    ))
}

// ---------------------------------------------------------------------------------------------
// Arguments

fn digits(s: &str, range: std::ops::Range<usize>) -> Option<u32> {
    let part = s.get(range)?;
    if part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

/// Days since the epoch of a `YYYY-MM-DD` prefix.
fn date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let (y, m, d) = (digits(s, 0..4)?, digits(s, 5..7)?, digits(s, 8..10)?);
    let y = i64::from(y);
    let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let len = days_from_civil(next.0, next.1, 1) - days_from_civil(y, m, 1);
    ((1..=12).contains(&m) && d >= 1 && i64::from(d) <= len).then(|| days_from_civil(y, m, d))
}

/// RFC 3339 (`2026-12-02T09:30:00Z`, `…T09:30:00.5+01:00`; `t`/`z` or a space also) → ms.
fn rfc3339(s: &str) -> Option<i64> {
    let days = date(s)?;
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' '))
        || s.get(13..14) != Some(":")
        || s.get(16..17) != Some(":")
    {
        return None;
    }
    let (h, mi, sec) = (digits(s, 11..13)?, digits(s, 14..16)?, digits(s, 17..19)?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut ms = 0_i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..n.min(3)]);
        ms = padded.parse().ok()?;
        rest = &frac[n..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.get(3..4) != Some(":") {
                return None;
            }
            let (oh, om) = (digits(rest, 1..3)?, digits(rest, 4..6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * i64::from(oh * 60 + om)
        }
    };
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset_min * 60;
    Some(secs * 1000 + ms)
}

fn bad_time(s: &str) -> String {
    format!("{s:?} is neither RFC 3339 (2026-12-02T09:30:00Z) nor a date (2026-12-02)")
}

/// `--since`: an RFC 3339 instant, or a date meaning its start (00:00 UTC). Inclusive.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_since(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.len() == 10 {
        return date(s).map(|d| d * 86_400_000).ok_or_else(|| bad_time(s));
    }
    rfc3339(s).ok_or_else(|| bad_time(s))
}

/// `--until`: an RFC 3339 instant (exclusive), or a date meaning the WHOLE day (up to the next
/// day's 00:00 UTC, exclusive): `--since 2026-12-01 --until 2026-12-01` is that one day.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_until(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.len() == 10 {
        return date(s)
            .map(|d| (d + 1) * 86_400_000)
            .ok_or_else(|| bad_time(s));
    }
    rfc3339(s).ok_or_else(|| bad_time(s))
}

/// `--operation`: an operation's name as audit records hold it (`reset`, `method_removed`, …).
///
/// # Errors
/// A message for an unknown name.
pub fn parse_operation(s: &str) -> Result<String, String> {
    serde_json::from_value::<Operation>(serde_json::Value::String(s.to_owned()))
        .map(|op| op.as_str().to_owned())
        .map_err(|_| {
            format!(
                "{s:?} is not an operation (identify, verify, reset, unlock, change, enroll, \
                 method_removed, helpdesk_code, notify, sync_proof, canary, reminder)"
            )
        })
}

// ---------------------------------------------------------------------------------------------
// show

/// `rekey audit show SUPPORT-ID`.
///
/// # Errors
/// No store configured or reachable; no record with that support id (RK-CLI-002).
pub async fn show(config: &Config, support_id: &str) -> Result<(), CliError> {
    let store = crate::portal::store(config).await?;
    let mut out = std::io::stdout();
    show_records(&store, support_id, &mut out).await?;
    Ok(())
}

/// Text a user may have typed, safe for a terminal: control characters escaped.
fn shown(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// One record as a few readable lines.
fn describe(record: &AuditRecord, event: Option<&AuditEvent>, mark: &str) -> String {
    let seal = if chain_hash(&record.prev_hash, record.seq, &record.body) == record.hash {
        "hash ok"
    } else {
        "HASH MISMATCH (edited?)"
    };
    let Some(e) = event else {
        return format!(
            "{mark}#{}  (body is not an audit event; {seal})\n",
            record.seq
        );
    };
    let mut s = format!(
        "{mark}#{}  {}  {} {}  support id {}  by {}\n",
        record.seq,
        rfc3339_ms(e.at_ms),
        e.operation.as_str(),
        shown(&e.result),
        shown(&e.support_id),
        shown(&actor_text(&e.actor)),
    );
    let pad = " ".repeat(mark.chars().count() + 2);
    let account = match (&e.target_sam, &e.target_guid) {
        (Some(sam), Some(g)) => Some(format!("{} ({})", shown(sam), shown(g))),
        (Some(sam), None) => Some(shown(sam)),
        (None, Some(g)) => Some(shown(g)),
        (None, None) => None,
    };
    let fields = [
        ("account", account),
        ("from", e.client_ip.as_deref().map(shown)),
        ("user agent", e.user_agent.as_deref().map(shown)),
        (
            "methods",
            (!e.methods.is_empty()).then(|| shown(&e.methods.join(", "))),
        ),
        (
            "zones",
            (!e.zones.is_empty()).then(|| shown(&zones_text(e))),
        ),
        ("error", e.error_code.as_deref().map(shown)),
        ("detail", e.detail.as_deref().map(shown)),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            let _ = writeln!(s, "{pad}{name}: {v}");
        }
    }
    let _ = writeln!(s, "{pad}{seal}");
    s
}

/// Write the records of `support_id` and their flow to `out`; returns how many records had
/// that support id.
///
/// # Errors
/// A store error; none found (RK-CLI-002); writing failed.
pub async fn show_records(
    store: &SqlStore,
    support_id: &str,
    out: &mut dyn Write,
) -> Result<usize, CliError> {
    let records = store.audit_by_support_id(support_id).await?;
    if records.is_empty() {
        return Err(CliError::Input(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no audit record has support id {:?}", shown(support_id)),
        )));
    }
    let events: Vec<Option<AuditEvent>> = records.iter().map(decode).collect();
    let mut text = format!(
        "support id {}: {} record(s)\n",
        shown(support_id),
        records.len()
    );
    for (r, e) in records.iter().zip(&events) {
        text.push_str(&describe(r, e.as_ref(), "  "));
    }
    // The flow rule: per account named, its records within the support id's span ± 15 min.
    let mut spans: Vec<(String, i64, i64)> = Vec::new();
    for e in events.iter().flatten() {
        let Some(g) = &e.target_guid else { continue };
        match spans.iter_mut().find(|(x, _, _)| x == g) {
            Some(span) => {
                span.1 = span.1.min(e.at_ms);
                span.2 = span.2.max(e.at_ms);
            }
            None => spans.push((g.clone(), e.at_ms, e.at_ms)),
        }
    }
    for (guid, first, last) in spans {
        let (from, until) = (
            first.saturating_sub(FLOW_MARGIN_MS),
            last.saturating_add(FLOW_MARGIN_MS),
        );
        let flow = store.audit_by_target(&guid, from, until).await?;
        let _ = writeln!(
            text,
            "\nflow: account {} from {} to {} (its records 15 min around the support id's; \
             * = this support id)",
            shown(&guid),
            rfc3339_ms(from),
            rfc3339_ms(until)
        );
        for r in &flow {
            let e = decode(r);
            let mine = e.as_ref().is_some_and(|e| e.support_id == support_id);
            text.push_str(&describe(r, e.as_ref(), if mine { "* " } else { "  " }));
        }
    }
    text.push_str(
        "\n(hash ok: the record matches its own hash; `rekey audit verify` checks the chain)\n",
    );
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(records.len())
}

// ---------------------------------------------------------------------------------------------
// export

/// The syslog HOSTNAME: the host of `server.public_base_url` (the instance the events came
/// from), else this machine's name, else `-`.
fn hostname(config: &Config) -> String {
    config
        .server
        .as_ref()
        .and_then(|s| url::Url::parse(&s.public_base_url).ok())
        .and_then(|u| u.host_str().map(str::to_owned))
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// `rekey audit export`: prints how many records were written on stderr.
///
/// # Errors
/// Bad arguments, store errors, a broken chain (RK-AUDIT-001), a write that failed.
pub async fn export(config: &Config, args: ExportArgs) -> Result<(), CliError> {
    let store = crate::portal::store(config).await?;
    let sys = SyslogOptions {
        hostname: hostname(config),
        ..SyslogOptions::default()
    };
    let n = export_store(store.as_ref(), &args, &sys).await?;
    eprintln!("{n} audit record(s) exported");
    Ok(())
}

/// Open `args.out` (or stdout) and [`export_to`] it.
///
/// # Errors
/// As [`export`].
pub async fn export_store(
    store: &dyn Store,
    args: &ExportArgs,
    sys: &SyslogOptions,
) -> Result<u64, CliError> {
    let sink: Box<dyn Write + Send> = match &args.out {
        Some(path) => {
            let mut open = std::fs::OpenOptions::new();
            open.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
            Box::new(open.open(path)?)
        }
        None => Box::new(std::io::stdout()),
    };
    let mut out = std::io::BufWriter::new(sink);
    let n = export_to(store, args, sys, &mut out).await?;
    out.flush()?;
    Ok(n)
}

/// Walk the chain, verify it, and write one line per selected record. Returns the count.
///
/// # Errors
/// As [`export`].
pub async fn export_to(
    store: &dyn Store,
    args: &ExportArgs,
    sys: &SyslogOptions,
    out: &mut dyn Write,
) -> Result<u64, CliError> {
    let mut ops = Vec::new();
    for op in &args.operations {
        ops.push(parse_operation(op).map_err(input)?);
    }
    let since = args.since.unwrap_or(i64::MIN);
    let until = args.until.unwrap_or(i64::MAX);
    let format = Format::from(args.format);
    let mut at = (0, GENESIS);
    let mut written = 0_u64;
    loop {
        let page = store.audit_after(at.0, EXPORT_PAGE).await?;
        if page.is_empty() {
            return Ok(written);
        }
        at = verify(&page, at).map_err(CliError::AuditBroken)?;
        for record in &page {
            let event = decode(record).ok_or_else(|| {
                StoreError::Corrupt(format!("audit record {}: not an audit event", record.seq))
            })?;
            let op = event.operation.as_str();
            if event.at_ms < since
                || event.at_ms >= until
                || (!ops.is_empty() && !ops.iter().any(|o| o == op))
            {
                continue;
            }
            let mut text = line(format, record, &event, sys);
            text.push('\n');
            out.write_all(text.as_bytes())?;
            written += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_since("1970-01-01"), Ok(0));
        assert_eq!(parse_until("1970-01-01"), Ok(86_400_000));
        assert_eq!(parse_since("1970-01-01T00:00:01.5Z"), Ok(1500));
        assert_eq!(parse_since("1970-01-01t01:00:00+01:00"), Ok(0));
        assert_eq!(parse_since("1970-01-01 00:00:00-00:30"), Ok(1_800_000));
        assert_eq!(
            parse_since("2026-12-02T09:51:31.123456Z"),
            Ok(1_796_205_091_123)
        );
        assert_eq!(parse_until("2024-02-29"), Ok(1_709_251_200_000));
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-12-02T24:00:00Z",
            "2026-12-02T09:00:00",
            "2026-12-02T09:00Z",
            "yesterday",
            "2026-1-2",
            "+026-12-02",
        ] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn operations() {
        assert_eq!(
            parse_operation("method_removed").as_deref(),
            Ok("method_removed")
        );
        assert!(parse_operation("Reset").is_err());
        assert!(parse_operation("drop table").is_err());
    }

    #[test]
    fn terminal_text_is_escaped() {
        assert_eq!(shown("a\u{1b}[2Jb\nc"), "a\\u{1b}[2Jb\\nc");
    }
}
