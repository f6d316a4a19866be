//! What the kernel says about a process, read from /proc (children, state, sockets, status
//! fields, CPU time, memory, descriptors), and this process's descriptor limit.

use std::thread;
use std::time::{Duration, Instant};

/// Raises this process's open-file soft limit to its hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit fill and read a plain struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        if r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
        }
        r.rlim_cur as u64
    }
}

/// The child processes of `pid` (all its threads'), from /proc.
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// Waits until process `pid` has ended (gone, or a zombie nobody reaped); false on timeout.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s[s.rfind(')')? + 2..].chars().next());
        if matches!(state, None | Some('Z') | Some('X')) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The TCP port process `pid` listens on, from /proc (for a server whose stdout is closed).
pub fn listening_port(pid: i32, timeout: Duration) -> Option<u16> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(p) = find_listening_port(pid) {
            return Some(p);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn find_listening_port(pid: i32) -> Option<u16> {
    tcp_sockets(pid, &["/proc/net/tcp"])
        .into_iter()
        .find_map(|(state, port)| (state == "0A").then_some(port))
}

/// How many TCP connections (sockets not listening, IPv4 or IPv6) process `pid` holds, from
/// /proc.
pub fn tcp_connections(pid: i32) -> usize {
    tcp_sockets(pid, &["/proc/net/tcp", "/proc/net/tcp6"])
        .iter()
        .filter(|(state, _)| state != "0A")
        .count()
}

/// The (state, local port) of each TCP socket that process `pid` has open, from its
/// descriptors and the kernel's `tables`.
fn tcp_sockets(pid: i32, tables: &[&str]) -> Vec<(String, u16)> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: Vec<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let text: String = tables
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .collect();
    // By inode: the kernel's tables can list a socket twice when they change while being read
    // (thousands of connections opening and closing in a test running alongside).
    let sockets: std::collections::BTreeMap<&str, (String, u16)> = text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1 (HEX_IP:HEX_PORT), st field 3 (0A = LISTEN), inode field 9.
            if f.len() > 9 && inodes.iter().any(|i| i == f[9]) {
                let port = u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok()?;
                Some((f[9], (f[3].to_string(), port)))
            } else {
                None
            }
        })
        .collect();
    sockets.into_values().collect()
}

/// The value of `field` in /proc/PID/status (`Seccomp`, `NoNewPrivs`, ...), without the tab.
pub fn proc_status(pid: i32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(":\t")?;
        Some(v.to_string())
    })
}

/// Resident memory of process `pid` in bytes (`VmRSS`), or 0 when it is gone.
pub fn rss(pid: i32) -> u64 {
    proc_status(pid, "VmRSS")
        .and_then(|v| v.trim().strip_suffix(" kB")?.trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// CPU time process `pid` has used (user + system, all its threads), from /proc/PID/stat.
#[track_caller]
pub fn cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    // Fields after the command name, which is in parentheses and may contain spaces: the
    // state is field 3, utime field 14, stime field 15.
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// How many descriptors process `pid` has open, from /proc/PID/fd.
pub fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}
