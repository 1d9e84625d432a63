//! RFC 3261 §20.17 (Date) with the RFC 1123 / RFC 7231 §7.1.1.1 IMF-fixdate form, always GMT.

use std::fmt::Write as _;

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `(year, month 1..=12, day 1..=31)` of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Eras of 400 years (146097 days) starting 0000-03-01, so that leap days fall at the end.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends `Sat, 13 Nov 2010 23:29:00 GMT` for `unix_secs` to `out`.
pub fn write_http_date(unix_secs: i64, out: &mut String) {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let wd = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let mon = MONTHS[(m as usize).saturating_sub(1).min(11)];
    let _ = write!(
        out,
        "{wd}, {d:02} {mon} {y:04} {:02}:{:02}:{:02} GMT",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(t: i64) -> String {
        let mut s = String::new();
        write_http_date(t, &mut s);
        s
    }

    #[test]
    fn known_dates() {
        assert_eq!(date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // RFC 3261 §20.17 example.
        assert_eq!(date(1_289_690_940), "Sat, 13 Nov 2010 23:29:00 GMT");
        assert_eq!(date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(date(4_133_980_799), "Fri, 31 Dec 2100 23:59:59 GMT");
        assert_eq!(
            date(4_107_542_399),
            "Sun, 28 Feb 2100 23:59:59 GMT",
            "2100 is no leap year"
        );
    }
}
