//! Time and randomness are parameters of the engine, never ambient (tests use fixed ones).

use std::time::SystemTime;

pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// Runs work after the answer was sent (notification mail). Without one, the engine does such
/// work before answering.
pub trait Spawn: Send + Sync {
    fn spawn(&self, work: crate::landing::BoxFuture<'static, ()>);
}

/// A source of cryptographically secure random bytes.
pub trait Random: Send + Sync {
    fn fill(&self, buf: &mut [u8]);
}

/// Unix seconds of a `SystemTime` (0 before 1970).
#[must_use]
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Unix milliseconds of a `SystemTime`.
#[must_use]
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// URL-safe random token of `bytes` random bytes (hex: no padding or alphabet questions).
pub fn token(random: &dyn Random, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    random.fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A support id people can read out on the phone: `RK-XXXX-XXXX` (no 0/O/1/I).
pub fn support_id(random: &dyn Random) -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut buf = [0u8; 8];
    random.fill(&mut buf);
    let c: Vec<char> = buf
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!(
        "RK-{}-{}",
        c[..4].iter().collect::<String>(),
        c[4..].iter().collect::<String>()
    )
}
