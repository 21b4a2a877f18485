//! The email one-time-code gate, shared by reset, unlock and enrollment.

use super::state::{Loaded, Step};
use super::{Engine, EngineError, EngineResult};
use crate::account::Guid;
use crate::notify::Email;
use crate::otp;
use crate::store::Challenge;

impl Engine {
    pub(crate) fn lock_key(user: &Guid) -> String {
        format!("sspr-lock:{user}")
    }

    /// Is self-service locked for this user (too many failed verifications)?
    pub(crate) async fn sspr_locked(&self, user: &Guid) -> EngineResult<bool> {
        Ok(self
            .inner
            .store
            .locked_until(&Self::lock_key(user), self.now())
            .await?
            .is_some())
    }

    /// Create a code for (flow, user, purpose), store its hash (replacing any earlier code) and
    /// queue the mail (sent after the answer, invariant 9). `flow_id` is the flow's store key.
    pub(crate) async fn issue_code(
        &self,
        flow_id: &str,
        user: &Guid,
        purpose: &str,
        to: &str,
        subject: &str,
    ) -> EngineResult<()> {
        let code = self.put_code(flow_id, user, purpose).await?;
        let minutes = self.inner.config.code_ttl.min(600) / 60;
        let body = format!(
            "Your {org} verification code is:\n\n    {code}\n\nIt is valid for {minutes} minutes and can be used once.\n\
             If you did not ask for it, ignore this message: nothing changes without the code.\n",
            code = code.as_str(),
            org = self.inner.config.organisation
        );
        // Over the per-user mail budget the code is silently not sent (invariant 27): the page is
        // the same either way.
        let mail = Email {
            to: to.to_owned(),
            subject: subject.to_owned(),
            body,
        };
        self.queue_mail(user, &mail, self.inner.config.code_ttl.min(600))
            .await?;
        self.kick_outbox().await;
        Ok(())
    }

    /// A new 6-digit code for (flow, user, purpose); only its hash is stored, replacing any
    /// earlier code of the same flow and purpose (invariant 2).
    pub(crate) async fn put_code(
        &self,
        flow_id: &str,
        user: &Guid,
        purpose: &str,
    ) -> EngineResult<zeroize::Zeroizing<String>> {
        let code = zeroize::Zeroizing::new(otp::generate(self.inner.random.as_ref()));
        let challenge = Challenge {
            id: crate::clock::token(self.inner.random.as_ref(), 16),
            flow_id: flow_id.to_owned(),
            user: *user,
            purpose: purpose.to_owned(),
            code_hash: otp::hash(&self.inner.otp_key, flow_id, user, purpose, &code),
            expires_at: self.now() + self.inner.config.code_ttl.min(600),
            failed_attempts: 0,
        };
        self.inner.store.put_challenge(&challenge).await?;
        Ok(code)
    }

    /// Check a typed code. Wrong answers count per code (≤ 5) and per user per hour (≤ 5, then
    /// self-service is locked for 24 h); the right one is consumed atomically (invariants 2, 3, 7).
    /// A flow without a live challenge (a decoy, an expired code) behaves exactly like a wrong
    /// code, attempts included.
    pub(crate) async fn check_code(
        &self,
        loaded: &Loaded,
        purpose: &str,
        code: &str,
        attempts: u32,
        retry: impl Fn(u32) -> Step,
    ) -> EngineResult<()> {
        let cfg = &self.inner.config;
        if attempts >= cfg.max_code_attempts {
            return Err(EngineError::TooManyAttempts);
        }
        let now = self.now();
        let challenge = match loaded.user() {
            Some(user) if !self.sspr_locked(user).await? => {
                self.inner
                    .store
                    .challenge(&loaded.record.id, purpose, now)
                    .await?
            }
            _ => None,
        };
        if let Some(c) = challenge {
            if otp::matches(
                &self.inner.otp_key,
                &loaded.record.id,
                &c.user,
                purpose,
                code,
                &c.code_hash,
            ) {
                return if self.inner.store.consume_challenge(&c.id).await? {
                    Ok(())
                } else {
                    Err(EngineError::WrongCode)
                };
            }
            let n = self
                .inner
                .store
                .fail_challenge(&c.id)
                .await?
                .unwrap_or(u32::MAX);
            if n >= cfg.max_code_attempts {
                self.inner.store.consume_challenge(&c.id).await?;
            }
            let per_user = self
                .inner
                .store
                .hit(&format!("verify-fail:{}", c.user), now, 3600)
                .await?;
            if per_user >= cfg.max_failures_per_hour {
                self.inner
                    .store
                    .lock(&Self::lock_key(&c.user), now + cfg.lock_secs)
                    .await?;
                crate::telemetry::self_service_lock();
                self.inner.store.consume_challenge(&c.id).await?;
            }
        }
        // Count the attempt on the flow itself, so decoys and real flows stop alike.
        self.advance(loaded, &retry(attempts + 1)).await?;
        if attempts + 1 >= cfg.max_code_attempts {
            Err(EngineError::TooManyAttempts)
        } else {
            Err(EngineError::WrongCode)
        }
    }
}
