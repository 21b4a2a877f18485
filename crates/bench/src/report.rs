//! The report: JSON and a Markdown table.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::Options;

/// One scenario at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub concurrency: usize,
    pub ops: usize,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// HTTP reset only: p50 of the set-password request (the step that writes).
    pub step_p50_ms: Option<f64>,
    /// CPU of this process per op: the bench's client (HTTP, LDAP baseline) and SMTP sink, plus
    /// Rekey when it runs in-process (`--in-process`).
    pub bench_cpu_ms_per_op: f64,
    /// HTTP scenarios with Rekey in its own process: the CPU of `rekey serve` per op (all its
    /// threads, from `/proc/<pid>/stat`).
    pub rekey_cpu_ms_per_op: Option<f64>,
    /// CPU of all `samba` processes per op (DC1 and, when up, DC2 replicating).
    pub dc_cpu_ms_per_op: f64,
    pub baseline: Option<String>,
    /// rps / baseline rps at the same concurrency.
    pub rps_ratio: Option<f64>,
    /// p50 − baseline p50 at the same concurrency.
    pub p50_diff_ms: Option<f64>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub started_unix: u64,
    pub cpus: usize,
    pub options: Options,
    pub rows: Vec<Row>,
    /// Every user's final password bound on a fresh connection.
    pub verified: bool,
    pub verified_users: usize,
    pub notes: Vec<String>,
}

/// Fill in the ratios against each row's baseline at the same concurrency.
pub fn add_ratios(rows: &mut [Row]) {
    let base: Vec<(String, usize, f64, f64)> = rows
        .iter()
        .map(|r| (r.scenario.clone(), r.concurrency, r.rps, r.p50_ms))
        .collect();
    for r in rows.iter_mut() {
        let Some(b) = r.baseline.as_deref() else {
            continue;
        };
        if let Some((_, _, rps, p50)) = base
            .iter()
            .find(|(s, c, _, _)| s == b && *c == r.concurrency)
        {
            r.rps_ratio = Some(r.rps / rps);
            r.p50_diff_ms = Some(r.p50_ms - p50);
        }
    }
}

/// What a reader must know to read the numbers right.
#[must_use]
pub fn notes(opts: &Options) -> Vec<String> {
    vec![
        format!(
            "identify deadline {} ms for the bench; production answers identify at 400 ms by design \
             (invariant 9), so a real reset takes ≥ 400 ms more",
            opts.identify_deadline_ms
        ),
        if opts.rekey_process {
            "Rekey CPU = the `rekey serve` process (all threads, utime+stime from /proc/<pid>/stat) \
             per op, the client in another process; bench CPU = the bench process: HTTP client, \
             SMTP sink (and for raw-*, zone-* and peer-change the client alone)"
                .into()
        } else {
            "bench CPU = this whole process: Rekey (in-process) + the bench's HTTP client, LDAP \
             baseline client and SMTP sink; for raw-* and peer-change it is the client alone"
                .into()
        },
        "peer-change = what typical portals do per change: new LDAPS connection (TLS handshake), \
         bind as the service account, subtree search by sAMAccountName, bind as the user with the \
         old credential, re-bind as the service account, REPLACE unicodePwd — a reset, so the DC \
         skips history and minimum age, and must-change / expired users cannot bind at all \
         (tests/peer_model.rs)"
            .into(),
        "DC CPU = all samba processes on the host (DC1 and DC2, which replicates every write)"
            .into(),
        format!(
            "Rekey's LDAPS pool: {} connection(s) to DC1 (multiplexed); baseline: one connection \
             per worker",
            opts.pool_size
        ),
        "http-change = GET /change + POST /change; http-reset = POST /reset + code from SMTP + \
         POST /reset/code + POST /reset/password; step p50 = the set-password request alone"
            .into(),
        "engine budgets raised for the bench: per-IP attempts and mails per user per hour".into(),
    ]
}

/// Rekey's change paths against the peer model at each concurrency (×rps, Δp50), one line.
#[must_use]
pub fn against_peer(rows: &[Row]) -> Vec<String> {
    let mut parts = Vec::new();
    for peer in rows.iter().filter(|r| r.scenario == "peer-change") {
        for r in rows.iter().filter(|r| {
            r.concurrency == peer.concurrency
                && (r.scenario == "zone-change" || r.scenario == "http-change")
        }) {
            if peer.rps > 0.0 {
                parts.push(format!(
                    "{} c={} ×{:.2} rps, {:+.2} ms p50",
                    r.scenario,
                    r.concurrency,
                    r.rps / peer.rps,
                    r.p50_ms - peer.p50_ms
                ));
            }
        }
    }
    if parts.is_empty() {
        return Vec::new();
    }
    vec![format!("vs peer-change: {}", parts.join("; "))]
}

fn opt(v: Option<f64>, prec: usize, suffix: &str) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:+.prec$}{suffix}"))
}

/// The Markdown table (plus notes).
#[must_use]
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Rekey bench: {} users, {} s per scenario and concurrency in {} turn(s), {} CPU(s); \
         verified: {} ({} users bind with their last password)\n\n",
        r.options.users.max(r.verified_users),
        r.options.seconds,
        r.options.rounds,
        r.cpus,
        if r.verified { "yes" } else { "NO" },
        r.verified_users
    ));
    s.push_str(
        "| scenario | c | ops | req/s | p50 ms | p99 ms | step p50 ms | Rekey CPU ms/op | \
         bench CPU ms/op | DC CPU ms/op | vs | ×rps | Δp50 ms |\n",
    );
    s.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|\n");
    for x in &r.rows {
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.2} | {:.2} | {} | {} | {:.2} | {:.1} | {} | {} | {} |\n",
            x.scenario,
            x.concurrency,
            x.ops,
            x.rps,
            x.p50_ms,
            x.p99_ms,
            x.step_p50_ms
                .map_or_else(|| "—".into(), |v| format!("{v:.2}")),
            x.rekey_cpu_ms_per_op
                .map_or_else(|| "—".into(), |v| format!("{v:.2}")),
            x.bench_cpu_ms_per_op,
            x.dc_cpu_ms_per_op,
            x.baseline.as_deref().unwrap_or("—"),
            x.rps_ratio
                .map_or_else(|| "—".into(), |v| format!("{v:.2}")),
            opt(x.p50_diff_ms, 2, ""),
        ));
    }
    s.push('\n');
    for n in &r.notes {
        s.push_str(&format!("- {n}\n"));
    }
    s
}

/// Write `latest.json` and `latest.md` into `dir`; returns their paths.
pub fn write(r: &Report, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let json = dir.join("latest.json");
    let md = dir.join("latest.md");
    let text = serde_json::to_string_pretty(r).map_err(std::io::Error::other)?;
    std::fs::write(&json, text)?;
    std::fs::write(&md, markdown(r))?;
    Ok((json, md))
}
