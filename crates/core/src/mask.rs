//! Masked contact hints (DESIGN invariant 11): a page may show `j***@e***.com`, never the address.

const STARS: &str = "***";

/// Mask an email address for display: the first character of the local part, the first character
/// of the domain's first label and the top-level domain stay, the rest becomes `***`
/// (`john.doe@example.com` → `j***@e***.com`). The number of stars is fixed, so the hint does not
/// leak lengths. Odd input (no `@`, empty parts, a display name) never panics and never comes back
/// unmasked.
#[must_use]
pub fn mask_email(addr: &str) -> String {
    let addr = addr.trim();
    // `Name <addr>` → `addr`; the display name is not shown either.
    let addr = match (addr.rfind('<'), addr.rfind('>')) {
        (Some(open), Some(close)) if open < close => &addr[open + 1..close],
        _ => addr,
    };
    let Some((local, domain)) = addr.trim().rsplit_once('@') else {
        return mask_part(addr);
    };
    let domain = domain.trim_end_matches('.');
    let mut masked = mask_part(local);
    masked.push('@');
    match domain.rsplit_once('.') {
        Some((rest, tld)) if !tld.is_empty() => {
            let first_label = rest.split('.').next().unwrap_or_default();
            masked.push_str(&mask_part(first_label));
            masked.push('.');
            masked.push_str(tld);
        }
        _ => masked.push_str(&mask_part(domain)),
    }
    masked
}

/// Mask a phone number: only the last two digits stay, everything else is a fixed pattern
/// (`+49 170 1234567` → `+** *** ** 67`), so neither the country nor the length leaks.
#[must_use]
pub fn mask_phone(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    match digits.as_slice() {
        [.., a, b] if digits.len() >= 6 => format!("+** *** ** {a}{b}"),
        _ => "+** *** ** **".to_owned(),
    }
}

/// First character (if any, and if it is not a separator) followed by the stars.
fn mask_part(part: &str) -> String {
    match part.trim().chars().next() {
        Some(c) if !c.is_whitespace() && !matches!(c, '@' | '.' | '<' | '>') => {
            format!("{c}{STARS}")
        }
        _ => STARS.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::mask_email;

    #[test]
    fn masks_like_the_design_says() {
        assert_eq!(mask_email("john.doe@example.com"), "j***@e***.com");
        assert_eq!(mask_email("Alice.Adams@corp.example.com"), "A***@c***.com");
        assert_eq!(mask_email("bob@mail.example.co.uk"), "b***@m***.uk");
    }

    #[test]
    fn short_and_odd_inputs() {
        assert_eq!(mask_email("a@b.c"), "a***@b***.c");
        assert_eq!(mask_email("j@localhost"), "j***@l***");
        assert_eq!(mask_email(""), "***");
        assert_eq!(mask_email("   "), "***");
        assert_eq!(mask_email("@"), "***@***");
        assert_eq!(mask_email("@example.com"), "***@e***.com");
        assert_eq!(mask_email("john@"), "j***@***");
        assert_eq!(mask_email("john@.com"), "j***@***.com");
        assert_eq!(mask_email("john@example."), "j***@e***");
        assert_eq!(mask_email("john"), "j***");
        assert_eq!(mask_email("a@b@example.com"), "a***@e***.com");
        assert_eq!(mask_email("John Doe <john@example.com>"), "j***@e***.com");
        assert_eq!(mask_email(" john@example.com "), "j***@e***.com");
    }

    #[test]
    fn non_ascii_is_cut_on_character_boundaries() {
        assert_eq!(mask_email("jürgen@bücher.de"), "j***@b***.de");
        assert_eq!(mask_email("émile@例え.テスト"), "é***@例***.テスト");
        assert_eq!(mask_email("ü@ö"), "ü***@ö***");
    }

    #[test]
    fn never_returns_the_address() {
        for addr in [
            "john.doe@example.com",
            "x@y.z",
            "a@b",
            "admin@corp.example.com",
            "no-at-sign-here",
        ] {
            let masked = mask_email(addr);
            assert_ne!(masked, addr);
            assert!(masked.contains("***"), "{masked}");
            let local = addr.split('@').next().unwrap_or_default();
            if local.chars().count() > 1 {
                assert!(!masked.contains(local), "{masked} leaks {local}");
            }
        }
    }
}
