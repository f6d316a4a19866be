//! Socket addresses: parsing `ADDR:PORT` and printing them, for IPv4 and IPv6, without std.

use crate::buf::Buf;
use crate::decimal;

/// An IPv4 or IPv6 address and port. IPv4 addresses sit in the last four bytes of `ip`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub struct Addr {
    /// The address bytes in network order.
    pub ip: [u8; 16],
    /// The port.
    pub port: u16,
    /// True for IPv6.
    pub v6: bool,
}

impl Addr {
    /// An IPv4 address.
    pub const fn v4(o: [u8; 4], port: u16) -> Addr {
        let mut ip = [0; 16];
        ip[12] = o[0];
        ip[13] = o[1];
        ip[14] = o[2];
        ip[15] = o[3];
        Addr {
            ip,
            port,
            v6: false,
        }
    }

    /// Parses `A.B.C.D:PORT` or `[IPV6]:PORT`.
    pub fn parse(s: &[u8]) -> Option<Addr> {
        if let Some(rest) = s.strip_prefix(b"[") {
            let close = rest.iter().position(|&b| b == b']')?;
            let port = parse_port(rest[close + 1..].strip_prefix(b":")?)?;
            Some(Addr {
                ip: parse_v6(&rest[..close])?,
                port,
                v6: true,
            })
        } else {
            let colon = s.iter().rposition(|&b| b == b':')?;
            Some(Addr::v4(
                parse_v4(&s[..colon])?,
                parse_port(&s[colon + 1..])?,
            ))
        }
    }

    /// The same address with another port.
    pub fn with_port(self, port: u16) -> Addr {
        Addr { port, ..self }
    }

    /// Where a local client reaches a server bound here: the wildcard address becomes loopback.
    pub fn for_local_client(self) -> Addr {
        if self.ip != [0; 16] {
            self
        } else if self.v6 {
            let mut ip = [0; 16];
            ip[15] = 1;
            Addr { ip, ..self }
        } else {
            Addr::v4([127, 0, 0, 1], self.port)
        }
    }

    /// Writes `A.B.C.D:PORT` or `[IPV6]:PORT` (RFC 5952 form; IPv4-mapped IPv6 prints as IPv4).
    pub fn write(&self, out: &mut Buf) {
        let mapped = self.v6 && self.ip[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
        if self.v6 && !mapped {
            out.byte(b'[');
            write_v6(&self.ip, out);
            out.byte(b']');
        } else {
            for (i, o) in self.ip[12..].iter().enumerate() {
                if i > 0 {
                    out.byte(b'.');
                }
                out.num(*o as u64);
            }
        }
        out.byte(b':');
        out.num(self.port as u64);
    }
}

/// Parses a decimal port, 0 to 65535.
pub fn parse_port(s: &[u8]) -> Option<u16> {
    let n = decimal::parse(s, 65535)?;
    Some(n as u16)
}

fn parse_v4(s: &[u8]) -> Option<[u8; 4]> {
    let mut o = [0u8; 4];
    let mut rest = s;
    for (k, slot) in o.iter_mut().enumerate() {
        // Three parts end at a dot, the last at the end (a dot in it is not a digit).
        let end = match rest.iter().position(|&b| b == b'.') {
            Some(dot) if k < 3 => dot,
            _ if k == 3 => rest.len(),
            _ => return None,
        };
        if end > 3 {
            return None;
        }
        *slot = decimal::parse(&rest[..end], 255)? as u8;
        rest = rest.get(end + 1..).unwrap_or(b"");
    }
    Some(o)
}

fn parse_v6(s: &[u8]) -> Option<[u8; 16]> {
    // Up to 8 groups of 1-4 hex digits; one "::" stands for the zero groups it replaces.
    let mut g = [0u16; 8];
    let (mut n, mut gap) = (0, None);
    let mut i = 0;
    if s.starts_with(b"::") {
        gap = Some(0);
        i = 2;
    }
    while i < s.len() {
        let (mut v, start) = (0u16, i);
        while let Some(d) = s.get(i).and_then(|&b| (b as char).to_digit(16)) {
            v = v << 4 | d as u16;
            i += 1;
        }
        if i == start || i - start > 4 || n == 8 {
            return None;
        }
        g[n] = v;
        n += 1;
        if s[i..].starts_with(b"::") {
            if gap.is_some() {
                return None;
            }
            gap = Some(n);
            i += 2;
        } else if s.get(i) == Some(&b':') {
            i += 1;
            if i == s.len() {
                return None;
            }
        }
    }
    match gap {
        Some(at) if n < 8 => {
            // Move the groups after the gap to the end; the gap becomes zeros.
            for i in (at..n).rev() {
                g[i + 8 - n] = g[i];
                g[i] = 0;
            }
        }
        None if n == 8 => {}
        _ => return None,
    }
    let mut ip = [0u8; 16];
    for (pair, v) in ip.chunks_exact_mut(2).zip(g) {
        pair.copy_from_slice(&v.to_be_bytes());
    }
    Some(ip)
}

fn write_v6(ip: &[u8; 16], out: &mut Buf) {
    let mut g = [0u16; 8];
    for (v, pair) in g.iter_mut().zip(ip.chunks_exact(2)) {
        *v = u16::from_be_bytes([pair[0], pair[1]]);
    }
    // The longest run of two or more zero groups becomes "::" (RFC 5952 §4.2).
    let (mut best, mut best_len, mut run) = (8, 1, 0);
    for (i, &v) in g.iter().enumerate() {
        run = if v == 0 { run + 1 } else { 0 };
        if run > best_len {
            best_len = run;
            best = i + 1 - run;
        }
    }
    let mut i = 0;
    while let Some(&v) = g.get(i) {
        if i == best {
            out.push(b"::");
            i += best_len;
            continue;
        }
        if i > 0 && i != best + best_len {
            out.byte(b':');
        }
        // Hex digits without leading zeros.
        let mut shift = 12;
        while shift > 0 && v >> shift == 0 {
            shift -= 4;
        }
        loop {
            out.byte(b"0123456789abcdef"[(v >> shift) as usize & 0xf]);
            if shift == 0 {
                break;
            }
            shift -= 4;
        }
        i += 1;
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn show(a: Addr) -> std::string::String {
        let mut b = [0u8; 64];
        let mut w = Buf::new(&mut b);
        a.write(&mut w);
        std::string::String::from_utf8(w.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn round_trips() {
        for s in [
            "0.0.0.0:8080",
            "127.0.0.1:0",
            "255.255.255.255:65535",
            "[::]:8080",
            "[::1]:1",
            "[fe80::1:2]:80",
            "[1:2:3:4:5:6:7:8]:9",
            "[1::]:9",
            "[1:0:0:2::3]:9",
        ] {
            let a = Addr::parse(s.as_bytes()).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(show(a), s);
        }
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "8080",
            ":8080",
            "0.0.0.0",
            "0.0.0.0:",
            "1.2.3:80",
            "1.2.3.4.5:80",
            "256.0.0.1:80",
            "1.2.3.4:65536",
            "1.2.3.4:-1",
            "1.2.3.4: 80",
            "[::1]",
            "[::1]80",
            "[:::]:80",
            "[1:2:3:4:5:6:7:8:9]:80",
            "[1::2::3]:80",
            "[12345::]:80",
            "[g::]:80",
            "localhost:80",
        ] {
            assert_eq!(Addr::parse(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn mapped_v4_prints_as_v4() {
        let mut ip = [0u8; 16];
        ip[10] = 0xff;
        ip[11] = 0xff;
        ip[12..].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(
            show(Addr {
                ip,
                port: 5,
                v6: true
            }),
            "10.0.0.1:5"
        );
    }

    #[test]
    fn wildcard_becomes_loopback_for_clients() {
        assert_eq!(
            show(Addr::parse(b"0.0.0.0:80").unwrap().for_local_client()),
            "127.0.0.1:80"
        );
        assert_eq!(
            show(Addr::parse(b"[::]:80").unwrap().for_local_client()),
            "[::1]:80"
        );
        assert_eq!(
            show(Addr::parse(b"10.1.2.3:80").unwrap().for_local_client()),
            "10.1.2.3:80"
        );
    }
}
