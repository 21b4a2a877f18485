//! Dates for checkpoints and retention, UTC, without a date library.

/// `YYYY-MM-DD` → milliseconds since the Unix epoch at 00:00 UTC that day.
#[must_use]
pub fn date_ms(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let mut field = |len: usize| {
        parts
            .next()
            .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<i64>().ok())
    };
    let (year, month, day) = (field(4)?, field(2)?, field(2)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max = *days_in_month.get(usize::try_from(month.checked_sub(1)?).ok()?)?;
    if day < 1 || day > max {
        return None;
    }
    let days =
        crate::clock::days_from_civil(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?);
    Some(days * 86_400_000)
}

/// `at_ms` as `YYYY-MM-DDTHH:MM:SSZ` (UTC, proleptic Gregorian).
#[must_use]
pub fn utc(at_ms: i64) -> String {
    let secs = at_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::clock::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
