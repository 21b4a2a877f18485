//! Ports to the directory and to landing zones, and the typed outcome of a password write.
//!
//! API boundary: adapters (`rekey-directory`) implement these traits; nothing here knows LDAP.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::account::{Account, Guid, Identifier};
use crate::error::UserFacing;
use crate::policy::PasswordPolicy;
use crate::secret::Password;

/// A boxed future, so ports stay object-safe (`Vec<Box<dyn LandingZone>>`: there is never only one).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a password is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ZoneId {
    ActiveDirectory,
    EntraId,
}

impl fmt::Display for ZoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ActiveDirectory => "ActiveDirectory",
            Self::EntraId => "EntraId",
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResetOptions {
    /// Also clear a lockout (`lockoutTime = 0`) in the same operation.
    pub unlock: bool,
    /// Require a change at next logon (`pwdLastSet = 0`).
    pub must_change: bool,
    /// This write repeats one first attempted at this time (Unix seconds) whose outcome was not
    /// certain: a zone that can see its password was set at or after it answers `Landed`
    /// without writing again (verify before replay, invariant 25).
    pub replay_of: Option<i64>,
}

/// A write the zone confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub zone: ZoneId,
    /// Which server took the write (for the log and the audit, not for the user).
    pub server: String,
    /// After a reset: whether the zone also ended the user's sign-in sessions (`None`: not asked,
    /// e.g. not configured or not supported by the zone).
    pub sessions_revoked: Option<bool>,
}

impl Landed {
    /// A plain confirmed write.
    #[must_use]
    pub fn written(zone: ZoneId, server: impl Into<String>) -> Self {
        Self {
            zone,
            server: server.into(),
            sessions_revoked: None,
        }
    }
}

/// What a zone will do for an account, asked of every zone BEFORE any zone is written
/// (`LandingZone::plan`), so a refusal in a later zone never leaves an earlier one half-done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The zone holds its own copy of the password and takes the write.
    Write {
        /// Extra rules the zone enforces beyond the judge's policy (shown before submitting).
        rules: ZoneRules,
    },
    /// The zone receives the password from the first zone by synchronisation (Entra password
    /// hash sync from AD): nothing to write; `handle` names the account there, so the engine can
    /// prove the arrival with `LandingZone::arrived`.
    Sync { handle: String },
    /// The zone holds no account for this person: nothing to do.
    Absent,
    /// More than one account in the zone could be this person: never a guess, nothing written.
    Ambiguous,
}

/// Rules a zone adds to the password policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZoneRules {
    /// Entra ID's cloud rules: 8–256 characters, three of four ASCII classes, only ASCII letters,
    /// digits, space and the listed symbols.
    pub entra: bool,
}

/// The raw cause of a failure: for logs and audit details only, never for a browser.
#[derive(Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub server: Option<String>,
    pub detail: String,
}

impl Diagnostic {
    #[must_use]
    pub fn new(server: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            server: server.map(str::to_owned),
            detail: detail.into(),
        }
    }
}

impl fmt::Debug for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.server {
            Some(s) => write!(f, "[{s}] {}", self.detail),
            None => f.write_str(&self.detail),
        }
    }
}

/// Why a zone refused a write. Each is a definite "no": nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    TooShort,
    Complexity,
    /// Used before (password history).
    History,
    /// Changed too recently (minimum password age).
    MinAge,
    /// The directory said "policy" without saying which rule (Windows sends only `0000052D`).
    Policy,
    WrongOldPassword,
    AccountLocked,
    InsufficientRights,
    NoSuchUser,
    /// The request itself was malformed or refused (e.g. an empty password).
    Refused,
    /// More than one account in the zone matches the person (nothing written, never a guess).
    Ambiguous,
    /// The zone's account holds an administrative role there (e.g. an Entra directory role):
    /// privileged, refused like a privileged AD account.
    Privileged,
}

impl UserFacing for Rejection {
    fn code(&self) -> &'static str {
        match self {
            Self::TooShort => "RK-PWD-001",
            Self::Complexity => "RK-PWD-002",
            Self::History => "RK-PWD-003",
            Self::MinAge => "RK-PWD-004",
            Self::Policy => "RK-PWD-005",
            Self::WrongOldPassword => "RK-PWD-006",
            Self::AccountLocked => "RK-ACC-001",
            Self::InsufficientRights => "RK-DIR-001",
            Self::NoSuchUser => "RK-DIR-002",
            Self::Refused => "RK-DIR-003",
            Self::Ambiguous => "RK-ZONE-001",
            Self::Privileged => "RK-ZONE-002",
        }
    }

    fn message(&self) -> &'static str {
        match self {
            Self::TooShort => "The new password is too short for your organisation's policy.",
            Self::Complexity => {
                "The new password is not complex enough: use at least three of upper-case letters, \
                 lower-case letters, digits and symbols, and do not include your name."
            }
            Self::History => "You have used this password before. Choose one you have not used.",
            Self::MinAge => {
                "Your password was changed too recently. You can change it again once the \
                 minimum password age has passed."
            }
            Self::Policy => "The new password does not meet your organisation's password policy.",
            Self::WrongOldPassword => "The current password you entered is not correct.",
            Self::AccountLocked => "This account is locked. Unlock it first, or ask the helpdesk.",
            Self::InsufficientRights => {
                "Rekey is not allowed to change this account's password. Contact the helpdesk."
            }
            Self::NoSuchUser => "The account could not be found.",
            Self::Refused => "The request was refused.",
            Self::Ambiguous => {
                "More than one account there could be yours, so it was not changed. The helpdesk \
                 can fix the match."
            }
            Self::Privileged => {
                "This account holds an administrator role in a connected service (such as \
                 Microsoft 365), so self-service cannot reset it. Nothing was changed; contact \
                 the helpdesk."
            }
        }
    }
}

/// A write that did not (certainly) land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LandingError {
    /// The zone answered "no": nothing changed.
    Rejected {
        reason: Rejection,
        diagnostic: Diagnostic,
    },
    /// No server could be reached or the request was never sent: nothing changed, safe to retry.
    Unavailable { diagnostic: Diagnostic },
    /// The zone asked us to slow down (HTTP 429): nothing changed; retry after `retry_after_ms`
    /// (the zone's `Retry-After`, fractional seconds allowed) or with backoff when it gave none.
    Throttled {
        retry_after_ms: Option<u64>,
        diagnostic: Diagnostic,
    },
    /// The request was sent and the answer was lost: it may or may not have landed. Never replay
    /// blindly; verify (pwdLastSet / a bind) first (invariant 25).
    Indeterminate { diagnostic: Diagnostic },
}

impl LandingError {
    #[must_use]
    pub fn diagnostic(&self) -> &Diagnostic {
        match self {
            Self::Rejected { diagnostic, .. }
            | Self::Unavailable { diagnostic }
            | Self::Throttled { diagnostic, .. }
            | Self::Indeterminate { diagnostic } => diagnostic,
        }
    }

    #[must_use]
    pub fn rejection(&self) -> Option<Rejection> {
        match self {
            Self::Rejected { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

impl UserFacing for LandingError {
    fn code(&self) -> &'static str {
        match self {
            Self::Rejected { reason, .. } => reason.code(),
            Self::Unavailable { .. } => "RK-DIR-010",
            Self::Throttled { .. } => "RK-ZONE-003",
            Self::Indeterminate { .. } => "RK-DIR-011",
        }
    }

    fn message(&self) -> &'static str {
        match self {
            Self::Rejected { reason, .. } => reason.message(),
            Self::Unavailable { .. } => {
                "The directory cannot be reached right now. Nothing was changed; try again in a \
                 few minutes."
            }
            Self::Throttled { .. } => {
                "The directory is busy right now. Nothing was changed there yet; Rekey retries on \
                 its own."
            }
            Self::Indeterminate { .. } => {
                "We lost contact with the directory while saving your password, so we cannot tell \
                 whether it was saved. Try signing in with the new password; if that fails, \
                 contact the helpdesk with the support id."
            }
        }
    }
}

impl fmt::Display for LandingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.diagnostic())
    }
}

impl std::error::Error for LandingError {}

/// A failed directory read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("RK-DIR-010: directory unavailable: {0}")]
    Unavailable(Diagnostic),
    #[error("RK-DIR-012: more than one account matches")]
    Ambiguous,
    #[error("RK-DIR-013: unexpected directory answer: {0}")]
    Protocol(Diagnostic),
}

impl UserFacing for DirectoryError {
    fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "RK-DIR-010",
            Self::Ambiguous => "RK-DIR-012",
            Self::Protocol(_) => "RK-DIR-013",
        }
    }

    fn message(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => {
                "The directory cannot be reached right now. Try again in a few minutes."
            }
            Self::Ambiguous => {
                "More than one account matches that name. Use your full sign-in name."
            }
            Self::Protocol(_) => "The directory gave an unexpected answer. Contact the helpdesk.",
        }
    }
}

/// Read access to the directory that judges accounts.
pub trait Directory: Send + Sync {
    /// Find an account by sAMAccountName, UPN or mail; read its live state and groups.
    fn find<'a>(
        &'a self,
        id: &'a Identifier,
    ) -> BoxFuture<'a, Result<Option<Account>, DirectoryError>>;

    /// Re-read an account by objectGUID (live state and groups; survives renames).
    fn by_guid<'a>(
        &'a self,
        guid: &'a Guid,
    ) -> BoxFuture<'a, Result<Option<Account>, DirectoryError>>;

    /// Check a password with a bind. Blank passwords are refused without contacting the DC.
    /// A wrong password counts in the account's `badPwdCount` like any failed logon.
    fn authenticate<'a>(
        &'a self,
        account: &'a Account,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<bool, DirectoryError>>;

    /// The account's effective password policy: the winning PSO, else the domain policy.
    fn effective_policy<'a>(
        &'a self,
        account: &'a Account,
    ) -> BoxFuture<'a, Result<PasswordPolicy, DirectoryError>>;
}

/// The engine's permission to write one account: only `rekey-core`'s engine creates it, after the
/// gates passed and scope, tier and state were re-read live (invariants 23, 34). A landing zone
/// accepts nothing else, so no handler, CLI command or test helper in a shipped crate can write a
/// password beside the engine and its audit record.
#[derive(Debug)]
pub struct WriteGrant<'a> {
    account: &'a Account,
}

impl<'a> WriteGrant<'a> {
    /// Only the engine grants writes.
    pub(crate) fn new(account: &'a Account) -> Self {
        Self { account }
    }

    /// A grant for a landing zone's own tests (feature `fakes`, never enabled by the binary:
    /// `rekey`'s dependency tree is checked by a test).
    #[cfg(any(test, feature = "fakes"))]
    #[must_use]
    pub fn for_zone_tests(account: &'a Account) -> Self {
        Self { account }
    }

    /// The account the engine checked.
    #[must_use]
    pub fn account(&self) -> &'a Account {
        self.account
    }
}

/// A place passwords are written. Every operation returns a typed outcome.
pub trait LandingZone: Send + Sync {
    fn id(&self) -> ZoneId;

    /// Administrative reset: set a new password without knowing the old one.
    fn reset<'a>(
        &'a self,
        grant: &'a WriteGrant<'a>,
        new: &'a Password,
        options: ResetOptions,
    ) -> BoxFuture<'a, Result<Landed, LandingError>>;

    /// User change: the zone verifies `old` and enforces history and minimum age.
    fn change<'a>(
        &'a self,
        grant: &'a WriteGrant<'a>,
        old: &'a Password,
        new: &'a Password,
    ) -> BoxFuture<'a, Result<Landed, LandingError>>;

    /// Clear a lockout without touching the password.
    fn unlock<'a>(
        &'a self,
        grant: &'a WriteGrant<'a>,
    ) -> BoxFuture<'a, Result<Landed, LandingError>>;

    /// Require a password change at next logon without touching the password (AD:
    /// `pwdLastSet = 0`). Default: refused (a zone that cannot do it says so, nothing changes).
    fn require_change<'a>(
        &'a self,
        grant: &'a WriteGrant<'a>,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        let _ = grant;
        Box::pin(std::future::ready(Err(LandingError::Rejected {
            reason: Rejection::Refused,
            diagnostic: Diagnostic::new(None, "this zone cannot require a change at next logon"),
        })))
    }

    /// What this zone will do for `account`, asked before any zone is written. `Err(Rejected)`
    /// (e.g. `Privileged`) stops the whole operation before anything is written; any other
    /// error defers this zone to the outbox (asked again there). Default: `Write`, no extra rules.
    fn plan<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<Plan, LandingError>> {
        let _ = account;
        Box::pin(std::future::ready(Ok(Plan::Write {
            rules: ZoneRules::default(),
        })))
    }

    /// For `Plan::Sync`: when the password written elsewhere at `since` (Unix seconds) has
    /// arrived in this zone: `Ok(Some(unix seconds))` once it has, `Ok(None)` while not yet.
    /// Default: at once.
    fn arrived<'a>(
        &'a self,
        handle: &'a str,
        since: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, LandingError>> {
        let _ = handle;
        Box::pin(std::future::ready(Ok(Some(since))))
    }
}
