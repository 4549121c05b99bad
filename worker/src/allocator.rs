//! How the worker's allocator gives image buffers back. glibc's malloc raises its mmap threshold after the first
//! large buffer is freed (up to 32 MiB), so later decode buffers come from the heap and stay resident after the task
//! that used them: the worker's resident memory grows to its worst pair of tasks plus fragmentation. A fixed
//! threshold of 1 MiB hands every image buffer back to the kernel when freed, and two arenas (instead of eight per
//! core) keep the blocking threads from each holding a heap of their own. Measured on the mixed corpus (`make bench`,
//! last table): worker peak 110 → 65 MB, images a second within the run-to-run spread (30.0 and 27.8).
//!
//! `mallopt` is the only way to set this from inside the process (the `MALLOC_*_` variables are read before
//! `main`); an operator who sets `MALLOC_MMAP_THRESHOLD_` or `MALLOC_ARENA_MAX` keeps their own values.
#![allow(unsafe_code)]

/// Applies the settings above, unless the environment sets glibc's own; elsewhere than glibc, nothing.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: mallopt only changes allocator parameters; called at start-up, before the runtime's threads.
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20) };
        }
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: as above.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
        }
    }
}
