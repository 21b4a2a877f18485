//! Building LDAP filters and DNs from untrusted input: RFC 4515 (filters) and RFC 4514 (DNs).

use std::fmt::Write;

pub use ldap3::{dn_escape, ldap_escape};

/// A binary value (objectGUID, objectSid) as a filter assertion: every byte `\xx`.
#[must_use]
pub fn escape_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 3), |mut s, b| {
            let _ = write!(s, "\\{b:02x}");
            s
        })
}

/// `(attr=value)` with the value escaped.
#[must_use]
pub fn eq(attr: &str, value: &str) -> String {
    format!("({attr}={})", ldap_escape(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift) so the fuzz cases are reproducible.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn string(&mut self) -> String {
            const ALPHABET: &[char] = &[
                'a', 'Z', '0', ' ', '*', '(', ')', '\\', '\0', ',', '+', '"', '<', '>', ';', '=',
                '#', '&', '|', '!', '~', 'é', '€', '😀', '\n', '\u{7f}',
            ];
            let len = (self.next() % 12) as usize;
            (0..len)
                .map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize])
                .collect()
        }
    }

    /// Undo RFC 4515 `\xx` escapes.
    fn unescape_filter_value(s: &str) -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn filter_escaping_fuzz() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let raw = g.string();
            let esc = ldap_escape(raw.as_str());
            // No filter metacharacter survives unescaped, and the value round-trips exactly.
            let bare = esc
                .replace("\\5c", "")
                .replace("\\2a", "")
                .replace("\\28", "");
            let bare = bare.replace("\\29", "").replace("\\00", "");
            assert!(
                !bare.contains(['*', '(', ')', '\0', '\\']),
                "{raw:?} -> {esc}"
            );
            assert_eq!(unescape_filter_value(&esc), raw.as_bytes(), "{raw:?}");
            // ldap3 parses the resulting filter to exactly one equality assertion.
            let filter = eq("mail", &raw);
            assert!(ldap3::parse_filter(&filter).is_ok(), "{filter}");
        }
    }

    #[test]
    fn dn_escaping_fuzz() {
        let mut g = Gen(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let raw = g.string();
            if raw.is_empty() {
                continue;
            }
            let esc = dn_escape(raw.as_str());
            let dn = format!("CN={esc},OU=Staff,DC=corp,DC=example,DC=com");
            // Exactly the RDN separators we wrote remain unescaped.
            let parts = split_unescaped(&dn, ',');
            assert_eq!(parts.len(), 5, "{raw:?} -> {dn}");
            assert_eq!(split_unescaped(parts[0], '+').len(), 1, "{raw:?}");
            assert_eq!(unescape_dn_value(&parts[0][3..]), raw, "{raw:?} -> {esc}");
            assert!(
                !esc.starts_with(' ') && !esc.starts_with('#'),
                "{raw:?} -> {esc}"
            );
            assert!(
                !esc.ends_with(' ') || esc.ends_with("\\ "),
                "{raw:?} -> {esc}"
            );
        }
    }

    fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
        let mut parts = Vec::new();
        let (mut start, mut escaped) = (0, false);
        for (i, c) in s.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == sep {
                parts.push(&s[start..i]);
                start = i + 1;
            }
        }
        parts.push(&s[start..]);
        parts
    }

    /// RFC 4514 unescape: `\` + special char, or `\xx` hex pairs (UTF-8 bytes).
    fn unescape_dn_value(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' {
                let next = b[i + 1];
                if next.is_ascii_hexdigit() && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(next);
                    i += 2;
                }
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn binary_values() {
        assert_eq!(escape_bytes(&[0, 0x2a, 0xff]), "\\00\\2a\\ff");
    }
}
