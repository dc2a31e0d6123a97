//! Timestamp parsing without allocation: the ISO 8601 / RFC 3339 shapes Windows and log shippers
//! write (`2016-07-08T18:12:51.6816408Z`, `2017-12-26 13:10:29.134`, `2019-01-01T00:00:00+03:00`).

/// Parses a timestamp into milliseconds since the Unix epoch (UTC).
///
/// Accepted: `YYYY-MM-DD`, then `T`, `t` or a space, `hh:mm[:ss[.fraction]]`, then optionally
/// `Z`, `z`, `±hh:mm`, `±hhmm` or `±hh`. Without a zone the time is taken as UTC. Fractions are
/// truncated to milliseconds. Returns `None` for anything else.
pub fn parse_timestamp_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let mut p = Cursor { b, i: 0 };
    let year = p.digits(4)? as i64;
    p.expect(b'-')?;
    let month = p.digits(2)?;
    p.expect(b'-')?;
    let day = p.digits(2)?;
    match p.next()? {
        b'T' | b't' | b' ' => {}
        _ => return None,
    }
    let hour = p.digits(2)?;
    p.expect(b':')?;
    let minute = p.digits(2)?;
    let mut second = 0;
    let mut millis = 0;
    if p.peek() == Some(b':') {
        p.i += 1;
        second = p.digits(2)?;
        if matches!(p.peek(), Some(b'.' | b',')) {
            p.i += 1;
            let start = p.i;
            let mut scale = 100;
            while let Some(d @ b'0'..=b'9') = p.peek() {
                millis += u32::from(d - b'0') * scale;
                scale /= 10;
                p.i += 1;
            }
            if p.i == start {
                return None;
            }
        }
    }
    let offset_minutes: i64 = match p.next() {
        None => 0,
        Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let h = i64::from(p.digits(2)?);
            let m = match p.peek() {
                None => 0,
                Some(b':') => {
                    p.i += 1;
                    i64::from(p.digits(2)?)
                }
                Some(_) => i64::from(p.digits(2)?),
            };
            if h > 23 || m > 59 {
                return None;
            }
            if sign == b'+' {
                h * 60 + m
            } else {
                -(h * 60 + m)
            }
        }
        Some(_) => return None,
    };
    if p.i != b.len() {
        return None;
    }
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
            - offset_minutes * 60;
    Some(seconds * 1000 + i64::from(millis))
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = self.next()?;
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(d - b'0');
        }
        Some(v)
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp_millis as p;

    #[test]
    fn windows_and_iso_shapes() {
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(p("2016-07-08T18:12:51.6816408Z"), Some(1_468_001_571_681));
        assert_eq!(p("2017-12-26 13:10:29.134"), Some(1_514_293_829_134));
        assert_eq!(p("2019-01-01T03:00:00+03:00"), Some(1_546_300_800_000));
        assert_eq!(p("2019-01-01T03:00:00+0300"), Some(1_546_300_800_000));
        assert_eq!(p("2018-12-31T21:00:00-03"), Some(1_546_300_800_000));
        assert_eq!(p("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(p("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(p("2023-02-29T00:00:00Z"), None);
        assert_eq!(p("2023-01-01"), None);
        assert_eq!(p("2023-01-01T00:00:00Zjunk"), None);
        assert_eq!(p("not a date"), None);
        assert_eq!(p("2023-01-01T00:00:00."), None);
        assert_eq!(p(""), None);
    }
}
