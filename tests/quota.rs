//! Workers from the CPU quota: the release binary started inside a cgroup made for the test.
//!
//! Making a cgroup and limiting it needs root and a cpu controller the test may use: cgroup v1
//! mounted at `/sys/fs/cgroup/cpu`, or cgroup v2 with `cpu` enabled for the test's own cgroup.
//! Elsewhere each test prints why it is skipped and passes.

mod common;

use common::*;
use std::fs;
use std::io;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Microseconds in a period of the CPU controller (the kernel's default).
const PERIOD: u64 = 100_000;

/// A cgroup made for one test, a child of the test's own cpu cgroup; removed on drop.
struct Cgroup {
    dir: PathBuf,
    v1: bool,
}

impl Cgroup {
    /// A new, unlimited cgroup; `None` (and the reason on stderr) where none can be made.
    fn new() -> Option<Cgroup> {
        match Cgroup::make() {
            Ok(c) => Some(c),
            Err(why) => {
                eprintln!("skipped: no cgroup for the test: {why}");
                None
            }
        }
    }

    fn make() -> Result<Cgroup, String> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let own = fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
        // The test's own cgroup where the binary will look: v1's cpu hierarchy, else v2.
        let v1_path = own.lines().find_map(|l| {
            let (_, rest) = l.split_once(':')?;
            let (controllers, path) = rest.split_once(':')?;
            controllers.split(',').any(|c| c == "cpu").then_some(path)
        });
        let (parent, v1) = match v1_path {
            Some(p) => (format!("/sys/fs/cgroup/cpu{p}"), true),
            None => {
                let p = own
                    .lines()
                    .find_map(|l| l.strip_prefix("0::"))
                    .unwrap_or("/");
                let parent = format!("/sys/fs/cgroup{p}");
                let enabled = fs::read_to_string(format!("{parent}/cgroup.subtree_control"))
                    .unwrap_or_default();
                if !enabled.split_whitespace().any(|c| c == "cpu") {
                    return Err(format!("cpu is not enabled below {parent}"));
                }
                (parent, false)
            }
        };
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!("{parent}/tinyapi-quota-{}-{n}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        Ok(Cgroup { dir, v1 })
    }

    /// Sets the quota, in microseconds per [`PERIOD`]; `None` for no limit.
    #[track_caller]
    fn limit(&self, quota: Option<u64>) {
        let files: Vec<(&str, String)> = match (self.v1, quota) {
            (true, q) => vec![
                ("cpu.cfs_period_us", PERIOD.to_string()),
                ("cpu.cfs_quota_us", q.map_or("-1".into(), |q| q.to_string())),
            ],
            (false, q) => vec![(
                "cpu.max",
                format!("{} {PERIOD}", q.map_or("max".into(), |q| q.to_string())),
            )],
        };
        for (file, value) in files {
            let path = self.dir.join(file);
            fs::write(&path, &value)
                .unwrap_or_else(|e| panic!("writing {value:?} to {}: {e}", path.display()));
        }
    }

    /// Starts the binary on `127.0.0.1:0` with `args`, moved into this cgroup before it runs.
    #[track_caller]
    fn start(&self, args: &[&str]) -> Server {
        let procs = fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.procs"))
            .expect("open cgroup.procs");
        let fd = procs.as_raw_fd();
        let mut c: Command = tinyapi();
        c.args(["--listen", "127.0.0.1:0"]).args(args);
        // SAFETY: write(2) is async-signal-safe; "0" moves the writing process, the child.
        unsafe {
            c.pre_exec(move || {
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let s = Server::spawn(c);
        drop(procs);
        s
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Processes leave a cgroup only once they are gone: the workers may still be exiting.
        let deadline = Instant::now() + PATIENCE;
        while fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The CPUs this process may run on (the server inherits them), as the server caps them.
fn usable_cpus() -> usize {
    // SAFETY: all-zero is a valid cpu_set_t, which sched_getaffinity fills in.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer and size describe `set`.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    assert_eq!(r, 0, "sched_getaffinity");
    // SAFETY: `set` was filled in by the kernel.
    (unsafe { libc::CPU_COUNT(&set) } as usize).min(64)
}

/// The start-up line's `(...)`, e.g. `1 worker, from the CPU quota`.
#[track_caller]
fn workers_said(s: &Server) -> &str {
    let (_, tail) = s.banner.rsplit_once(" (").expect("a worker count");
    tail.strip_suffix(')').expect("a closing parenthesis")
}

#[test]
fn half_a_cpu_gives_one_worker_and_says_so() {
    let Some(cg) = Cgroup::new() else { return };
    if usable_cpus() < 2 {
        eprintln!("skipped: one CPU, which no quota can lower");
        return;
    }
    cg.limit(Some(PERIOD / 2));
    let s = cg.start(&[]);
    assert_eq!(workers_said(&s), "1 worker, from the CPU quota");
    assert_eq!(
        s.wait_workers(),
        Vec::<i32>::new(),
        "no process besides the first"
    );
    s.assert_serves();
}

#[test]
fn a_quota_is_rounded_up_to_whole_cpus() {
    let Some(cg) = Cgroup::new() else { return };
    let cpus = usable_cpus();
    // Half a CPU short of all of them: rounded up, every CPU gets its worker.
    cg.limit(Some(cpus as u64 * PERIOD - PERIOD / 2));
    let s = cg.start(&[]);
    let plural = if cpus == 1 { "" } else { "s" };
    assert_eq!(workers_said(&s), format!("{cpus} worker{plural}"));
    assert_eq!(s.wait_workers().len(), cpus - 1);
}

#[test]
fn the_workers_option_overrides_the_quota() {
    let Some(cg) = Cgroup::new() else { return };
    cg.limit(Some(PERIOD / 2));
    let s = cg.start(&["--workers", "2"]);
    assert_eq!(workers_said(&s), "2 workers");
    assert_eq!(s.wait_workers().len(), 1);
}

#[test]
fn without_a_quota_one_worker_per_usable_cpu() {
    let Some(cg) = Cgroup::new() else { return };
    // With nothing in the named cgroup the server reads the hierarchy's root, which is the
    // machine's (unlimited) unless this runs in a container with a quota of its own.
    let root = if cg.v1 {
        fs::read_to_string("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").unwrap_or_default()
    } else {
        fs::read_to_string("/sys/fs/cgroup/cpu.max").unwrap_or_default()
    };
    if !matches!(
        root.split_whitespace().next(),
        None | Some("-1") | Some("max")
    ) {
        eprintln!("skipped: the hierarchy's root has a CPU quota, {root:?}");
        return;
    }
    cg.limit(None);
    let s = cg.start(&[]);
    let cpus = usable_cpus();
    let plural = if cpus == 1 { "" } else { "s" };
    assert_eq!(workers_said(&s), format!("{cpus} worker{plural}"));
    assert_eq!(s.wait_workers().len(), cpus - 1);
}
