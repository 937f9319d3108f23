//! Wall-clock helpers: unix milliseconds for the journal (the store has no clock) and the
//! local date and time for fields 12, 13 and 15. Timeouts never use these; they use tokio's
//! monotonic clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the unix epoch (0 if the system clock is before it).
pub fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A local date and time as the messages carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    /// `MMDD` (fields 13 and 15).
    pub mmdd: String,
    /// `hhmmss` (field 12).
    pub hhmmss: String,
    /// The unix milliseconds of the local day's midnight.
    pub day_start_ms: i64,
}

/// The local date and time at `unix_ms` in a zone `offset_minutes` east of UTC.
pub fn local_at(unix_ms: i64, offset_minutes: i32) -> LocalTime {
    let offset_ms = i64::from(offset_minutes) * 60_000;
    let local = unix_ms + offset_ms;
    let days = local.div_euclid(86_400_000);
    let ms_of_day = local.rem_euclid(86_400_000);
    let secs = ms_of_day / 1000;
    let (_, month, day) = civil_from_days(days);
    LocalTime {
        mmdd: format!("{month:02}{day:02}"),
        hhmmss: format!("{:02}{:02}{:02}", secs / 3600, secs / 60 % 60, secs % 60),
        day_start_ms: days * 86_400_000 - offset_ms,
    }
}

/// The local date and time now.
pub fn local_now(offset_minutes: i32) -> LocalTime {
    local_at(unix_millis(), offset_minutes)
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_dates() {
        // 2024-02-29 23:59:59 UTC is 2024-03-01 07:59:59 in UTC+8.
        let t = local_at(1_709_251_199_000, 480);
        assert_eq!((t.mmdd.as_str(), t.hhmmss.as_str()), ("0301", "075959"));
        assert_eq!(t.day_start_ms, 1_709_222_400_000);
        let u = local_at(1_709_251_199_000, 0);
        assert_eq!((u.mmdd.as_str(), u.hhmmss.as_str()), ("0229", "235959"));
        assert_eq!(local_at(0, 0).mmdd, "0101");
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
