//! Enrollment: sign in with directory credentials, register an email address, confirm it with a
//! code. Every method change is notified and audited.

use super::state::{FlowId, Step};
use super::{AuditDetail, Engine, EngineError, EngineResult, RequestContext};
use crate::account::Identifier;
use crate::audit::Operation;
use crate::mask::mask_email;
use crate::notify::Email;
use crate::secret::Password;
use crate::store::{Enrollment, FlowKind, MethodKind};

const PURPOSE: &str = "enroll:email";

/// Where an enrollment flow stands, for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollStep {
    /// Signed in; `current` is the masked address already enrolled, if any.
    SignedIn { current: Option<String> },
    /// A code went to this (masked) address.
    AwaitCode { masked: String },
}

/// A plausible address: one `@`, no spaces or controls, a dot in the domain, ≤ 254 bytes.
fn valid_address(a: &str) -> bool {
    let Some((local, domain)) = a.split_once('@') else {
        return false;
    };
    a.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !a.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        })
}

impl Engine {
    /// Sign in for enrollment with the directory password (same budgets as change).
    pub async fn enroll_sign_in(
        &self,
        ctx: &RequestContext,
        who: &str,
        password: &Password,
    ) -> EngineResult<FlowId> {
        self.ip_budget(ctx, "password").await?;
        let account = match Identifier::parse(who) {
            Some(id) => self.inner.directory.find(&id).await?,
            None => None,
        };
        let fail = |why: &str| AuditDetail::failed(&format!("RK-ENROLL-001:{why}"));
        let Some(account) = account else {
            self.audit(ctx, Operation::Enroll, None, fail("unknown"))
                .await?;
            return Err(EngineError::SignInFailed);
        };
        let eligible = self
            .inner
            .scope
            .check(&account, &self.inner.protected)
            .is_ok();
        if !eligible
            || account.state.locked
            || password.is_blank()
            || self.password_attempts_left(&account).await? == 0
        {
            self.audit(ctx, Operation::Enroll, Some(&account), fail("refused"))
                .await?;
            return Err(EngineError::SignInFailed);
        }
        if !self
            .inner
            .directory
            .authenticate(&account, password)
            .await?
        {
            self.count_password_failure(&account).await?;
            self.audit(ctx, Operation::Enroll, Some(&account), fail("bad_password"))
                .await?;
            return Err(EngineError::SignInFailed);
        }
        let flow = self
            .new_flow(
                FlowKind::Enroll,
                Some(account.guid),
                &Step::SignedIn { at: self.now() },
            )
            .await?;
        self.audit(
            ctx,
            Operation::Enroll,
            Some(&account),
            AuditDetail::ok(vec!["password".into()]),
        )
        .await?;
        Ok(flow)
    }

    pub async fn enroll_step(&self, flow: &str) -> EngineResult<EnrollStep> {
        let loaded = self.load(flow, &[FlowKind::Enroll]).await?;
        let user = *loaded.user().ok_or(EngineError::FlowExpired)?;
        match loaded.step {
            Step::SignedIn { .. } => {
                let current = self.inner.store.enrollments(&user).await?;
                Ok(EnrollStep::SignedIn {
                    current: current
                        .iter()
                        .find(|e| e.method == MethodKind::Email)
                        .map(|e| mask_email(&e.value)),
                })
            }
            Step::AwaitEnrollCode { address, .. } => Ok(EnrollStep::AwaitCode {
                masked: mask_email(&address),
            }),
            _ => Err(EngineError::WrongStep),
        }
    }

    /// Register an address: a code goes to it; the sign-in must be recent (≤ 5 min).
    pub async fn enroll_email(
        &self,
        _ctx: &RequestContext,
        flow: &str,
        address: &str,
    ) -> EngineResult<()> {
        let loaded = self.load(flow, &[FlowKind::Enroll]).await?;
        let user = *loaded.user().ok_or(EngineError::FlowExpired)?;
        let at = match loaded.step {
            Step::SignedIn { at } | Step::AwaitEnrollCode { at, .. } => at,
            _ => return Err(EngineError::WrongStep),
        };
        if at + self.inner.config.enroll_signin_ttl < self.now() {
            return Err(EngineError::FlowExpired);
        }
        let address = address.trim();
        if !valid_address(address) {
            return Err(EngineError::BadAddress);
        }
        let step = Step::AwaitEnrollCode {
            at,
            address: address.to_owned(),
            attempts: 0,
        };
        self.advance(&loaded, &step).await?;
        let subject = format!(
            "Confirm your address for {} self-service",
            self.inner.config.organisation
        );
        self.issue_code(flow, &user, PURPOSE, address, &subject)
            .await?;
        Ok(())
    }

    /// Confirm the address with its code; the method is then enrolled.
    pub async fn enroll_confirm(
        &self,
        ctx: &RequestContext,
        flow: &str,
        code: &str,
    ) -> EngineResult<()> {
        let loaded = self.load(flow, &[FlowKind::Enroll]).await?;
        let Step::AwaitEnrollCode {
            at,
            address,
            attempts,
        } = loaded.step.clone()
        else {
            return Err(EngineError::WrongStep);
        };
        let user = *loaded.user().ok_or(EngineError::FlowExpired)?;
        let retry = |attempts| Step::AwaitEnrollCode {
            at,
            address: address.clone(),
            attempts,
        };
        let account = self.inner.directory.by_guid(&user).await?;
        if let Err(e) = self
            .check_code(&loaded, PURPOSE, code, attempts, retry)
            .await
        {
            self.audit(
                ctx,
                Operation::Enroll,
                account.as_ref(),
                AuditDetail::failed(crate::error::UserFacing::code(&e)),
            )
            .await?;
            return Err(e);
        }
        let previous = self.inner.store.enrollments(&user).await?;
        let previous = previous.into_iter().find(|e| e.method == MethodKind::Email);
        self.inner
            .store
            .upsert_enrollment(&Enrollment {
                user,
                method: MethodKind::Email,
                value: address.clone(),
                verified_at: self.now(),
            })
            .await?;
        self.inner.store.delete_flow(flow).await?;
        self.audit(
            ctx,
            Operation::Enroll,
            account.as_ref(),
            AuditDetail::ok(vec!["email_otp".into()]),
        )
        .await?;
        // Tell the old address too: a hijacker changing the method must not go unnoticed.
        let org = &self.inner.config.organisation;
        for to in previous
            .map(|p| p.value)
            .into_iter()
            .chain(std::iter::once(address))
        {
            let mail = Email {
                to,
                subject: format!("Your {org} self-service email was changed"),
                body: format!(
                    "The email address used to verify your identity for {org} self-service was set to \
                     this address{}.\n\nNot you? Contact the helpdesk at once.\n",
                    account.as_ref().map_or(String::new(), |a| format!(
                        " for account {}",
                        a.sam_account_name
                    )),
                ),
            };
            let _ = self.mail(&user.to_string(), mail).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod mask_tests {
    use super::*;

    #[test]
    fn address_validation() {
        assert!(valid_address("a.b+c@corp.example.com"));
        assert!(!valid_address("a b@corp.example.com"));
        assert!(!valid_address("a@b@c.com"));
        assert!(!valid_address("a@localhost"));
        assert!(!valid_address("<a@b.com>"));
    }
}
