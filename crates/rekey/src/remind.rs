//! The expiry reminder job: `rekey serve` runs it every `[reminders] every_secs` when enabled;
//! `rekey admin remind [--dry-run]` runs it once. The directory lists who is due (PSO-aware);
//! the engine decides per account (enabled, in scope, one mail per password) and audits.

use std::time::{Duration, SystemTime};

use rekey_core::audit::Actor;
use rekey_core::engine::{Engine, Reminder, RequestContext};
use rekey_directory::ActiveDirectory;

use crate::config::ops::RemindersSection;

/// One due account and what was done.
#[derive(Debug, Clone)]
pub struct Due {
    pub sam_account_name: String,
    pub expires_at: SystemTime,
    pub outcome: Result<Reminder, String>,
}

/// One pass over every password expiring within `within_days`.
///
/// # Errors
/// The directory search failing (nothing was sent).
pub async fn run_once(
    engine: &Engine,
    directory: &ActiveDirectory,
    within_days: u32,
    dry_run: bool,
) -> Result<Vec<Due>, rekey_core::DirectoryError> {
    let within = Duration::from_secs(u64::from(within_days) * 86_400);
    let due = directory
        .expiring_passwords(SystemTime::now(), within)
        .await?;
    let mut out = Vec::with_capacity(due.len());
    for x in due {
        let ctx = RequestContext {
            client_ip: None,
            user_agent: Some("rekey-reminders".into()),
            support_id: engine.support_id(),
            actor: Actor::System,
        };
        let at = rekey_core::clock::unix(x.expires_at);
        let outcome = engine
            .expiry_reminder(&ctx, &x.guid, at, dry_run)
            .await
            .map_err(|e| format!("{e} (support id {})", ctx.support_id));
        out.push(Due {
            sam_account_name: x.sam_account_name,
            expires_at: x.expires_at,
            outcome,
        });
    }
    Ok(out)
}

/// The scheduled job of an enabled `[reminders]`.
#[must_use]
pub fn spawn(
    c: &RemindersSection,
    engine: Engine,
    directory: std::sync::Arc<ActiveDirectory>,
) -> Option<tokio::task::JoinHandle<()>> {
    if !c.enabled {
        return None;
    }
    let every = Duration::from_secs(c.every_secs.max(60));
    let days = c.within_days;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&engine, &directory, days, false).await {
                Ok(due) => {
                    let mailed = due
                        .iter()
                        .filter(|d| matches!(d.outcome, Ok(Reminder::Mail { .. })))
                        .count();
                    tracing::info!(due = due.len(), mailed, "expiry reminders sent");
                    for d in due.iter().filter(|d| d.outcome.is_err()) {
                        tracing::warn!(user = %d.sam_account_name, error = ?d.outcome, "expiry reminder failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "expiry reminders: directory search failed"),
            }
        }
    }))
}

/// The table `rekey admin remind` prints.
#[must_use]
pub fn table(due: &[Due], dry_run: bool) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for d in due {
        let secs = rekey_core::clock::unix(d.expires_at);
        let (y, m, day) = rekey_core::clock::civil_from_days(secs.div_euclid(86_400));
        let what = match &d.outcome {
            Ok(Reminder::Mail { to }) if dry_run => format!("would mail {to}"),
            Ok(Reminder::Mail { to }) => format!("mailed {to}"),
            Ok(Reminder::AlreadySent) => "already reminded for this password".into(),
            Ok(Reminder::Skipped(why)) => format!("skipped: {why}"),
            Err(e) => format!("FAILED: {e}"),
        };
        let _ = writeln!(
            s,
            "{:<24} expires {y:04}-{m:02}-{day:02}  {what}",
            d.sam_account_name
        );
    }
    if due.is_empty() {
        s.push_str("no password expires in the window\n");
    }
    s
}

/// `rekey admin remind [--dry-run] [--days N]`: one pass now; mail waits in the outbox for
/// `rekey serve` unless `[smtp]` is configured here too (then it is sent before returning).
///
/// # Errors
/// Building the engine or the directory search failing.
pub async fn command(
    config: &crate::config::Config,
    dry_run: bool,
    days: Option<u32>,
) -> Result<(), crate::admin::CliError> {
    let built = crate::portal::engine(config, false).await?;
    let days = days.unwrap_or(config.reminders.within_days);
    let due = run_once(&built.engine, &built.directory, days, dry_run).await?;
    if !dry_run {
        let _ = built.engine.deliver_outbox().await;
    }
    print!("{}", table(&due, dry_run));
    Ok(())
}
