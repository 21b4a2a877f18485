//! Small pure helpers: percent-encoding, OData literals, GUIDs, ISO 8601, `Retry-After`.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use rand_core::{OsRng, RngCore};

use crate::EntraError;

/// Percent-encodes everything but RFC 3986 unreserved characters (so `+`, `/`, `=` and `'` in
/// base64 anchors and UPNs survive query parsing, which reads `+` as a space).
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An OData string literal: quoted, with `'` doubled.
pub(crate) fn odata_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A random GUID (version 4 layout) from the OS generator.
pub(crate) fn random_guid() -> Result<String, EntraError> {
    let mut b = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut b)
        .map_err(|e| EntraError::Random(format!("the OS random generator failed: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Unix seconds now (adapter code: the zone talks to a real server on real time).
pub(crate) fn now_unix() -> i64 {
    rekey_core::clock::unix(SystemTime::now())
}

/// `Retry-After` as Graph sends it: seconds, possibly fractional (`2.128`). `None` for anything
/// else (an HTTP date is not what Graph documents; treated as absent).
pub(crate) fn retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    // Cap at a day: a larger value is as good as "later".
    Duration::try_from_secs_f64(secs.min(86_400.0)).ok()
}

/// Milliseconds, rounded up (so a 1.0001 s wait is not reported as 1 s).
pub(crate) fn ceil_ms(d: Duration) -> u64 {
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// ISO 8601 / RFC 3339 date-time (`2026-12-02T10:11:12Z`, fractional seconds and a numeric
/// offset allowed) → Unix seconds (fractions dropped).
pub(crate) fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let year: i64 = num(d.next()?, 4)?;
    let month: i64 = num(d.next()?, 2)?;
    let day: i64 = num(d.next()?, 2)?;
    let (clock, offset_secs) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (c, off) = time.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':').unwrap_or((&off[1..], "00"));
        (c, sign * (num(oh, 2)? * 3600 + num(om, 2)? * 60))
    };
    let whole = clock.split_once('.').map_or(clock, |(w, frac)| {
        if frac.bytes().all(|b| b.is_ascii_digit()) && !frac.is_empty() {
            w
        } else {
            "" // forces a parse failure below
        }
    });
    let mut t = whole.splitn(3, ':');
    let hour: i64 = num(t.next()?, 2)?;
    let minute: i64 = num(t.next()?, 2)?;
    let second: i64 = num(t.next()?, 2)?;
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second <= 60;
    if !valid {
        return None;
    }
    Some(
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
            - offset_secs,
    )
}

fn num(s: &str, digits: usize) -> Option<i64> {
    (s.len() == digits && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Howard Hinnant's `days_from_civil`: days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_base64_and_quotes() {
        assert_eq!(percent_encode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
        assert_eq!(percent_encode("x eq 'o''b'"), "x%20eq%20%27o%27%27b%27");
        assert_eq!(odata_string("o'brien@x"), "'o''brien@x'");
    }

    #[test]
    fn guids_are_random_v4() {
        let a = random_guid().unwrap();
        let b = random_guid().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn iso8601() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso8601("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_iso8601("2023-11-14T22:13:20.9999999Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_iso8601("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_iso8601("2023-11-14T21:13:20-01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_iso8601("2026-12-02T10:11:12Z"), Some(1_796_206_272));
        assert_eq!(parse_iso8601("2000-02-29T00:00:00Z"), Some(951_782_400));
        for bad in [
            "",
            "2023-11-14",
            "2023-13-01T00:00:00Z",
            "2023-11-14T22:13Z",
            "2023-11-14T22:13:20.Z",
            "20231114T221320Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_values() {
        assert_eq!(retry_after("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("2.128").map(ceil_ms), Some(2128));
        assert_eq!(retry_after("-1"), None);
        assert_eq!(retry_after("NaN"), None);
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(ceil_ms(Duration::from_nanos(1_000_001)), 2);
    }
}
