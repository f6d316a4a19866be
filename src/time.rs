//! Time: the units the server counts in ([`Secs`], [`Millis`]), and calendar formatting of
//! Unix time for the `Date` header and log stamps.

use crate::buf::Buf;
use core::ops::Add;

/// Whole seconds: a timeout, or a time on a worker's clock (seconds since start-up), the unit
/// of connection deadlines.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(test, derive(Debug))]
pub struct Secs(pub u32);

impl Secs {
    /// Later than any deadline.
    pub const NEVER: Secs = Secs(u32::MAX);

    /// The same span in milliseconds.
    pub fn millis(self) -> Millis {
        Millis(self.0 as u64 * 1000)
    }
}

impl Add for Secs {
    type Output = Secs;
    fn add(self, span: Secs) -> Secs {
        Secs(self.0 + span.0)
    }
}

/// Milliseconds: a time on the monotonic clock, or a span.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(test, derive(Debug))]
pub struct Millis(pub u64);

impl Millis {
    /// Later than any time.
    pub const NEVER: Millis = Millis(u64::MAX);

    /// Whole seconds from `start` to this time (not before it).
    pub fn secs_since(self, start: Millis) -> Secs {
        Secs(((self.0 - start.0) / 1000) as u32)
    }

    /// Milliseconds from `now` to this time, 0 when it has passed.
    pub fn after(self, now: Millis) -> u64 {
        self.0.saturating_sub(now.0)
    }
}

impl Add for Millis {
    type Output = Millis;
    fn add(self, span: Millis) -> Millis {
        Millis(self.0 + span.0)
    }
}

/// Length of an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7).
pub const HTTP_DATE_LEN: usize = 29;
/// Length of an RFC 3339 UTC stamp, `1994-11-06T08:49:37Z`.
pub const LOG_STAMP_LEN: usize = 20;

/// Both renderings of one wall-clock second, recomputed only when the second changes.
pub struct Stamps {
    secs: u64,
    /// The `Date` header value.
    pub http: [u8; HTTP_DATE_LEN],
    /// The access-log time stamp.
    pub log: [u8; LOG_STAMP_LEN],
}

impl Stamps {
    /// Stamps for `secs` since the Unix epoch.
    pub fn at(secs: u64) -> Stamps {
        let mut s = Stamps {
            secs: u64::MAX,
            http: [0; HTTP_DATE_LEN],
            log: [0; LOG_STAMP_LEN],
        };
        s.update(secs);
        s
    }

    /// Moves to `secs`; does nothing when it is still the same second.
    pub fn update(&mut self, secs: u64) {
        if secs == self.secs {
            return;
        }
        self.secs = secs;
        // 32-bit arithmetic from here (shorter code): a day count fits until the year 11 million.
        let days = (secs / 86400) as u32;
        let (y, m, d) = civil(days);
        let t = (secs % 86400) as u32;
        let (hh, mm, ss) = (t / 3600, t / 60 % 60, t % 60);

        let mut b = Buf::new(&mut self.log);
        b.padded(y as u64, 4);
        b.byte(b'-');
        b.padded(m as u64, 2);
        b.byte(b'-');
        b.padded(d as u64, 2);
        b.byte(b'T');
        b.padded(hh as u64, 2);
        b.byte(b':');
        b.padded(mm as u64, 2);
        b.byte(b':');
        b.padded(ss as u64, 2);
        b.byte(b'Z');
        // The `Date` value reuses the log stamp's digits: `DD`, `YYYY` and `hh:mm:ss`.
        let log = &self.log;
        let mut b = Buf::new(&mut self.http);
        let wd = (days + 4) % 7 * 3; // 1970-01-01 was a Thursday
        b.push(&b"SunMonTueWedThuFriSat"[wd as usize..wd as usize + 3]);
        b.push(b", ");
        b.push(&log[8..10]);
        b.byte(b' ');
        let mi = (m - 1) as usize * 3;
        b.push(&b"JanFebMarAprMayJunJulAugSepOctNovDec"[mi..mi + 3]);
        b.byte(b' ');
        b.push(&log[..4]);
        b.byte(b' ');
        b.push(&log[11..19]);
        b.push(b" GMT");
    }
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01 (proleptic Gregorian;
/// H. Hinnant's `civil_from_days`).
fn civil(days: u32) -> (u32, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + (m <= 2) as u32, m, d)
}

#[cfg(test)]
mod test {
    use super::*;

    #[track_caller]
    fn check(secs: u64, http: &str, log: &str) {
        let s = Stamps::at(secs);
        assert_eq!(core::str::from_utf8(&s.http).unwrap(), http);
        assert_eq!(core::str::from_utf8(&s.log).unwrap(), log);
    }

    #[test]
    fn known_instants() {
        check(0, "Thu, 01 Jan 1970 00:00:00 GMT", "1970-01-01T00:00:00Z");
        // The example of RFC 9110 §5.6.7.
        check(
            784_111_777,
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "1994-11-06T08:49:37Z",
        );
        check(
            951_782_400,
            "Tue, 29 Feb 2000 00:00:00 GMT",
            "2000-02-29T00:00:00Z",
        );
        check(
            1_798_761_599,
            "Thu, 31 Dec 2026 23:59:59 GMT",
            "2026-12-31T23:59:59Z",
        );
        check(
            4_107_542_400,
            "Mon, 01 Mar 2100 00:00:00 GMT",
            "2100-03-01T00:00:00Z",
        );
    }

    #[test]
    fn updates_only_on_a_new_second() {
        let mut s = Stamps::at(0);
        s.update(0);
        assert_eq!(&s.http[..5], b"Thu, ");
        s.update(86_400);
        assert_eq!(&s.http[..16], b"Fri, 02 Jan 1970");
    }
}
