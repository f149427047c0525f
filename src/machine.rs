//! What the process can learn about the machine it runs on: physical memory
//! and its own peak resident memory, read from `/proc` (`None` elsewhere).
//! The engine's memory estimate and the readers' row budget use them;
//! [`crate::engine`] re-exports both.

/// The memory this process may use, bytes: the machine's physical memory
/// (`MemTotal` of `/proc/meminfo`), or the process's address-space limit
/// (`ulimit -v`, "Max address space" of `/proc/self/limits`) when that is
/// lower, since an allocation past it aborts the process however much the
/// machine has. `None` where neither can be read (not Linux).
pub fn physical_memory_bytes() -> Option<u64> {
    let total = proc_kib("/proc/meminfo", "MemTotal:");
    match (total, address_space_limit()) {
        (Some(t), Some(l)) => Some(t.min(l)),
        (t, l) => t.or(l),
    }
}

/// The soft limit on this process's address space, bytes; `None` when
/// unlimited or unreadable.
fn address_space_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max address space"))?;
    // `Max address space   <soft>   <hard>   bytes`
    line.trim_start_matches("Max address space")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The peak resident memory of this process so far (`VmHWM` of
/// `/proc/self/status`), bytes; `None` where it cannot be read.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_kib("/proc/self/status", "VmHWM:")
}

/// The `field` line (`Name:   1234 kB`) of a `/proc` file, in bytes.
fn proc_kib(file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line
        .trim_start_matches(field)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}
