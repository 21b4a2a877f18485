//! Dates as Twilio writes them (RFC 2822 in resources) and as the control routes do (ISO 8601).

use std::time::{SystemTime, UNIX_EPOCH};

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A UTC civil date and time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    weekday: usize,
    hour: u64,
    minute: u64,
    second: u64,
}

fn civil(t: SystemTime) -> Civil {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = rekey_core::clock::civil_from_days(days);
    Civil {
        year,
        month,
        day,
        // 1970-01-01 was a Thursday.
        weekday: usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0),
        hour: rem / 3600,
        minute: (rem / 60) % 60,
        second: rem % 60,
    }
}

/// `2024-05-01T12:00:00Z`.
#[must_use]
pub fn iso8601(t: SystemTime) -> String {
    let c = civil(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `Wed, 01 May 2024 12:00:00 +0000`, as in Twilio's `date_created`.
#[must_use]
pub fn rfc2822(t: SystemTime) -> String {
    let c = civil(t);
    let month = MONTHS
        .get(usize::try_from(c.month).unwrap_or(1) - 1)
        .unwrap_or(&"Jan");
    format!(
        "{}, {:02} {month} {:04} {:02}:{:02}:{:02} +0000",
        WEEKDAYS.get(c.weekday).unwrap_or(&"Sun"),
        c.day,
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc2822(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(iso8601(t), "2023-11-14T22:13:20Z");
        assert_eq!(rfc2822(t), "Tue, 14 Nov 2023 22:13:20 +0000");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(1_709_208_000);
        assert_eq!(rfc2822(t), "Thu, 29 Feb 2024 12:00:00 +0000");
    }
}
