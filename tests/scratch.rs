//! The binary alone in an empty root, as in a `FROM scratch` image: no /dev, /proc or /etc,
//! PID 1 of its own PID namespace, sharing the host's network namespace so loopback works.
//! Under emulation (`TINYAPI_TEST_TARGET=aarch64`) the static qemu binary is copied into the
//! root as well and is PID 1, running `/tinyapi`.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// An empty directory holding only a copy of the binary (and its emulator, if any), and the
/// command line that runs it there; removed on drop.
struct Root(PathBuf, Vec<String>);

impl Root {
    fn new(tag: &str) -> Root {
        let dir =
            std::env::temp_dir().join(format!("tinyapi-scratch-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let run = install_in(&dir);
        Root(dir, run)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Why the scratch test cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root for unshare and chroot".into());
    }
    for tool in ["unshare", "chroot"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
            .unwrap_or(false);
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

/// The command running `/tinyapi ARGS` inside the empty root, in new namespaces;
/// `--kill-child` makes unshare take the program down with it when unshare is killed.
fn in_root(root: &Root, args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "--fork",
        "--pid",
        "--mount",
        "--uts",
        "--ipc",
        "--kill-child",
        "chroot",
    ])
    .arg(&root.0)
    .args(&root.1)
    .args(args);
    clean_env(&mut c);
    c
}

/// Starts the server inside the empty root on a free loopback port.
fn start_in(root: &Root, args: &[&str]) -> Server {
    let mut c = in_root(root, &["--listen", "127.0.0.1:0"]);
    c.args(args);
    Server::spawn(c)
}

/// The PID (in this namespace) of the server that unshare forked.
fn server_pid(unshare: u32) -> Option<i32> {
    let children =
        std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

macro_rules! require_scratch {
    () => {
        if let Some(why) = unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

#[test]
fn serves_all_endpoints_from_an_empty_root() {
    require_scratch!();
    let root = Root::new("serve");
    let mut s = start_in(&root, &[]);
    // usable_cpus must work without /proc and /sys: at least one worker.
    assert!(s.banner.contains(" worker"), "{}", s.banner);
    assert_eq!(s.get("/"), index_response(""));
    assert_eq!(s.get("/alwaysok"), alwaysok_response(""));
    let h = s.health();
    assert!(h.requests >= 2, "{h:?}");
    let mut c = s.connect();
    let port = c.stream.local_addr().unwrap().port();
    c.send(b"GET /alwaysok HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(c.normalized(false), alwaysok_response(""));
    s.stdout
        .wait_for(PATIENCE, |t| {
            t.contains(&format!(
                " 127.0.0.1:{port} \"GET /alwaysok HTTP/1.1\" 200 18 "
            ))
        })
        .expect("access log line from inside the root");
    // /panic ends PID 1, and with it the namespace; unshare passes the status on.
    let mut p = s.connect();
    p.send(b"GET /panic HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(s.exit_code(PATIENCE), 1);
    assert!(s.stderr.text().contains("FATAL"), "{:?}", s.stderr.text());
}

#[test]
fn stops_cleanly_on_sigterm_as_pid_1() {
    // PID 1 gets no default signal actions: SIGTERM works only because the server handles it.
    require_scratch!();
    let root = Root::new("sigterm");
    let mut s = start_in(&root, &[]);
    s.assert_serves();
    let Some(pid) = server_pid(s.child.id()) else {
        eprintln!("skipped: /proc/PID/task/PID/children is not available");
        return;
    };
    // SAFETY: kill(2) on the server process that our unshare child forked.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_eq!(s.exit_code(Duration::from_secs(5)), 0);
    assert!(
        s.stdout.text().ends_with("tinyapi stopped\n"),
        "{:?}",
        s.stdout.text()
    );
}

#[test]
fn probe_works_from_an_empty_root() {
    require_scratch!();
    let root = Root::new("probe");
    let s = start_in(&root, &[]);
    let c = in_root(&root, &["--probe", "--listen", &s.addr.to_string()]);
    let r = run(c, PATIENCE);
    assert_eq!(r.code, 0, "stderr {:?}", r.stderr);
}
