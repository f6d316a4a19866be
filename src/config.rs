//! Command line and environment: what to run and how.
//!
//! Environment variables are read first and options override them. An empty variable counts as
//! unset (container templates often leave them empty). Any invalid value is an [`Error`] naming
//! the option or variable and the value, which [`crate::start`] prints before the program exits
//! with status 2.

use crate::addr::{parse_port, Addr};
use crate::decimal;
use crate::time::Secs;

/// Where the server listens unless told otherwise.
pub const DEFAULT_LISTEN: Addr = Addr::v4([0, 0, 0, 0], 8080);
/// Most worker processes; also the number of per-worker lines of shared counters.
pub const MAX_WORKERS: usize = 64;
/// Default cap on open connections, all workers together.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 20_000;
/// Largest `--max-connections`: the cap on open connections, all workers together (each
/// worker's own table holds 32,768).
pub const MAX_CONNECTIONS: u64 = 1 << 20;

/// How the server runs.
#[derive(Clone, Copy)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub struct Config {
    /// Address to bind.
    pub listen: Addr,
    /// Worker processes; 0 means one per usable CPU, at most the cgroup's CPU quota.
    pub workers: usize,
    /// Write the access log to stdout.
    pub log: bool,
    /// Refuse connections beyond this many open ones.
    pub max_connections: u64,
    /// How long connections may take.
    pub timeouts: Timeouts,
    /// Install the seccomp system-call allowlist once running, where the kernel supports it
    /// (elsewhere, as under qemu-user, warn once and run without it).
    pub seccomp: bool,
    /// Exit 1 instead when the allowlist cannot be installed.
    pub seccomp_required: bool,
    /// Seconds the server keeps accepting and answering after the first SIGTERM or SIGINT,
    /// with `/healthcheck` at 503 and every response closing, before it drains.
    pub shutdown_delay: Secs,
    /// Set at start-up, by no option: the default worker count is the cgroup's CPU quota, fewer
    /// than the usable CPUs (the start-up line says so).
    pub workers_from_quota: bool,
}

/// The timeouts a connection keeps to.
#[derive(Clone, Copy)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub struct Timeouts {
    /// For a complete request head, and for a client to read what is sent to it.
    pub header: Secs,
    /// For the next request on a kept-alive connection.
    pub idle: Secs,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN,
            workers: 0,
            log: true,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            timeouts: Timeouts {
                header: Secs(10),
                idle: Secs(60),
            },
            seccomp: true,
            seccomp_required: false,
            shutdown_delay: Secs(0),
            workers_from_quota: false,
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
Usage: tinyapi [--listen ADDR:PORT] [--workers N] [--max-connections N]
  [--header-timeout SECS] [--idle-timeout SECS] [--shutdown-delay SECS]
  [--quiet] [--probe] [--version]
Environment: TINYAPI_{LISTEN,WORKERS,MAX_CONNECTIONS,HEADER_TIMEOUT,IDLE_TIMEOUT,
SHUTDOWN_DELAY}, PORT, TINYAPI_LOG=off, TINYAPI_SECCOMP=off|require
";

/// A setting read from an environment variable and, unless `option` is empty, an option.
struct Setting {
    option: &'static [u8],
    var: &'static [u8],
    /// Parses the value into the configuration; false when it is invalid.
    apply: fn(&mut Config, &'static [u8]) -> bool,
    expected: &'static [u8],
}

/// Every setting, in the order the environment is applied (`PORT` before `TINYAPI_LISTEN`, so
/// the more specific variable wins).
const SETTINGS: [Setting; 9] = [
    Setting {
        option: b"",
        var: b"PORT",
        apply: |c, v| {
            parse_port(v)
                .map(|p| c.listen = c.listen.with_port(p))
                .is_some()
        },
        expected: b"a port number from 0 to 65535",
    },
    Setting {
        option: b"--listen",
        var: b"TINYAPI_LISTEN",
        apply: |c, v| Addr::parse(v).map(|a| c.listen = a).is_some(),
        expected: b"ADDR:PORT, e.g. 0.0.0.0:8080 or [::]:8080",
    },
    Setting {
        option: b"--workers",
        var: b"TINYAPI_WORKERS",
        apply: |c, v| {
            number(v, MAX_WORKERS as u64)
                .map(|n| c.workers = n as usize)
                .is_some()
        },
        expected: b"a number from 1 to 64",
    },
    Setting {
        option: b"--max-connections",
        var: b"TINYAPI_MAX_CONNECTIONS",
        apply: |c, v| {
            number(v, MAX_CONNECTIONS)
                .map(|n| c.max_connections = n)
                .is_some()
        },
        expected: b"a number from 1 to 1048576",
    },
    Setting {
        option: b"--header-timeout",
        var: b"TINYAPI_HEADER_TIMEOUT",
        apply: |c, v| seconds(v, 1, MAX_TIMEOUT, &mut c.timeouts.header),
        expected: SECONDS,
    },
    Setting {
        option: b"--idle-timeout",
        var: b"TINYAPI_IDLE_TIMEOUT",
        apply: |c, v| seconds(v, 1, MAX_TIMEOUT, &mut c.timeouts.idle),
        expected: SECONDS,
    },
    Setting {
        option: b"--shutdown-delay",
        var: b"TINYAPI_SHUTDOWN_DELAY",
        apply: |c, v| seconds(v, 0, MAX_SHUTDOWN_DELAY, &mut c.shutdown_delay),
        expected: b"seconds, from 0 to 600",
    },
    Setting {
        option: b"",
        var: b"TINYAPI_LOG",
        apply: |c, v| on_off(v, &mut c.log),
        expected: b"on or off",
    },
    Setting {
        option: b"",
        var: b"TINYAPI_SECCOMP",
        apply: |c, v| {
            c.seccomp_required = v == b"require";
            c.seccomp = c.seccomp_required;
            c.seccomp_required || on_off(v, &mut c.seccomp)
        },
        expected: b"on, off or require",
    },
];

const SECONDS: &[u8] = b"seconds, from 1 to 86400";
const MAX_TIMEOUT: u64 = 86_400;
const MAX_SHUTDOWN_DELAY: u64 = 600;

/// Reads the configuration from `arg(i)` (arguments after the program name) and `env`.
pub fn parse(
    arg: &dyn Fn(usize) -> Option<&'static [u8]>,
    env: &dyn Fn(&[u8]) -> Option<&'static [u8]>,
) -> Result<Command, Error> {
    let mut c = Config::default();
    for s in &SETTINGS {
        if let Some(v) = env(s.var).filter(|v| !v.is_empty()) {
            if !(s.apply)(&mut c, v) {
                return Err(Error {
                    source: s.var,
                    value: v,
                    expected: s.expected,
                });
            }
        }
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
        if let Some(s) = SETTINGS
            .iter()
            .find(|s| !s.option.is_empty() && s.option == name)
        {
            let v = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    arg(i - 1).unwrap_or(b"")
                }
            };
            if v.is_empty() {
                return Err(Error {
                    source: s.option,
                    value: b"",
                    expected: b"a value",
                });
            }
            if !(s.apply)(&mut c, v) {
                return Err(Error {
                    source: s.option,
                    value: v,
                    expected: s.expected,
                });
            }
            continue;
        }
        // size: `==` (a length check and one memcmp call each), not a `match` on the literals,
        // which compiles to a comparison for every byte (168 bytes more on x86-64, 264 on
        // arm64, 224 on ppc64le).
        if a == b"--quiet" {
            c.log = false;
        } else if a == b"--probe" || a == b"healthcheck" {
            probe = true;
        } else if a == b"--help" {
            return Ok(Command::Help);
        } else if a == b"--version" {
            return Ok(Command::Version);
        } else {
            return Err(Error {
                source: b"",
                value: a,
                expected: b"",
            });
        }
    }
    Ok(if probe {
        Command::Probe(c)
    } else {
        Command::Serve(c)
    })
}

/// `on` or `off` into `flag`; false for anything else.
fn on_off(v: &[u8], flag: &mut bool) -> bool {
    *flag = v == b"on";
    *flag || v == b"off"
}

/// A decimal from `min` to `max` into `field`; false, leaving `field` as it was, otherwise.
fn seconds(v: &[u8], min: u64, max: u64, field: &mut Secs) -> bool {
    match decimal::parse(v, max) {
        Some(n) if n >= min => {
            *field = Secs(n as u32);
            true
        }
        _ => false,
    }
}

/// A decimal from 1 to `max`.
fn number(v: &[u8], max: u64) -> Option<u64> {
    decimal::parse(v, max).filter(|&n| n > 0)
}

#[cfg(test)]
mod test {
    use super::*;

    fn parse_with(
        args: &'static [&'static str],
        env: &'static [(&'static str, &'static str)],
    ) -> Result<Command, Error> {
        parse(&|i| args.get(i).map(|s| s.as_bytes()), &|name: &[u8]| {
            env.iter()
                .find(|(k, _)| k.as_bytes() == name)
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
                c.timeouts.header,
                c.timeouts.idle,
                c.max_connections
            ),
            (false, 3, Secs(5), Secs(7), 9)
        );
        assert!(!serve(&[], &[("TINYAPI_LOG", "off")]).log);
    }

    #[test]
    fn commands() {
        assert_eq!(parse_with(&["--help"], &[]), Ok(Command::Help));
        assert_eq!(
            parse_with(&["--quiet", "--version"], &[]),
            Ok(Command::Version)
        );
        let probe = parse_with(&["--probe", "--listen", "127.0.0.1:1"], &[]);
        assert!(matches!(probe, Ok(Command::Probe(c)) if c.listen.port == 1));
        assert!(matches!(
            parse_with(&["healthcheck"], &[]),
            Ok(Command::Probe(_))
        ));
    }

    const LISTEN: &[u8] = b"ADDR:PORT, e.g. 0.0.0.0:8080 or [::]:8080";
    const PORT: &[u8] = b"a port number from 0 to 65535";
    const WORKERS: &[u8] = b"a number from 1 to 64";
    const SECS: &[u8] = SECONDS;

    fn bad(source: &'static [u8], value: &'static [u8], expected: &'static [u8]) -> Error {
        Error {
            source,
            value,
            expected,
        }
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
