//! Allocator settings for the Lambda container: the memory an invocation frees is kept for the
//! next one instead of being given back and faulted in again. glibc only; elsewhere nothing.
//!
//! The decision (issue 22, measured at the largest payload Lambda hands over, 6 MB, 20 batches
//! in one container: BENCHMARKS.md, "The whole path at 6 MB (issue 22)"): blocks up to 32 MiB
//! come from the heap, the heap's top is given back only past 32 MiB free, and nothing is
//! trimmed after an invocation. Against the former settings (blocks over 128 KiB in their own
//! mappings, `malloc_trim(0)` after each invocation) a 6 MB batch costs about 30% less CPU (no
//! ~5,000 page faults per batch), for a peak RSS of 31-38 MB instead of ~26 MB, well within the
//! 64 MB target. Trimming only when the heap's free part passes 16 MiB, or to a 16 MiB pad,
//! kept most of the faults; a 1 MiB mmap threshold half of them; an 8 MiB trim threshold some;
//! a 1 GiB trim threshold, `M_ARENA_MAX` 1, `M_TOP_PAD` and `M_MXFAST` 0 changed nothing
//! measurable (one thread allocates); a larger tcache was slower.

/// Blocks below this size come from the heap and are reused after free; 32 MiB is the most
/// glibc accepts, above a 6 MB payload and its copies. Setting it also stops glibc moving the
/// threshold by itself.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: i32 = 32 * 1024 * 1024;

/// The heap's free top is given back to the system once it passes this: a batch that is
/// larger than usual (the worst case in BENCHMARKS.md, "Memory: the worst 6 MB SQS batch")
/// does not stay resident for good, while an ordinary 6 MB batch's memory is kept.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD_BYTES: i32 = 32 * 1024 * 1024;

/// Sets both thresholds, before any other thread exists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn tune_allocator() {
    // SAFETY: mallopt only sets a malloc parameter; it is called before any other thread
    // exists, and a refusal (return value 0) just leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn tune_allocator() {}
