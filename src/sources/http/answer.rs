//! The answer to a processed request (docs/contracts.md §3): every item's result and the counts,
//! kept under [`MAX_ANSWER_BYTES`] whatever the body held, far below Lambda's 6 MB response
//! limit (past it the sender would see a 502 and send everything again).
//!
//! - Full: each result carries its `code` and `message`.
//! - Shared, when the full answer would pass the cap: results carry their `code` and a `reason`
//!   number into `reasons`, which holds each distinct code and message once, with its count.
//! - Summarised, when even that would pass the cap: `"truncated": true`, the counts per status
//!   and per code (`codes`), and the first [`SUMMARY_RESULTS`] results (fewer if their reasons
//!   are long) in the shared form.
//!
//! Items past `MAX_ITEMS_PER_BODY` are never listed one by one: `unprocessed` gives their
//! range, status (`rejected`) and code (`too_many_items`); they count as rejected.
//!
//! One builder for sync and queue mode: in queue mode a taken item is `queued` (not
//! `delivered`), the count is `queued`, and success is 202 instead of 200.

use super::Reply;
use crate::codes;
use crate::outcome::{Outcome, StatusCounts};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use std::collections::{BTreeMap, HashMap};

/// The largest answer body, in bytes of JSON: well under Lambda's 6 MB response limit, even once
/// the body is escaped into the response.
pub const MAX_ANSWER_BYTES: usize = 1_000_000;
/// How many per-item results a summarised answer lists at most.
pub const SUMMARY_RESULTS: usize = 1_000;

/// The items of a body past `MAX_ITEMS_PER_BODY`: neither sent nor dead-lettered.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Unprocessed {
    /// Index of the first of them (= the bound).
    pub from: usize,
    pub count: usize,
}

/// What a taken item's `Delivered` stands for in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Taken {
    /// Sync mode: delivered to CleverTap (200).
    Delivered,
    /// Queue mode: put on the events queue (202).
    Queued,
}

impl Taken {
    fn status(self, outcome: &Outcome) -> &'static str {
        match (self, outcome) {
            (Taken::Queued, Outcome::Delivered) => STATUS_QUEUED,
            _ => outcome.status().as_str(),
        }
    }
}

/// An item's status once it is on the events queue (docs/contracts.md §3).
pub const STATUS_QUEUED: &str = "queued";

/// One processed item: its id (`messageId`, or a user's `userId`) and outcome.
pub(super) struct Item<'a> {
    pub id: Option<&'a str>,
    pub outcome: &'a Outcome,
}

/// The reply for a processed request: 200 (202 queued) when nothing needs a retry, 400 when
/// every item was rejected, 503 (with `Retry-After`) when any needs a retry. `id_key` names the
/// items' id in results (`messageId`, `userId`); `noun` names the items in messages (`items`,
/// `users`).
pub(super) fn reply(
    taken: Taken,
    id_key: &'static str,
    noun: &'static str,
    items: &[Item<'_>],
    unprocessed: Unprocessed,
) -> Reply {
    let beyond = unprocessed.count;
    let mut counts = StatusCounts::of(items.iter().map(|i| i.outcome));
    counts.rejected += beyond;
    let status = if counts.retry > 0 {
        503
    } else if counts.rejected > 0 && counts.delivered == 0 && counts.filtered == 0 {
        400
    } else if taken == Taken::Queued {
        202
    } else {
        200
    };
    let verb = match taken {
        Taken::Delivered => "sent",
        Taken::Queued => "queued",
    };
    let message;
    let unprocessed = if unprocessed.count > 0 {
        message = format!(
            "only the first {} {noun} of a body are processed (MAX_ITEMS_PER_BODY); {noun} {} to \
             {} were neither {verb} nor dead-lettered: send them again in another request",
            unprocessed.from,
            unprocessed.from,
            unprocessed.from + unprocessed.count - 1
        );
        Some(UnprocessedJson {
            from: unprocessed.from,
            count: unprocessed.count,
            status: "rejected",
            code: codes::TOO_MANY_ITEMS,
            message: &message,
        })
    } else {
        None
    };
    let answer = |results, reasons, codes, truncated| Answer {
        results,
        reasons,
        codes,
        truncated,
        delivered: (taken == Taken::Delivered).then_some(counts.delivered),
        queued: (taken == Taken::Queued).then_some(counts.delivered),
        filtered: counts.filtered,
        rejected: counts.rejected,
        retry: counts.retry,
        unprocessed: unprocessed.as_ref(),
    };
    let results = |shared, limit| Results {
        taken,
        items,
        id_key,
        shared,
        limit,
    };

    let full = answer(results(None, items.len()), None, None, false);
    let body = if json_size(&full) <= MAX_ANSWER_BYTES {
        serde_json::to_value(&full)
    } else {
        let (reason_of, reasons) = share(items);
        let shared = answer(
            results(Some(&reason_of), items.len()),
            Some(&reasons),
            None,
            false,
        );
        if json_size(&shared) <= MAX_ANSWER_BYTES {
            serde_json::to_value(&shared)
        } else {
            let mut per_code: BTreeMap<&str, usize> = BTreeMap::new();
            for reason in items.iter().filter_map(|i| i.outcome.reason()) {
                *per_code.entry(reason.code.as_ref()).or_default() += 1;
            }
            if beyond > 0 {
                *per_code.entry(codes::TOO_MANY_ITEMS).or_default() += beyond;
            }
            let mut shown = SUMMARY_RESULTS.min(items.len());
            loop {
                // Reasons are numbered by first appearance: the first `shown` results use a prefix.
                let used = reason_of[..shown]
                    .iter()
                    .flatten()
                    .max()
                    .map_or(0, |r| r + 1);
                let summary = answer(
                    results(Some(&reason_of), shown),
                    Some(&reasons[..used]),
                    Some(&per_code),
                    true,
                );
                if shown == 0 || json_size(&summary) <= MAX_ANSWER_BYTES {
                    break serde_json::to_value(&summary);
                }
                shown /= 2;
            }
        }
    };
    Reply {
        status,
        body: body.unwrap_or_else(|_| {
            serde_json::json!({"error": {"code": "response_encoding_failed",
                                         "message": "could not encode the response"}})
        }),
        retry_after: status == 503,
        allow_post: false,
    }
}

/// Each item's reason number (`None` for delivered items), and the distinct reasons in order of
/// first appearance, with how many items share each.
fn share<'a>(items: &[Item<'a>]) -> (Vec<Option<usize>>, Vec<SharedReason<'a>>) {
    let mut reasons: Vec<SharedReason<'a>> = Vec::new();
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let reason_of = items
        .iter()
        .map(|item| {
            let reason = item.outcome.reason()?;
            let n = *index
                .entry((reason.code.as_ref(), reason.message.as_str()))
                .or_insert_with(|| {
                    reasons.push(SharedReason {
                        code: reason.code.as_ref(),
                        message: &reason.message,
                        count: 0,
                    });
                    reasons.len() - 1
                });
            reasons[n].count += 1;
            Some(n)
        })
        .collect();
    (reason_of, reasons)
}

#[derive(Serialize)]
struct Answer<'a> {
    results: Results<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasons: Option<&'a [SharedReason<'a>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queued: Option<usize>,
    filtered: usize,
    rejected: usize,
    retry: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    unprocessed: Option<&'a UnprocessedJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    codes: Option<&'a BTreeMap<&'a str, usize>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

#[derive(Serialize)]
struct SharedReason<'a> {
    code: &'a str,
    message: &'a str,
    count: usize,
}

#[derive(Serialize)]
struct UnprocessedJson<'a> {
    from: usize,
    count: usize,
    status: &'static str,
    code: &'static str,
    message: &'a str,
}

/// The first `limit` items' results; with `shared`, each names its reason by number instead of
/// carrying its message.
struct Results<'a> {
    taken: Taken,
    items: &'a [Item<'a>],
    id_key: &'static str,
    shared: Option<&'a [Option<usize>]>,
    limit: usize,
}

impl Serialize for Results<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.items.iter().take(self.limit).enumerate().map(
            |(index, item)| ItemJson {
                taken: self.taken,
                index,
                id_key: self.id_key,
                item,
                reason: self.shared.map(|s| s[index]),
            },
        ))
    }
}

struct ItemJson<'a> {
    taken: Taken,
    index: usize,
    id_key: &'static str,
    item: &'a Item<'a>,
    /// Shared form: the reason's number (`Some(None)` for a delivered item).
    reason: Option<Option<usize>>,
}

impl Serialize for ItemJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("index", &self.index)?;
        if let Some(id) = self.item.id {
            map.serialize_entry(self.id_key, id)?;
        }
        map.serialize_entry("status", self.taken.status(self.item.outcome))?;
        if let Some(reason) = self.item.outcome.reason() {
            map.serialize_entry("code", &reason.code)?;
            match self.reason {
                None => map.serialize_entry("message", &reason.message)?,
                Some(n) => map.serialize_entry("reason", &n)?,
            }
        }
        map.end()
    }
}

/// The length of `value`'s JSON, without building it.
fn json_size(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn items(outcomes: &[Outcome]) -> Vec<Item<'_>> {
        outcomes
            .iter()
            .map(|outcome| Item { id: None, outcome })
            .collect()
    }

    #[test]
    fn a_small_answer_lists_every_result_with_its_message() {
        let outcomes = [
            Outcome::Delivered,
            Outcome::rejected("missing_type", "no type"),
        ];
        let r = reply(
            Taken::Delivered,
            "messageId",
            "items",
            &items(&outcomes),
            Unprocessed::default(),
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            json!({"results": [{"index": 0, "status": "delivered"},
                               {"index": 1, "status": "rejected", "code": "missing_type",
                                "message": "no type"}],
                   "delivered": 1, "filtered": 0, "rejected": 1, "retry": 0})
        );
    }

    #[test]
    fn a_large_answer_shares_its_reasons_instead_of_repeating_them() {
        let message = "m".repeat(200);
        let outcomes: Vec<Outcome> = (0..10_000)
            .map(|i| {
                if i % 2 == 0 {
                    Outcome::rejected("missing_type", message.clone())
                } else {
                    Outcome::retry("clevertap_unavailable", "503")
                }
            })
            .collect();
        let r = reply(
            Taken::Delivered,
            "messageId",
            "items",
            &items(&outcomes),
            Unprocessed::default(),
        );
        let text = r.body.to_string();
        assert!(text.len() <= MAX_ANSWER_BYTES, "{}", text.len());
        assert_eq!(r.status, 503);
        assert!(r.body.get("truncated").is_none());
        assert_eq!(r.body["results"].as_array().unwrap().len(), 10_000);
        assert_eq!(
            r.body["reasons"],
            json!([{"code": "missing_type", "message": message, "count": 5000},
                   {"code": "clevertap_unavailable", "message": "503", "count": 5000}])
        );
        assert_eq!(
            r.body["results"][1],
            json!({"index": 1, "status": "retry", "code": "clevertap_unavailable", "reason": 1})
        );
        assert_eq!(
            text.matches(&message).count(),
            1,
            "the message is written once"
        );
    }

    #[test]
    fn an_answer_still_too_large_is_summarised_with_counts_per_status_and_code() {
        // Every reason distinct and long: sharing does not help.
        let outcomes: Vec<Outcome> = (0..20_000)
            .map(|i| {
                Outcome::rejected("missing_user_id", format!("users[{i}] {}", "x".repeat(100)))
            })
            .collect();
        let unprocessed = Unprocessed {
            from: 20_000,
            count: 5,
        };
        let r = reply(
            Taken::Delivered,
            "userId",
            "users",
            &items(&outcomes),
            unprocessed,
        );
        let text = r.body.to_string();
        assert!(text.len() <= MAX_ANSWER_BYTES, "{}", text.len());
        assert_eq!(r.status, 400);
        assert_eq!(r.body["truncated"], true);
        assert_eq!(r.body["rejected"], 20_005);
        assert_eq!(
            r.body["codes"],
            json!({"missing_user_id": 20_000, "too_many_items": 5})
        );
        let results = r.body["results"].as_array().unwrap();
        assert_eq!(results.len(), SUMMARY_RESULTS);
        let reasons = r.body["reasons"].as_array().unwrap();
        assert_eq!(
            reasons.len(),
            SUMMARY_RESULTS,
            "only the reasons the results use"
        );
        let last = &results[SUMMARY_RESULTS - 1];
        let reason = &reasons[last["reason"].as_u64().unwrap() as usize];
        assert!(
            reason["message"]
                .as_str()
                .unwrap()
                .starts_with("users[999] ")
        );
    }

    #[test]
    fn items_past_the_bound_are_one_rejected_range_never_listed_one_by_one() {
        let outcomes = [Outcome::Delivered, Outcome::Delivered];
        let unprocessed = Unprocessed {
            from: 2,
            count: 1_000_000,
        };
        let r = reply(
            Taken::Delivered,
            "messageId",
            "items",
            &items(&outcomes),
            unprocessed,
        );
        assert_eq!(r.status, 200, "some were delivered");
        assert_eq!(r.body["rejected"], 1_000_000);
        assert_eq!(r.body["results"].as_array().unwrap().len(), 2);
        let u: &Value = &r.body["unprocessed"];
        assert_eq!(
            (
                u["from"].clone(),
                u["count"].clone(),
                u["status"].clone(),
                u["code"].clone()
            ),
            (
                json!(2),
                json!(1_000_000),
                json!("rejected"),
                json!("too_many_items")
            )
        );
        assert!(
            u["message"]
                .as_str()
                .unwrap()
                .contains("MAX_ITEMS_PER_BODY")
        );
    }
}
