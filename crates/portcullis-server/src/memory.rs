//! Gives the pages that start-up and bursts of load freed back to the
//! system.
//!
//! glibc's `free` returns memory only from the top of a heap; free pages
//! below a live allocation stay resident. Start-up's transients (the
//! OpenAPI operations every route is built with peaked at ~3 MB) left an
//! idle server ~1.6 MB of free pages below what stays live, and a flood of
//! requests leaves more in every thread's arena. `malloc_trim(0)` releases
//! the free pages inside every arena.

/// Called once start-up is done and after each retention pass.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_pages() {
    // SAFETY: malloc_trim takes no pointers and locks each arena while it
    // walks it; glibc allows calling it from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators return memory on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_pages() {}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::release_free_pages;

    fn resident_anonymous_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("RssAnon:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn free_pages_below_a_live_allocation_go_back_to_the_system() {
        // 48 MiB in small blocks (below glibc's mmap threshold, so from
        // this thread's heap), then all but the last freed: `free` cannot
        // shrink the heap past the live block.
        let mut blocks: Vec<Vec<u8>> = (0..12_288).map(|_| vec![1u8; 4096]).collect();
        let kept = blocks.pop();
        drop(blocks);
        let before = resident_anonymous_kib();
        release_free_pages();
        let after = resident_anonymous_kib();
        assert!(kept.is_some());
        // Other tests allocate meanwhile; most of the 48 MiB must be gone.
        assert!(
            before.saturating_sub(after) > 32 * 1024,
            "RssAnon {before} KiB -> {after} KiB"
        );
    }
}
