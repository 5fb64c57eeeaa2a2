//! Allocator settings for the Lambda container: large blocks kept in their own mappings and freed
//! memory given back between invocations, so one big SQS batch does not raise the next one's
//! peak (measured in BENCHMARKS.md, "Whole path"). glibc only; elsewhere they do nothing.

/// Blocks of this size and more get their own mapping, returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: i32 = 128 * 1024;

/// glibc's malloc raises its mmap threshold to the size of the largest block freed (up to
/// 32 MiB). After the first big SQS batch (the runtime reads a 10,000-message payload of ~14 MB,
/// then its text copy), later payloads of that size would come from the heap, which keeps them
/// after free and fragments, so the peak would grow from one invocation to the next. A fixed
/// threshold (glibc's initial one) keeps every large block in its own mapping
/// (BENCHMARKS.md, "Whole path").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn tune_allocator() {
    // SAFETY: mallopt only sets a malloc parameter; it is called before any other thread
    // exists, and a refusal (return value 0) just leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn tune_allocator() {}

/// Gives the memory the invocation freed back to the system before the next payload arrives:
/// what glibc keeps of a 10,000-message batch would otherwise add to the next one's peak.
/// Costs a few milliseconds after such a batch, microseconds after a small one
/// (BENCHMARKS.md, "Whole path").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn trim_heap() {
    // SAFETY: malloc_trim only returns free memory to the system; it takes malloc's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn trim_heap() {}
