//! The flow engine: reset and unlock (identify → gate → act → done), change, and enrollment, as
//! server-side state machines over the ports. Handlers call one engine method per request.
//!
//! Architecture invariant: the engine decides; adapters only carry out. It never sees HTTP,
//! SQL or LDAP, and holds the new password only for the duration of the landing.

mod admin;
#[cfg(test)]
mod audit_tests;
mod budget;
mod canary;
mod change;
mod enroll;
mod gate;
mod gates;
pub mod helpdesk;
mod helpdesk_acts;
mod helpdesk_api;
#[cfg(test)]
mod helpdesk_api_tests;
mod helpdesk_caller;
#[cfg(test)]
mod helpdesk_tests;
mod jobs;
mod method_approval;
#[cfg(test)]
mod method_approval_tests;
mod methods;
#[cfg(test)]
mod methods_tests;
mod outbox;
#[cfg(test)]
mod pow_tests;
mod remind;
mod reset;
mod state;
#[cfg(test)]
mod tests;
mod trail;
mod zones;
#[cfg(test)]
mod zones_tests;

use std::sync::Arc;

use crate::account::{Account, Identifier};
use crate::audit::Actor;
use crate::clock::{Clock, Random, unix};
use crate::error::UserFacing;
use crate::landing::{Directory, DirectoryError, LandingError, LandingZone};
use crate::notify::Mailer;
use crate::policy::{PasswordPolicy, Violation};
use crate::scope::{Ineligible, ScopeRules};
use crate::store::{Store, StoreError};
use crate::tier::ProtectedGroups;

use trail::Trail;

pub use canary::CanaryLanding;
pub use change::ChangeOutcome;
pub use enroll::EnrollStep;
pub use gates::{Choice, Chosen, Progress};
pub use helpdesk::{
    Act, CallerState, Console, ConsoleStart, ConsoleStep, EventLine, Roles, UserCard,
};
pub use helpdesk_acts::{ActOutcome, ApprovalAction, ApprovalView};
pub use helpdesk_api::{CallerCode, CallerVerified};
pub use method_approval::{EnrollOutcome, PendingChange};
pub use methods::{MethodView, ReportRow};
pub use remind::Reminder;
pub use reset::ResetOutcome;
pub use state::FlowId;
pub use zones::{ZoneReport, ZoneState, minutes};

/// Tunables, with the defaults the design requires.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a flow lives without finishing (seconds).
    pub flow_ttl: i64,
    /// How long a one-time code is valid (≤ 600, invariant 2).
    pub code_ttl: i64,
    /// Wrong answers per code before it is void (≤ 5, invariant 3).
    pub max_code_attempts: u32,
    /// Failed verifications per user per hour before self-service is locked (≤ 5, invariant 3).
    pub max_failures_per_hour: u32,
    /// How long self-service stays locked for a user after too many failures (24 h).
    pub lock_secs: i64,
    /// A new method cannot be used for reset until this much time has passed (24 h).
    pub enroll_cooldown: i64,
    /// How recent an enrollment sign-in must be to add a method (5 min).
    pub enroll_signin_ttl: i64,
    /// Rekey's own budget of anonymous password attempts (change, enrollment sign-in) per
    /// account per lockout window, reserved before the DC is asked (invariant 35).
    pub change_failure_budget: u32,
    /// Attempts stop while the account's badPwdCount would pass `lockout threshold − margin`:
    /// with the default 2 the real user still has two typos left before AD locks them out, even
    /// right after an attack (invariant 35).
    pub lockout_margin: u32,
    /// Change / sign-in attempts per client IP per hour.
    pub per_ip_attempts_per_hour: u32,
    /// Emails per user per hour (codes and notices together).
    pub emails_per_user_per_hour: u32,
    /// How long to watch for a password to arrive by synchronisation (Entra password hash sync)
    /// before saying "not synced within N min" (seconds).
    pub sync_deadline: i64,
    /// How often to look for it (seconds).
    pub sync_poll: i64,
    /// How long a later zone's failed write is retried from the outbox (seconds). The sealed
    /// new password stays in the store at most this long.
    pub zone_retry_window: i64,
    /// Refuse a password seen in breaches at least this often (with `Parts::breached`).
    pub breached_min_count: u64,
    /// When the breach source cannot answer: refuse the password (true) or let it through with
    /// a note in the audit record (false, the default: an outage of a third-party API must not
    /// stop every reset).
    pub breached_fail_closed: bool,
    /// How many gates each tier passes, and which methods count (invariant 1).
    pub gates: crate::method::Gates,
    /// Security questions may be enrolled (off by default, invariant 6).
    pub questions_enabled: bool,
    /// The questions users choose from; empty: each user writes their own.
    pub question_list: Vec<String>,
    /// Country calling codes SMS may go to (e.g. "49", "44", "1"); empty: SMS off (27).
    pub sms_countries: Vec<String>,
    /// Text messages per user, per client IP and for the whole portal per day (27).
    pub sms_per_user_per_day: u32,
    pub sms_per_ip_per_day: u32,
    pub sms_per_day: u32,
    /// How long a helpdesk one-time code lives (seconds).
    pub helpdesk_code_ttl: i64,
    /// Identify requests per client IP per minute, and for the whole portal per minute, above
    /// which a proof of work is asked for (28). 0: never.
    pub pow_per_ip_per_minute: u32,
    pub pow_per_minute: u32,
    /// Difficulty (leading zero bits) and the wait that replaces it without JavaScript.
    pub pow_bits: u8,
    pub pow_fallback_secs: i64,
    /// Public base URL for links in mail (never the request's Host header, invariant 16).
    pub public_base_url: String,
    pub organisation: String,
    /// Who may use the helpdesk console, who approves, and whose accounts need approval.
    pub helpdesk: helpdesk::HelpdeskRules,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            flow_ttl: 900,
            code_ttl: 600,
            max_code_attempts: 5,
            max_failures_per_hour: 5,
            lock_secs: 86_400,
            enroll_cooldown: 86_400,
            enroll_signin_ttl: 300,
            change_failure_budget: 3,
            lockout_margin: 2,
            per_ip_attempts_per_hour: 30,
            emails_per_user_per_hour: 10,
            sync_deadline: 1800,
            sync_poll: 10,
            zone_retry_window: 3600,
            breached_min_count: 1,
            breached_fail_closed: false,
            gates: crate::method::Gates::default(),
            questions_enabled: false,
            question_list: Vec::new(),
            sms_countries: Vec::new(),
            sms_per_user_per_day: 5,
            sms_per_ip_per_day: 20,
            sms_per_day: 500,
            helpdesk_code_ttl: 900,
            pow_per_ip_per_minute: 30,
            pow_per_minute: 600,
            pow_bits: 18,
            pow_fallback_secs: 10,
            public_base_url: "https://localhost".into(),
            organisation: "Rekey".into(),
            helpdesk: helpdesk::HelpdeskRules::default(),
        }
    }
}

/// Who is asking, as the web layer (or the CLI) saw it.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// Client IP after the trusted-proxy rules (invariant 17).
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The id shown to the user and written to the audit record.
    pub support_id: String,
    /// Who acts: the user (portal) or the operator running the CLI.
    pub actor: Actor,
}

/// Failures a person sees: a stable code and a plain message. Causes go to the log.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("RK-FLOW-001: flow missing or expired")]
    FlowExpired,
    #[error("RK-FLOW-002: this step is not available now")]
    WrongStep,
    #[error("RK-VERIFY-001: wrong code")]
    WrongCode,
    #[error("RK-VERIFY-002: too many attempts")]
    TooManyAttempts,
    #[error("RK-CHANGE-001: could not change the password")]
    ChangeRefused,
    #[error("RK-RATE-001: too many attempts from here")]
    RateLimited,
    #[error("RK-ENROLL-001: sign-in failed")]
    SignInFailed,
    #[error("RK-ENROLL-002: invalid email address")]
    BadAddress,
    #[error("RK-PWD-010: the new password does not meet the policy")]
    Policy {
        violations: Vec<Violation>,
        policy: Box<PasswordPolicy>,
    },
    /// The new password contains a banned word or pattern (checked before any zone is asked).
    #[error("RK-PWD-007: the new password is too easy to guess")]
    Banned,
    /// The new password appears in known breaches (checked before any zone is asked).
    #[error("RK-PWD-008: the new password appears in known data breaches")]
    Breached,
    /// The breached-password source did not answer and the configuration fails closed.
    #[error("RK-BREACH-001: the breached-password check is unavailable")]
    BreachCheck,
    /// Minimum password age: the change becomes possible at `allowed_at` (Unix seconds).
    #[error("RK-PWD-004: changed too recently")]
    TooSoon { allowed_at: Option<i64> },
    #[error("{0}")]
    Landing(LandingError),
    #[error("{0}")]
    Directory(#[from] DirectoryError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("RK-MAIL-001: mail could not be sent")]
    Mail,
    /// Operator paths only (the portal never says why): the account may not be written.
    #[error("{}: account not eligible: {}", .0.code(), .0.as_str())]
    Ineligible(Ineligible),
    /// Operator paths only: no account matches the name.
    #[error("RK-DIR-002: no such account")]
    NoSuchAccount,
    /// The passkey answer was not accepted (any reason: the page never says which).
    #[error("RK-PASSKEY-002: the passkey was not accepted")]
    PasskeyRefused,
    /// The security answers were not all right.
    #[error("RK-VERIFY-003: the answers are not correct")]
    WrongAnswers,
    /// The method is not offered here (not configured, not for this tier, not enrolled).
    #[error("RK-METHOD-001: this method is not available")]
    MethodUnavailable,
    /// The phone number is not E.164 or its country is not allowed (invariant 27).
    #[error("RK-METHOD-002: phone number not accepted")]
    BadPhone,
    /// The security questions do not meet the rules (3–5, 3–40 characters, distinct).
    #[error("RK-METHOD-003: {0}")]
    Questions(crate::questions::QuestionError),
    /// A proof of work is needed before identify (too many requests, invariant 28).
    #[error("RK-RATE-002: please confirm you are not a robot")]
    ProofOfWork {
        challenge: String,
        bits: u8,
        wait_secs: i64,
    },
    /// A stored method secret cannot be opened: its key is not loaded (issue of key files).
    #[error("RK-KEY-001: a stored secret cannot be opened with the loaded keys (key id {0})")]
    SealedKey(String),
    /// Helpdesk: the operator has no second factor enrolled and the console requires one.
    #[error("RK-HD-001: operator has no second factor")]
    OperatorNeedsFactor,
    /// Helpdesk: the operator's groups do not allow this (act: operators; decide: approvers).
    #[error("RK-HD-002: not allowed for this operator")]
    NotAllowed,
    /// Helpdesk: the caller was not verified by a code in this session (or too long ago).
    #[error("RK-HD-003: caller not verified")]
    CallerNotVerified,
    /// Helpdesk: the user has no enrolled email or phone to send a verification code to.
    #[error("RK-HD-004: no method to verify the caller")]
    NoCallerMethod,
    /// Helpdesk: a requester cannot approve their own request.
    #[error("RK-HD-005: own request")]
    SelfApproval,
    /// Helpdesk: the request expired or was decided already.
    #[error("RK-HD-006: approval expired or decided")]
    ApprovalGone,
    /// Helpdesk: operators do not act on their own account in the console.
    #[error("RK-HD-007: own account")]
    OwnAccount,
    /// A privileged user's method change needs an approver and no approver groups are
    /// configured (the binary refuses that configuration at start; the engine fails closed).
    #[error("RK-HD-008: no approvers configured")]
    NoApprovers,
    /// Helpdesk API: the verification belongs to another integration or names another user.
    #[error("RK-HD-009: verification of another integration or user")]
    VerificationMismatch,
}

impl UserFacing for EngineError {
    fn code(&self) -> &'static str {
        match self {
            Self::FlowExpired => "RK-FLOW-001",
            Self::WrongStep => "RK-FLOW-002",
            Self::WrongCode => "RK-VERIFY-001",
            Self::TooManyAttempts => "RK-VERIFY-002",
            Self::ChangeRefused => "RK-CHANGE-001",
            Self::RateLimited => "RK-RATE-001",
            Self::SignInFailed => "RK-ENROLL-001",
            Self::BadAddress => "RK-ENROLL-002",
            Self::Policy { .. } => "RK-PWD-010",
            Self::Banned => "RK-PWD-007",
            Self::Breached => "RK-PWD-008",
            Self::BreachCheck => "RK-BREACH-001",
            Self::TooSoon { .. } => "RK-PWD-004",
            Self::Landing(e) => e.code(),
            Self::Directory(e) => e.code(),
            Self::Store(_) => "RK-STORE-001",
            Self::Mail => "RK-MAIL-001",
            Self::Ineligible(why) => why.code(),
            Self::NoSuchAccount => "RK-DIR-002",
            Self::PasskeyRefused => "RK-PASSKEY-002",
            Self::WrongAnswers => "RK-VERIFY-003",
            Self::MethodUnavailable => "RK-METHOD-001",
            Self::BadPhone => "RK-METHOD-002",
            Self::Questions(_) => "RK-METHOD-003",
            Self::ProofOfWork { .. } => "RK-RATE-002",
            Self::SealedKey(_) => "RK-KEY-001",
            Self::OperatorNeedsFactor => "RK-HD-001",
            Self::NotAllowed => "RK-HD-002",
            Self::CallerNotVerified => "RK-HD-003",
            Self::NoCallerMethod => "RK-HD-004",
            Self::SelfApproval => "RK-HD-005",
            Self::ApprovalGone => "RK-HD-006",
            Self::OwnAccount => "RK-HD-007",
            Self::NoApprovers => "RK-HD-008",
            Self::VerificationMismatch => "RK-HD-009",
        }
    }

    fn message(&self) -> &'static str {
        match self {
            Self::FlowExpired => "This session has expired. Please start again.",
            Self::WrongStep => "This step is not available. Please start again.",
            Self::WrongCode => "That code is not correct or has expired.",
            Self::TooManyAttempts => {
                "Too many attempts. Self-service is paused for this account; try again later or \
                 contact the helpdesk."
            }
            Self::ChangeRefused => {
                "The password could not be changed. Check the user name and the current password."
            }
            Self::RateLimited => "Too many attempts. Please wait before trying again.",
            Self::SignInFailed => "Sign-in failed. Check the user name and password.",
            Self::BadAddress => "That does not look like an email address.",
            Self::Policy { .. } => {
                "The new password does not meet your organisation's password policy."
            }
            Self::Banned => {
                "The new password contains a word, name or pattern that makes it easy to guess. \
                 Choose one that is harder for people to guess, for example a few unrelated words."
            }
            Self::Breached => {
                "This password appears in lists of passwords leaked in data breaches, so \
                 attackers try it. Choose another one."
            }
            Self::BreachCheck => {
                "The password check is temporarily unavailable. Nothing was changed; try again \
                 in a few minutes."
            }
            Self::TooSoon { .. } => crate::landing::Rejection::MinAge.message(),
            Self::Landing(e) => e.message(),
            Self::Directory(e) => e.message(),
            Self::Store(_) => {
                "The service is temporarily unavailable. Nothing was changed; try again soon."
            }
            Self::Mail => {
                "We could not send the email right now. Nothing was changed; try again soon."
            }
            Self::Ineligible(why) => why.message(),
            Self::NoSuchAccount => crate::landing::Rejection::NoSuchUser.message(),
            Self::PasskeyRefused => {
                "The passkey was not accepted. Try again, or use another way to verify."
            }
            Self::WrongAnswers => "The answers are not correct.",
            Self::MethodUnavailable => "This way of verifying is not available here.",
            Self::BadPhone => {
                "That phone number is not accepted. Use the international format, e.g. \
                 +49 170 1234567, from a country your organisation allows."
            }
            Self::Questions(_) => {
                "Choose 3 to 5 different questions with different answers of 3 to 40 characters."
            }
            Self::ProofOfWork { .. } => {
                "Many requests are coming in. Your browser solves a small puzzle first; without \
                 JavaScript, wait a few seconds and continue."
            }
            Self::SealedKey(_) => {
                "The service is temporarily unavailable. Nothing was changed; try again soon."
            }
            Self::OperatorNeedsFactor => {
                "The helpdesk console needs a second factor and your account has none. Add an \
                 authenticator app, an email address or a phone number under \"Set up recovery \
                 methods\" in the portal first, then sign in again."
            }
            Self::NotAllowed => {
                "Your account is not allowed to do this here (operator or approver group)."
            }
            Self::CallerNotVerified => {
                "Verify the caller first: send them a code and type back what they read to you."
            }
            Self::NoCallerMethod => {
                "This user has no email address or phone (older than the cool-down) to send a \
                 verification code to, so the caller cannot be verified here. Follow your \
                 in-person identity check procedure."
            }
            Self::SelfApproval => {
                "You cannot approve your own request. Another approver has to decide it."
            }
            Self::ApprovalGone => "This request has expired or has already been decided.",
            Self::OwnAccount => "Operators cannot act on their own account in the console.",
            Self::NoApprovers => {
                "Changes to the sign-in methods of privileged accounts need the approval of your \
                 security team, and no approvers are configured. Nothing was changed; contact \
                 your IT security team."
            }
            Self::VerificationMismatch => {
                "This caller verification was made by another integration or for another user. \
                 Verify the caller of this user first."
            }
        }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;

/// The reset authority's engine. Cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Parts>,
    background: Option<Arc<dyn crate::clock::Spawn>>,
}

/// Everything the engine is built from.
pub struct Parts {
    pub directory: Arc<dyn Directory>,
    /// In landing order: ActiveDirectory first (invariant 26).
    pub zones: Vec<Arc<dyn LandingZone>>,
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub scope: ScopeRules,
    pub protected: ProtectedGroups,
    pub config: EngineConfig,
    /// HMAC key for one-time code hashes (the same on every replica).
    pub otp_key: [u8; 32],
    /// The keys that seal stored secrets (TOTP seeds, answers, queued messages).
    pub keys: Arc<dyn crate::keyring::KeyRing>,
    /// Banned passwords (shipped list + the admin's terms), checked before any zone is written.
    pub banned: crate::banned::BannedList,
    /// Known-breached passwords (an HIBP-style range API or a local SHA-1 file), if configured.
    pub breached: Option<Arc<dyn crate::breached::BreachedPasswords>>,
    /// Text messages (SMS codes), if configured.
    pub sms: Option<Arc<dyn crate::notify::SmsSender>>,
    /// Passkeys (WebAuthn), if configured.
    pub passkeys: Option<Arc<dyn crate::passkey::Passkeys>>,
}

impl Engine {
    #[must_use]
    pub fn new(parts: Parts) -> Self {
        Self {
            inner: Arc::new(parts),
            background: None,
        }
    }

    /// Send notices (the "your password was reset; not you?" mail) after answering, on this
    /// spawner, instead of making the user wait for the mail relay.
    #[must_use]
    pub fn with_background(mut self, spawn: Arc<dyn crate::clock::Spawn>) -> Self {
        self.background = Some(spawn);
        self
    }

    #[must_use]
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// A fresh random token (CSRF and the like): 256 bits, hex.
    #[must_use]
    pub fn token(&self) -> String {
        crate::clock::token(self.inner.random.as_ref(), 32)
    }

    /// A fresh support id for a request.
    #[must_use]
    pub fn support_id(&self) -> String {
        crate::clock::support_id(self.inner.random.as_ref())
    }

    fn now(&self) -> i64 {
        unix(self.inner.clock.now())
    }

    /// Find an account by what a person typed. A name that matches more than one account is
    /// treated like an unknown one (the decoy answer, never an error page, invariant 9).
    async fn find(&self, who: &str, trail: &mut Trail) -> EngineResult<Option<Account>> {
        let Some(id) = Identifier::parse(who) else {
            return Ok(None);
        };
        match self.inner.directory.find(&id).await {
            Ok(found) => Ok(found),
            Err(DirectoryError::Ambiguous) => {
                trail.note("ambiguous");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The reset-time policy check: AD's effective policy as far as it can be seen locally, then
    /// the banned-password evaluation with the user's names and the organisation's. Precise
    /// reasons for people; the zone remains the judge of what we cannot see (history, age).
    async fn precheck(
        &self,
        trail: &mut Trail,
        policy: &PasswordPolicy,
        account: &Account,
        new: &crate::secret::Password,
    ) -> EngineResult<()> {
        let mut violations = policy.precheck(
            new,
            &account.sam_account_name,
            account.display_name.as_deref(),
        );
        let mut names: Vec<&str> = vec![account.sam_account_name.as_str()];
        names.extend(account.display_name.as_deref());
        if violations.is_empty() && !self.banned_ok(new, &names) {
            violations.push(Violation::Banned);
        }
        if violations.is_empty() && !self.breach_ok(trail, new).await? {
            violations.push(Violation::Breached);
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Policy {
                violations,
                policy: Box::new(policy.clone()),
            })
        }
    }

    /// The breached-password verdict (`Parts::breached`): `false` if the corpus saw it at least
    /// `breached_min_count` times. A source that cannot answer is noted in the audit record and
    /// lets the password through, unless `breached_fail_closed` says to refuse.
    async fn breach_ok(
        &self,
        trail: &mut Trail,
        new: &crate::secret::Password,
    ) -> EngineResult<bool> {
        let Some(source) = &self.inner.breached else {
            return Ok(true);
        };
        match source.times_seen(new).await {
            Ok(seen) => Ok(seen.is_none_or(|n| n < self.inner.config.breached_min_count)),
            Err(_) if self.inner.config.breached_fail_closed => {
                trail.note("breach_check_unavailable");
                Err(EngineError::BreachCheck)
            }
            Err(_) => {
                trail.note("breach_check_unavailable");
                Ok(true)
            }
        }
    }

    /// The banned-password verdict with these names of the user (none where naming the user
    /// would reveal the account, as in an anonymous change) and the organisation's name.
    fn banned_ok(&self, new: &crate::secret::Password, names: &[&str]) -> bool {
        let ctx = crate::banned::Context {
            names: names.to_vec(),
            organisation: Some(self.inner.config.organisation.as_str()),
        };
        self.inner.banned.evaluate(new.expose(), &ctx).accepted
    }

    /// Per-IP budget for attempts that touch the directory with a password (invariant 35).
    async fn ip_budget(&self, ctx: &RequestContext, what: &str) -> EngineResult<()> {
        let ip = ctx.client_ip.as_deref().unwrap_or("unknown");
        let n = self
            .inner
            .store
            .hit(&format!("{what}-ip:{ip}"), self.now(), 3600)
            .await?;
        if n > self.inner.config.per_ip_attempts_per_hour {
            return Err(EngineError::RateLimited);
        }
        Ok(())
    }
}
