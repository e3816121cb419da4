//! ISO 8601 times, as `--from-time` and `--to-datetime` take them and record timestamps
//! print: `2024-05-01T12:30:00Z`, `2024-05-01T12:30:00.250+02:00`, `2024-05-01T12:30`,
//! `2024-05-01`. A time without an offset is UTC; a date alone is its midnight, UTC.
//! Written out in UTC with milliseconds: `2024-05-01T10:30:00.250Z`.

/// Why a time does not parse. The text says which part is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not an ISO 8601 time such as 2024-05-01T12:30:00Z or 2024-05-01 ({reason})")]
pub struct DateTimeError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Milliseconds since the Unix epoch of an ISO 8601 time.
///
/// # Errors
/// [`DateTimeError`] naming what is wrong.
pub fn parse_iso8601(text: &str) -> Result<i64, DateTimeError> {
    let error = |reason| DateTimeError {
        text: text.to_owned(),
        reason,
    };
    let trimmed = text.trim();
    let split = trimmed.len().min(10);
    let (Some(date), Some(rest)) = (trimmed.get(..split), trimmed.get(split..)) else {
        return Err(error("the date is not YYYY-MM-DD"));
    };
    let [year, month, day] = fields::<3>(date, '-').ok_or(error("the date is not YYYY-MM-DD"))?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(error("no such date"));
    }
    let (time, offset) = split_offset(rest).ok_or(error("the offset is not Z or +HH:MM"))?;
    let time_ms = parse_time(time).ok_or(error("the time is not THH:MM[:SS[.fff]]"))?;
    let days = days_from_civil(year, month, day);
    Ok(days * MS_PER_DAY + time_ms - offset * MS_PER_MINUTE)
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SS.sssZ`.
pub fn format_iso8601(ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / MS_PER_HOUR,
        in_day % MS_PER_HOUR / MS_PER_MINUTE,
        in_day % MS_PER_MINUTE / 1000,
        in_day % 1000
    )
}

const MS_PER_MINUTE: i64 = 60 * 1000;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// `N` unsigned numbers separated by `separator`, each all ASCII digits.
fn fields<const N: usize>(text: &str, separator: char) -> Option<[i64; N]> {
    let mut values = [0i64; N];
    let mut parts = text.split(separator);
    for value in &mut values {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 4 || !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        *value = part.parse().ok()?;
    }
    parts.next().is_none().then_some(values)
}

/// Splits `THH:MM...` from its offset: `Z`, `+HH:MM`, `-HH:MM`, `+HHMM`, or none. Returns
/// the time text and the offset in minutes east of UTC.
fn split_offset(rest: &str) -> Option<(&str, i64)> {
    if let Some(time) = rest.strip_suffix('Z').or_else(|| rest.strip_suffix('z')) {
        return Some((time, 0));
    }
    // An offset sign comes after the time's start (`T12:00+02:00`), never first.
    match rest
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '+' || *c == '-')
    {
        None => Some((rest, 0)),
        Some((index, sign)) => {
            let offset = &rest[index + 1..];
            let [hours, minutes] = match offset.len() {
                4 if !offset.contains(':') => {
                    fields::<2>(&format!("{}:{}", offset.get(..2)?, offset.get(2..)?), ':')?
                }
                _ => fields::<2>(offset, ':')?,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let minutes = hours * 60 + minutes;
            Some((&rest[..index], if sign == '-' { -minutes } else { minutes }))
        }
    }
}

/// Milliseconds into the day of `THH:MM[:SS[.fff]]` (or with a space for `T`); 0 for "".
fn parse_time(time: &str) -> Option<i64> {
    if time.is_empty() {
        return Some(0);
    }
    let time = time.strip_prefix('T').or_else(|| time.strip_prefix(' '))?;
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (time, None),
    };
    let (hours, minutes, seconds) = match clock.matches(':').count() {
        1 => {
            let [hours, minutes] = fields::<2>(clock, ':')?;
            (hours, minutes, 0)
        }
        2 => {
            let [hours, minutes, seconds] = fields::<3>(clock, ':')?;
            (hours, minutes, seconds)
        }
        _ => return None,
    };
    if hours > 23 || minutes > 59 || seconds > 59 || (fraction.is_some() && clock.len() != 8) {
        return None;
    }
    let millis = match fraction {
        None => 0,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            // Only milliseconds count; finer digits are dropped.
            let padded = format!("{digits:0<3}");
            padded[..3].parse::<i64>().ok()?
        }
        Some(_) => return None,
    };
    Some(hours * MS_PER_HOUR + minutes * MS_PER_MINUTE + seconds * 1000 + millis)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01: the inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_type() {
        // Proves each accepted form against epoch milliseconds computed by hand
        // (1714566600000 is 2024-05-01T12:30:00Z).
        let noon_thirty = 1_714_566_600_000;
        assert_eq!(parse_iso8601("2024-05-01T12:30:00Z"), Ok(noon_thirty));
        assert_eq!(parse_iso8601("2024-05-01T12:30:00"), Ok(noon_thirty));
        assert_eq!(parse_iso8601("2024-05-01T12:30"), Ok(noon_thirty));
        assert_eq!(parse_iso8601("2024-05-01 12:30:00"), Ok(noon_thirty));
        assert_eq!(parse_iso8601("2024-05-01T14:30:00+02:00"), Ok(noon_thirty));
        assert_eq!(parse_iso8601("2024-05-01T10:30:00-0200"), Ok(noon_thirty));
        assert_eq!(
            parse_iso8601("2024-05-01T12:30:00.25Z"),
            Ok(noon_thirty + 250)
        );
        assert_eq!(parse_iso8601("1970-01-01"), Ok(0));
        assert_eq!(parse_iso8601("2024-02-29"), Ok(1_709_164_800_000));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        // Proves malformed and impossible times are errors naming the text, not panics.
        for text in [
            "",
            "yesterday",
            "2024-13-01",
            "2023-02-29",
            "2024-05-01T25:00",
            "2024-05-01T12",
            "2024-05-01T12:30:00+25:00",
            "2024-05-01X12:30",
            "2024-05-01T12:30.5",
            "1714566600000",
            "2024-05-0é",
            "2024-05-01T12:30+é12",
        ] {
            let error = parse_iso8601(text).expect_err(text);
            assert_eq!(error.text, text);
        }
    }

    #[test]
    fn formats_and_parses_back() {
        // Proves format and parse are inverses across eras, leap days and negative times.
        for ms in [
            0,
            1_714_566_600_250,
            1_709_164_800_000,
            -1,
            -62_135_596_800_000,
            253_402_300_799_999,
        ] {
            let text = format_iso8601(ms);
            assert_eq!(parse_iso8601(&text), Ok(ms), "{text}");
        }
        assert_eq!(
            format_iso8601(1_714_566_600_250),
            "2024-05-01T12:30:00.250Z"
        );
    }
}
