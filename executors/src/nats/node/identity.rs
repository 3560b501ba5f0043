//! Who a node is: `HOST:PID`, in every message that names it, its errors and its metrics.

/// `HOST:PID` of this process.
pub(crate) fn this_node() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

/// The kernel's host name, or `unknown-host` where it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}
