// The system calls a running worker makes, most frequent first (the seccomp filter tests them in
// order). Everything else (open, execve, connect, mmap, ...) kills the process.
//
// One expression, `allowed![SYS_name, ..]`, included by src/sys/seccomp.rs, where the macro
// makes the numbers the filter holds (`SYS_name` of the libc crate, or of `nr` in
// src/sys/mod.rs where the crate lacks it; a name with a `#[cfg]` only where it holds), and by
// tests/lockdown.rs, where it makes the names that strace's record is checked against: both
// read this one list.
allowed![
    SYS_epoll_pwait, // Epoll::wait
    SYS_recvfrom,    // recv
    SYS_sendto,      // send
    SYS_accept4,
    SYS_close,
    SYS_epoll_ctl,
    SYS_write,  // the log, eventfd wake-up
    SYS_writev, // messages (write_parts)
    SYS_read,   // signalfd
    SYS_shutdown,
    #[cfg(target_pointer_width = "64")]
    SYS_clock_gettime, // only where the vDSO is missing
    #[cfg(target_pointer_width = "32")]
    SYS_clock_gettime64, // the same, with 64-bit seconds
    SYS_wait4,         // reaping workers
    SYS_kill,          // stopping workers
    SYS_exit_group,
    SYS_restart_syscall,
]
