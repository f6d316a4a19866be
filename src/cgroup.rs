//! The CPU limit of the process's cgroup, for the default worker count.
//!
//! Pure: [`cpu_limit`] is given a function that reads a file. It reads `/proc/self/cgroup`, one
//! `ID:CONTROLLERS:PATH` line per hierarchy, each mounted at `/sys/fs/cgroup/CONTROLLERS`
//! (v2, which lists no controllers, at `/sys/fs/cgroup` itself), and then the limit in each
//! named cgroup: [cgroup v2] `cpu.max` (`QUOTA PERIOD`, or `max PERIOD` for none) or
//! [cgroup v1] `cpu.cfs_quota_us` and `cpu.cfs_period_us` (quota `-1` for none). Where the
//! named cgroup has no limit, or is not there, the hierarchy's root is read instead: a container
//! without a cgroup namespace sees its host's path in `/proc/self/cgroup`, while its own cgroup
//! is mounted as the root.
//!
//! [cgroup v2]: https://docs.kernel.org/admin-guide/cgroup-v2.html#cpu-interface-files
//! [cgroup v1]: https://docs.kernel.org/scheduler/sched-bwc.html

use crate::buf::Buf;

/// Longest `/proc/self/cgroup` read: a dozen v1 hierarchies with the long paths of containers.
const LIST_LEN: usize = 2048;
/// Longest file path built: mount point, cgroup path and file name, with room for the deep
/// paths of Kubernetes pods.
const PATH_LEN: usize = 256;

/// Where the hierarchies are mounted.
const MOUNT: &[u8] = b"/sys/fs/cgroup/";

/// The files that hold a limit, v2's then v1's two, each ending with NUL. A cgroup has one kind,
/// so what is read of them together is `QUOTA PERIOD\n` or `QUOTA\nPERIOD\n`. One string, not
/// a table of three: a path ends at its first NUL, so a name is the rest of the string.
// size: a table of three slices would take 48 bytes more.
const FILES: &[u8] = b"/cpu.max\0/cpu.cfs_quota_us\0/cpu.cfs_period_us\0";

/// The buffers [`cpu_limit`] reads and builds paths in, kept in `.bss` by the caller: zeroed
/// on the stack they would cost a memset call (and musl's memset on arm64) for one use.
pub struct Scratch {
    list: [u8; LIST_LEN],
    path: [u8; PATH_LEN],
}

impl Scratch {
    /// All zero.
    pub const EMPTY: Scratch = Scratch {
        list: [0; LIST_LEN],
        path: [0; PATH_LEN],
    };
}

/// The CPUs the quota of the process's cgroup allows, rounded up; `usize::MAX` when there is
/// no limit or it cannot be read. `read(path, into)` reads the file at `path` (up to its first
/// NUL) into `into` and returns the number of bytes read, 0 if it cannot.
///
/// Every line of `/proc/self/cgroup` is tried in turn (a hierarchy without the `cpu`
/// controller has none of the files), first the named cgroup, then the hierarchy's root.
#[inline(never)]
pub fn cpu_limit(read: impl Fn(&[u8], &mut [u8]) -> usize, scratch: &mut Scratch) -> usize {
    let Scratch { list, path } = scratch;
    let n = read(b"/proc/self/cgroup\0", list).min(LIST_LEN);
    for line in list[..n].split_mut(|&b| b == b'\n') {
        let Some((dir, root)) = directory(line) else {
            continue;
        };
        let mut len = dir.len();
        loop {
            let mut text = [0u8; 64]; // the numbers: 20 digits at most, twice
            let mut n = 0;
            let mut files = FILES;
            while let Some(end) = files.iter().position(|&b| b == 0) {
                let mut p = Buf::new(path);
                p.push(MOUNT);
                p.push(&dir[..len]);
                p.push(files);
                n += read(p.as_bytes(), text.get_mut(n..).unwrap_or_default());
                files = &files[end + 1..];
            }
            let cpus = cpus(text.get(..n).unwrap_or_default());
            if cpus < usize::MAX {
                return cpus;
            }
            if len == root {
                break;
            }
            len = root;
        }
    }
    usize::MAX
}

/// The directory of the cgroup a line of `/proc/self/cgroup` names, relative to `MOUNT` and
/// written over the line: `ID:CONTROLLERS:PATH` becomes `CONTROLLERS/PATH` (PATH starts with
/// `/`, which doubles the slash, as harmless in a path as it is cheap). With it, the length of
/// `CONTROLLERS`: the hierarchy's root. `None` for a line without two colons.
pub fn directory(line: &mut [u8]) -> Option<(&[u8], usize)> {
    let id = line.iter().position(|&b| b == b':')?;
    let dir = &mut line[id + 1..];
    let root = dir.iter().position(|&b| b == b':')?;
    dir[root] = b'/';
    Some((dir, root))
}

/// `QUOTA PERIOD` in microseconds (separated by a space or newline) as whole CPUs, rounded up;
/// `usize::MAX` for no limit (`max`, `-1`) and for anything else that is not two numbers.
pub fn cpus(text: &[u8]) -> usize {
    let mut quota = 0;
    let mut n: u64 = 0;
    for &b in text {
        if b.is_ascii_digit() {
            n = n.wrapping_mul(10).wrapping_add((b - b'0') as u64);
        } else if b > b' ' {
            return usize::MAX;
        } else if quota == 0 {
            quota = n;
            n = 0;
        } else {
            break;
        }
    }
    if quota == 0 || n == 0 {
        return usize::MAX;
    }
    quota.div_ceil(n) as usize
}

#[cfg(test)]
mod test {
    use super::*;

    const NONE: usize = usize::MAX;

    #[test]
    fn cpus_from_quota_and_period() {
        let cases: &[(&[u8], usize)] = &[
            // v2: cpu.max
            (b"max 100000\n", NONE),
            (b"50000 100000\n", 1),
            (b"100000 100000\n", 1),
            (b"150000 100000\n", 2),
            (b"200000 100000\n", 2),
            (b"350000 100000", 4),
            (b"1000 1000\n", 1),
            // v1: cpu.cfs_quota_us, then cpu.cfs_period_us
            (b"-1\n100000\n", NONE),
            (b"50000\n100000\n", 1),
            (b"250000\n100000\n", 3),
            (b"100000\n", NONE),
            // Nothing read, or not two numbers
            (b"", NONE),
            (b"\n", NONE),
            (b"50000", NONE),
            (b"50000 ", NONE),
            (b"50000 0\n", NONE),
            (b"0 100000\n", NONE),
            (b"50000 abc\n", NONE),
            (b"5e4 100000\n", NONE),
            (b"1.5 1\n", NONE),
            (b"max\n", NONE),
        ];
        for &(text, want) in cases {
            assert_eq!(cpus(text), want, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[track_caller]
    fn dir_of(line: &str) -> Option<(String, usize)> {
        let mut line = line.as_bytes().to_vec();
        directory(&mut line).map(|(d, root)| (String::from_utf8(d.to_vec()).unwrap(), root))
    }

    #[test]
    fn picks_the_directory_out_of_a_line() {
        let d = |s: &str, root: usize| Some((s.to_string(), root));
        // v2: no controllers, mounted at /sys/fs/cgroup itself.
        assert_eq!(
            dir_of("0::/system.slice/app.service"),
            d("//system.slice/app.service", 0)
        );
        assert_eq!(dir_of("0::/"), d("//", 0));
        // v1: mounted at /sys/fs/cgroup/CONTROLLERS.
        assert_eq!(
            dir_of("4:cpu,cpuacct:/docker/1f"),
            d("cpu,cpuacct//docker/1f", 11)
        );
        assert_eq!(dir_of("1:cpu:/"), d("cpu//", 3));
        assert_eq!(dir_of("12:pids:/user.slice"), d("pids//user.slice", 4));
        // A path may hold colons of its own.
        assert_eq!(dir_of("0::/a:b:c"), d("//a:b:c", 0));
        for bad in ["", "garbage", "1:cpu", "1"] {
            assert_eq!(dir_of(bad), None, "{bad:?}");
        }
    }

    /// A file system of `(path, contents)`, read as `sys::read_file` and the kernel read: the
    /// path ends at its first NUL, and repeated slashes count as one.
    fn files<'a>(fs: &'a [(&'a str, &'a str)]) -> impl Fn(&[u8], &mut [u8]) -> usize + 'a {
        move |path, into| {
            let end = path
                .iter()
                .position(|&b| b == 0)
                .expect("a NUL ends the path");
            let mut path = String::from_utf8(path[..end].to_vec()).unwrap();
            while path.contains("//") {
                path = path.replace("//", "/");
            }
            match fs.iter().find(|(p, _)| *p == path) {
                Some((_, text)) => {
                    let n = text.len().min(into.len());
                    into[..n].copy_from_slice(&text.as_bytes()[..n]);
                    n
                }
                None => 0,
            }
        }
    }

    /// `cpu_limit` over the file system `fs` (see `files`).
    fn limit(fs: &[(&str, &str)]) -> usize {
        let mut scratch = Scratch::EMPTY;
        cpu_limit(files(fs), &mut scratch)
    }

    #[test]
    fn reads_the_limit_of_the_named_cgroup() {
        let v2 = [
            ("/proc/self/cgroup", "0::/app\n"),
            ("/sys/fs/cgroup/app/cpu.max", "150000 100000\n"),
            ("/sys/fs/cgroup/cpu.max", "50000 100000\n"),
        ];
        assert_eq!(limit(&v2), 2);
        // Hybrid: the cpu controller on its own v1 hierarchy, v2 with no controllers.
        let v1 = [
            (
                "/proc/self/cgroup",
                "3:memory:/app\n2:cpuacct:/app\n1:cpu:/app\n0::/app\n",
            ),
            ("/sys/fs/cgroup/cpu/app/cpu.cfs_quota_us", "50000\n"),
            ("/sys/fs/cgroup/cpu/app/cpu.cfs_period_us", "100000\n"),
        ];
        assert_eq!(limit(&v1), 1);
        let joined = [
            (
                "/proc/self/cgroup",
                "5:cpu,cpuacct:/system.slice/app.service\n",
            ),
            (
                "/sys/fs/cgroup/cpu,cpuacct/system.slice/app.service/cpu.cfs_quota_us",
                "250000\n",
            ),
            (
                "/sys/fs/cgroup/cpu,cpuacct/system.slice/app.service/cpu.cfs_period_us",
                "100000\n",
            ),
            ("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n"),
            ("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n"),
        ];
        assert_eq!(limit(&joined), 3);
    }

    #[test]
    fn falls_back_to_the_hierarchy_root() {
        // Docker on cgroup v1: the host's path is named, the container's own cgroup is the root.
        let docker_v1 = [
            (
                "/proc/self/cgroup",
                "4:memory:/docker/1f\n1:cpu:/docker/1f\n0::/\n",
            ),
            ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "50000\n"),
            ("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n"),
        ];
        assert_eq!(limit(&docker_v1), 1);
        // The named cgroup is there but unlimited; its hierarchy's root is not.
        let v2 = [
            ("/proc/self/cgroup", "0::/docker/1f\n"),
            ("/sys/fs/cgroup/docker/1f/cpu.max", "max 100000\n"),
            ("/sys/fs/cgroup/cpu.max", "200000 100000\n"),
        ];
        assert_eq!(limit(&v2), 2);
    }

    #[test]
    fn no_limit_when_none_is_set_or_readable() {
        assert_eq!(limit(&[]), NONE);
        // /proc without /sys.
        assert_eq!(limit(&[("/proc/self/cgroup", "0::/\n")]), NONE);
        let unlimited = [
            ("/proc/self/cgroup", "2:cpuacct:/\n1:cpu:/\n0::/\n"),
            ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n"),
            ("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n"),
        ];
        assert_eq!(limit(&unlimited), NONE);
        let garbage = [
            ("/proc/self/cgroup", "0::/app\n"),
            ("/sys/fs/cgroup/app/cpu.max", "lots\n"),
        ];
        assert_eq!(limit(&garbage), NONE);
        // Only the hierarchy named on the line is read: the cpu controller's files under
        // another hierarchy's name do not count.
        let elsewhere = [
            ("/proc/self/cgroup", "3:memory:/app\n"),
            ("/sys/fs/cgroup/cpu/app/cpu.cfs_quota_us", "50000\n"),
            ("/sys/fs/cgroup/cpu/app/cpu.cfs_period_us", "100000\n"),
        ];
        assert_eq!(limit(&elsewhere), NONE);
    }
}
