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
