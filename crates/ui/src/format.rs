//! Locale formatting: numbers, sizes, dates and times (UTC), relative times.

use crate::i18n::{Lang, Tr};

/// Thousands separator of Russian: a no-break space (CLDR).
const RU_GROUP: char = '\u{a0}';

/// A whole number with thousands separators: `1,234,567` / `1 234 567` (no-break spaces).
pub fn number(lang: Lang, n: i128) -> String {
    let digits = n.unsigned_abs().to_string();
    let sep = match lang {
        Lang::En => ',',
        Lang::Ru => RU_GROUP,
    };
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 2 + 1);
    if n < 0 {
        out.push('-');
    }
    let first = digits.len() % 3;
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (i + 3 - first).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// A number with a fixed number of decimals: `1,234.5` / `1 234,5`.
pub fn decimal(lang: Lang, x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return "—".to_owned();
    }
    let text = format!("{:.*}", digits, x.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let int: i128 = int.parse().unwrap_or(0);
    let negative = x < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0');
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(&number(lang, int));
    if !frac.is_empty() {
        out.push(match lang {
            Lang::En => '.',
            Lang::Ru => ',',
        });
        out.push_str(frac);
    }
    out
}

/// A percentage with one decimal: `45.2%` / `45,2 %`.
pub fn percent(lang: Lang, x: f64) -> String {
    let d = decimal(lang, x, 1);
    match lang {
        Lang::En => format!("{d}%"),
        Lang::Ru => format!("{d}\u{a0}%"),
    }
}

/// A byte size in binary units: `512 B`, `1.5 GiB` / `512 Б`, `1,5 ГиБ`.
pub fn bytes(lang: Lang, n: u64) -> String {
    const EN: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    const RU: [&str; 6] = ["Б", "КиБ", "МиБ", "ГиБ", "ТиБ", "ПиБ"];
    let units = match lang {
        Lang::En => &EN,
        Lang::Ru => &RU,
    };
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    let shown = if unit == 0 {
        number(lang, i128::from(n))
    } else if value >= 100.0 {
        decimal(lang, value, 0)
    } else {
        decimal(lang, value, 1)
    };
    format!("{shown}\u{a0}{}", units[unit])
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31), proleptic Gregorian.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
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

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

fn parts(ms: i64) -> Parts {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    Parts {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem / 60 % 60,
        second: rem % 60,
    }
}

/// Date and time in UTC: `2026-11-21 14:05:09 UTC` / `21.11.2026 14:05:09 UTC`.
pub fn datetime(lang: Lang, ms: i64) -> String {
    let p = parts(ms);
    match lang {
        Lang::En => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            p.year, p.month, p.day, p.hour, p.minute, p.second
        ),
        Lang::Ru => format!(
            "{:02}.{:02}.{:04} {:02}:{:02}:{:02} UTC",
            p.day, p.month, p.year, p.hour, p.minute, p.second
        ),
    }
}

/// A date alone: `2026-11-21` / `21.11.2026`.
pub fn date(lang: Lang, ms: i64) -> String {
    let p = parts(ms);
    match lang {
        Lang::En => format!("{:04}-{:02}-{:02}", p.year, p.month, p.day),
        Lang::Ru => format!("{:02}.{:02}.{:04}", p.day, p.month, p.year),
    }
}

/// A short day for chart axes: `11-21` / `21.11`.
pub fn short_day(lang: Lang, ms: i64) -> String {
    let p = parts(ms);
    match lang {
        Lang::En => format!("{:02}-{:02}", p.month, p.day),
        Lang::Ru => format!("{:02}.{:02}", p.day, p.month),
    }
}

/// `HH:MM` in UTC (the same in both languages).
pub fn hour_minute(ms: i64) -> String {
    let p = parts(ms);
    format!("{:02}:{:02}", p.hour, p.minute)
}

/// ISO 8601 / RFC 3339 in UTC with milliseconds, for `<time datetime>`.
pub fn iso(ms: i64) -> String {
    let p = parts(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.year,
        p.month,
        p.day,
        p.hour,
        p.minute,
        p.second,
        ms.rem_euclid(1000)
    )
}

/// (year, month, day) → days since 1970-01-01, proleptic Gregorian.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num_field(text: &str, min: u32, max: u32) -> Option<u32> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u32 = text.parse().ok()?;
    (min..=max).contains(&v).then_some(v)
}

/// `HH:MM[:SS[.fff]]` → ms into the day.
fn parse_clock(text: &str) -> Option<i64> {
    let (clock, frac) = text.split_once('.').unwrap_or((text, ""));
    let mut it = clock.split(':');
    let h = num_field(it.next()?, 0, 23)?;
    let m = num_field(it.next()?, 0, 59)?;
    let s = match it.next() {
        Some(s) => num_field(s, 0, 60)?,
        None => 0,
    };
    if it.next().is_some() {
        return None;
    }
    let ms = if frac.is_empty() {
        0
    } else {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let padded = format!("{frac:0<3}");
        padded[..3].parse::<i64>().ok()?
    };
    Some((i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s)) * 1000 + ms)
}

/// A time as people type it into the dashboard's range fields, read as UTC unless an offset
/// is given: milliseconds since the epoch, `now`, `now-15m` (`s m h d w`), `2026-11-21`,
/// `2026-11-21 14:05[:09]`, RFC 3339 (`2026-11-21T14:05:09Z`, `…+03:00`), `21.11.2026`,
/// `21.11.2026 14:05[:09]`.
pub fn parse_time(text: &str, now: i64) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    if text == "now" {
        return Some(now);
    }
    if let Some(ago) = text.strip_prefix("now-") {
        let unit = ago.chars().last()?;
        let n: i64 = ago[..ago.len() - unit.len_utf8()].parse().ok()?;
        let ms = match unit {
            's' => 1000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 7 * 86_400_000,
            _ => return None,
        };
        return now.checked_sub(n.checked_mul(ms)?);
    }
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], text[i + 1..].trim()),
        None => (text, ""),
    };
    let (year, month, day) = if date.contains('.') {
        let mut it = date.split('.');
        let d = num_field(it.next()?, 1, 31)?;
        let m = num_field(it.next()?, 1, 12)?;
        let y = num_field(it.next()?, 1970, 9999)?;
        if it.next().is_some() {
            return None;
        }
        (y, m, d)
    } else {
        let mut it = date.split('-');
        let y = num_field(it.next()?, 1970, 9999)?;
        let m = num_field(it.next()?, 1, 12)?;
        let d = num_field(it.next()?, 1, 31)?;
        if it.next().is_some() {
            return None;
        }
        (y, m, d)
    };
    // reject 31.02. and the like
    let days = days_from_civil(i64::from(year), month, day);
    if civil_from_days(days) != (i64::from(year), month, day) {
        return None;
    }
    let (clock, offset_min) = if rest.is_empty() {
        ("", 0)
    } else if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, off) = rest.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':').unwrap_or((&off[1..], "0"));
        let mins = i64::from(num_field(oh, 0, 23)?) * 60 + i64::from(num_field(om, 0, 59)?);
        (c, sign * mins)
    } else {
        (rest, 0)
    };
    let in_day = if clock.is_empty() {
        0
    } else {
        parse_clock(clock)?
    };
    Some(days * 86_400_000 + in_day - offset_min * 60_000)
}

/// Relative to `tr.now`: "just now", "5 min ago", "3 h ago", "2 d ago", "in 5 min", ...
pub fn relative(tr: &Tr, ms: i64) -> String {
    let diff = tr.now.saturating_sub(ms);
    let future = diff < 0;
    let secs = diff.unsigned_abs() / 1000;
    if secs < 45 {
        return tr.t("time.just_now").to_owned();
    }
    let (n, past_key, future_key) = if secs < 3600 {
        (
            secs.div_ceil(60).clamp(1, 59),
            "time.min_ago",
            "time.in_min",
        )
    } else if secs < 86_400 {
        (secs / 3600, "time.h_ago", "time.in_h")
    } else {
        (secs / 86_400, "time.d_ago", "time.in_d")
    };
    let key = if future { future_key } else { past_key };
    tr.tf(key, &[("n", &number(tr.lang, i128::from(n)))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number(Lang::En, 0), "0");
        assert_eq!(number(Lang::En, 999), "999");
        assert_eq!(number(Lang::En, 1000), "1,000");
        assert_eq!(number(Lang::En, 1_234_567), "1,234,567");
        assert_eq!(number(Lang::En, -1_234_567), "-1,234,567");
        assert_eq!(number(Lang::Ru, 1_234_567), "1\u{a0}234\u{a0}567");
        assert_eq!(number(Lang::Ru, 12_345), "12\u{a0}345");
        assert_eq!(decimal(Lang::En, 1234.56, 1), "1,234.6");
        assert_eq!(decimal(Lang::Ru, 1234.56, 1), "1\u{a0}234,6");
        assert_eq!(decimal(Lang::Ru, -0.04, 1), "0,0");
        assert_eq!(decimal(Lang::En, -2.5, 1), "-2.5");
        assert_eq!(percent(Lang::En, 45.25), "45.2%");
        assert_eq!(percent(Lang::Ru, 45.26), "45,3\u{a0}%");
        assert_eq!(bytes(Lang::En, 512), "512\u{a0}B");
        assert_eq!(bytes(Lang::En, 1536 * 1024 * 1024), "1.5\u{a0}GiB");
        assert_eq!(bytes(Lang::Ru, 1536 * 1024 * 1024), "1,5\u{a0}ГиБ");
        assert_eq!(bytes(Lang::En, 500 * 1024 * 1024), "500\u{a0}MiB");
    }

    #[test]
    fn dates() {
        // 2026-05-01T12:00:00.123Z
        let t = 1_777_636_800_123;
        assert_eq!(datetime(Lang::En, t), "2026-05-01 12:00:00 UTC");
        assert_eq!(datetime(Lang::Ru, t), "01.05.2026 12:00:00 UTC");
        assert_eq!(iso(t), "2026-05-01T12:00:00.123Z");
        assert_eq!(date(Lang::Ru, t), "01.05.2026");
        assert_eq!(short_day(Lang::En, t), "05-01");
        assert_eq!(short_day(Lang::Ru, t), "01.05");
        assert_eq!(hour_minute(t + 65 * 60_000), "13:05");
        assert_eq!(datetime(Lang::En, 0), "1970-01-01 00:00:00 UTC");
        assert_eq!(datetime(Lang::En, -1), "1969-12-31 23:59:59 UTC");
        // leap day and end of a leap year
        assert_eq!(date(Lang::En, 951_782_400_000), "2000-02-29");
        assert_eq!(date(Lang::En, 1_735_603_200_000), "2024-12-31");
        // every day of a few years round-trips through the calendar in order
        let mut prev = civil_from_days(-1);
        for d in 0..(366 * 5) {
            let c = civil_from_days(d);
            assert!(c > prev, "{d}");
            prev = c;
        }
    }

    #[test]
    fn parsing_times() {
        let now = 1_800_000_000_000;
        let t = 1_777_636_800_000; // 2026-05-01T12:00:00Z
        assert_eq!(parse_time("123", now), Some(123));
        assert_eq!(parse_time("now", now), Some(now));
        assert_eq!(parse_time("now-15m", now), Some(now - 900_000));
        assert_eq!(parse_time("now-2d", now), Some(now - 2 * 86_400_000));
        assert_eq!(parse_time("2026-05-01T12:00:00Z", now), Some(t));
        assert_eq!(parse_time("2026-05-01T12:00:00.5Z", now), Some(t + 500));
        assert_eq!(parse_time("2026-05-01T15:00:00+03:00", now), Some(t));
        assert_eq!(parse_time("2026-05-01 12:00", now), Some(t));
        assert_eq!(parse_time("01.05.2026 12:00:00", now), Some(t));
        assert_eq!(parse_time("01.05.2026", now), Some(t - 12 * 3_600_000));
        assert_eq!(parse_time("2026-05-01", now), Some(t - 12 * 3_600_000));
        for bad in [
            "",
            "yesterday",
            "now-5x",
            "31.02.2026",
            "2026-13-01",
            "2026-05-01 25:00",
            "1.2.3.4",
        ] {
            assert_eq!(parse_time(bad, now), None, "{bad}");
        }
        for d in [-1000, 0, 59, 365, 10_957, 20_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn relative_times() {
        let now = 1_800_000_000_000;
        let en = Tr::new(Lang::En, now);
        let ru = Tr::new(Lang::Ru, now);
        assert_eq!(relative(&en, now - 10_000), "just now");
        assert_eq!(relative(&ru, now - 10_000), "только что");
        assert_eq!(relative(&en, now - 5 * 60_000), "5 min ago");
        assert_eq!(relative(&ru, now - 5 * 60_000), "5 мин назад");
        assert_eq!(relative(&en, now - 3 * 3_600_000), "3 h ago");
        assert_eq!(relative(&ru, now - 3 * 3_600_000), "3 ч назад");
        assert_eq!(relative(&en, now - 2 * 86_400_000), "2 d ago");
        assert_eq!(relative(&ru, now - 2 * 86_400_000), "2 дн. назад");
        assert_eq!(relative(&en, now + 200 * 86_400_000), "in 200 d");
        assert_eq!(relative(&ru, now + 200 * 86_400_000), "через 200 дн.");
        assert_eq!(relative(&ru, now + 10 * 60_000), "через 10 мин");
    }
}
