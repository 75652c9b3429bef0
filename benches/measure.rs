//! What both benchmarks read of the processes they run: `/proc` fields, and a child's peak
//! resident size while it runs.

use std::time::Duration;

/// A `/proc/PID/status` field in KiB (`VmRSS:`, `VmHWM:`, `RssAnon:`, …).
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Waits for `child`, sampling its peak resident size (VmHWM) every 10 ms: its exit status
/// and that peak in KiB.
pub async fn wait_with_peak(child: &mut tokio::process::Child) -> (std::process::ExitStatus, u64) {
    let pid = child.id().expect("pid");
    let mut peak = 0;
    loop {
        tokio::select! {
            status = child.wait() => return (status.expect("wait"), peak),
            () = tokio::time::sleep(Duration::from_millis(10)) => {
                peak = peak.max(proc_status_kib(pid, "VmHWM:").unwrap_or(0));
            }
        }
    }
}

/// This process's CPU time so far, user and system.
pub fn self_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |u| {
        let t = |tv: nix::sys::time::TimeVal| Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000);
        t(u.user_time()) + t(u.system_time())
    })
}
