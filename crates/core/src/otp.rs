//! One-time codes: generated from a CSPRNG, stored only as an HMAC bound to flow, user and
//! purpose, compared in constant time (invariant 2).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::account::Guid;
use crate::clock::Random;

pub const DIGITS: usize = 6;

/// Digits of a helpdesk code: longer than a self-service code, so the two never collide on
/// one page and a helpdesk code is harder to guess over the phone line's lifetime.
pub const HELPDESK_DIGITS: usize = 8;

/// A uniformly random 6-digit code (rejection sampling: no modulo bias).
pub fn generate(random: &dyn Random) -> String {
    generate_digits(random, DIGITS)
}

/// A uniformly random code of `digits` (≤ 9) digits.
pub fn generate_digits(random: &dyn Random, digits: usize) -> String {
    let digits = digits.clamp(1, 9);
    let modulus = 10u64.pow(u32::try_from(digits).unwrap_or(9));
    // The largest multiple of the modulus that fits: values above it would bias the result.
    let limit = (1u64 << 32) / modulus * modulus;
    loop {
        let mut b = [0u8; 4];
        random.fill(&mut b);
        let n = u64::from(u32::from_le_bytes(b));
        if n < limit {
            return format!("{:0width$}", n % modulus, width = digits);
        }
    }
}

/// What the user typed, without the spaces and dashes people add.
#[must_use]
pub fn typed(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

fn mac(key: &[u8; 32], flow_id: &str, user: &Guid, purpose: &str) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in [flow_id.as_bytes(), &user.0, purpose.as_bytes()] {
        m.update(&u64::try_from(part.len()).unwrap_or(0).to_be_bytes());
        m.update(part);
    }
    m
}

/// The stored form of a code.
#[must_use]
pub fn hash(key: &[u8; 32], flow_id: &str, user: &Guid, purpose: &str, code: &str) -> Vec<u8> {
    let mut m = mac(key, flow_id, user, purpose);
    m.update(code.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Constant-time check of a typed code against the stored hash.
#[must_use]
pub fn matches(
    key: &[u8; 32],
    flow_id: &str,
    user: &Guid,
    purpose: &str,
    code: &str,
    stored: &[u8],
) -> bool {
    matches_digits(key, flow_id, user, purpose, code, stored, DIGITS)
}

/// `matches` for a code of `digits` digits.
#[must_use]
pub fn matches_digits(
    key: &[u8; 32],
    flow_id: &str,
    user: &Guid,
    purpose: &str,
    code: &str,
    stored: &[u8],
    digits: usize,
) -> bool {
    let typed = typed(code);
    if typed.len() != digits || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut m = mac(key, flow_id, user, purpose);
    m.update(typed.as_bytes());
    m.verify_slice(stored).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Counter(AtomicU64);
    impl Random for Counter {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                *b = (self.0.fetch_add(0x9e37_79b9, Ordering::Relaxed) >> 3) as u8;
            }
        }
    }

    #[test]
    fn codes_are_six_digits_and_bound() {
        let r = Counter(AtomicU64::new(1));
        let key = [7u8; 32];
        let user = Guid([1; 16]);
        for _ in 0..100 {
            let code = generate(&r);
            assert_eq!(code.len(), 6);
            let h = hash(&key, "flow", &user, "reset:email", &code);
            assert!(matches(&key, "flow", &user, "reset:email", &code, &h));
            assert!(matches(
                &key,
                "flow",
                &user,
                "reset:email",
                &format!(" {}-{} ", &code[..3], &code[3..]),
                &h
            ));
            assert!(!matches(
                &key,
                "other-flow",
                &user,
                "reset:email",
                &code,
                &h
            ));
            assert!(!matches(
                &key,
                "flow",
                &Guid([2; 16]),
                "reset:email",
                &code,
                &h
            ));
            assert!(!matches(&key, "flow", &user, "enroll:email", &code, &h));
            assert!(!matches(
                &[8u8; 32],
                "flow",
                &user,
                "reset:email",
                &code,
                &h
            ));
            assert!(!matches(&key, "flow", &user, "reset:email", "12345", &h));
        }
    }
}
