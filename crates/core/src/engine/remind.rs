//! Password expiry reminders: one mail per password to a user whose password expires soon,
//! with a link to the change page. The candidates come from the directory's expiry computation
//! (PSO-aware); each is re-read live here and must be enabled, in scope and not excluded as
//! privileged — the same rules as every other operation. A reminder that went out is audited
//! (`reminder`); one per password: the key is the account and the expiry time, which moves
//! with every new password.

use super::trail::Trail;
use super::{Engine, EngineResult, RequestContext};
use crate::account::Guid;
use crate::audit::Operation;
use crate::mask::mask_email;
use crate::notify::Email;
use crate::store::MethodKind;

/// What the job did (or, dry, would do) for one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reminder {
    /// Mailed (or, in a dry run, would be) to this masked address.
    Mail { to: String },
    /// This password's reminder went out before.
    AlreadySent,
    /// Not mailed, and why: `gone`, `disabled`, `out_of_scope`, `no_address`.
    Skipped(&'static str),
}

impl Engine {
    /// Remind the account `guid` that its password expires at `expires_at` (Unix seconds).
    /// `dry_run`: decide, but send and record nothing.
    ///
    /// # Errors
    /// The directory or the store failing.
    pub async fn expiry_reminder(
        &self,
        ctx: &RequestContext,
        guid: &Guid,
        expires_at: i64,
        dry_run: bool,
    ) -> EngineResult<Reminder> {
        let Some(account) = self.inner.directory.by_guid(guid).await? else {
            return Ok(Reminder::Skipped("gone"));
        };
        if !account.state.enabled {
            return Ok(Reminder::Skipped("disabled"));
        }
        if self
            .inner
            .scope
            .check(&account, &self.inner.protected)
            .is_err()
        {
            return Ok(Reminder::Skipped("out_of_scope"));
        }
        // The work mailbox first (the reminder is about the work account), else a recovery
        // address the user enrolled.
        let to = match account.mail.clone().filter(|m| !m.trim().is_empty()) {
            Some(m) => Some(m),
            None => self
                .inner
                .store
                .enrollments(guid)
                .await?
                .into_iter()
                .find(|e| e.method == MethodKind::Email)
                .map(|e| e.value),
        };
        let Some(to) = to else {
            return Ok(Reminder::Skipped("no_address"));
        };
        let masked = mask_email(&to);
        if dry_run {
            return Ok(Reminder::Mail { to: masked });
        }
        let now = self.now();
        let key = format!("reminder:{guid}:{expires_at}");
        let window = (expires_at - now).max(0) + 86_400;
        if self.inner.store.hit(&key, now, window).await? > 1 {
            return Ok(Reminder::AlreadySent);
        }
        let mut trail = Trail::new(Operation::Reminder);
        trail.target(&account);
        let days = (expires_at - now).max(0) / 86_400;
        trail.note(&format!("expires_in_days:{days}"));
        let result = self
            .queue_notice(&account.guid, &self.reminder_mail(&to, expires_at, days))
            .await;
        self.record(ctx, trail, result).await?;
        self.kick_outbox().await;
        Ok(Reminder::Mail { to: masked })
    }

    fn reminder_mail(&self, to: &str, expires_at: i64, days: i64) -> Email {
        let cfg = &self.inner.config;
        let (y, m, d) = crate::clock::civil_from_days(expires_at.div_euclid(86_400));
        let when = match days {
            0 => "today".to_owned(),
            1 => "tomorrow".to_owned(),
            n => format!("in {n} days"),
        };
        Email {
            to: to.to_owned(),
            subject: format!("{}: your password expires {when}", cfg.organisation),
            body: format!(
                "Your {org} password expires {when} ({y:04}-{m:02}-{d:02}, UTC).\n\n\
                 Change it now, while you still know it:\n\n    {base}/change\n\n\
                 After it expires you can still change it there with the old password, or \
                 reset it at {base}/reset.\n\
                 This is an automatic reminder; {org} never asks for your password by mail.\n",
                org = cfg.organisation,
                base = cfg.public_base_url.trim_end_matches('/'),
            ),
        }
    }
}
