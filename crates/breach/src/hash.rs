//! SHA-1 of a password as 40 uppercase hex digits, in a buffer zeroed on drop.

use rekey_core::secret::Password;
use sha1::{Digest, Sha1};
use zeroize::{Zeroize, Zeroizing};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Length of a SHA-1 in hex.
pub(crate) const HEX_LEN: usize = 40;
/// What leaves the process: the range prefix.
pub(crate) const PREFIX_LEN: usize = 5;

/// The hash of one password. No `Debug`: it is as secret as the password for a weak one.
pub(crate) struct Sha1Hex(Zeroizing<[u8; HEX_LEN]>);

impl Sha1Hex {
    pub(crate) fn of(password: &Password) -> Self {
        let mut digest = Sha1::digest(password.expose().as_bytes());
        let mut out = Zeroizing::new([0u8; HEX_LEN]);
        for (i, b) in digest.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
        }
        digest.as_mut_slice().zeroize();
        Self(out)
    }

    /// All 40 digits.
    pub(crate) fn digits(&self) -> &[u8; HEX_LEN] {
        &self.0
    }

    /// The first five digits, the only part that may leave the process.
    pub(crate) fn prefix(&self) -> &str {
        // Built from `HEX` above: always ASCII.
        std::str::from_utf8(&self.0[..PREFIX_LEN]).unwrap_or("?????")
    }

    /// The 35 digits after the prefix (what a range answer lists).
    pub(crate) fn suffix(&self) -> &[u8] {
        &self.0[PREFIX_LEN..]
    }
}

/// `digits` are hex (either case) and, upper-cased, equal `want` (already upper case).
pub(crate) fn hex_eq(digits: &[u8], want: &[u8]) -> bool {
    digits.len() == want.len()
        && digits
            .iter()
            .zip(want)
            .all(|(d, w)| d.is_ascii_hexdigit() && d.to_ascii_uppercase() == *w)
}

/// `digits` upper-cased into `N` bytes, if they are exactly `N` hex digits.
pub(crate) fn upper_hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != N || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; N];
    for (o, d) in out.iter_mut().zip(digits) {
        *o = d.to_ascii_uppercase();
    }
    Some(out)
}

/// A decimal count (ASCII digits only, no sign, fits in `u64`).
pub(crate) fn count(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_upper_case() {
        let h = Sha1Hex::of(&Password::from("P@ssw0rd"));
        assert_eq!(h.digits(), b"21BD12DC183F740EE76F27B78EB39C8AD972A757");
        assert_eq!(h.prefix(), "21BD1");
        assert_eq!(h.suffix(), b"2DC183F740EE76F27B78EB39C8AD972A757");
    }

    #[test]
    fn utf8_bytes_are_hashed_as_they_are() {
        // sha1("é") over its UTF-8 bytes C3 A9.
        let h = Sha1Hex::of(&Password::from("\u{e9}"));
        assert_eq!(h.digits(), b"BF15BE717AC1B080B4F1C456692825891FF5073D");
    }

    #[test]
    fn helpers_are_strict() {
        assert!(hex_eq(b"ab12", b"AB12"));
        assert!(!hex_eq(b"ab1", b"AB12"));
        assert!(!hex_eq(b"zb12", b"ZB12"));
        assert_eq!(upper_hex::<4>(b"aB0f"), Some(*b"AB0F"));
        assert_eq!(upper_hex::<4>(b"aB0"), None);
        assert_eq!(upper_hex::<4>(b"aB0g"), None);
        assert_eq!(count(b"12"), Some(12));
        assert_eq!(count(b""), None);
        assert_eq!(count(b"+1"), None);
        assert_eq!(count(b"99999999999999999999999"), None);
    }
}
