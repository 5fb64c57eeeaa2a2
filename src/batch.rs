//! How records become requests: consecutive events, at most a fixed number of records per
//! request, and one event's records never split across two requests (docs/contracts.md §1, §5).

use std::ops::Range;

/// Groups consecutive items, the i-th holding `sizes[i]` records, into ranges of items whose
/// records add up to at most `max` (an item larger than `max` gets a range of its own; items
/// with no records join their neighbours).
pub fn chunk_by_size(sizes: impl IntoIterator<Item = usize>, max: usize) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut filled = 0;
    let mut end = 0;
    for (i, size) in sizes.into_iter().enumerate() {
        if filled > 0 && filled + size > max {
            chunks.push(start..i);
            start = i;
            filled = 0;
        }
        filled += size;
        end = i + 1;
    }
    if end > start {
        chunks.push(start..end);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clevertap::request::MAX_RECORDS_PER_UPLOAD;

    #[test]
    fn two_thousand_five_hundred_single_record_events_make_three_requests() {
        let chunks = chunk_by_size(std::iter::repeat_n(1, 2500), MAX_RECORDS_PER_UPLOAD);
        assert_eq!(chunks, vec![0..1000, 1000..2000, 2000..2500]);
    }

    #[test]
    fn an_event_with_two_records_never_straddles_two_requests() {
        let mut sizes = vec![1; 999];
        sizes.push(2);
        sizes.push(1);
        let chunks = chunk_by_size(sizes, MAX_RECORDS_PER_UPLOAD);
        assert_eq!(chunks, vec![0..999, 999..1001]);
    }

    #[test]
    fn no_items_make_no_requests() {
        assert!(chunk_by_size(Vec::new(), 10).is_empty());
    }
}
