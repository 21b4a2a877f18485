//! The writeback canary: every `[canary] every_secs`, reset the dedicated canary account through
//! the engine (one audited write, `canary`), then prove the new password on EVERY configured DC
//! — wait until that DC's replica has the write (its `pwdLastSet` reaches the writer's), then an
//! LDAPS simple bind and a Kerberos AS exchange (in-process, `rekey-kerberos`) with the new
//! password. Results go to `/metrics` (`rekey_canary_*`) and the log, with the reset's support
//! id. The old password is never tried: every wrong attempt counts in badPwdCount.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::{counter, gauge};
use rekey_core::audit::Actor;
use rekey_core::engine::{CanaryLanding, Engine, RequestContext};
use rekey_directory::ActiveDirectory;

use crate::config::ops::CanarySection;

/// How often a DC that has not replicated yet is asked again.
const REPLICATION_POLL: Duration = Duration::from_millis(500);

/// What one run proved on one DC.
#[derive(Debug, Clone)]
pub struct DcProof {
    /// The DC's configured URL.
    pub dc: String,
    /// Time from the write until this DC's replica had it (zero on the writer), or why that
    /// is not known.
    pub replication: Result<Duration, String>,
    pub bind: Result<Duration, String>,
    pub kerberos: Result<Duration, String>,
}

impl DcProof {
    #[must_use]
    pub fn ok(&self) -> bool {
        self.problem().is_none()
    }

    /// The first thing that failed on this DC.
    #[must_use]
    pub fn problem(&self) -> Option<&str> {
        [&self.replication, &self.bind, &self.kerberos]
            .into_iter()
            .find_map(|r| r.as_ref().err().map(String::as_str))
    }
}

/// One canary run.
#[derive(Debug, Clone)]
pub struct CanaryRun {
    /// The reset's audit record.
    pub support_id: String,
    /// Why the reset itself failed (its error code and text), if it did.
    pub reset_error: Option<String>,
    pub reset_took: Duration,
    pub dcs: Vec<DcProof>,
}

impl CanaryRun {
    /// The reset landed and every DC proved it.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.reset_error.is_none() && !self.dcs.is_empty() && self.dcs.iter().all(DcProof::ok)
    }
}

/// The settings of one canary, resolved from `[canary]` and the directory.
#[derive(Debug, Clone)]
pub struct Canary {
    pub user: String,
    pub realm: String,
    pub kdc_port: u16,
    pub timeout: Duration,
    pub replication_wait: Duration,
    pub every: Duration,
}

impl Canary {
    /// The canary `[canary]` describes, if enabled. The realm defaults to the base DN's DNS
    /// name (DC=corp,DC=example,DC=com → CORP.EXAMPLE.COM).
    ///
    /// # Errors
    /// A message naming the key when `user` is missing.
    pub fn from_config(c: &CanarySection, base_dn: &str) -> Result<Option<Self>, String> {
        if !c.enabled {
            return Ok(None);
        }
        let user = c
            .user
            .clone()
            .filter(|u| !u.trim().is_empty())
            .ok_or("canary.user: name the canary account (sAMAccountName)")?;
        let realm = c.realm.clone().unwrap_or_else(|| realm_of(base_dn));
        if realm.is_empty() {
            return Err("canary.realm: the base DN has no DC= parts; set the realm".into());
        }
        Ok(Some(Self {
            user,
            realm,
            kdc_port: c.kdc_port,
            timeout: Duration::from_millis(c.timeout_ms.max(1)),
            replication_wait: Duration::from_secs(c.replication_wait_secs),
            every: Duration::from_secs(c.every_secs.max(10)),
        }))
    }

    /// Run forever, one run per `every` (the first at once).
    pub fn spawn(
        self,
        engine: Engine,
        directory: Arc<ActiveDirectory>,
    ) -> tokio::task::JoinHandle<()> {
        #[allow(clippy::cast_precision_loss)]
        gauge!("rekey_canary_interval_seconds").set(self.every.as_secs() as f64);
        // No success yet: a canary that never succeeds after a start is stale, not absent.
        for dc in directory.dc_urls() {
            gauge!("rekey_canary_last_success_timestamp_seconds", "dc" => dc).set(0.0);
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.run_once(&engine, &directory).await;
            }
        })
    }

    /// Reset the canary and prove the landing on every DC; metrics and log updated.
    pub async fn run_once(&self, engine: &Engine, directory: &ActiveDirectory) -> CanaryRun {
        let ctx = RequestContext {
            client_ip: None,
            user_agent: Some("rekey-canary".into()),
            support_id: engine.support_id(),
            actor: Actor::System,
        };
        let started = Instant::now();
        let landing = engine.canary_reset(&ctx, &self.user).await;
        let reset_took = started.elapsed();
        let written = Instant::now();
        let mut run = CanaryRun {
            support_id: ctx.support_id.clone(),
            reset_error: None,
            reset_took,
            dcs: Vec::new(),
        };
        match landing {
            Ok(landing) => {
                gauge!("rekey_canary_duration_seconds", "dc" => landing.server.clone(), "check" => "reset")
                    .set(reset_took.as_secs_f64());
                run.dcs = self.prove(directory, &landing, written).await;
            }
            Err(e) => {
                run.reset_error = Some(e.to_string());
                run.dcs = directory
                    .dc_urls()
                    .into_iter()
                    .map(|dc| DcProof {
                        dc,
                        replication: Err("not tried: the reset failed".into()),
                        bind: Err("not tried: the reset failed".into()),
                        kerberos: Err("not tried: the reset failed".into()),
                    })
                    .collect();
            }
        }
        report(&run);
        run
    }

    /// Every DC, the writer first, in turn.
    async fn prove(
        &self,
        directory: &ActiveDirectory,
        landing: &CanaryLanding,
        written: Instant,
    ) -> Vec<DcProof> {
        let urls = directory.dc_urls();
        let writer = directory.dc_index(&landing.server);
        let dn = landing.account.dn.as_str();
        // The writer's pwdLastSet after the write: a replica has the write once it has this.
        let target = match writer {
            Some(w) => match directory.pwd_last_set_at(w, dn).await {
                Ok(Some(v)) => Ok(v),
                Ok(None) => Err("the writer shows no pwdLastSet".to_owned()),
                Err(e) => Err(format!("pwdLastSet not readable on the writer: {e}")),
            },
            None => Err(format!(
                "the write went to {}, which is not in directory.urls",
                landing.server
            )),
        };
        let order: Vec<usize> = writer
            .into_iter()
            .chain((0..urls.len()).filter(|&i| Some(i) != writer))
            .collect();
        let mut out = Vec::with_capacity(urls.len());
        for idx in order {
            let dc = urls[idx].clone();
            let replication = if Some(idx) == writer {
                Ok(Duration::ZERO)
            } else {
                match &target {
                    Ok(t) => self.replicated(directory, idx, dn, *t, written).await,
                    Err(why) => Err(why.clone()),
                }
            };
            let (bind, kerberos) = match &replication {
                Ok(_) => (
                    self.bind(directory, idx, landing).await,
                    self.kerberos(&dc, landing).await,
                ),
                Err(why) => {
                    let why = format!("not tried: {why}");
                    (Err(why.clone()), Err(why))
                }
            };
            out.push(DcProof {
                dc,
                replication,
                bind,
                kerberos,
            });
        }
        out
    }

    /// Wait until DC `idx` has the write (its `pwdLastSet` reached `target`).
    async fn replicated(
        &self,
        directory: &ActiveDirectory,
        idx: usize,
        dn: &str,
        target: i64,
        written: Instant,
    ) -> Result<Duration, String> {
        loop {
            let last = match directory.pwd_last_set_at(idx, dn).await {
                Ok(Some(v)) if v >= target => return Ok(written.elapsed()),
                Ok(_) => "an older pwdLastSet".to_owned(),
                Err(e) => e.to_string(),
            };
            if written.elapsed() >= self.replication_wait {
                return Err(format!(
                    "the write did not reach this DC within {} s (last read: {last})",
                    self.replication_wait.as_secs()
                ));
            }
            tokio::time::sleep(REPLICATION_POLL).await;
        }
    }

    async fn bind(
        &self,
        directory: &ActiveDirectory,
        idx: usize,
        landing: &CanaryLanding,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        match tokio::time::timeout(
            self.timeout,
            directory.bind_at(idx, &landing.account.dn, &landing.password),
        )
        .await
        {
            Ok(Ok(true)) => Ok(started.elapsed()),
            Ok(Ok(false)) => Err("LDAPS bind refused the new password (49)".into()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "LDAPS bind: no answer in {} ms",
                self.timeout.as_millis()
            )),
        }
    }

    async fn kerberos(&self, dc: &str, landing: &CanaryLanding) -> Result<Duration, String> {
        let host = url::Url::parse(dc)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .ok_or_else(|| format!("no host in {dc}"))?;
        let kdc = if host.contains(':') {
            format!("[{host}]:{}", self.kdc_port)
        } else {
            format!("{host}:{}", self.kdc_port)
        };
        let started = Instant::now();
        let verdict = rekey_kerberos::check_password(
            &kdc,
            &self.realm,
            &landing.account.sam_account_name,
            landing.password.expose(),
            self.timeout,
        )
        .await
        .map_err(|e| format!("Kerberos at {kdc}: {e}"))?;
        if verdict.password_accepted() {
            Ok(started.elapsed())
        } else {
            Err(format!("Kerberos at {kdc}: {}", verdict.describe()))
        }
    }
}

/// `DC=corp,DC=example,DC=com` → `CORP.EXAMPLE.COM`.
fn realm_of(base_dn: &str) -> String {
    base_dn
        .split(',')
        .filter_map(|rdn| {
            let (k, v) = rdn.trim().split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("dc")
                .then(|| v.trim().to_uppercase())
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Metrics and one log line per run.
fn report(run: &CanaryRun) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    for p in &run.dcs {
        let dc = p.dc.clone();
        gauge!("rekey_canary_up", "dc" => dc.clone()).set(if p.ok() { 1.0 } else { 0.0 });
        if p.ok() {
            gauge!("rekey_canary_last_success_timestamp_seconds", "dc" => dc.clone()).set(now);
        }
        if let Ok(lag) = p.replication {
            gauge!("rekey_canary_replication_lag_seconds", "dc" => dc.clone())
                .set(lag.as_secs_f64());
            gauge!("rekey_canary_duration_seconds", "dc" => dc.clone(), "check" => "replication")
                .set(lag.as_secs_f64());
        }
        if let Ok(t) = p.bind {
            gauge!("rekey_canary_duration_seconds", "dc" => dc.clone(), "check" => "bind")
                .set(t.as_secs_f64());
        }
        if let Ok(t) = p.kerberos {
            gauge!("rekey_canary_duration_seconds", "dc" => dc, "check" => "kerberos")
                .set(t.as_secs_f64());
        }
    }
    let result = if run.ok() { "ok" } else { "failed" };
    counter!("rekey_canary_runs_total", "result" => result).increment(1);
    if run.ok() {
        tracing::info!(
            support_id = %run.support_id,
            reset_ms = run.reset_took.as_millis(),
            dcs = run.dcs.len(),
            "canary: the reset landed and is proven on every DC"
        );
    } else {
        let problems: Vec<String> = run
            .dcs
            .iter()
            .filter(|p| !p.ok())
            .map(|p| format!("{}: {}", p.dc, p.problem().unwrap_or_default()))
            .collect();
        tracing::warn!(
            support_id = %run.support_id,
            reset_error = run.reset_error.as_deref().unwrap_or("none"),
            problems = %problems.join("; "),
            "canary: the landing is NOT proven"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::realm_of;

    #[test]
    fn realm_comes_from_the_base_dn() {
        assert_eq!(realm_of("DC=corp,DC=example,DC=com"), "CORP.EXAMPLE.COM");
        assert_eq!(realm_of("dc=Corp, dc=Example"), "CORP.EXAMPLE");
        assert_eq!(realm_of("O=nothing"), "");
    }
}
