//! What the process can learn about the machine it runs on: physical memory
//! and its own peak resident memory, read from `/proc` (`None` elsewhere).
//! The engine's memory estimate and the readers' row budget use them;
//! [`crate::engine`] re-exports both.

/// The machine's physical memory (`MemTotal` of `/proc/meminfo`), bytes;
/// `None` where it cannot be read (not Linux).
pub fn physical_memory_bytes() -> Option<u64> {
    proc_kib("/proc/meminfo", "MemTotal:")
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
