//! `rekey audit show` / `export` over a real SQLite store: filters, one line per record in every
//! format, and a crafted user name that forges nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use rekey::audit_cmd::{
    ExportArgs, ExportFormat, export_store, parse_since, parse_until, show_records,
};
use rekey_core::audit::{Actor, AuditEvent, Operation, ZoneResult};
use rekey_core::audit_export::SyslogOptions;
use rekey_core::store::Store;
use rekey_store::SqlStore;

const EVIL: &str = "evil|CEF:0|x\n<13>1 - forged] [x=\"y\" suser=admin";
/// 2026-12-01T10:00:00Z
const T0: i64 = 1_796_119_200_000;
const MIN: i64 = 60_000;

fn dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("rekey-audit-export-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ev(at_ms: i64, sid: &str, op: Operation, result: &str, guid: Option<&str>) -> AuditEvent {
    AuditEvent {
        at_ms,
        support_id: sid.into(),
        actor: Actor::User,
        operation: op,
        result: result.into(),
        client_ip: Some("192.0.2.7".into()),
        user_agent: Some("Mozilla/5.0".into()),
        target_guid: guid.map(Into::into),
        target_sam: guid.map(|_| "jdoe".into()),
        methods: vec![],
        zones: vec![],
        error_code: None,
        detail: None,
    }
}

/// Nine records: a flow of account g1 (S-1..S-3), an evil reset (S-4), a later unlock, a decoy,
/// an identify of g1 outside the flow window, and two support ids that LIKE would confuse.
async fn store(dir: &std::path::Path) -> SqlStore {
    let url = format!("sqlite://{}", dir.join("rekey.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    let mut reset = ev(T0 + 2 * MIN, "S-3", Operation::Reset, "ok", Some("g1"));
    reset.zones = vec![ZoneResult {
        zone: "ad".into(),
        outcome: "landed".into(),
        code: None,
        note: None,
    }];
    reset.methods = vec!["email_otp".into()];
    let mut evil = ev(T0 + 3 * MIN, "S-4", Operation::Reset, "failed", Some("g2"));
    evil.target_sam = Some(EVIL.into());
    evil.user_agent = Some(EVIL.into());
    evil.error_code = Some("RK-PWD-001".into());
    let events = [
        ev(T0, "S-1", Operation::Identify, "ok", Some("g1")),
        ev(T0 + MIN, "S-2", Operation::Verify, "ok", Some("g1")),
        reset,
        evil,
        ev(
            T0 + 24 * 60 * MIN,
            "S-5",
            Operation::Unlock,
            "ok",
            Some("g1"),
        ),
        ev(T0 + 120 * MIN, "S-6", Operation::Identify, "decoy", None),
        ev(T0 + 40 * MIN, "S-7", Operation::Identify, "ok", Some("g1")),
        ev(T0 + 50 * MIN, "a_b%", Operation::Identify, "ok", None),
        ev(T0 + 51 * MIN, "aXbY", Operation::Identify, "ok", None),
    ];
    for e in &events {
        store.append_audit(e).await.unwrap();
    }
    store
}

async fn export(
    store: &SqlStore,
    dir: &std::path::Path,
    format: ExportFormat,
    since: Option<&str>,
    until: Option<&str>,
    operations: &[&str],
) -> Vec<String> {
    let out = dir.join("export.txt");
    let args = ExportArgs {
        format,
        since: since.map(|s| parse_since(s).unwrap()),
        until: until.map(|s| parse_until(s).unwrap()),
        operations: operations.iter().map(|s| (*s).to_owned()).collect(),
        out: Some(out.clone()),
    };
    let sys = SyslogOptions {
        hostname: "portal.example.org".into(),
        ..SyslogOptions::default()
    };
    let n = export_store(store, &args, &sys).await.unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len() as u64, n, "one line per record: {text}");
    lines
}

fn seqs(lines: &[String]) -> Vec<i64> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn export_filters_by_time_and_operation() {
    let dir = dir();
    let s = store(&dir).await;
    let all = export(&s, &dir, ExportFormat::Jsonl, None, None, &[]).await;
    assert_eq!(seqs(&all), (1..=9).collect::<Vec<_>>());
    // A date as --until is the whole day.
    let day = export(
        &s,
        &dir,
        ExportFormat::Jsonl,
        Some("2026-12-01"),
        Some("2026-12-01"),
        &[],
    )
    .await;
    assert_eq!(seqs(&day), [1, 2, 3, 4, 6, 7, 8, 9]);
    // RFC 3339: since inclusive, until exclusive; offsets count.
    let window = export(
        &s,
        &dir,
        ExportFormat::Jsonl,
        Some("2026-12-01T11:02:00+01:00"),
        Some("2026-12-01T10:03:00Z"),
        &[],
    )
    .await;
    assert_eq!(seqs(&window), [3]);
    let resets = export(
        &s,
        &dir,
        ExportFormat::Jsonl,
        None,
        None,
        &["reset", "unlock"],
    )
    .await;
    assert_eq!(seqs(&resets), [3, 4, 5]);
    let both = export(
        &s,
        &dir,
        ExportFormat::Jsonl,
        None,
        Some("2026-12-01T10:30:00Z"),
        &["identify"],
    )
    .await;
    assert_eq!(seqs(&both), [1]);
}

#[tokio::test]
async fn every_format_is_one_line_per_record_and_nothing_is_forged() {
    let dir = dir();
    let s = store(&dir).await;

    let json = export(&s, &dir, ExportFormat::Jsonl, None, None, &[]).await;
    let v: serde_json::Value = serde_json::from_str(&json[3]).unwrap();
    assert_eq!(v["target_sam"], EVIL);
    assert_eq!(v["hash"].as_str().unwrap().len(), 64);

    let cef = export(&s, &dir, ExportFormat::Cef, None, None, &[]).await;
    assert_eq!(cef.len(), 9);
    for l in &cef {
        assert!(l.starts_with("CEF:0|Rekey|Rekey|"), "{l}");
        assert!(l.matches(" suser=").count() <= 1, "{l}");
        assert_eq!(l.matches(" externalId=").count(), 1, "{l}");
    }
    let evil = &cef[3];
    assert!(evil.contains("|reset|Password reset|7|"), "{evil}");
    assert!(
        evil.contains(r#" duser=evil|CEF:0|x\n<13>1 - forged] [x\="y" suser\=admin "#),
        "{evil}"
    );
    assert_eq!(evil.matches("CEF:0|Rekey").count(), 1);
    assert_eq!(evil.matches(" suser=").count(), 1, "{evil}");

    let syslog = export(&s, &dir, ExportFormat::Syslog, None, None, &[]).await;
    assert_eq!(syslog.len(), 9);
    for l in &syslog {
        assert!(l.starts_with('<'), "{l}");
        assert_eq!(l.matches("[rekey@32473 ").count(), 1, "{l}");
        assert_eq!(l.matches(" portal.example.org rekey - ").count(), 1, "{l}");
    }
    let evil = &syslog[3];
    assert!(
        evil.starts_with("<84>1 2026-12-01T10:03:00.000Z "),
        "{evil}"
    );
    assert!(
        evil.contains(r#" target_sam="evil|CEF:0|x\n<13>1 - forged\] [x=\"y\" suser=admin" "#),
        "{evil}"
    );
    // The only unescaped `]` closes the SD element, before MSG.
    let unescaped = evil
        .char_indices()
        .filter(|&(i, c)| c == ']' && !evil[..i].ends_with('\\'))
        .count();
    assert_eq!(unescaped, 1, "{evil}");
    assert!(evil.ends_with("] reset failed RK-PWD-001"), "{evil}");
}

#[tokio::test]
async fn show_finds_the_support_id_and_its_flow() {
    let dir = dir();
    let s = store(&dir).await;
    let mut out = Vec::new();
    assert_eq!(show_records(&s, "S-3", &mut out).await.unwrap(), 1);
    let text = String::from_utf8(out).unwrap();
    for want in [
        "  #1 ",
        "  #2 ",
        "* #3 ",
        "zones: ad:landed",
        "account: jdoe (g1)",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    // Outside the ±15 min window, another account, no account.
    for not in ["#4 ", "#5 ", "#6 ", "#7 "] {
        assert!(!text.contains(not), "{not} in {text}");
    }

    // The crafted name is shown escaped: no line of the output starts with it.
    let mut out = Vec::new();
    show_records(&s, "S-4", &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(r#"account: evil|CEF:0|x\n<13>1"#), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("<13>")), "{text}");
    assert!(text.contains("hash ok"));

    // Exact match: not LIKE's wildcards, not SQLite's case folding.
    assert_eq!(s.audit_by_support_id("a_b%").await.unwrap().len(), 1);
    assert_eq!(s.audit_by_support_id("a_b%").await.unwrap()[0].seq, 8);
    assert!(s.audit_by_support_id("s-3").await.unwrap().is_empty());
    assert!(s.audit_by_support_id("S-").await.unwrap().is_empty());
    assert!(show_records(&s, "nope", &mut Vec::new()).await.is_err());
}

/// The clap variants `main.rs` pastes (kept identical to the report), parsed here.
mod cli {
    use std::path::PathBuf;

    use clap::{Parser, Subcommand};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        audit: AuditCommand,
    }

    #[derive(Subcommand)]
    enum AuditCommand {
        /// Show the records of a support id and the rest of their flow (the same account,
        /// 15 minutes around them), as text.
        Show {
            /// The support id the user saw on the page.
            support_id: String,
        },
        /// Write audit records for a SIEM, one line each: JSON Lines, CEF or RFC 5424 syslog.
        /// Walks and verifies the whole chain.
        Export {
            #[arg(long, value_enum, default_value = "jsonl")]
            format: rekey::audit_cmd::ExportFormat,
            /// From this time on (RFC 3339, or YYYY-MM-DD: that day from 00:00 UTC).
            #[arg(long, value_parser = rekey::audit_cmd::parse_since)]
            since: Option<i64>,
            /// Before this time (RFC 3339, or YYYY-MM-DD: up to the end of that day, UTC).
            #[arg(long, value_parser = rekey::audit_cmd::parse_until)]
            until: Option<i64>,
            /// Only these operations (repeat or comma-separate): reset, unlock, change, …
            #[arg(
                long = "operation",
                value_delimiter = ',',
                value_parser = rekey::audit_cmd::parse_operation
            )]
            operations: Vec<String>,
            /// Write to this file (created with mode 0600) instead of stdout.
            #[arg(long, short)]
            out: Option<PathBuf>,
        },
    }

    #[test]
    fn the_variants_parse() {
        let cli = Cli::try_parse_from([
            "rekey",
            "export",
            "--format",
            "cef",
            "--since",
            "2026-12-01",
            "--until",
            "2026-12-01T12:00:00+01:00",
            "--operation",
            "reset,unlock",
            "--operation",
            "method_removed",
            "-o",
            "/tmp/x",
        ])
        .unwrap();
        let AuditCommand::Export {
            format,
            since,
            until,
            operations,
            out,
        } = cli.audit
        else {
            panic!("not export")
        };
        assert_eq!(format, rekey::audit_cmd::ExportFormat::Cef);
        assert_eq!(since, Some(1_796_083_200_000));
        assert_eq!(until, Some(1_796_122_800_000));
        assert_eq!(operations, ["reset", "unlock", "method_removed"]);
        assert_eq!(out, Some(PathBuf::from("/tmp/x")));
        assert!(Cli::try_parse_from(["rekey", "export", "--operation", "drop"]).is_err());
        assert!(Cli::try_parse_from(["rekey", "export", "--since", "yesterday"]).is_err());
        let cli = Cli::try_parse_from(["rekey", "show", "K7Q2-9XWD"]).unwrap();
        assert!(
            matches!(cli.audit, AuditCommand::Show { support_id } if support_id == "K7Q2-9XWD")
        );
    }
}
