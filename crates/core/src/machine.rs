//! What this machine offers a loader: its cores and its memory.

/// The cores of this machine the process may use (at least 1).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The machine's physical memory in bytes, where the system says.
pub fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf reads system constants; it has no preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && size > 0).then(|| pages as u64 * size as u64)
}
