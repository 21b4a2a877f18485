//! Authenticator-app codes (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps), ±1 step (invariant 4).
//! Replay — the same step used twice — is refused by the engine, which spends each step once in
//! the store (atomic across replicas).

use totp_rs::{Builder, Totp};
use zeroize::Zeroizing;

use crate::clock::Random;

pub const STEP: i64 = 30;
/// 160 bits, the size RFC 4226 recommends.
pub const SEED_BYTES: usize = 20;

/// A new random seed.
#[must_use]
pub fn new_seed(random: &dyn Random) -> Zeroizing<Vec<u8>> {
    let mut seed = Zeroizing::new(vec![0u8; SEED_BYTES]);
    random.fill(&mut seed);
    seed
}

fn totp(seed: &[u8], issuer: &str, account: &str) -> Option<Totp> {
    // Issuer and account name may not contain ':' in an otpauth URI label.
    let clean = |s: &str| s.replace(':', " ");
    Builder::new()
        .with_secret(seed.to_vec())
        .with_issuer(Some(clean(issuer)))
        .with_account_name(clean(account))
        .build()
        .ok()
}

/// The `otpauth://totp/...` URI an authenticator app scans, and the seed in base32 to type in.
#[must_use]
pub fn enrollment(seed: &[u8], issuer: &str, account: &str) -> Option<(String, String)> {
    let t = totp(seed, issuer, account)?;
    let b32 = totp_rs::Secret::from(seed.to_vec()).to_base32();
    Some((t.to_url().ok()?, b32))
}

/// The step a typed code belongs to, if it is the code of the step at `now` or one step either
/// side. Compared in constant time.
#[must_use]
pub fn matching_step(seed: &[u8], code: &str, now: i64) -> Option<i64> {
    let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != 6 || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(seed, "x", "x")?;
    let step = now.div_euclid(STEP);
    let mut found = None;
    for s in [step - 1, step, step + 1] {
        let Ok(at) = u64::try_from(s * STEP) else {
            continue;
        };
        let expected = t.generate(at).to_string();
        if constant_eq(expected.as_bytes(), typed.as_bytes()) {
            found = Some(s);
        }
    }
    found
}

/// The code of the step containing `at` (what an authenticator app shows then): for tests and
/// for tools that act as an app.
#[must_use]
pub fn code_at(seed: &[u8], at: i64) -> Option<String> {
    let t = totp(seed, "x", "x")?;
    Some(t.generate(u64::try_from(at).ok()?).to_string())
}

/// The seed from its base32 form (as shown to type into an app).
#[must_use]
pub fn seed_from_base32(text: &str) -> Option<Vec<u8>> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    totp_rs::Secret::try_from_base32(clean.to_uppercase())
        .ok()
        .map(|s| s.to_vec())
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 seed "12345678901234567890" (8 digits there; the last 6 here).
    #[test]
    fn rfc_vectors_and_window() {
        let seed = b"12345678901234567890";
        assert_eq!(matching_step(seed, "287082", 59), Some(1));
        assert_eq!(
            matching_step(seed, "081804", 1_111_111_109),
            Some(37_037_036)
        );
        // ±1 step: the code of step 1 is still good during step 2, not during step 3.
        assert_eq!(matching_step(seed, "287082", 89), Some(1));
        assert_eq!(matching_step(seed, "287082", 95), None);
        assert_eq!(matching_step(seed, "287083", 59), None);
        assert_eq!(matching_step(seed, "28708", 59), None);
        assert_eq!(matching_step(seed, "287 082", 59), Some(1));
    }

    #[test]
    fn uri_names_issuer_and_account() {
        let (uri, b32) = enrollment(b"12345678901234567890", "Corp: IT", "alice").unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=Corp"), "{uri}");
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let seed = seed_from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(seed, b"12345678901234567890");
        assert_eq!(code_at(&seed, 59).unwrap(), "287082");
    }
}
