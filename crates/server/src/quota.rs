//! Quotas (RFC 9208) as the server wires them: sizes in configuration and CLI (`"10G"`), and
//! sizes for people (`9.5 MiB`).

/// Binary units, largest first: (suffix letter, bytes).
const UNITS: [(char, u64); 5] =
    [('P', 1 << 50), ('T', 1 << 40), ('G', 1 << 30), ('M', 1 << 20), ('K', 1 << 10)];

/// Parses a size: a number of bytes, optionally with a fraction and a binary unit
/// (`K`, `M`, `G`, `T`, `P`; `KB`/`KiB` spellings and a space before the unit are accepted,
/// case does not matter): `"10G"`, `"1.5 GiB"`, `"512m"`, `"1048576"`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let wrong = || format!("not a size: {text:?} (a number with K, M, G or T)");
    let trimmed = text.trim();
    let digits_end = trimmed.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let unit = unit.trim().to_ascii_uppercase();
    let multiplier = match unit.as_str() {
        "" | "B" => 1,
        _ => {
            let letter = unit.chars().next().ok_or_else(wrong)?;
            let rest = &unit[1..];
            if !matches!(rest, "" | "B" | "IB") {
                return Err(wrong());
            }
            UNITS.iter().find(|(l, _)| *l == letter).map(|(_, bytes)| *bytes).ok_or_else(wrong)?
        }
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || fraction.len() > 6 {
        return Err(wrong());
    }
    let whole: u128 = whole.parse().map_err(|_| wrong())?;
    let mut bytes = whole * u128::from(multiplier);
    if !fraction.is_empty() {
        let scale = 10u128.pow(u32::try_from(fraction.len()).map_err(|_| wrong())?);
        let part: u128 = fraction.parse().map_err(|_| wrong())?;
        bytes += part * u128::from(multiplier) / scale;
    }
    u64::try_from(bytes).map_err(|_| format!("{text:?} is too large"))
}

/// A size for people: `512 B`, `10 GiB`, `9.5 MiB` (one decimal, rounded down).
pub(crate) fn human_bytes(bytes: u64) -> String {
    for (letter, unit) in UNITS {
        if bytes >= unit {
            let tenths = u128::from(bytes) * 10 / u128::from(unit);
            return if tenths % 10 == 0 {
                format!("{} {letter}iB", tenths / 10)
            } else {
                format!("{}.{} {letter}iB", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("10 GiB"), Ok(10 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("2kb"), Ok(2048));
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("7 B"), Ok(7));
        for bad in ["", "G", "10X", "10GG", "1.2.3G", "-1G", "ten", "10 Gibibytes", "1.1234567G"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("99999999999P").unwrap_err().contains("too large"));
    }

    #[test]
    fn sizes_print() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1 KiB");
        assert_eq!(human_bytes(10 << 30), "10 GiB");
        assert_eq!(human_bytes(9_961_472), "9.5 MiB");
        assert_eq!(parse_size(&human_bytes(3 << 40)), Ok(3 << 40));
    }
}
