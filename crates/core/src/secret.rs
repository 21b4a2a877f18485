//! Secrets that must never be printed, logged or kept longer than needed.

use std::fmt;
use zeroize::Zeroizing;

/// A password held only in memory. Byte-exact: no trimming, no normalisation (invariant 18).
/// `Debug` and `Display` never show the value; the buffer is zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Zeroizing<String>);

impl Password {
    #[must_use]
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret itself. Call sites are few and greppable on purpose.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Empty or whitespace-only. Such a value must never reach an LDAP bind: an empty simple bind
    /// is an *unauthenticated* bind and succeeds (invariant 22).
    #[must_use]
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// Number of Unicode scalar values, which is how AD counts `minPwdLength`.
    #[must_use]
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }

    /// The value as AD's `unicodePwd` wants it: the password in double quotes, UTF-16LE.
    #[must_use]
    pub fn to_unicode_pwd(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity((self.0.len() + 2) * 2));
        for unit in std::iter::once(u16::from(b'"'))
            .chain(self.0.encode_utf16())
            .chain(std::iter::once(u16::from(b'"')))
        {
            out.extend_from_slice(&unit.to_le_bytes());
        }
        out
    }
}

impl From<&str> for Password {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let p = Password::from("Tr0ub4dor&3");
        assert_eq!(format!("{p:?} {p}"), "Password(<redacted>) <redacted>");
    }

    #[test]
    fn blank_detection_keeps_value_exact() {
        assert!(Password::from("").is_blank());
        assert!(Password::from(" \t\u{3000}").is_blank());
        let p = Password::from(" a ");
        assert!(!p.is_blank());
        assert_eq!(p.expose(), " a ");
    }

    #[test]
    fn unicode_pwd_is_quoted_utf16le() {
        let p = Password::from("aé😀");
        let bytes = p.to_unicode_pwd();
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(String::from_utf16(&units).unwrap(), "\"aé😀\"");
        assert_eq!(p.char_count(), 3);
    }
}
