//! IMAP dates (`date`, SEARCH) and date-times (`date-time`, APPEND and INTERNALDATE).
//!
//! No calendar crate: the proleptic Gregorian conversion is Howard Hinnant's `days_from_civil`
//! algorithm. Years are limited to 1..=9999 because IMAP writes exactly four digits.

use std::fmt;

/// English month abbreviations as IMAP spells them (RFC 9051 §9 `date-month`).
pub const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Errors from building a date or date-time out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Year, month or day is out of range (e.g. 31-Feb or year 0).
    #[error("invalid calendar date")]
    InvalidDate,
    /// Hour, minute or second is out of range.
    #[error("invalid time of day")]
    InvalidTime,
    /// The zone offset is not within -23:59..=+23:59.
    #[error("invalid zone offset")]
    InvalidZone,
    /// The instant is outside years 1..=9999 in its zone.
    #[error("date-time out of range")]
    OutOfRange,
}

/// Days since 1970-01-01 of the proleptic Gregorian date `year-month-day`.
/// Inputs are not validated; use [`Date::new`] for that.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month 1..=12, day 1..=31).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // The arithmetic keeps month in 1..=12 and day in 1..=31.
    (year, month as u32, day as u32)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A calendar date without time or zone (SEARCH BEFORE/ON/SINCE...; RFC 9051 §9 `date`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// Validates and builds a date; year 1..=9999, month 1..=12, day within the month.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Date, DateError> {
        if !(1..=9999).contains(&year) || !(1..=12).contains(&month) {
            return Err(DateError::InvalidDate);
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(DateError::InvalidDate);
        }
        Ok(Date { year, month, day })
    }

    /// The year (1..=9999).
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The month (1..=12).
    pub fn month(&self) -> u8 {
        self.month
    }

    /// The day of the month (1..=31).
    pub fn day(&self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01.
    pub fn days_since_epoch(&self) -> i64 {
        days_from_civil(i64::from(self.year), u32::from(self.month), u32::from(self.day))
    }
}

impl fmt::Display for Date {
    /// IMAP form `d-Mon-yyyy`, e.g. `1-Feb-1994`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mon = MONTHS.get(usize::from(self.month) - 1).copied().unwrap_or("Jan");
        write!(f, "{}-{}-{:04}", self.day, mon, self.year)
    }
}

/// An instant with the zone it was expressed in (APPEND date-time, INTERNALDATE, SAVEDATE).
///
/// Stored as seconds since the Unix epoch (UTC) plus the zone offset in minutes, so comparison
/// of instants is plain integer comparison of [`DateTime::unix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    unix: i64,
    offset_minutes: i16,
}

/// Seconds since the epoch of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
const MIN_UNIX: i64 = -62_135_596_800;
const MAX_UNIX: i64 = 253_402_300_799;

impl DateTime {
    /// Builds from Unix seconds and an offset in minutes east of UTC (-1439..=1439).
    /// The local time must fall in years 1..=9999 so that it can be written.
    pub fn new(unix: i64, offset_minutes: i16) -> Result<DateTime, DateError> {
        if !(-1439..=1439).contains(&offset_minutes) {
            return Err(DateError::InvalidZone);
        }
        let local = unix.checked_add(i64::from(offset_minutes) * 60).ok_or(DateError::OutOfRange)?;
        if !(MIN_UNIX..=MAX_UNIX).contains(&local) {
            return Err(DateError::OutOfRange);
        }
        Ok(DateTime { unix, offset_minutes })
    }

    /// Builds from local civil time and zone, as written in `date-time`.
    pub fn from_civil(
        date: Date,
        hour: u8,
        minute: u8,
        second: u8,
        offset_minutes: i16,
    ) -> Result<DateTime, DateError> {
        // RFC 9051 §9 `time`: 2DIGIT ":" 2DIGIT ":" 2DIGIT; a leap second 60 is tolerated
        // and counted as 59 because Unix time has no leap seconds.
        if hour > 23 || minute > 59 || second > 60 {
            return Err(DateError::InvalidTime);
        }
        let local = date.days_since_epoch() * 86_400
            + i64::from(hour) * 3600
            + i64::from(minute) * 60
            + i64::from(second.min(59));
        DateTime::new(local - i64::from(offset_minutes) * 60, offset_minutes)
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix(&self) -> i64 {
        self.unix
    }

    /// Zone offset in minutes east of UTC.
    pub fn offset_minutes(&self) -> i16 {
        self.offset_minutes
    }

    /// The local calendar date in the stored zone.
    pub fn local_date(&self) -> Date {
        let local = self.unix + i64::from(self.offset_minutes) * 60;
        let (y, m, d) = civil_from_days(local.div_euclid(86_400));
        // Range was validated at construction, so these conversions cannot fail.
        Date {
            year: u16::try_from(y).unwrap_or(1),
            month: u8::try_from(m).unwrap_or(1),
            day: u8::try_from(d).unwrap_or(1),
        }
    }
}

impl fmt::Display for DateTime {
    /// IMAP `date-time` without the quotes: `dd-Mon-yyyy hh:mm:ss +zzzz`, day space padded
    /// (RFC 9051 §9 `date-day-fixed`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.unix + i64::from(self.offset_minutes) * 60;
        let date = self.local_date();
        let secs = local.rem_euclid(86_400);
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        let sign = if self.offset_minutes < 0 { '-' } else { '+' };
        let off = self.offset_minutes.unsigned_abs();
        let mon = MONTHS.get(usize::from(date.month) - 1).copied().unwrap_or("Jan");
        write!(
            f,
            "{:>2}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}",
            date.day,
            mon,
            date.year,
            h,
            m,
            s,
            sign,
            off / 60,
            off % 60
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for d in [-719_162, -1, 0, 1, 11_016, 19_000, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(civil_from_days(-719_162), (1, 1, 1));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }

    #[test]
    fn date_validation() {
        assert!(Date::new(2024, 2, 29).is_ok());
        assert!(Date::new(2023, 2, 29).is_err());
        assert!(Date::new(1900, 2, 29).is_err());
        assert!(Date::new(0, 1, 1).is_err());
        assert!(Date::new(2023, 13, 1).is_err());
        assert_eq!(Date::new(1994, 2, 1).unwrap().to_string(), "1-Feb-1994");
    }

    #[test]
    fn date_time_format_and_zone() {
        // RFC 9051 §6.3.12 example: "7-Feb-1994 21:52:25 -0800".
        let d = Date::new(1994, 2, 7).unwrap();
        let dt = DateTime::from_civil(d, 21, 52, 25, -480).unwrap();
        assert_eq!(dt.to_string(), " 7-Feb-1994 21:52:25 -0800");
        assert_eq!(dt.unix(), 760_686_745);
        let utc = DateTime::new(dt.unix(), 0).unwrap();
        assert_eq!(utc.to_string(), " 8-Feb-1994 05:52:25 +0000");
        assert!(DateTime::new(0, 1440).is_err());
        assert!(DateTime::new(i64::MAX, 0).is_err());
        assert!(DateTime::from_civil(d, 24, 0, 0, 0).is_err());
        let early = DateTime::from_civil(Date::new(1, 1, 1).unwrap(), 0, 0, 0, 60).unwrap();
        assert_eq!(early.to_string(), " 1-Jan-0001 00:00:00 +0100");
    }
}
