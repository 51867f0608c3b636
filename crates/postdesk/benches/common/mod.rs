//! What the benchmarks share: how a child postdesk process is reaped and measured, and
//! the machine's load beside the figures.

// Each bench uses only part of this.
#![allow(dead_code)]

/// How a child process ended and what it used.
pub struct Finished {
    pub code: i32,
    /// Peak resident set size, KiB.
    pub peak_rss_kb: i64,
    /// User and system CPU seconds: they compare runs on a busy machine, where wall
    /// time does not.
    pub cpu_secs: f64,
}

/// Waits for the child `pid` (spawned by the bench, not yet reaped) and measures it.
pub fn wait_for(pid: libc::pid_t) -> Finished {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, status and usage are valid pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Finished {
        code: libc::WEXITSTATUS(status),
        peak_rss_kb: usage.ru_maxrss,
        cpu_secs: secs(usage.ru_utime) + secs(usage.ru_stime),
    }
}

/// The machine's load average (1, 5, 15 minutes), printed beside every figure.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
