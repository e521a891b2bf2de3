//! XenAPI datetimes: `YYYYMMDDTHH:MM:SSZ` on the wire, in the store and in ova.xml.
//!
//! Parsing also accepts RFC 3339 with hyphens and fractional seconds, the
//! spellings SDKs send, and seconds since the epoch (`1627478400.`). A missing zone means UTC but is remembered, because
//! `host.get_server_localtime` must print without a suffix.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Zone {
    Utc,
    /// No zone designator at all.
    Unqualified,
    /// Offset east of UTC, in minutes.
    Offset(i32),
}

/// Seconds since the Unix epoch (in UTC, after applying the zone) plus the zone
/// to print it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DateTime {
    pub secs: i64,
    pub zone: Zone,
}

impl PartialOrd for DateTime {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for DateTime {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.secs.cmp(&other.secs)
    }
}

impl DateTime {
    pub const EPOCH: DateTime = DateTime { secs: 0, zone: Zone::Utc };

    pub fn utc(secs: i64) -> DateTime {
        DateTime { secs, zone: Zone::Utc }
    }

    pub fn now() -> DateTime {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        DateTime::utc(secs)
    }

    /// Parse any spelling xapi accepts. Returns `None` on garbage.
    pub fn parse(s: &str) -> Option<DateTime> {
        let s = s.trim();
        if let Some(d) = DateTime::parse_epoch(s) {
            return Some(d);
        }
        let b = s.as_bytes();
        let mut p = Cursor { b, i: 0 };
        let year = p.digits(4)?;
        let hy = p.eat(b'-');
        let month = p.digits(2)?;
        if hy && !p.eat(b'-') {
            return None;
        }
        let day = p.digits(2)?;
        if !(p.eat(b'T') || p.eat(b't') || p.eat(b' ')) {
            return None;
        }
        let hour = p.digits(2)?;
        let colon = p.eat(b':');
        let min = p.digits(2)?;
        if colon && !p.eat(b':') {
            return None;
        }
        let sec = p.digits(2)?;
        if p.eat(b'.') || p.eat(b',') {
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.i += 1;
            }
        }
        let zone = match p.peek() {
            None => Zone::Unqualified,
            Some(b'Z') | Some(b'z') => {
                p.i += 1;
                Zone::Utc
            }
            Some(c @ (b'+' | b'-')) => {
                p.i += 1;
                let h = p.digits(2)?;
                p.eat(b':');
                let m = p.digits(2).unwrap_or(0);
                let off = (h * 60 + m) as i32;
                Zone::Offset(if c == b'-' { -off } else { off })
            }
            _ => return None,
        };
        if p.i != b.len() || !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60
        {
            return None;
        }
        let days = days_from_civil(year, month as u32, day as u32);
        let mut secs = days * 86400 + hour * 3600 + min * 60 + sec;
        if let Zone::Offset(m) = zone {
            secs -= m as i64 * 60;
        }
        Some(DateTime { secs, zone })
    }

    /// Seconds since the epoch as a float prints them (`1627478400.`,
    /// `1627478400.25`, `-5.`) or as an integer: one of the spellings
    /// xen-api's SDK component tests make every SDK read. Fractions are
    /// dropped (rounded down), as the compact form has whole seconds.
    fn parse_epoch(s: &str) -> Option<DateTime> {
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() || !int.bytes().all(|c| c.is_ascii_digit()) || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let whole: i64 = int.parse().ok()?;
        let has_frac = frac.bytes().any(|c| c != b'0');
        let secs = match (neg, has_frac) {
            (false, _) => whole,
            (true, false) => whole.checked_neg()?,
            (true, true) => whole.checked_neg()?.checked_sub(1)?,
        };
        // Beyond what the civil conversion handles sensibly (year 9999).
        if secs.unsigned_abs() > 253_402_300_799 {
            return None;
        }
        Some(DateTime::utc(secs))
    }

    /// Civil fields in the value's own zone.
    fn civil(&self) -> (i64, u32, u32, i64, i64, i64) {
        let local = match self.zone {
            Zone::Offset(m) => self.secs + m as i64 * 60,
            _ => self.secs,
        };
        let days = local.div_euclid(86400);
        let rem = local.rem_euclid(86400);
        let (y, mo, d) = civil_from_days(days);
        (y, mo, d, rem / 3600, (rem % 3600) / 60, rem % 60)
    }

    /// The same instant written as a naive local time (no suffix).
    pub fn unqualified(self) -> DateTime {
        DateTime { secs: self.secs, zone: Zone::Unqualified }
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = self.civil();
        write!(f, "{y:04}{mo:02}{d:02}T{h:02}:{mi:02}:{s:02}")?;
        match self.zone {
            Zone::Utc => f.write_str("Z"),
            Zone::Unqualified => Ok(()),
            Zone::Offset(m) => {
                let sign = if m < 0 { '-' } else { '+' };
                write!(f, "{sign}{:02}:{:02}", m.abs() / 60, m.abs() % 60)
            }
        }
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}
impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn digits(&mut self, n: usize) -> Option<i64> {
        let s = self.b.get(self.i..self.i + n)?;
        let mut v = 0i64;
        for &c in s {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
        }
        self.i += n;
        Some(v)
    }
}

// Howard Hinnant's days/civil algorithms (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
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
    fn epoch_and_roundtrip() {
        assert_eq!(DateTime::EPOCH.to_string(), "19700101T00:00:00Z");
        let d = DateTime::parse("20250319T04:16:24Z").unwrap();
        assert_eq!(d.to_string(), "20250319T04:16:24Z");
        assert_eq!(DateTime::parse("2025-03-19T04:16:24.123Z").unwrap().secs, d.secs);
        assert_eq!(DateTime::parse("2025-03-19T05:16:24+01:00").unwrap().secs, d.secs);
        assert_eq!(DateTime::parse("20250319T04:16:24").unwrap().to_string(), "20250319T04:16:24");
        assert!(DateTime::parse("garbage").is_none());
        assert!(DateTime::parse("20251319T04:16:24Z").is_none());
        assert!(DateTime::parse("20250319T04:16:24Zjunk").is_none());
    }

    #[test]
    fn every_sdk_spelling() {
        // xen-api's SDK component tests (vm_special_value): all the same instant.
        let want = DateTime::parse("20240420T12:00:00Z").unwrap().secs;
        for s in ["20240420T12:00:00", "20240420T12:00:00Z", "2024-04-20T12:00:00Z", "2024-04-20T12:00:00"] {
            assert_eq!(DateTime::parse(s).map(|d| d.secs), Some(want), "{s}");
        }
        let d = DateTime::parse("1627478400.").unwrap();
        assert_eq!(d.to_string(), "20210728T13:20:00Z");
        assert_eq!(DateTime::parse("1627478400").unwrap(), d);
        assert_eq!(DateTime::parse("1627478400.75").unwrap(), d);
        assert_eq!(DateTime::parse(" 0. ").unwrap(), DateTime::EPOCH);
        assert_eq!(DateTime::parse("-1.5").unwrap().secs, -2);
        for bad in [".", "-", "1.2.3", "12a.", "1e9", "99999999999999999999.", "."] {
            assert!(DateTime::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn leap_years() {
        let d = DateTime::parse("20240229T23:59:59Z").unwrap();
        assert_eq!(d.to_string(), "20240229T23:59:59Z");
        assert_eq!(DateTime::utc(d.secs + 1).to_string(), "20240301T00:00:00Z");
    }
}
