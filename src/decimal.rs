//! Decimal numbers as the protocol, the options and the addresses write them.

/// Parses a decimal number of at most `max`: one or more digits, without sign or spaces, as
/// `Content-Length` is written (RFC 9110 §8.6), leading zeros allowed. Options, ports and IPv4
/// octets are read with it too.
pub fn parse(s: &[u8], max: u64) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    (n <= max).then_some(n)
}

#[cfg(test)]
mod test {
    use super::parse;

    #[test]
    fn digits_only_up_to_the_maximum() {
        assert_eq!(parse(b"0065535", 65535), Some(65535));
        assert_eq!(parse(b"65536", 65535), None);
        assert_eq!(parse(b"18446744073709551615", u64::MAX), Some(u64::MAX));
        assert_eq!(parse(b"18446744073709551616", u64::MAX), None);
        for bad in [&b""[..], b"+1", b"-1", b" 1", b"1 ", b"1a", b"0x10"] {
            assert_eq!(parse(bad, u64::MAX), None, "{bad:?}");
        }
    }
}
