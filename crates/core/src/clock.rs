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

/// The UTC calendar date of a day count since 1970-01-01: (year, month 1–12, day 1–31).
/// Howard Hinnant's `days_from_civil`: days since 1970-01-01 of a proleptic Gregorian date (the
/// inverse of [`civil_from_days`]; the month is not range-checked here).
#[must_use]
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`, so no calendar crate is needed for a date on a page.
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        yoe + era * 400 + i64::from(m <= 2),
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod civil_tests {
    #[test]
    fn known_days() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        for days in [-1, 0, 11_016, 19_723, 20_789] {
            let (y, m, d) = super::civil_from_days(days);
            assert_eq!(super::days_from_civil(y, m, d), days);
        }
        assert_eq!(super::civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(super::civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(super::civil_from_days(-1), (1969, 12, 31));
    }
}
