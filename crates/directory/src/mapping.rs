//! Translating a DC's answer into Rekey's typed outcome. The raw text (result code, Win32
//! sub-code, DSID) stays in the `Diagnostic` for the log; people get the `Rejection`'s message.

use ldap3::{LdapError, LdapResult};
use rekey_core::{Diagnostic, LandingError, Rejection};

/// What to do with a non-success result from one DC.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A definite "no" from the directory.
    Rejected(Rejection),
    /// The DC declined without acting (busy, unavailable): another DC may take it.
    TryElsewhere,
}

/// Win32 error hex as AD prints it at the start of the diagnostic text (`0000052D: ...`).
fn win32_code(text: &str) -> Option<u32> {
    let head = text.get(..8)?;
    u32::from_str_radix(head, 16).ok()
}

/// Classify an LDAP result of a password write.
pub(crate) fn classify(result: &LdapResult) -> Verdict {
    let text = result.text.as_str();
    match (result.rc, win32_code(text)) {
        (51 | 52, _) => Verdict::TryElsewhere,
        (_, Some(0x52D)) => Verdict::Rejected(policy_rule(text)),
        (_, Some(0x56)) | (16, _) => Verdict::Rejected(Rejection::WrongOldPassword),
        (_, Some(0x775)) => Verdict::Rejected(Rejection::AccountLocked),
        (50, _) | (_, Some(0x5 | 0x2098)) => Verdict::Rejected(Rejection::InsufficientRights),
        (32, _) => Verdict::Rejected(Rejection::NoSuchUser),
        _ => Verdict::Rejected(Rejection::Refused),
    }
}

/// Which password rule a `0000052D` names. Samba says it in words; Windows does not, so the
/// fallback is the generic `Policy` and the portal explains the effective policy instead.
fn policy_rule(text: &str) -> Rejection {
    let t = text.to_ascii_lowercase();
    if t.contains("too short") {
        Rejection::TooShort
    } else if t.contains("complexity") {
        Rejection::Complexity
    } else if t.contains("history") || t.contains("already used") {
        Rejection::History
    } else if t.contains("too young") || t.contains("minimum password age") {
        Rejection::MinAge
    } else {
        Rejection::Policy
    }
}

/// Where a transport error happened relative to the write.
pub(crate) enum Transport {
    /// The request never left: safe to try another DC.
    NotSent,
    /// The request may have reached the DC: the outcome is unknown.
    MaybeSent,
}

pub(crate) fn transport_phase(err: &LdapError) -> Transport {
    match err {
        LdapError::OpSend { .. } => Transport::NotSent,
        _ => Transport::MaybeSent,
    }
}

pub(crate) fn rejected(reason: Rejection, server: &str, result: &LdapResult) -> LandingError {
    LandingError::Rejected {
        reason,
        diagnostic: Diagnostic::new(
            Some(server),
            format!("rc={} {}", result.rc, result.text.trim()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(rc: u32, text: &str) -> LdapResult {
        LdapResult {
            rc,
            matched: String::new(),
            text: text.into(),
            refs: vec![],
            ctrls: vec![],
        }
    }

    /// Windows' wordings (from Microsoft's docs and peers' logs); Samba's are proven against a real
    /// DC in the integration tests.
    #[test]
    fn windows_texts() {
        let w = |rc, t| classify(&res(rc, t));
        assert_eq!(
            w(
                53,
                "0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0"
            ),
            Verdict::Rejected(Rejection::Policy)
        );
        assert_eq!(
            w(
                19,
                "00000056: AtrErr: DSID-03190F80, #1:\n\t0: 00000056: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)"
            ),
            Verdict::Rejected(Rejection::WrongOldPassword)
        );
        assert_eq!(
            w(
                50,
                "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0"
            ),
            Verdict::Rejected(Rejection::InsufficientRights)
        );
        assert_eq!(
            w(19, "00000775: locked"),
            Verdict::Rejected(Rejection::AccountLocked)
        );
        assert_eq!(w(51, ""), Verdict::TryElsewhere);
        assert_eq!(w(52, ""), Verdict::TryElsewhere);
        assert_eq!(w(2, "garbage"), Verdict::Rejected(Rejection::Refused));
    }
}
