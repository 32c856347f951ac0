//! Date parts for the `date` and `currentdate` tests (RFC 5260 §4.2): an instant and a zone
//! offset turned into "year", "date", "time", "weekday", ... as strings.

/// The date parts RFC 5260 §4.2 defines.
pub(crate) const DATE_PARTS: [&str; 13] = [
    "year", "month", "day", "date", "julian", "hour", "minute", "second", "time", "iso8601", "std11", "zone",
    "weekday",
];

/// Whether `part` names a date part (case-insensitive).
pub(crate) fn is_date_part(part: &str) -> bool {
    DATE_PARTS.iter().any(|p| p.eq_ignore_ascii_case(part))
}

/// A zone written as `+hhmm` / `-hhmm` (RFC 5260 §4.1): its offset east of UTC in seconds.
pub(crate) fn parse_zone(zone: &str) -> Option<i32> {
    let b = zone.as_bytes();
    if b.len() != 5 || !matches!(b[0], b'+' | b'-') || !b[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let hours = i32::from(b[1] - b'0') * 10 + i32::from(b[2] - b'0');
    let minutes = i32::from(b[3] - b'0') * 10 + i32::from(b[4] - b'0');
    if hours > 23 || minutes > 59 {
        return None;
    }
    let secs = hours * 3600 + minutes * 60;
    Some(if b[0] == b'-' { -secs } else { secs })
}

/// Civil date of a day number (days since 1970-01-01): (year, month, day).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The value of `part` for the instant `unix` (seconds) seen in the zone `offset` (seconds east
/// of UTC); `None` for an unknown part.
pub(crate) fn date_part(unix: i64, offset: i32, part: &str) -> Option<String> {
    let local = unix + i64::from(offset);
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (year, month, day) = civil(days);
    let (hour, minute, second) = (secs / 3600, secs / 60 % 60, secs % 60);
    let sign = if offset < 0 { '-' } else { '+' };
    let (zh, zm) = (offset.unsigned_abs() / 3600, offset.unsigned_abs() / 60 % 60);
    // 1970-01-01 was a Thursday (4).
    let weekday = (days + 4).rem_euclid(7);
    Some(match part.to_ascii_lowercase().as_str() {
        "year" => format!("{year:04}"),
        "month" => format!("{month:02}"),
        "day" => format!("{day:02}"),
        "date" => format!("{year:04}-{month:02}-{day:02}"),
        // The Modified Julian Day: days since 1858-11-17.
        "julian" => (days + 40_587).to_string(),
        "hour" => format!("{hour:02}"),
        "minute" => format!("{minute:02}"),
        "second" => format!("{second:02}"),
        "time" => format!("{hour:02}:{minute:02}:{second:02}"),
        "iso8601" => {
            format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{sign}{zh:02}:{zm:02}")
        }
        "std11" => {
            const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
            const MONTHS: [&str; 12] =
                ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
            format!(
                "{}, {day} {} {year:04} {hour:02}:{minute:02}:{second:02} {sign}{zh:02}{zm:02}",
                DAYS[weekday as usize],
                MONTHS[(month - 1) as usize]
            )
        }
        "zone" => format!("{sign}{zh:02}{zm:02}"),
        "weekday" => weekday.to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_an_instant_in_a_zone() {
        // 2024-02-29 23:30:15 UTC, a Thursday; in +0130 it is Friday 2024-03-01 01:00:15.
        let t = 1_709_249_415;
        assert_eq!(date_part(t, 0, "date").as_deref(), Some("2024-02-29"));
        assert_eq!(date_part(t, 0, "weekday").as_deref(), Some("4"));
        assert_eq!(date_part(t, 0, "time").as_deref(), Some("23:30:15"));
        let east = parse_zone("+0130").expect("a zone");
        assert_eq!(date_part(t, east, "date").as_deref(), Some("2024-03-01"));
        assert_eq!(date_part(t, east, "weekday").as_deref(), Some("5"));
        assert_eq!(date_part(t, east, "iso8601").as_deref(), Some("2024-03-01T01:00:15+01:30"));
        assert_eq!(date_part(t, east, "std11").as_deref(), Some("Fri, 1 Mar 2024 01:00:15 +0130"));
        assert_eq!(date_part(t, -3600, "zone").as_deref(), Some("-0100"));
        // RFC 5260 §4.2's example: MJD 0 is 1858-11-17.
        assert_eq!(date_part(-3_506_716_800, 0, "julian").as_deref(), Some("0"));
        assert_eq!(date_part(t, 0, "YEAR").as_deref(), Some("2024"));
        assert_eq!(date_part(t, 0, "fortnight"), None);
        assert_eq!(parse_zone("+2400"), None);
        assert_eq!(parse_zone("0100"), None);
        assert_eq!(parse_zone("-0000"), Some(0));
    }
}
