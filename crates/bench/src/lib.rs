//! `rekey-bench`: Rekey against the directory's own limit, in one run on the dev domain.
//!
//! Baselines (a perfect client: one persistent LDAPS connection per worker, bound as the service
//! account), the peer model (what typical portals do per "change": connect, bind, search, bind as
//! the user, re-bind, replace — `peer.rs`) and Rekey's real paths (the `ActiveDirectory` landing
//! zone; the portal over HTTP) do the same work at the same concurrencies; every worker owns one
//! user, so writes never contend on one object. Afterwards every user's last password must bind,
//! or the run fails.

// A benchmark harness: the OS random source failing is not a case to handle.
#![allow(clippy::expect_used)]

pub mod dc;
pub mod peer;
pub mod portal;
pub mod process;
pub mod report;
mod scenario;
pub mod spans;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rekey_directory::{ActiveDirectory, AdConfig};
use tokio::sync::Mutex;

pub use dc::BenchResult;
pub use report::{Report, Row};
pub use scenario::Kind;

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Options {
    pub users: usize,
    /// Measured time per scenario and concurrency.
    pub seconds: f64,
    pub concurrency: Vec<usize>,
    /// The scenarios of one concurrency take turns in this many slices of `seconds / rounds`
    /// each, so a DC whose speed drifts during the run (a shared host, a growing password
    /// history) weighs on every row alike instead of on whichever ran last.
    pub rounds: usize,
    /// `pool_size` of Rekey's LDAPS pool (production default 2).
    pub pool_size: usize,
    /// `WebConfig::identify_deadline` (production: 400 ms, by design).
    pub identify_deadline_ms: u64,
    pub out: PathBuf,
    /// Only these scenarios (by name); empty: all.
    pub only: Vec<String>,
    /// Rekey as `rekey serve` in its own process (its CPU read from `/proc/<pid>/stat` apart
    /// from the bench's); `false`: the portal in the bench's process.
    pub rekey_process: bool,
}

impl Options {
    /// The full run: 16 users, concurrency 1 / 4 / 16, 10 s each.
    #[must_use]
    pub fn full() -> Self {
        Self {
            users: 16,
            seconds: 10.0,
            concurrency: vec![1, 4, 16],
            rounds: 5,
            pool_size: AdConfig::new(vec![], "").pool_size,
            identify_deadline_ms: 1,
            out: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench")),
            only: Vec::new(),
            rekey_process: true,
        }
    }

    /// A few seconds in all (the smoke test): 4 users, concurrency 1 / 4, 0.4 s each.
    #[must_use]
    pub fn quick() -> Self {
        Self {
            users: 4,
            seconds: 0.4,
            concurrency: vec![1, 4],
            rounds: 1,
            // The smoke test: no release binary needed.
            rekey_process: false,
            ..Self::full()
        }
    }
}

/// Everything the workers share.
pub(crate) struct World {
    pub dev: rekey_e2e::dev::Dev,
    pub users: Vec<Mutex<dc::BenchUser>>,
    pub accounts: Vec<rekey_core::Account>,
    /// One persistent, service-bound connection per worker (the baseline).
    pub raw: Vec<Mutex<ldap3::Ldap>>,
    /// The peer model (`peer-change`): everything per operation, nothing kept.
    pub peer: peer::Peer,
    pub ad: Arc<ActiveDirectory>,
    pub portal: portal::Portal,
    /// Makes every new password unique across runs (history is 24 on the dev domain).
    pub tag: String,
}

/// Run every scenario at every concurrency, verify, clean up, and return the report.
/// Fails if the dev domain is not up, if any operation fails, or if a final password does not bind.
pub async fn run(opts: &Options) -> BenchResult<Report> {
    let started = std::time::SystemTime::now();
    let tag = started
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| format!("{:x}", d.as_secs() % 0xff_ffff))
        .unwrap_or_default();
    let dev = rekey_e2e::dev::dev();
    let need = opts.concurrency.iter().copied().max().unwrap_or(1);
    let n_users = opts.users.max(need);
    let users = dc::prepare_users(&dev, n_users, &tag).await?;
    let result = run_with(opts, dev, users.clone(), tag).await;
    let dev = rekey_e2e::dev::dev();
    let cleanup = dc::delete_users(&dev, &users).await;
    let mut report = result?;
    if let Err(e) = cleanup {
        report.notes.push(format!("cleanup failed: {e}"));
    }
    Ok(report)
}

async fn run_with(
    opts: &Options,
    dev: rekey_e2e::dev::Dev,
    users: Vec<dc::BenchUser>,
    tag: String,
) -> BenchResult<Report> {
    let mut cfg = AdConfig::new(vec![dev.dc1_url()], dev.get("REKEY_DEV_SVC_DN"));
    cfg.ca_file = Some(dev.get("REKEY_DEV_CA_FILE").into());
    cfg.bind_password_file = Some(dev.get("REKEY_DEV_SVC_PASSWORD_FILE").into());
    cfg.pool_size = opts.pool_size;
    let ad = Arc::new(
        ActiveDirectory::connect(&cfg)
            .await
            .map_err(|e| format!("Rekey's directory connect: {e}. Is `dev/domain up` done?"))?,
    );
    let mut accounts = Vec::new();
    for u in &users {
        accounts.push(
            ad.account_by_dn(&u.dn)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{} not found", u.sam))?,
        );
    }
    let mut raw = Vec::new();
    for _ in 0..users.len() {
        raw.push(Mutex::new(dc::connect_service(&dev).await?));
    }
    let peer = peer::Peer::from_dev(&dev)?;
    let deadline = Duration::from_millis(opts.identify_deadline_ms);
    let portal = portal::start(&dev, ad.clone(), &users, deadline, opts.rekey_process).await?;
    let world = Arc::new(World {
        dev,
        users: users.into_iter().map(Mutex::new).collect(),
        accounts,
        raw,
        peer,
        ad,
        portal,
        tag,
    });
    let ticks = dc::clock_ticks();
    let mut rows = Vec::new();
    // Concurrency outermost: every path sees the DC in the same state (history, cache, load).
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| opts.only.is_empty() || opts.only.iter().any(|o| o == k.name()))
        .collect();
    let rounds = opts.rounds.max(1);
    #[allow(clippy::cast_precision_loss)]
    let slice = Duration::from_secs_f64(opts.seconds / rounds as f64);
    for &c in &opts.concurrency {
        let mut cells: Vec<Option<scenario::Measured>> = kinds.iter().map(|_| None).collect();
        for _ in 0..rounds {
            for (kind, cell) in kinds.iter().zip(cells.iter_mut()) {
                let m = scenario::measure(&world, *kind, c, slice).await?;
                match cell {
                    Some(total) => total.merge(m),
                    None => *cell = Some(m),
                }
            }
        }
        for (&kind, m) in kinds.iter().zip(cells) {
            let Some(m) = m else { continue };
            eprintln!(
                "{:<14} c={c:<3} {:>6} ops {:>8.1} req/s p50 {:>7.2} ms",
                kind.name(),
                m.ops(),
                m.rps(),
                m.p50_ms()
            );
            rows.push(m.row(kind, c, ticks));
        }
    }
    report::add_ratios(&mut rows);
    let mut notes = report::notes(opts);
    if let Some(idle) = world.portal.idle_ms_per_s() {
        notes.push(format!(
            "Rekey idle: {idle:.2} ms CPU per second with no request (timers, background jobs), \
             sampled for 3 s after start; included in Rekey CPU ms/op (at 10 ops/s that is \
             {:.2} ms/op)",
            idle / 10.0
        ));
    }
    notes.extend(report::against_peer(&rows));
    let mut final_users = Vec::new();
    for u in &world.users {
        final_users.push(u.lock().await.clone());
    }
    let failures = dc::verify_binds(&world.dev, &final_users).await;
    let report = Report {
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        options: opts.clone(),
        rows,
        verified: failures.is_empty(),
        verified_users: final_users.len(),
        notes,
    };
    if !failures.is_empty() {
        return Err(format!(
            "VERIFICATION FAILED: a final password does not bind (lost writes):\n{}",
            failures.join("\n")
        ));
    }
    Ok(report)
}
