//! Command line and environment: what to run and how.
//!
//! Environment variables are read first and options override them. An empty variable counts as
//! unset (container templates often leave them empty). Any invalid value is an [`Error`] naming
//! the option or variable and the value, which `main` prints before exiting with status 2.

use crate::addr::{parse_decimal, parse_port, Addr};
use core::ffi::CStr;

/// Where the server listens unless told otherwise.
pub const DEFAULT_LISTEN: Addr = Addr::v4([0, 0, 0, 0], 8080);
/// Most worker threads; also the number of per-worker memory reservations.
pub const MAX_WORKERS: usize = 64;
/// Default cap on open connections, all workers together.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 20_000;
/// Most connections one worker can hold (its connection table's size).
pub const MAX_CONNECTIONS: u64 = 1 << 20;

/// How the server runs.
#[derive(Clone, Copy)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub struct Config {
    /// Address to bind.
    pub listen: Addr,
    /// Worker threads; 0 means one per usable CPU.
    pub workers: usize,
    /// Write the access log to stdout.
    pub log: bool,
    /// Refuse connections beyond this many open ones.
    pub max_connections: u64,
    /// Seconds a client has to send a complete request head.
    pub header_timeout: u32,
    /// Seconds a keep-alive connection may sit idle between requests.
    pub idle_timeout: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN,
            workers: 0,
            log: true,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: 10,
            idle_timeout: 60,
        }
    }
}

/// What the command line asks for.
#[cfg_attr(test, derive(Debug, PartialEq))]
pub enum Command {
    /// Run the server.
    Serve(Config),
    /// Check a running server's `/healthcheck` and exit 0 or 1.
    Probe(Config),
    /// Print usage.
    Help,
    /// Print the version.
    Version,
}

/// A bad option or environment value.
#[cfg_attr(test, derive(Debug, PartialEq))]
pub struct Error {
    /// The option or variable, e.g. `--listen` or `PORT`; empty for an unknown option.
    pub source: &'static [u8],
    /// The offending value (or the unknown option).
    pub value: &'static [u8],
    /// What was expected.
    pub expected: &'static [u8],
}

/// Usage text for `--help`.
pub const USAGE: &[u8] = b"\
Usage: tinyapi [OPTIONS]
       tinyapi --probe [--listen ADDR:PORT]

Serves /, /alwaysok, /healthcheck and /panic over HTTP/1.1.

Options (environment variable in brackets):
  --listen ADDR:PORT       bind address [TINYAPI_LISTEN; PORT sets the port only]
                           default 0.0.0.0:8080; IPv6 as [::]:8080; port 0 picks one
  --workers N              worker threads, default one per usable CPU [TINYAPI_WORKERS]
  --max-connections N      open connections before new ones get 503 [TINYAPI_MAX_CONNECTIONS]
  --header-timeout SECS    time to send a request head, default 10 [TINYAPI_HEADER_TIMEOUT]
  --idle-timeout SECS      keep-alive idle time, default 60 [TINYAPI_IDLE_TIMEOUT]
  --quiet                  no access log [TINYAPI_LOG=off]
  --probe, healthcheck     GET /healthcheck on the local server: exit 0 if 200, else 1
  --help, --version

Exit status: 0 stopped by SIGTERM/SIGINT or probe healthy, 1 cannot bind, /panic or probe
failed, 2 bad option or environment value.
";

/// Reads the configuration from `arg(i)` (arguments after the program name) and `env`.
pub fn parse(
    arg: &dyn Fn(usize) -> Option<&'static [u8]>,
    env: &dyn Fn(&CStr) -> Option<&'static [u8]>,
) -> Result<Command, Error> {
    let mut c = Config::default();
    let var = |name: &CStr| env(name).filter(|v| !v.is_empty());

    if let Some(v) = var(c"PORT") {
        c.listen = c
            .listen
            .with_port(parse_port(v).ok_or(bad(b"PORT", v, PORT))?);
    }
    if let Some(v) = var(c"TINYAPI_LISTEN") {
        c.listen = Addr::parse(v).ok_or(bad(b"TINYAPI_LISTEN", v, LISTEN))?;
    }
    if let Some(v) = var(c"TINYAPI_WORKERS") {
        c.workers = number(b"TINYAPI_WORKERS", v, 1, MAX_WORKERS as u64, WORKERS)? as usize;
    }
    if let Some(v) = var(c"TINYAPI_MAX_CONNECTIONS") {
        c.max_connections = number(b"TINYAPI_MAX_CONNECTIONS", v, 1, MAX_CONNECTIONS, CONNS)?;
    }
    if let Some(v) = var(c"TINYAPI_HEADER_TIMEOUT") {
        c.header_timeout = number(b"TINYAPI_HEADER_TIMEOUT", v, 1, 86_400, SECS)? as u32;
    }
    if let Some(v) = var(c"TINYAPI_IDLE_TIMEOUT") {
        c.idle_timeout = number(b"TINYAPI_IDLE_TIMEOUT", v, 1, 86_400, SECS)? as u32;
    }
    if let Some(v) = var(c"TINYAPI_LOG") {
        c.log = on_off(b"TINYAPI_LOG", v)?;
    }

    let mut probe = false;
    let mut i = 0;
    while let Some(a) = arg(i) {
        i += 1;
        // Options that take a value accept it as the next argument or after '='.
        let (name, inline) = match a.iter().position(|&b| b == b'=') {
            Some(eq) if a.starts_with(b"--") => (&a[..eq], Some(&a[eq + 1..])),
            _ => (a, None),
        };
        let mut value = |source: &'static [u8]| -> Result<&'static [u8], Error> {
            if let Some(v) = inline {
                return Ok(v);
            }
            i += 1;
            arg(i - 1).ok_or(bad(source, b"", b"a value"))
        };
        match name {
            b"--listen" => {
                c.listen = {
                    let v = value(b"--listen")?;
                    Addr::parse(v).ok_or(bad(b"--listen", v, LISTEN))?
                }
            }
            b"--workers" => {
                c.workers = number(
                    b"--workers",
                    value(b"--workers")?,
                    1,
                    MAX_WORKERS as u64,
                    WORKERS,
                )? as usize
            }
            b"--max-connections" => {
                c.max_connections = number(
                    b"--max-connections",
                    value(b"--max-connections")?,
                    1,
                    MAX_CONNECTIONS,
                    CONNS,
                )?
            }
            b"--header-timeout" => {
                c.header_timeout = number(
                    b"--header-timeout",
                    value(b"--header-timeout")?,
                    1,
                    86_400,
                    SECS,
                )? as u32
            }
            b"--idle-timeout" => {
                c.idle_timeout = number(
                    b"--idle-timeout",
                    value(b"--idle-timeout")?,
                    1,
                    86_400,
                    SECS,
                )? as u32
            }
            b"--quiet" | b"-q" if inline.is_none() => c.log = false,
            b"--probe" | b"healthcheck" if inline.is_none() => probe = true,
            b"--help" | b"-h" if inline.is_none() => return Ok(Command::Help),
            b"--version" | b"-V" if inline.is_none() => return Ok(Command::Version),
            _ => {
                return Err(Error {
                    source: b"",
                    value: a,
                    expected: b"",
                })
            }
        }
    }
    Ok(if probe {
        Command::Probe(c)
    } else {
        Command::Serve(c)
    })
}

const LISTEN: &[u8] = b"ADDR:PORT, e.g. 0.0.0.0:8080 or [::]:8080";
const PORT: &[u8] = b"a port number from 0 to 65535";
const WORKERS: &[u8] = b"a number from 1 to 64";
const CONNS: &[u8] = b"a number from 1 to 1048576";
const SECS: &[u8] = b"seconds, from 1 to 86400";

fn bad(source: &'static [u8], value: &'static [u8], expected: &'static [u8]) -> Error {
    Error {
        source,
        value,
        expected,
    }
}

fn number(
    source: &'static [u8],
    v: &'static [u8],
    min: u64,
    max: u64,
    expected: &'static [u8],
) -> Result<u64, Error> {
    match parse_decimal(v, max) {
        Some(n) if n >= min => Ok(n),
        _ => Err(bad(source, v, expected)),
    }
}

fn on_off(source: &'static [u8], v: &'static [u8]) -> Result<bool, Error> {
    match v {
        b"on" | b"1" | b"true" => Ok(true),
        b"off" | b"0" | b"false" => Ok(false),
        _ => Err(bad(source, v, b"on or off")),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn parse_with(
        args: &'static [&'static str],
        env: &'static [(&'static str, &'static str)],
    ) -> Result<Command, Error> {
        parse(&|i| args.get(i).map(|s| s.as_bytes()), &|name: &CStr| {
            env.iter()
                .find(|(k, _)| k.as_bytes() == name.to_bytes())
                .map(|(_, v)| v.as_bytes())
        })
    }

    fn serve(
        args: &'static [&'static str],
        env: &'static [(&'static str, &'static str)],
    ) -> Config {
        match parse_with(args, env) {
            Ok(Command::Serve(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = serve(&[], &[]);
        assert_eq!(c, Config::default());
        assert_eq!(c.listen, Addr::parse(b"0.0.0.0:8080").unwrap());
    }

    #[test]
    fn environment_then_options() {
        assert_eq!(
            serve(&[], &[("PORT", "9000")]).listen,
            Addr::parse(b"0.0.0.0:9000").unwrap()
        );
        assert_eq!(serve(&[], &[("PORT", "")]).listen, DEFAULT_LISTEN);
        let env = &[("PORT", "9000"), ("TINYAPI_LISTEN", "127.0.0.1:7000")];
        assert_eq!(
            serve(&[], env).listen,
            Addr::parse(b"127.0.0.1:7000").unwrap()
        );
        assert_eq!(
            serve(&["--listen", "[::1]:0"], env).listen,
            Addr::parse(b"[::1]:0").unwrap()
        );
        assert_eq!(
            serve(&["--listen=[::]:1"], env).listen,
            Addr::parse(b"[::]:1").unwrap()
        );
        let c = serve(
            &[
                "--quiet",
                "--workers",
                "3",
                "--header-timeout=5",
                "--idle-timeout",
                "7",
                "--max-connections",
                "9",
            ],
            &[("TINYAPI_LOG", "on"), ("TINYAPI_WORKERS", "2")],
        );
        assert_eq!(
            (
                c.log,
                c.workers,
                c.header_timeout,
                c.idle_timeout,
                c.max_connections
            ),
            (false, 3, 5, 7, 9)
        );
        assert!(!serve(&[], &[("TINYAPI_LOG", "off")]).log);
    }

    #[test]
    fn commands() {
        assert_eq!(parse_with(&["--help"], &[]), Ok(Command::Help));
        assert_eq!(parse_with(&["--quiet", "-V"], &[]), Ok(Command::Version));
        let probe = parse_with(&["--probe", "--listen", "127.0.0.1:1"], &[]);
        assert!(matches!(probe, Ok(Command::Probe(c)) if c.listen.port == 1));
        assert!(matches!(
            parse_with(&["healthcheck"], &[]),
            Ok(Command::Probe(_))
        ));
    }

    #[test]
    fn errors_name_the_source_and_value() {
        let e = |args, env| parse_with(args, env).unwrap_err();
        assert_eq!(
            e(&["--listen", "nope"], &[]),
            bad(b"--listen", b"nope", LISTEN)
        );
        assert_eq!(e(&["--listen"], &[]), bad(b"--listen", b"", b"a value"));
        assert_eq!(e(&[], &[("PORT", "http")]), bad(b"PORT", b"http", PORT));
        assert_eq!(e(&[], &[("PORT", "65536")]), bad(b"PORT", b"65536", PORT));
        assert_eq!(
            e(&[], &[("TINYAPI_LISTEN", "1.2.3.4")]),
            bad(b"TINYAPI_LISTEN", b"1.2.3.4", LISTEN)
        );
        assert_eq!(
            e(&["--workers", "0"], &[]),
            bad(b"--workers", b"0", WORKERS)
        );
        assert_eq!(
            e(&["--workers", "65"], &[]),
            bad(b"--workers", b"65", WORKERS)
        );
        assert_eq!(
            e(&[], &[("TINYAPI_LOG", "maybe")]),
            bad(b"TINYAPI_LOG", b"maybe", b"on or off")
        );
        assert_eq!(
            e(&["--idle-timeout", "0"], &[]),
            bad(b"--idle-timeout", b"0", SECS)
        );
        assert_eq!(
            e(&["--frobnicate"], &[]),
            Error {
                source: b"",
                value: b"--frobnicate",
                expected: b""
            }
        );
        assert_eq!(
            e(&["--quiet=yes"], &[]),
            Error {
                source: b"",
                value: b"--quiet=yes",
                expected: b""
            }
        );
    }
}
