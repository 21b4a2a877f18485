//! Checks a password by doing the Kerberos AS exchange with a KDC, in-process.
//!
//! **What.** [`check_password`] asks one KDC (an AD domain controller, port 88) for a TGT for
//! `user@REALM` with the password, and turns the answer into a [`Verdict`]: the AS-REP
//! decrypted with the password's key and carrying our nonce ([`Verdict::Accepted`]), or the
//! KDC's numeric error with the NTSTATUS from its e-data. The writeback canary of `rekey serve`
//! uses it to prove that a reset password landed on each DC.
//!
//! **Why in-process, and why `picky-krb`.** No `kinit` (no subprocess, no krb5.conf, no
//! ccache) and no C library. `picky-krb` (Devolutions, pure Rust) provides the ASN.1 messages
//! and the RFC 3962 AES string-to-key and encryption; we build the two requests ourselves
//! (`exchange.rs`, a state machine without I/O) and talk TCP with tokio (`transport.rs`). Of the
//! options verified in `shared/reference/kerberos-in-rust.md` it is the one that yields the
//! numeric KRB error code and the NTSTATUS (sspi gives only text, needs a service principal and
//! a larger dependency tree; MIT krb5 needs the system library and a krb5.conf).
//!
//! **The exchange.** 1. AS-REQ without pre-authentication (cname NT-PRINCIPAL `[user]`, sname
//! `krbtgt/REALM`, etypes AES256 and AES128, PA-PAC-REQUEST false) → KRB-ERROR 25 with
//! ETYPE-INFO2 (etype and salt; Samba's salt is `REALMuser`). 2. The same request with
//! PA-ENC-TIMESTAMP encrypted under the password's key (key usage 1) → AS-REP, whose enc-part is
//! decrypted (key usage 3; `EncASRepPart`, or `EncTGSRepPart` as Windows KDCs tag it) and its
//! nonce compared, or KRB-ERROR. Two round trips, one TCP connection each, the whole exchange
//! bounded by the caller's timeout.
//!
//! **Samba facts this relies on** (Samba 4.17, verified against the dev domain):
//! - The first request, without pre-authentication, never counts as a bad password; an
//!   unknown user is answered at once with error 6.
//! - Samba checks pre-authentication BEFORE the account state. So error 18 (`CLIENT_REVOKED`:
//!   disabled C0000072, expired C0000193) and 23 (`KEY_EXPIRED` with C0000224, must change) in
//!   answer to the pre-authenticated request mean the password was right. Both count as
//!   "accepted" only when they answer that request and carry the NTSTATUS. Windows DCs were not
//!   checked.
//! - A LOCKED-OUT account is the exception: Samba answers 18 with no NTSTATUS (only
//!   ETYPE-INFO2 in the e-data) to a right and a wrong password alike, and counts nothing. That
//!   is [`Verdict::Other`] and proves nothing; 18 with C0000234 (as a Windows DC may send) is
//!   treated the same way.
//! - A wrong password is error 24 and adds exactly 1 to `badPwdCount` on that DC, the previous
//!   password after a reset included (no history exemption for Kerberos). A caller must never
//!   prove "the old password is dead" by trying it, and should ask a DC the write reached.
//!   [`KerberosError::password_may_have_been_tried`] says whether a failed check may have counted.
//! - The NTSTATUS is in the e-data as METHOD-DATA holding a PA-DATA of type 3 whose value is
//!   KERB-EXT-ERROR (status little-endian, then reserved and flags). picky-krb's `KerbErrorData`
//!   types the value as a BIT STRING and cannot parse it; we read the PA-DATA.
//!
//! **Limits.** AES only (no RC4, no DES3 offered); ASCII names only; no FAST, no referrals, no
//! enterprise names, no clock-skew retry (error 37 is reported as [`Verdict::Other`]).
//!
//! **Secrets.** The password is only borrowed; the derived key and the decrypted reply part are
//! zeroed on drop. Nothing here logs; no error message contains the password or key material.

mod exchange;
#[cfg(test)]
mod tests;
mod transport;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use exchange::{Exchange, Now, Step};

/// Kerberos error codes (RFC 4120 §7.5.9) and NTSTATUS values this crate names.
pub mod code {
    /// `KDC_ERR_C_PRINCIPAL_UNKNOWN`: no such user.
    pub const C_PRINCIPAL_UNKNOWN: i32 = 6;
    /// `KDC_ERR_S_PRINCIPAL_UNKNOWN`: no such service.
    pub const S_PRINCIPAL_UNKNOWN: i32 = 7;
    /// `KDC_ERR_POLICY`.
    pub const POLICY: i32 = 12;
    /// `KDC_ERR_ETYPE_NOSUPP`: no common encryption type.
    pub const ETYPE_NOSUPP: i32 = 14;
    /// `KDC_ERR_CLIENT_REVOKED`: account disabled, expired or locked.
    pub const CLIENT_REVOKED: i32 = 18;
    /// `KDC_ERR_KEY_EXPIRED`: the password has expired or must be changed.
    pub const KEY_EXPIRED: i32 = 23;
    /// `KDC_ERR_PREAUTH_FAILED`: wrong password.
    pub const PREAUTH_FAILED: i32 = 24;
    /// `KDC_ERR_PREAUTH_REQUIRED`: the expected first answer.
    pub const PREAUTH_REQUIRED: i32 = 25;
    /// `KRB_AP_ERR_SKEW`: the clocks differ by more than the KDC allows (5 min by default).
    pub const SKEW: i32 = 37;
    /// `KRB_ERR_GENERIC`.
    pub const GENERIC: i32 = 60;
    /// `KDC_ERR_WRONG_REALM`.
    pub const WRONG_REALM: i32 = 68;

    /// `STATUS_ACCOUNT_DISABLED`.
    pub const NT_ACCOUNT_DISABLED: u32 = 0xC000_0072;
    /// `STATUS_ACCOUNT_EXPIRED`.
    pub const NT_ACCOUNT_EXPIRED: u32 = 0xC000_0193;
    /// `STATUS_ACCOUNT_LOCKED_OUT`.
    pub const NT_ACCOUNT_LOCKED_OUT: u32 = 0xC000_0234;
    /// `STATUS_PASSWORD_MUST_CHANGE`.
    pub const NT_MUST_CHANGE: u32 = 0xC000_0224;
    /// `STATUS_PASSWORD_EXPIRED`.
    pub const NT_PASSWORD_EXPIRED: u32 = 0xC000_0071;
    /// `STATUS_INVALID_LOGON_HOURS`.
    pub const NT_INVALID_LOGON_HOURS: u32 = 0xC000_006F;
    /// `STATUS_INVALID_WORKSTATION`.
    pub const NT_INVALID_WORKSTATION: u32 = 0xC000_0070;
}

/// What the KDC made of a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The AS-REP decrypted with the password's key and carried our nonce.
    Accepted,
    /// KRB error 23 with C0000224 after pre-authentication: the password is right and must be
    /// changed at the next sign-in (`pwdLastSet` = 0).
    AcceptedMustChange,
    /// KRB error 18 with an NTSTATUS after pre-authentication (disabled C0000072, expired
    /// C0000193): on Samba this comes only after the password was accepted. Never produced for
    /// a locked-out account (C0000234, or 18 without NTSTATUS), whose refusal proves nothing.
    AcceptedAccountRefused { ntstatus: u32 },
    /// KRB error 24: pre-authentication failed. The DC counted one bad password.
    WrongPassword,
    /// KRB error 6: no such user in the realm.
    UnknownPrincipal,
    /// Anything else: a KRB error `code` (and the NTSTATUS if the KDC sent one). Says nothing
    /// about the password.
    Other { code: i32, ntstatus: Option<u32> },
}

impl Verdict {
    /// Whether the KDC showed that it holds this password's key.
    #[must_use]
    pub fn password_accepted(&self) -> bool {
        matches!(
            self,
            Self::Accepted | Self::AcceptedMustChange | Self::AcceptedAccountRefused { .. }
        )
    }

    /// A stable, short label for metrics (`accepted`, `wrong_password`, …).
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::AcceptedMustChange => "accepted_must_change",
            Self::AcceptedAccountRefused { .. } => "accepted_account_refused",
            Self::WrongPassword => "wrong_password",
            Self::UnknownPrincipal => "unknown_principal",
            Self::Other { .. } => "other",
        }
    }

    /// Plain words for logs and metrics; never contains the password.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Accepted => "password accepted: the KDC issued a ticket".into(),
            Self::AcceptedMustChange => {
                "password accepted; the user must change it at the next sign-in (KRB 23, NTSTATUS 0xC0000224)"
                    .into()
            }
            Self::AcceptedAccountRefused { ntstatus } => format!(
                "password accepted, but the account may not sign in: {} (KRB 18, NTSTATUS 0x{ntstatus:08X})",
                ntstatus_words(*ntstatus)
            ),
            Self::WrongPassword => {
                "wrong password: pre-authentication failed (KRB 24; the DC counted a bad password)"
                    .into()
            }
            Self::UnknownPrincipal => "no such user in the realm (KRB 6)".into(),
            Self::Other { code, ntstatus } => {
                let status = ntstatus.map_or(String::new(), |nt| {
                    format!(", NTSTATUS 0x{nt:08X} {}", ntstatus_words(nt))
                });
                format!(
                    "the KDC answered: {} (KRB {code}{status}); this says nothing about the password",
                    krb_words(*code)
                )
            }
        }
    }
}

fn krb_words(code: i32) -> &'static str {
    match code {
        code::C_PRINCIPAL_UNKNOWN => "client not found",
        code::S_PRINCIPAL_UNKNOWN => "service not found",
        code::POLICY => "refused by policy",
        code::ETYPE_NOSUPP => "no common encryption type (the account may have only RC4 keys)",
        code::CLIENT_REVOKED => "client credentials revoked",
        code::KEY_EXPIRED => "password expired",
        code::PREAUTH_FAILED => "pre-authentication failed",
        code::PREAUTH_REQUIRED => "pre-authentication required",
        code::SKEW => "clock skew too great",
        code::GENERIC => "generic error",
        code::WRONG_REALM => "wrong realm",
        _ => "an unexpected error",
    }
}

fn ntstatus_words(nt: u32) -> &'static str {
    match nt {
        code::NT_ACCOUNT_DISABLED => "account disabled",
        code::NT_ACCOUNT_EXPIRED => "account expired",
        code::NT_ACCOUNT_LOCKED_OUT => "account locked out",
        code::NT_MUST_CHANGE => "password must be changed",
        code::NT_PASSWORD_EXPIRED => "password expired",
        code::NT_INVALID_LOGON_HOURS => "outside the allowed logon hours",
        code::NT_INVALID_WORKSTATION => "not allowed from this workstation",
        _ => "account refused",
    }
}

/// Why a check could not reach a verdict. Each message starts with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum KerberosError {
    /// No TCP connection to the KDC (nothing was sent on it).
    #[error("RK-KRB-001: cannot connect to the KDC {kdc}: {source}")]
    Connect {
        kdc: String,
        #[source]
        source: std::io::Error,
    },
    /// The exchange did not finish within the timeout.
    #[error("RK-KRB-002: no answer from the KDC {kdc} within {} ms", after.as_millis())]
    Timeout {
        kdc: String,
        after: Duration,
        password_tried: bool,
    },
    /// The connection failed after it was made (reset, closed early).
    #[error("RK-KRB-003: the connection to the KDC {kdc} failed: {source}")]
    Transport {
        kdc: String,
        password_tried: bool,
        #[source]
        source: std::io::Error,
    },
    /// The KDC's answer was not what the protocol allows.
    #[error("RK-KRB-004: unexpected answer from the KDC: {detail}")]
    Protocol {
        detail: String,
        password_tried: bool,
    },
    /// Key derivation, encryption or the proof in the AS-REP failed (it did not decrypt with the
    /// password's key, or its nonce was not ours).
    #[error("RK-KRB-005: Kerberos cryptography failed: {detail}")]
    Crypto {
        detail: String,
        password_tried: bool,
    },
    /// The account or KDC needs something this client does not do (RC4 only, other s2k
    /// parameters).
    #[error("RK-KRB-006: not supported: {0}")]
    Unsupported(String),
    /// The arguments cannot make a request (blank password, non-ASCII names). Nothing was sent.
    #[error("RK-KRB-007: invalid input: {0}")]
    Input(String),
    /// The operating system's random source failed. Nothing was sent.
    #[error("RK-KRB-008: no random nonce: {0}")]
    Random(String),
}

impl KerberosError {
    /// The stable code (`RK-KRB-001` …).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "RK-KRB-001",
            Self::Timeout { .. } => "RK-KRB-002",
            Self::Transport { .. } => "RK-KRB-003",
            Self::Protocol { .. } => "RK-KRB-004",
            Self::Crypto { .. } => "RK-KRB-005",
            Self::Unsupported(_) => "RK-KRB-006",
            Self::Input(_) => "RK-KRB-007",
            Self::Random(_) => "RK-KRB-008",
        }
    }

    /// Whether the request proving the password may have reached the KDC: if the password was
    /// wrong, the DC may have counted a bad attempt. `false` means certainly not.
    #[must_use]
    pub fn password_may_have_been_tried(&self) -> bool {
        match self {
            Self::Timeout { password_tried, .. }
            | Self::Transport { password_tried, .. }
            | Self::Protocol { password_tried, .. }
            | Self::Crypto { password_tried, .. } => *password_tried,
            Self::Connect { .. } | Self::Unsupported(_) | Self::Input(_) | Self::Random(_) => false,
        }
    }
}

/// Checks `password` for `user` (sAMAccountName) in `realm` against the KDC at `kdc`
/// ("host:port", e.g. `dc1.corp.example.com:88`), within `timeout` for the whole exchange.
///
/// A wrong password costs one `badPwdCount` on that DC; see the crate docs.
///
/// # Errors
/// [`KerberosError`] when no verdict was reached (connection, timeout, malformed answer, an AS-REP
/// that does not prove the key, unsupported account, invalid input).
pub async fn check_password(
    kdc: &str,
    realm: &str,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Result<Verdict, KerberosError> {
    let mut nonce = [0u8; 4];
    getrandom::fill(&mut nonce).map_err(|e| KerberosError::Random(e.to_string()))?;
    // 31 bits: some KDCs mishandle a nonce with the sign bit set.
    let nonce = u32::from_be_bytes(nonce) & 0x7fff_ffff;
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now = Now {
        unix_secs: since.as_secs(),
        micros: since.subsec_micros(),
    };
    let mut exchange = Exchange::new(realm, user, password, nonce, now)?;
    let outcome = tokio::time::timeout(timeout, run(&mut exchange, kdc)).await;
    outcome.unwrap_or_else(|_| {
        Err(KerberosError::Timeout {
            kdc: kdc.to_owned(),
            after: timeout,
            password_tried: exchange.preauth_sent(),
        })
    })
}

async fn run(exchange: &mut Exchange<'_>, kdc: &str) -> Result<Verdict, KerberosError> {
    let mut request = exchange.first_request()?;
    // Two round trips normally; three only if a KDC misbehaves, then it is a protocol error.
    for _ in 0..2 {
        let reply = transport::round_trip(kdc, &request, exchange.preauth_sent()).await?;
        match exchange.on_reply(&reply)? {
            Step::Done(verdict) => return Ok(verdict),
            Step::Send(next) => request = next,
        }
    }
    Err(KerberosError::Protocol {
        detail: "the KDC asked for pre-authentication twice".into(),
        password_tried: true,
    })
}
