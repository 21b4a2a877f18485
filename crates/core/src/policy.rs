//! Password policy: the effective rules for one user (domain policy or the winning PSO), and a
//! local pre-check so the portal can explain them before submit. AD still decides.

use std::time::{Duration, SystemTime};

use crate::account::FileTime;
use crate::secret::Password;

/// Where the effective policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    Domain,
    /// A fine-grained password policy (`msDS-ResultantPSO`).
    Pso {
        name: String,
        dn: String,
    },
}

/// The effective password policy of one account. Durations of zero mean "none".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub source: PolicySource,
    pub min_length: u32,
    pub complexity: bool,
    pub history_length: u32,
    pub min_age: Duration,
    /// `None`: passwords never expire.
    pub max_age: Option<Duration>,
    /// 0: accounts are never locked out.
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
    pub lockout_window: Duration,
    /// A later landing zone writes this user's password with Entra ID's cloud rules too
    /// (`ZoneRules::entra`): at least 8 characters, three of upper, lower, digit and symbol,
    /// printable ASCII only.
    pub entra_rules: bool,
}

/// Why a password fails the local pre-check. AD's own verdict is final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Empty,
    TooShort {
        min: u32,
        actual: u32,
    },
    /// Fewer than three of the five character categories.
    TooFewCategories {
        found: u8,
    },
    /// Contains the account name or a part (≥ 3 characters) of the display name.
    ContainsName,
    /// AD refuses more than 256 characters.
    TooLong,
    /// Contains a banned word, phrase or pattern (or the user's or organisation's name) that
    /// makes it easy to guess (`banned::BannedList`, all zones).
    Banned,
    /// Entra ID accepts printable ASCII only (letters, digits, space and the usual symbols).
    CloudCharacters,
    /// Seen in known data breaches (`breached::BreachedPasswords`).
    Breached,
}

impl PasswordPolicy {
    /// AD's interval attributes are negative counts of 100 ns; `i64::MIN` means "never".
    #[must_use]
    pub fn interval(raw: i64) -> Option<Duration> {
        (raw != i64::MIN).then(|| Duration::from_nanos(raw.unsigned_abs().saturating_mul(100)))
    }

    /// When a user-initiated change becomes allowed again (minimum age), or `None` if now.
    #[must_use]
    pub fn change_allowed_at(
        &self,
        pwd_last_set: Option<FileTime>,
        now: SystemTime,
    ) -> Option<SystemTime> {
        let at = pwd_last_set?.to_system_time()? + self.min_age;
        (at > now).then_some(at)
    }

    /// The local pre-check, in the order a person would fix things.
    #[must_use]
    pub fn precheck(
        &self,
        password: &Password,
        sam: &str,
        display_name: Option<&str>,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        if password.expose().is_empty() {
            return vec![Violation::Empty];
        }
        let count = u32::try_from(password.char_count()).unwrap_or(u32::MAX);
        let min = if self.entra_rules {
            self.min_length.max(8)
        } else {
            self.min_length
        };
        if count < min {
            out.push(Violation::TooShort { min, actual: count });
        }
        if count > 256 {
            out.push(Violation::TooLong);
        }
        if self.entra_rules {
            out.extend(entra_violations(password.expose()));
        }
        if self.complexity {
            let found = categories(password.expose());
            let said = out
                .iter()
                .any(|v| matches!(v, Violation::TooFewCategories { .. }));
            if found < 3 && !said {
                out.push(Violation::TooFewCategories { found });
            }
            if contains_name(password.expose(), sam, display_name) {
                out.push(Violation::ContainsName);
            }
        }
        out
    }
}

/// Entra ID's cloud rules (Microsoft's SSPR policy page): 8–256 characters, three of the four
/// classes upper, lower, digit and symbol, and nothing but printable ASCII (the length is
/// checked with AD's).
fn entra_violations(pw: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    if !pw.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        out.push(Violation::CloudCharacters);
    }
    let classes = [
        pw.chars().any(|c| c.is_ascii_uppercase()),
        pw.chars().any(|c| c.is_ascii_lowercase()),
        pw.chars().any(|c| c.is_ascii_digit()),
        pw.chars().any(|c| c == ' ' || c.is_ascii_punctuation()),
    ];
    let found = classes.iter().map(|&b| u8::from(b)).sum::<u8>();
    if found < 3 {
        out.push(Violation::TooFewCategories { found });
    }
    out
}

/// AD's five categories: upper, lower, digit, symbol, other Unicode letters (no case).
fn categories(pw: &str) -> u8 {
    let mut seen = [false; 5];
    for c in pw.chars() {
        let i = if c.is_uppercase() {
            0
        } else if c.is_lowercase() {
            1
        } else if c.is_ascii_digit() {
            2
        } else if c.is_alphabetic() {
            4
        } else {
            3
        };
        seen[i] = true;
    }
    seen.iter().map(|&b| u8::from(b)).sum()
}

/// AD's name rule: the sAMAccountName (if longer than 2) and every display-name token of 3 or more
/// characters, split at `, . - _ #`, space and tab, must not appear (case-insensitive).
fn contains_name(pw: &str, sam: &str, display_name: Option<&str>) -> bool {
    let pw = pw.to_lowercase();
    let sam_hit = sam.chars().count() > 2 && pw.contains(&sam.to_lowercase());
    sam_hit
        || display_name.is_some_and(|d| {
            d.split([',', '.', '-', '_', '#', ' ', '\t'])
                .filter(|t| t.chars().count() >= 3)
                .any(|t| pw.contains(&t.to_lowercase()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy {
            source: PolicySource::Domain,
            min_length: 7,
            complexity: true,
            history_length: 24,
            min_age: Duration::from_secs(86_400),
            max_age: Some(Duration::from_secs(42 * 86_400)),
            lockout_threshold: 5,
            lockout_duration: Duration::from_secs(1800),
            lockout_window: Duration::from_secs(1800),
            entra_rules: false,
        }
    }

    #[test]
    fn precheck_rules() {
        let p = policy();
        let check = |pw: &str| p.precheck(&Password::from(pw), "alice.adams", Some("Alice Adams"));
        assert_eq!(check(""), vec![Violation::Empty]);
        assert_eq!(
            check("Ab1!"),
            vec![Violation::TooShort { min: 7, actual: 4 }]
        );
        assert_eq!(
            check("abcdefgh"),
            vec![Violation::TooFewCategories { found: 1 }]
        );
        assert_eq!(check("Zebra-Crossing-42"), vec![]);
        assert_eq!(check("MyAlice#2026"), vec![Violation::ContainsName]);
        assert_eq!(check("x-ALICE.ADAMS-1"), vec![Violation::ContainsName]);
        // Unicode letters without case count as their own category; length counts characters.
        assert_eq!(check("日本語パスワード1!"), vec![]);
        assert_eq!(check(&"Aa1!".repeat(65)), vec![Violation::TooLong]);
        let mut lax = policy();
        lax.complexity = false;
        assert_eq!(
            lax.precheck(&Password::from("alicealice"), "alice", None),
            vec![]
        );
    }

    #[test]
    fn entra_rules_join_ads() {
        let mut p = policy();
        p.entra_rules = true;
        let check = |pw: &str| p.precheck(&Password::from(pw), "alice.adams", Some("Alice Adams"));
        assert_eq!(check("Zebra-Crossing-42"), vec![]);
        // AD's 7 becomes Entra's 8, said once.
        assert_eq!(
            check("Ab1!xyz"),
            vec![Violation::TooShort { min: 8, actual: 7 }]
        );
        // Letters without case count for AD, not for Entra; said once.
        assert_eq!(
            check("日本語パスワード1!"),
            vec![
                Violation::CloudCharacters,
                Violation::TooFewCategories { found: 2 }
            ]
        );
        assert_eq!(check("Grüne-Wiese-42"), vec![Violation::CloudCharacters]);
        assert_eq!(check("Space is fine 42"), vec![]);
    }

    #[test]
    fn intervals_and_min_age() {
        assert_eq!(
            PasswordPolicy::interval(-864_000_000_000),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(PasswordPolicy::interval(i64::MIN), None);
        let p = policy();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let set = FileTime::from_system_time(now - Duration::from_secs(3600));
        assert_eq!(
            p.change_allowed_at(Some(set), now),
            Some(now + Duration::from_secs(86_400 - 3600))
        );
        let old = FileTime::from_system_time(now - Duration::from_secs(2 * 86_400));
        assert_eq!(p.change_allowed_at(Some(old), now), None);
        assert_eq!(p.change_allowed_at(None, now), None);
    }
}
