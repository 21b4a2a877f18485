//! Enrollment: sign in with directory credentials, register an email address, confirm it with a
//! code. Every method change is notified and audited.

use super::reset::NOTICE_TTL;
use super::state::{FlowId, Step};
use super::trail::Trail;
use super::{Engine, EngineError, EngineResult, RequestContext};
use crate::account::Guid;
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
pub(crate) fn valid_address(a: &str) -> bool {
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
        let mut trail = Trail::new(Operation::Enroll);
        trail.methods(&["password"]);
        let result = self
            .enroll_sign_in_inner(ctx, &mut trail, who, password)
            .await;
        self.record(ctx, trail, result).await
    }

    async fn enroll_sign_in_inner(
        &self,
        ctx: &RequestContext,
        trail: &mut Trail,
        who: &str,
        password: &Password,
    ) -> EngineResult<FlowId> {
        let (account, reservation) = self
            .password_attempt(ctx, trail, who, password, EngineError::SignInFailed)
            .await?;
        let verdict = self.inner.directory.authenticate(&account, password).await;
        self.settle(reservation, matches!(verdict, Ok(true))).await;
        if !verdict? {
            return Err(EngineError::SignInFailed);
        }
        trail.note("signed_in");
        self.new_flow(
            FlowKind::Enroll,
            Some(account.guid),
            &Step::SignedIn { at: self.now() },
        )
        .await
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
        ctx: &RequestContext,
        flow: &str,
        address: &str,
    ) -> EngineResult<()> {
        let mut trail = Trail::new(Operation::Enroll);
        trail.methods(&["email"]);
        trail.note("address");
        let result = self.enroll_email_inner(&mut trail, flow, address).await;
        self.record(ctx, trail, result).await
    }

    async fn enroll_email_inner(
        &self,
        trail: &mut Trail,
        flow: &str,
        address: &str,
    ) -> EngineResult<()> {
        let loaded = self.load(flow, &[FlowKind::Enroll]).await?;
        trail.target_guid(loaded.user());
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
        self.issue_code(&loaded.record.id, &user, PURPOSE, address, &subject)
            .await
    }

    /// Confirm the address with its code; the method is then enrolled.
    pub async fn enroll_confirm(
        &self,
        ctx: &RequestContext,
        flow: &str,
        code: &str,
    ) -> EngineResult<()> {
        let mut trail = Trail::new(Operation::Enroll);
        trail.methods(&["email_otp"]);
        trail.note("confirm");
        let result = self.enroll_confirm_inner(&mut trail, flow, code).await;
        self.record(ctx, trail, result).await
    }

    async fn enroll_confirm_inner(
        &self,
        trail: &mut Trail,
        flow: &str,
        code: &str,
    ) -> EngineResult<()> {
        let loaded = self.load(flow, &[FlowKind::Enroll]).await?;
        trail.target_guid(loaded.user());
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
        self.check_code(&loaded, PURPOSE, code, attempts, retry)
            .await?;
        let account = self.inner.directory.by_guid(&user).await?;
        if let Some(a) = &account {
            trail.target(a);
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
        self.forget(flow).await?;
        let sam = account.as_ref().map(|a| a.sam_account_name.as_str());
        self.notify_method_change(&user, sam, previous.map(|p| p.value), &address)
            .await;
        Ok(())
    }

    /// Tell the new address it was registered and the old one where it moved (masked): a
    /// hijacker changing the method must not go unnoticed.
    pub(crate) async fn notify_method_change(
        &self,
        user: &Guid,
        sam: Option<&str>,
        old: Option<String>,
        new: &str,
    ) {
        let org = &self.inner.config.organisation;
        let account = sam.map_or(String::new(), |s| format!(" for account {s}"));
        let subject = format!("Your {org} self-service email was changed");
        let mut mails = vec![Email {
            to: new.to_owned(),
            subject: subject.clone(),
            body: format!(
                "This address was registered to verify your identity for {org} self-service\
                 {account}.\n\nNot you? Contact the helpdesk at once.\n"
            ),
        }];
        if let Some(old) = old.filter(|o| !o.eq_ignore_ascii_case(new)) {
            mails.push(Email {
                to: old,
                subject,
                body: format!(
                    "The email address used to verify your identity for {org} self-service\
                     {account} was changed from this address to {masked}.\n\n\
                     Not you? Contact the helpdesk at once.\n",
                    masked = mask_email(new),
                ),
            });
        }
        for mail in &mails {
            let _ = self.queue_mail(user, mail, NOTICE_TTL).await;
        }
        self.kick_outbox().await;
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
