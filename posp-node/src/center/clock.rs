//! The center's local wall-clock time (for message fields, expiry and the load's host date),
//! computed from the system clock and a fixed UTC offset. Timeouts never use it: they run
//! on tokio's monotonic clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// A local date and time broken into the forms the messages need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    /// Unix milliseconds (UTC) of the instant.
    pub unix_ms: i64,
    /// `YYYYMMDD`.
    pub yyyymmdd: String,
    /// `MMDD` (field 13).
    pub mmdd: String,
    /// `hhmmss` (field 12).
    pub hhmmss: String,
    /// `YYMM` (compared with card expiry).
    pub yymm: String,
    /// Day of the year, 1 to 366.
    pub day_of_year: u32,
    /// The year.
    pub year: i64,
}

impl LocalTime {
    /// Now, `utc_offset_minutes` east of UTC.
    pub fn now(utc_offset_minutes: i32) -> LocalTime {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        LocalTime::at(ms, utc_offset_minutes)
    }

    /// The local time of unix milliseconds `unix_ms`.
    pub fn at(unix_ms: i64, utc_offset_minutes: i32) -> LocalTime {
        let local_s = unix_ms.div_euclid(1000) + i64::from(utc_offset_minutes) * 60;
        let days = local_s.div_euclid(86_400);
        let secs = local_s.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let day_of_year = u32::try_from(days - days_from_civil(y, 1, 1) + 1).unwrap_or(1);
        let (hh, mi, ss) = (secs / 3600, (secs / 60) % 60, secs % 60);
        LocalTime {
            unix_ms,
            yyyymmdd: format!("{y:04}{m:02}{d:02}"),
            mmdd: format!("{m:02}{d:02}"),
            hhmmss: format!("{hh:02}{mi:02}{ss:02}"),
            yymm: format!("{:02}{m:02}", y.rem_euclid(100)),
            day_of_year,
            year: y,
        }
    }

    /// The date as 4 BCD bytes `YYYYMMDD` (tag DF11).
    pub fn date_bcd(&self) -> [u8; 4] {
        bcd(&self.yyyymmdd)
    }

    /// The time as 3 BCD bytes `hhmmss` (tag DF12).
    pub fn time_bcd(&self) -> [u8; 3] {
        bcd(&self.hhmmss)
    }
}

/// Packs decimal digits two per byte (callers pass exactly `2 * N` digits).
fn bcd<const N: usize>(digits: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(digits.as_bytes().chunks(2)) {
        let hi = pair.first().map_or(0, |b| b.wrapping_sub(b'0') & 0x0F);
        let lo = pair.get(1).map_or(0, |b| b.wrapping_sub(b'0') & 0x0F);
        *o = (hi << 4) | lo;
    }
    out
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// A civil date to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        // 2024-02-29 23:30:05 UTC is 2024-03-01 07:30:05 in UTC+8.
        let t = LocalTime::at(1_709_249_405_000, 480);
        assert_eq!(t.yyyymmdd, "20240301");
        assert_eq!(t.mmdd, "0301");
        assert_eq!(t.hhmmss, "073005");
        assert_eq!(t.yymm, "2403");
        assert_eq!(t.day_of_year, 61);
        assert_eq!(t.date_bcd(), [0x20, 0x24, 0x03, 0x01]);
        assert_eq!(t.time_bcd(), [0x07, 0x30, 0x05]);
        let u = LocalTime::at(1_709_249_405_000, 0);
        assert_eq!((u.yyyymmdd.as_str(), u.day_of_year), ("20240229", 60));
        let e = LocalTime::at(0, 0);
        assert_eq!(
            (e.yyyymmdd.as_str(), e.hhmmss.as_str()),
            ("19700101", "000000")
        );
    }
}
