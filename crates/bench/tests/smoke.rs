//! The bench in quick mode against the dev domain: every scenario runs, does work, and every
//! final password binds. Needs `dev/domain up`: fails (never skips) when the domain is down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use rekey_bench::{Kind, Options};

#[tokio::test(flavor = "multi_thread")]
async fn quick_bench_runs_every_scenario_and_loses_no_write() {
    let t = Instant::now();
    let mut opts = Options::quick();
    opts.seconds = 0.3;
    let report = rekey_bench::run(&opts)
        .await
        .unwrap_or_else(|e| panic!("bench failed (is `dev/domain up` done?): {e}"));
    assert!(report.verified, "every final password binds");
    for &c in &opts.concurrency {
        for kind in Kind::ALL {
            let row = report
                .rows
                .iter()
                .find(|r| r.scenario == kind.name() && r.concurrency == c)
                .unwrap_or_else(|| panic!("{} at c={c} missing", kind.name()));
            assert!(row.ops > 0, "{} at c={c}: no operations", kind.name());
            assert!(row.rps > 0.0 && row.p50_ms > 0.0, "{row:?}");
            if kind.baseline().is_some() {
                assert!(row.rps_ratio.is_some(), "{row:?}");
            }
        }
    }
    let md = rekey_bench::report::markdown(&report);
    assert!(md.contains("| http-reset | 4 |"), "{md}");
    assert!(md.contains("| peer-change | 4 |"), "{md}");
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("vs peer-change: ")),
        "{md}"
    );
    eprintln!("{md}\nsmoke run took {:.1} s", t.elapsed().as_secs_f64());
}
