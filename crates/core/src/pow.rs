//! Proof of work for the identify step under attack (no third-party CAPTCHA).
//!
//! When one client or the whole portal goes over a rate on identify, the page carries a puzzle.
//! The challenge authenticates itself (HMAC-SHA-256 under a server key), so the server keeps no
//! state until it is answered. A browser with JavaScript solves it (`web/static/pow.js`); without
//! JavaScript a person waits the fallback delay, then presses the button.
//!
//! Challenge: ASCII from `[0-9a-z.]`, URL and form safe, at most [`MAX_CHALLENGE_LEN`] bytes:
//!
//! ```text
//! v1.<issued>.<bits>.<delay>.<nonce>.<mac>
//! ```
//!
//! - `issued`: Unix seconds, decimal without sign or leading zeros;
//! - `bits`: difficulty, `0..=`[`MAX_BITS`], decimal;
//! - `delay`: seconds before the fallback answer counts, `0..=`[`MAX_DELAY`], decimal;
//! - `nonce`: 16 random bytes, 32 lowercase hex digits (the id the caller spends once);
//! - `mac`: 64 lowercase hex digits of HMAC-SHA-256(key, `"rekey/pow/v1\0"` || the text before
//!   the last dot, i.e. `v1.<issued>.<bits>.<delay>.<nonce>`).
//!
//! Every field has one spelling only (a non-canonical one is [`PowError::Malformed`]).
//!
//! Answer, one of:
//!
//! - a counter `n`: ASCII decimal, no sign, no leading zeros (`0` itself is fine), at most 20
//!   digits, at most `u64::MAX`. It is right when SHA-256 over exactly the bytes
//!   `challenge ":" n` (the challenge as issued, one ASCII colon, the counter's digits; no
//!   newline, no terminator) starts with at least `bits` zero bits, the most significant bit of
//!   the first byte first.
//! - the word `wait`: right from `issued + delay` on (the fallback without JavaScript).
//!
//! Either answer is accepted only while `issued <= now < issued + max_age`.
//!
//! Test vector (test `known_answer`; `pow.js` and Python's `hashlib` agree): key `[7; 32]`,
//! issued 1700000000, bits 12, delay 30, nonce bytes 0..16 give the challenge
//!
//! ```text
//! v1.1700000000.12.30.000102030405060708090a0b0c0d0e0f.bcc675693a5077ac295184d76744d5907c70001bc01046adb2c4b39c3e897dc2
//! ```
//!
//! whose smallest counter is `5634`: SHA-256 of `<challenge>:5634` is `0001fc3f…`.
//!
//! API boundary: [`check`] does not remember anything. Single use is the caller's job: spend
//! [`Solved::nonce`] once in the store (keep it until `issued + max_age`, after which [`check`]
//! refuses the challenge anyway). Both answers to one challenge give the same nonce.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::clock::Random;
use crate::error::UserFacing;

/// The hardest puzzle issued or accepted (about 4 billion hashes on average).
pub const MAX_BITS: u8 = 32;
/// The longest fallback delay issued or accepted, in seconds.
pub const MAX_DELAY: i64 = 3600;
/// The longest challenge string accepted (`issued` at `i64::MAX`, `bits` and `delay` at their
/// maximum).
pub const MAX_CHALLENGE_LEN: usize = 128;
/// The fallback answer (the value of the hidden `pow` input without JavaScript).
pub const WAIT: &str = "wait";

const VERSION: &str = "v1";
const DOMAIN: &[u8] = b"rekey/pow/v1\0";
const NONCE_BYTES: usize = 16;
const MAX_COUNTER_DIGITS: usize = 20;

/// What the page shows: the challenge for `data-challenge`, the difficulty for `data-bits`, and
/// when the fallback answer will be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Puzzle {
    pub challenge: String,
    pub bits: u8,
    /// Unix seconds from which the answer [`WAIT`] is accepted.
    pub not_before_fallback: i64,
}

/// How a puzzle was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A counter with enough leading zero bits.
    Work,
    /// The fallback: the delay has passed.
    Wait,
}

/// A challenge answered correctly. Not yet spent: see [`Solved::nonce`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Solved {
    nonce: String,
    issued: i64,
    via: Via,
}

impl Solved {
    /// The challenge's id (32 lowercase hex digits). The caller must spend it once in the store
    /// and refuse it the second time: [`check`] alone accepts a replay.
    #[must_use]
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// When the challenge was issued (Unix seconds): the spent nonce may be forgotten after
    /// `issued + max_age`.
    #[must_use]
    pub fn issued(&self) -> i64 {
        self.issued
    }

    #[must_use]
    pub fn via(&self) -> Via {
        self.via
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowError {
    /// The challenge or the answer is not in the format (or out of bounds).
    #[error("RK-POW-001: the check could not be read")]
    Malformed,
    /// The MAC does not verify: tampered with, or issued under another key.
    #[error("RK-POW-002: the check was not issued here")]
    Forged,
    /// Older than `max_age`, or issued in the future (clock skew between servers).
    #[error("RK-POW-003: the check has expired")]
    Expired,
    /// The fallback answer came before the delay was over.
    #[error("RK-POW-004: please wait {wait_secs} more seconds")]
    TooEarly { wait_secs: i64 },
    /// The counter does not have enough leading zero bits.
    #[error("RK-POW-005: the check was not completed")]
    Wrong,
}

impl UserFacing for PowError {
    fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "RK-POW-001",
            Self::Forged => "RK-POW-002",
            Self::Expired => "RK-POW-003",
            Self::TooEarly { .. } => "RK-POW-004",
            Self::Wrong => "RK-POW-005",
        }
    }

    fn message(&self) -> &'static str {
        match self {
            Self::Malformed | Self::Forged | Self::Wrong => {
                "The check did not succeed. Please try again."
            }
            Self::Expired => "The check has expired. Please try again.",
            Self::TooEarly { .. } => "Please wait a little longer, then press the button again.",
        }
    }
}

/// A new puzzle. `bits` above [`MAX_BITS`] becomes [`MAX_BITS`]; `fallback_delay` is clamped to
/// `0..=`[`MAX_DELAY`]; a negative `now` counts as 0. A delay not shorter than the `max_age`
/// later given to [`check`] makes the fallback impossible.
pub fn issue(
    key: &[u8; 32],
    random: &dyn Random,
    now: i64,
    bits: u8,
    fallback_delay: i64,
) -> Puzzle {
    let issued = now.max(0);
    let bits = bits.min(MAX_BITS);
    let delay = fallback_delay.clamp(0, MAX_DELAY);
    let nonce = crate::clock::token(random, NONCE_BYTES);
    let body = format!("{VERSION}.{issued}.{bits}.{delay}.{nonce}");
    let tag = hex(&mac(key, &body).finalize().into_bytes());
    Puzzle {
        challenge: format!("{body}.{tag}"),
        bits,
        not_before_fallback: issued.saturating_add(delay),
    }
}

/// Checks an answer (a counter or [`WAIT`]) to a challenge at `now`. Costs one HMAC and at most
/// one SHA-256. Does not make the challenge single use: see [`Solved::nonce`].
///
/// # Errors
///
/// In the order checked: [`PowError::Malformed`] (challenge format), [`PowError::Forged`] (MAC,
/// compared in constant time), [`PowError::Expired`] (outside `issued..issued + max_age`), then
/// for the answer [`PowError::Malformed`] (neither a counter nor [`WAIT`]),
/// [`PowError::TooEarly`] or [`PowError::Wrong`].
pub fn check(
    key: &[u8; 32],
    challenge: &str,
    answer: &str,
    now: i64,
    max_age: i64,
) -> Result<Solved, PowError> {
    let p = parse(challenge).ok_or(PowError::Malformed)?;
    mac(key, p.body)
        .verify_slice(&p.mac)
        .map_err(|_| PowError::Forged)?;
    if now < p.issued || now >= p.issued.saturating_add(max_age) {
        return Err(PowError::Expired);
    }
    let via = if answer == WAIT {
        let ready = p.issued.saturating_add(p.delay);
        if now < ready {
            return Err(PowError::TooEarly {
                wait_secs: ready - now,
            });
        }
        Via::Wait
    } else {
        decimal(answer, MAX_COUNTER_DIGITS).ok_or(PowError::Malformed)?;
        if !meets(&work(challenge, answer.as_bytes()), p.bits) {
            return Err(PowError::Wrong);
        }
        Via::Work
    };
    Ok(Solved {
        nonce: p.nonce.to_owned(),
        issued: p.issued,
        via,
    })
}

/// The smallest counter that solves `challenge` at `bits` (capped at [`MAX_BITS`]); the
/// reference solver for tests and the Rust end-to-end client. `pow.js` returns the same counter.
#[must_use]
pub fn solve(challenge: &str, bits: u8) -> u64 {
    let bits = bits.min(MAX_BITS);
    let mut prefix = Sha256::new();
    prefix.update(challenge.as_bytes());
    prefix.update(b":");
    (0..=u64::MAX)
        .find(|n| {
            let digest: [u8; 32] = prefix
                .clone()
                .chain_update(n.to_string().as_bytes())
                .finalize()
                .into();
            meets(&digest, bits)
        })
        .unwrap_or(u64::MAX)
}

fn mac(key: &[u8; 32], body: &str) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(DOMAIN);
    m.update(body.as_bytes());
    m
}

/// SHA-256 of `challenge ":" counter`.
fn work(challenge: &str, counter: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(challenge.as_bytes())
        .chain_update(b":")
        .chain_update(counter)
        .finalize()
        .into()
}

fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut n = 0;
    for b in digest {
        if *b != 0 {
            return n + b.leading_zeros();
        }
        n += 8;
    }
    n
}

fn meets(digest: &[u8], bits: u8) -> bool {
    leading_zero_bits(digest) >= u32::from(bits)
}

struct Parts<'a> {
    /// Everything before the last dot: what the MAC covers.
    body: &'a str,
    issued: i64,
    bits: u8,
    delay: i64,
    nonce: &'a str,
    mac: [u8; 32],
}

fn parse(challenge: &str) -> Option<Parts<'_>> {
    if challenge.len() > MAX_CHALLENGE_LEN || !challenge.is_ascii() {
        return None;
    }
    let (body, mac) = challenge.rsplit_once('.')?;
    let mut fields = body.split('.');
    let version = fields.next()?;
    let issued = fields.next()?;
    let bits = fields.next()?;
    let delay = fields.next()?;
    let nonce = fields.next()?;
    if fields.next().is_some() || version != VERSION {
        return None;
    }
    let issued = i64::try_from(decimal(issued, 19)?).ok()?;
    let bits = u8::try_from(decimal(bits, 2)?)
        .ok()
        .filter(|b| *b <= MAX_BITS)?;
    let delay = i64::try_from(decimal(delay, 4)?)
        .ok()
        .filter(|d| *d <= MAX_DELAY)?;
    if nonce.len() != 2 * NONCE_BYTES || !nonce.bytes().all(|b| hex_digit(b).is_some()) {
        return None;
    }
    let mut tag = [0u8; 32];
    if mac.len() != 2 * tag.len() {
        return None;
    }
    for (out, pair) in tag.iter_mut().zip(mac.as_bytes().chunks_exact(2)) {
        *out = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
    }
    Some(Parts {
        body,
        issued,
        bits,
        delay,
        nonce,
        mac: tag,
    })
}

/// A canonical decimal: 1 to `max_digits` ASCII digits, no leading zero unless it is `0`.
fn decimal(s: &str, max_digits: usize) -> Option<u64> {
    let canonical = !s.is_empty()
        && s.len() <= max_digits
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

/// A lowercase hex digit's value.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU8, Ordering};

    const KEY: [u8; 32] = [7; 32];
    const T0: i64 = 1_700_000_000;
    const MAX_AGE: i64 = 600;

    /// Bytes 0, 1, 2, … (the first nonce is `000102…0f`).
    struct Seq(AtomicU8);
    impl Random for Seq {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                *b = self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn seq() -> Seq {
        Seq(AtomicU8::new(0))
    }

    fn puzzle(bits: u8, delay: i64) -> Puzzle {
        issue(&KEY, &seq(), T0, bits, delay)
    }

    /// A challenge with a valid MAC for any body (to reach the bounds checks behind the MAC).
    fn signed(body: &str) -> String {
        format!("{body}.{}", hex(&mac(&KEY, body).finalize().into_bytes()))
    }

    /// A counter that does not solve the challenge.
    fn wrong_counter(challenge: &str, bits: u8) -> u64 {
        (0..u64::MAX)
            .find(|n| !meets(&work(challenge, n.to_string().as_bytes()), bits))
            .unwrap()
    }

    #[test]
    fn round_trip_with_work() {
        for bits in [0, 1, 8, 12] {
            let p = puzzle(bits, 30);
            assert_eq!(p.bits, bits);
            let n = solve(&p.challenge, bits);
            let solved = check(&KEY, &p.challenge, &n.to_string(), T0 + 5, MAX_AGE).unwrap();
            assert_eq!(solved.via(), Via::Work);
            assert_eq!(solved.issued(), T0);
            assert_eq!(solved.nonce(), "000102030405060708090a0b0c0d0e0f");
        }
    }

    #[test]
    fn solve_finds_the_smallest_counter() {
        let p = puzzle(10, 30);
        let n = solve(&p.challenge, 10);
        assert!(meets(&work(&p.challenge, n.to_string().as_bytes()), 10));
        for smaller in 0..n {
            assert!(!meets(
                &work(&p.challenge, smaller.to_string().as_bytes()),
                10
            ));
        }
    }

    /// The vector `pow.js` was checked against (same challenge, same counter).
    #[test]
    fn known_answer() {
        let p = puzzle(12, 30);
        assert_eq!(p.challenge, KNOWN_CHALLENGE);
        assert_eq!(p.not_before_fallback, T0 + 30);
        assert_eq!(solve(&p.challenge, 12), KNOWN_COUNTER);
    }

    const KNOWN_CHALLENGE: &str = "v1.1700000000.12.30.000102030405060708090a0b0c0d0e0f.bcc675693a5077ac295184d76744d5907c70001bc01046adb2c4b39c3e897dc2";
    const KNOWN_COUNTER: u64 = 5634;

    #[test]
    fn challenge_is_url_safe_and_bounded() {
        let p = puzzle(12, 30);
        assert!(
            p.challenge
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'.'))
        );
        let longest = issue(&KEY, &seq(), i64::MAX, MAX_BITS, MAX_DELAY);
        assert_eq!(longest.challenge.len(), MAX_CHALLENGE_LEN);
        assert_eq!(longest.not_before_fallback, i64::MAX);
        assert!(parse(&longest.challenge).is_some());
    }

    #[test]
    fn nonces_differ_between_puzzles() {
        let r = seq();
        let a = issue(&KEY, &r, T0, 8, 30);
        let b = issue(&KEY, &r, T0, 8, 30);
        assert_ne!(a.challenge, b.challenge);
        let na = check(&KEY, &a.challenge, WAIT, T0 + 30, MAX_AGE).unwrap();
        let nb = check(&KEY, &b.challenge, WAIT, T0 + 30, MAX_AGE).unwrap();
        assert_ne!(na.nonce(), nb.nonce());
    }

    #[test]
    fn both_answers_spend_the_same_nonce() {
        let p = puzzle(8, 30);
        let n = solve(&p.challenge, 8).to_string();
        let work = check(&KEY, &p.challenge, &n, T0 + 30, MAX_AGE).unwrap();
        let wait = check(&KEY, &p.challenge, WAIT, T0 + 30, MAX_AGE).unwrap();
        assert_eq!(work.nonce(), wait.nonce());
        assert_eq!(wait.via(), Via::Wait);
    }

    #[test]
    fn tampering_with_any_field_is_forged() {
        let p = puzzle(8, 30);
        let n = solve(&p.challenge, 8).to_string();
        let fields: Vec<&str> = p.challenge.split('.').collect();
        let mut tampered = Vec::new();
        for (i, new) in [
            (1, "1700000001"),
            (1, "1699999999"),
            (2, "9"),
            (2, "0"),
            (3, "31"),
            (3, "0"),
        ] {
            let mut f = fields.clone();
            f[i] = new;
            tampered.push(f.join("."));
        }
        for i in [4, 5] {
            for pos in [0, fields[i].len() - 1] {
                let mut f: Vec<String> = fields.iter().map(|s| (*s).to_owned()).collect();
                let flipped = if f[i].as_bytes()[pos] == b'a' {
                    "b"
                } else {
                    "a"
                };
                f[i].replace_range(pos..=pos, flipped);
                tampered.push(f.join("."));
            }
        }
        for t in &tampered {
            assert_ne!(t, &p.challenge);
            for answer in [n.as_str(), WAIT, "0"] {
                assert_eq!(
                    check(&KEY, t, answer, T0 + 30, MAX_AGE),
                    Err(PowError::Forged),
                    "{t}"
                );
            }
        }
        // Another version is not a format this code reads.
        let v2 = p.challenge.replacen("v1.", "v2.", 1);
        assert_eq!(
            check(&KEY, &v2, WAIT, T0 + 30, MAX_AGE),
            Err(PowError::Malformed)
        );
    }

    #[test]
    fn another_key_is_forged() {
        let p = puzzle(8, 0);
        let n = solve(&p.challenge, 8).to_string();
        for answer in [n.as_str(), WAIT] {
            assert_eq!(
                check(&[8; 32], &p.challenge, answer, T0, MAX_AGE),
                Err(PowError::Forged)
            );
        }
    }

    #[test]
    fn expiry() {
        let p = puzzle(8, 0);
        let n = solve(&p.challenge, 8).to_string();
        for answer in [n.as_str(), WAIT] {
            assert!(check(&KEY, &p.challenge, answer, T0, MAX_AGE).is_ok());
            assert!(check(&KEY, &p.challenge, answer, T0 + MAX_AGE - 1, MAX_AGE).is_ok());
            for now in [
                T0 + MAX_AGE,
                T0 + 10 * MAX_AGE,
                i64::MAX,
                T0 - 1,
                0,
                i64::MIN,
            ] {
                assert_eq!(
                    check(&KEY, &p.challenge, answer, now, MAX_AGE),
                    Err(PowError::Expired),
                    "{now}"
                );
            }
            for max_age in [0, -1, i64::MIN] {
                assert_eq!(
                    check(&KEY, &p.challenge, answer, T0, max_age),
                    Err(PowError::Expired)
                );
            }
        }
        assert!(check(&KEY, &p.challenge, WAIT, i64::MAX - 1, i64::MAX).is_ok());
    }

    #[test]
    fn fallback_too_early_says_how_long() {
        let p = puzzle(12, 30);
        assert_eq!(
            check(&KEY, &p.challenge, WAIT, T0, MAX_AGE),
            Err(PowError::TooEarly { wait_secs: 30 })
        );
        assert_eq!(
            check(&KEY, &p.challenge, WAIT, T0 + 29, MAX_AGE),
            Err(PowError::TooEarly { wait_secs: 1 })
        );
    }

    #[test]
    fn fallback_after_the_delay() {
        let p = puzzle(12, 30);
        for now in [T0 + 30, T0 + 31, T0 + MAX_AGE - 1] {
            let solved = check(&KEY, &p.challenge, WAIT, now, MAX_AGE).unwrap();
            assert_eq!(solved.via(), Via::Wait);
        }
        // A delay as long as the lifetime makes the fallback impossible.
        let p = puzzle(12, MAX_AGE);
        assert_eq!(
            check(&KEY, &p.challenge, WAIT, T0 + MAX_AGE, MAX_AGE),
            Err(PowError::Expired)
        );
        // The work answer does not wait for the delay.
        let n = solve(&p.challenge, 12).to_string();
        assert!(check(&KEY, &p.challenge, &n, T0, MAX_AGE).is_ok());
    }

    #[test]
    fn wrong_counter_is_wrong() {
        let p = puzzle(12, 30);
        let bad = wrong_counter(&p.challenge, 12).to_string();
        assert_eq!(
            check(&KEY, &p.challenge, &bad, T0 + 1, MAX_AGE),
            Err(PowError::Wrong)
        );
        // Zero difficulty accepts any counter.
        let easy = puzzle(0, 30);
        for n in ["0", "1", "18446744073709551615"] {
            assert!(check(&KEY, &easy.challenge, n, T0 + 1, MAX_AGE).is_ok());
        }
    }

    #[test]
    fn malformed_answers() {
        let p = puzzle(0, 30);
        for answer in [
            "",
            " 1",
            "1 ",
            "+1",
            "-1",
            "01",
            "00",
            "1.0",
            "0x10",
            "WAIT",
            "Wait",
            "wait ",
            "18446744073709551616",
            "99999999999999999999",
            "123456789012345678901",
            "١",
        ] {
            assert_eq!(
                check(&KEY, &p.challenge, answer, T0 + 1, MAX_AGE),
                Err(PowError::Malformed),
                "{answer:?}"
            );
        }
    }

    #[test]
    fn leading_zero_bits_edges() {
        assert_eq!(leading_zero_bits(&[0xff; 32]), 0);
        assert!(meets(&[0xff; 32], 0));
        assert!(!meets(&[0xff; 32], 1));
        assert_eq!(leading_zero_bits(&[0x00, 0x80, 0xff]), 8);
        assert!(meets(&[0x00, 0x80], 8));
        assert!(!meets(&[0x00, 0x80], 9));
        assert_eq!(leading_zero_bits(&[0x00, 0x40]), 9);
        assert!(meets(&[0x00, 0x40], 9));
        assert!(!meets(&[0x00, 0x40], 10));
        assert_eq!(leading_zero_bits(&[0x00, 0x00, 0x80]), 16);
        assert!(meets(&[0x00, 0x00, 0x80], 16));
        assert!(!meets(&[0x00, 0x00, 0x80], 17));
        assert_eq!(leading_zero_bits(&[0x01]), 7);
        assert_eq!(leading_zero_bits(&[0; 32]), 256);
        assert_eq!(leading_zero_bits(&[]), 0);
    }

    #[test]
    fn issue_clamps_absurd_values() {
        let r = seq();
        let p = issue(&KEY, &r, T0, 200, -5);
        assert_eq!(p.bits, MAX_BITS);
        assert_eq!(p.not_before_fallback, T0);
        assert!(p.challenge.starts_with("v1.1700000000.32.0."));
        let p = issue(&KEY, &r, T0, 8, i64::MAX);
        assert_eq!(p.not_before_fallback, T0 + MAX_DELAY);
        let p = issue(&KEY, &r, -10, 8, 0);
        assert!(p.challenge.starts_with("v1.0.8.0."));
    }

    #[test]
    fn refuses_out_of_bounds_fields_even_when_signed() {
        let nonce = "000102030405060708090a0b0c0d0e0f";
        for body in [
            format!("v1.{T0}.33.30.{nonce}"),
            format!("v1.{T0}.255.30.{nonce}"),
            format!("v1.{T0}.8.3601.{nonce}"),
            format!("v1.{T0}.8.-1.{nonce}"),
            format!("v1.{T0}.08.30.{nonce}"),
            format!("v1.0{T0}.8.30.{nonce}"),
            format!("v1.-{T0}.8.30.{nonce}"),
            format!("v1.9223372036854775808.8.30.{nonce}"),
            format!("v1.{T0}.8.30.{}", nonce.to_uppercase()),
            format!("v1.{T0}.8.30.{}", &nonce[1..]),
            format!("v1.{T0}.8.30.{nonce}0"),
            format!("v1.{T0}.8.30.{nonce}.x"),
            format!("v1.{T0}.8.{nonce}"),
        ] {
            let c = signed(&body);
            assert_eq!(
                check(&KEY, &c, WAIT, T0 + 31, MAX_AGE),
                Err(PowError::Malformed),
                "{c}"
            );
            assert_eq!(solve(&c, 0), 0);
        }
        // The same helper builds an accepted challenge when the fields are in bounds.
        let ok = signed(&format!("v1.{T0}.8.30.{nonce}"));
        assert!(check(&KEY, &ok, WAIT, T0 + 31, MAX_AGE).is_ok());
    }

    #[test]
    fn malformed_challenges_never_panic() {
        let p = puzzle(8, 30);
        let upper_mac = {
            let (body, mac) = p.challenge.rsplit_once('.').unwrap();
            format!("{body}.{}", mac.to_uppercase())
        };
        let long = "9".repeat(10_000);
        let inputs = [
            String::new(),
            ".".into(),
            ".....".into(),
            "......".into(),
            "v1".into(),
            "v1.....".into(),
            "v1.a.b.c.d.e".into(),
            format!("{}.", p.challenge),
            format!(".{}", p.challenge),
            format!("{}.00", p.challenge),
            p.challenge.replacen('.', "..", 1),
            p.challenge.replace('.', ","),
            format!(" {}", p.challenge),
            format!("{} ", p.challenge),
            p.challenge
                .replacen("1700000000", "99999999999999999999999", 1),
            p.challenge.replacen("1700000000", &long, 1),
            p.challenge.replacen("1700000000", "1700000000é", 1),
            p.challenge.replacen("1700000000", "١٧٠٠٠٠٠٠٠٠", 1),
            upper_mac,
            p.challenge[..p.challenge.len() - 1].to_owned(),
            format!("{}0", p.challenge),
            long.clone(),
        ];
        for c in &inputs {
            for answer in ["0", WAIT, "", &long] {
                assert_eq!(
                    check(&KEY, c, answer, T0 + 31, MAX_AGE),
                    Err(PowError::Malformed),
                    "{c:?}"
                );
            }
        }
    }

    #[test]
    fn errors_have_codes() {
        assert_eq!(PowError::TooEarly { wait_secs: 3 }.code(), "RK-POW-004");
        assert!(
            PowError::TooEarly { wait_secs: 3 }
                .to_string()
                .starts_with("RK-POW-004")
        );
        assert!(!PowError::Forged.message().is_empty());
    }
}
