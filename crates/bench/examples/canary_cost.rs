//! What the writeback canary costs the DCs: `RUNS` canary runs on the dev domain (reset on the
//! PDC emulator, replication wait, LDAPS bind and Kerberos AS exchange on every DC), with the
//! CPU the `samba` processes used, per run. Not a test: run it on a quiet machine with
//! `cargo run --release -p rekey-bench --example canary_cost [RUNS]`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use rekey_bench::dc::{clock_ticks, samba_delta, samba_ticks};
use rekey_e2e::dev::dev;

#[tokio::main]
async fn main() {
    let runs: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let d = dev();
    let u = d.staff_user("canarycost").await;
    let dir = std::env::temp_dir().join(format!("rekey-canary-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rekey.key"), "ab".repeat(32)).unwrap();
    let smtp = rekey_notify::SmtpConfig {
        host: "127.0.0.1".into(),
        port: Some(1),
        tls: rekey_notify::TlsMode::None,
        ca_file: None,
        username: None,
        password_file: None,
        from: "rekey@corp.example.com".into(),
        timeout_ms: 1000,
    };
    let mut c = rekey_e2e::portal::dev_config(&d, &smtp, &dir);
    c.canary.enabled = true;
    c.canary.user = Some(u.sam.clone());
    let built = rekey::portal::engine(&c, false).await.unwrap();
    let canary = rekey::canary::Canary::from_config(&c.canary, built.directory.base_dn())
        .unwrap()
        .unwrap();
    // One run to warm the pool and the caches.
    assert!(canary.run_once(&built.engine, &built.directory).await.ok());
    let ticks = clock_ticks();
    let before = samba_ticks();
    let started = Instant::now();
    let mut lag = Vec::new();
    for _ in 0..runs {
        let run = canary.run_once(&built.engine, &built.directory).await;
        assert!(run.ok(), "{run:#?}");
        lag.extend(
            run.dcs
                .iter()
                .skip(1)
                .filter_map(|p| p.replication.clone().ok()),
        );
    }
    let wall = started.elapsed();
    let cpu_ms = samba_delta(&before, &samba_ticks()) as f64 * 1000.0 / ticks;
    println!(
        "{runs} canary runs over {} DC(s): {:.1} ms DC CPU per run (all samba processes), {:.0} ms wall per run (replication wait included), replication lag p50 {:?}",
        d.urls().len(),
        cpu_ms / f64::from(runs),
        wall.as_millis() as f64 / f64::from(runs),
        {
            lag.sort();
            lag.get(lag.len() / 2).copied()
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
}
