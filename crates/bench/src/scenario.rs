//! The scenarios and the closed-loop runner: `c` workers, each on its own user (and, for the
//! baseline, its own connection), back to back for a fixed time; CPU sampled around the window.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rekey_core::{LandingZone, Password, ResetOptions, WriteGrant};
use tokio::sync::Barrier;

use crate::World;
use crate::dc::{self, BenchResult};
use crate::portal::{enc, http};
use crate::report::Row;

/// One kind of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Baseline: `unicodePwd` replace on a persistent service-bound connection.
    RawReset,
    /// Baseline: delete old + add new in one modify, same connection.
    RawChange,
    /// What peer portals do per "change" (`peer.rs`): new LDAPS connection, service bind, subtree
    /// search, user bind with the old credential, re-bind, `unicodePwd` replace (a reset).
    PeerChange,
    /// `ActiveDirectory::reset` (LandingZone), Rekey's pool.
    ZoneReset,
    /// `ActiveDirectory::change` (LandingZone), Rekey's pool.
    ZoneChange,
    /// GET /change (the form) + POST /change through the portal.
    HttpChange,
    /// POST /reset → code from SMTP → POST /reset/code → POST /reset/password.
    HttpReset,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::RawReset,
        Kind::ZoneReset,
        Kind::HttpReset,
        Kind::RawChange,
        Kind::PeerChange,
        Kind::ZoneChange,
        Kind::HttpChange,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Kind::RawReset => "raw-reset",
            Kind::RawChange => "raw-change",
            Kind::PeerChange => "peer-change",
            Kind::ZoneReset => "zone-reset",
            Kind::ZoneChange => "zone-change",
            Kind::HttpChange => "http-change",
            Kind::HttpReset => "http-reset",
        }
    }

    /// The baseline this scenario is compared with.
    #[must_use]
    pub fn baseline(self) -> Option<Kind> {
        match self {
            Kind::ZoneReset | Kind::HttpReset => Some(Kind::RawReset),
            Kind::ZoneChange | Kind::HttpChange | Kind::PeerChange => Some(Kind::RawChange),
            Kind::RawReset | Kind::RawChange => None,
        }
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

fn next_password(tag: &str, w: usize) -> String {
    format!("Rb{tag}-{w}-{}-Pw!", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Latencies of one scenario at one concurrency.
pub struct Measured {
    lat: Vec<Duration>,
    /// HTTP reset: the set-password request alone (the step that writes).
    step: Vec<Duration>,
    elapsed: Duration,
    self_ticks: u64,
    dc_ticks: u64,
    /// CPU of `rekey serve` (HTTP scenarios, Rekey in its own process).
    rekey_ticks: Option<u64>,
}

fn pct(sorted: &[Duration], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = (sorted.len() * p / 100).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1e3
}

impl Measured {
    /// Add another slice of the same scenario and concurrency.
    pub fn merge(&mut self, other: Self) {
        self.lat.extend(other.lat);
        self.lat.sort();
        self.step.extend(other.step);
        self.step.sort();
        self.elapsed += other.elapsed;
        self.self_ticks += other.self_ticks;
        self.dc_ticks += other.dc_ticks;
        self.rekey_ticks = self.rekey_ticks.zip(other.rekey_ticks).map(|(a, b)| a + b);
    }

    pub fn ops(&self) -> usize {
        self.lat.len()
    }

    pub fn rps(&self) -> f64 {
        self.lat.len() as f64 / self.elapsed.as_secs_f64()
    }

    pub fn p50_ms(&self) -> f64 {
        pct(&self.lat, 50)
    }

    pub fn row(&self, kind: Kind, c: usize, ticks_per_s: f64) -> Row {
        let ops = self.lat.len().max(1) as f64;
        Row {
            scenario: kind.name().into(),
            concurrency: c,
            ops: self.lat.len(),
            seconds: self.elapsed.as_secs_f64(),
            rps: self.rps(),
            p50_ms: pct(&self.lat, 50),
            p99_ms: pct(&self.lat, 99),
            step_p50_ms: (!self.step.is_empty()).then(|| pct(&self.step, 50)),
            bench_cpu_ms_per_op: self.self_ticks as f64 / ticks_per_s * 1e3 / ops,
            rekey_cpu_ms_per_op: self.rekey_ticks.map(|t| t as f64 / ticks_per_s * 1e3 / ops),
            dc_cpu_ms_per_op: self.dc_ticks as f64 / ticks_per_s * 1e3 / ops,
            baseline: kind.baseline().map(|b| b.name().into()),
            rps_ratio: None,
            p50_diff_ms: None,
        }
    }
}

/// Run `kind` with `c` workers for `dur` (each worker does at least one operation).
pub async fn measure(
    world: &Arc<World>,
    kind: Kind,
    c: usize,
    dur: Duration,
) -> BenchResult<Measured> {
    let barrier = Arc::new(Barrier::new(c + 1));
    let mut tasks = Vec::new();
    for w in 0..c {
        let (world, barrier) = (world.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            worker(&world, kind, w, dur, &barrier).await
        }));
    }
    let rekey = world
        .portal
        .pid()
        .filter(|_| matches!(kind, Kind::HttpChange | Kind::HttpReset));
    barrier.wait().await;
    let r0 = rekey.map(dc::pid_ticks);
    let (t0, s0, d0) = (Instant::now(), dc::self_ticks(), dc::samba_ticks());
    let mut lat = Vec::new();
    let mut step = Vec::new();
    let mut first_err = None;
    for t in tasks {
        match t.await {
            Ok(Ok((l, s))) => {
                lat.extend(l);
                step.extend(s);
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(format!("worker panicked: {e}"));
            }
        }
    }
    let (elapsed, s1, d1) = (t0.elapsed(), dc::self_ticks(), dc::samba_ticks());
    let r1 = rekey.map(dc::pid_ticks);
    if let Some(e) = first_err {
        return Err(format!("{} at concurrency {c}: {e}", kind.name()));
    }
    lat.sort();
    step.sort();
    Ok(Measured {
        lat,
        step,
        elapsed,
        self_ticks: s1.saturating_sub(s0),
        dc_ticks: dc::samba_delta(&d0, &d1),
        rekey_ticks: r0.zip(r1).map(|(a, b)| b.saturating_sub(a)),
    })
}

type Samples = (Vec<Duration>, Vec<Duration>);

async fn worker(
    world: &World,
    kind: Kind,
    w: usize,
    dur: Duration,
    barrier: &Barrier,
) -> BenchResult<Samples> {
    let mut user = world.users[w].lock().await;
    let mut raw = world.raw[w].lock().await;
    let account = &world.accounts[w];
    let port = world.portal.port;
    // Per-worker set-up outside the window: the CSRF cookie a browser got with the page.
    let csrf = if matches!(kind, Kind::HttpChange | Kind::HttpReset) {
        let page = if kind == Kind::HttpChange {
            "/change"
        } else {
            "/reset"
        };
        let a = http(port, "GET", page, "", None).await;
        let csrf = a
            .ok()
            .and_then(|a| a.cookie("__Host-rekey-csrf").map(str::to_owned));
        csrf.ok_or("GET: no CSRF cookie")?
    } else {
        String::new()
    };
    let mut codes = match world.portal.codes.get(&user.address) {
        Some(rx) if kind == Kind::HttpReset => Some(rx.lock().await),
        _ => None,
    };
    barrier.wait().await;
    let until = Instant::now() + dur;
    let (mut lat, mut step) = (Vec::new(), Vec::new());
    loop {
        let new = next_password(&world.tag, w);
        let t = Instant::now();
        match kind {
            Kind::RawReset => dc::raw_reset(&mut raw, &user.dn, &new).await?,
            Kind::RawChange => dc::raw_change(&mut raw, &user.dn, &user.password, &new).await?,
            Kind::PeerChange => world
                .peer
                .change(&user.sam, &user.password, &new)
                .await
                .map_err(|e| e.to_string())?,
            Kind::ZoneReset => {
                LandingZone::reset(
                    world.ad.as_ref(),
                    &WriteGrant::for_zone_tests(account),
                    &Password::new(new.clone()),
                    ResetOptions::default(),
                )
                .await
                .map_err(|e| format!("zone reset: {e:?}"))?;
            }
            Kind::ZoneChange => {
                LandingZone::change(
                    world.ad.as_ref(),
                    &WriteGrant::for_zone_tests(account),
                    &Password::new(user.password.clone()),
                    &Password::new(new.clone()),
                )
                .await
                .map_err(|e| format!("zone change: {e:?}"))?;
            }
            Kind::HttpChange => {
                let cookie = format!("__Host-rekey-csrf={csrf}");
                let a = http(port, "GET", "/change", &cookie, None).await?;
                if a.status != 200 {
                    return Err(format!("GET /change: {} {}", a.status, snippet(&a.body)));
                }
                let form = format!(
                    "csrf={csrf}&username={}&current_password={}&new_password={}&confirm_password={}",
                    enc(&user.sam),
                    enc(&user.password),
                    enc(&new),
                    enc(&new)
                );
                let a = http(port, "POST", "/change", &cookie, Some(&form)).await?;
                if a.status != 200 || !a.body.contains("data-state=\"ok\"") {
                    return Err(format!("POST /change: {} {}", a.status, snippet(&a.body)));
                }
            }
            Kind::HttpReset => {
                let rx = codes.as_mut().ok_or("no code channel")?;
                let s = http_reset(port, &csrf, &user.sam, &new, rx).await?;
                step.push(s);
            }
        }
        lat.push(t.elapsed());
        user.password = new;
        if Instant::now() >= until {
            break;
        }
    }
    Ok((lat, step))
}

/// The whole reset through the pages; returns the set-password request's latency.
async fn http_reset(
    port: u16,
    csrf: &str,
    sam: &str,
    new: &str,
    codes: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) -> BenchResult<Duration> {
    let c = format!("__Host-rekey-csrf={csrf}");
    let form = format!("csrf={csrf}&username={}", enc(sam));
    let a = http(port, "POST", "/reset", &c, Some(&form)).await?;
    let flow = a
        .cookie("__Host-rekey-flow")
        .ok_or_else(|| format!("POST /reset: {} no flow cookie", a.status))?;
    let code = tokio::time::timeout(Duration::from_secs(10), codes.recv())
        .await
        .map_err(|_| format!("no code mailed to {sam} within 10 s"))?
        .ok_or("SMTP sink closed")?;
    let cookies = format!("{c}; __Host-rekey-flow={flow}");
    let form = format!("csrf={csrf}&code={code}");
    let a = http(port, "POST", "/reset/code", &cookies, Some(&form)).await?;
    if a.location.as_deref() != Some("/reset/password") {
        return Err(format!(
            "POST /reset/code: {} {:?} {}",
            a.status,
            a.location,
            snippet(&a.body)
        ));
    }
    let flow = a
        .cookie("__Host-rekey-flow")
        .ok_or("POST /reset/code: no rotated flow cookie")?;
    let cookies = format!("{c}; __Host-rekey-flow={flow}");
    let form = format!(
        "csrf={csrf}&new_password={}&confirm_password={}",
        enc(new),
        enc(new)
    );
    let t = Instant::now();
    let a = http(port, "POST", "/reset/password", &cookies, Some(&form)).await?;
    let step = t.elapsed();
    if a.status != 200 || !a.body.contains("data-state=\"ok\"") {
        return Err(format!(
            "POST /reset/password: {} {}",
            a.status,
            snippet(&a.body)
        ));
    }
    Ok(step)
}

/// The alert of a page, for error messages (never contains a password: pages do not echo them).
fn snippet(body: &str) -> String {
    let at = body
        .find("role=\"alert\"")
        .or_else(|| body.find("<main"))
        .unwrap_or(0);
    body[at..]
        .chars()
        .take(300)
        .collect::<String>()
        .replace('\n', " ")
}
