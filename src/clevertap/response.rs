//! Reading CleverTap's answer, in pure code. An HTTP 200 can still carry failed records
//! (`status` partial / fail with `unprocessed[]`), so every record sent gets its own verdict:
//! an `unprocessed[]` entry is matched to the record it echoes (compared as JSON values), or by
//! the 1-based "record number" in its error text. A record counts as accepted only when the
//! answer accounts for it: `status` success, or `processed` plus the entries (all matched)
//! equal to the records sent, with it not listed. Anything else leaves every unlisted record
//! unconfirmed: CleverTap may or may not hold it (docs/clevertap-api.md "Responses",
//! docs/contracts.md §5).

use crate::clevertap::retry::Failure;
use crate::clevertap::transport::HttpReply;
use serde::Deserialize;
use serde_json::Value;

/// Longest piece of a non-2xx body kept for messages.
const MAX_BODY_SNIPPET: usize = 512;

/// What an answer says about the records of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// The whole request failed the same way (non-2xx status, unreadable body).
    Whole(Failure),
    /// Per record, in the order sent: `None` accepted, `Some` failed.
    PerRecord(Vec<Option<Failure>>),
}

#[derive(Deserialize)]
struct Body {
    status: String,
    #[serde(default)]
    processed: Option<Value>,
    #[serde(default)]
    unprocessed: Option<Vec<Unprocessed>>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Unprocessed {
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    record: Option<Value>,
}

/// Reads an answer to a request that carried `sent` items (each the JSON text sent, e.g. a
/// record or a quoted identity).
pub fn read_reply(reply: &HttpReply, sent: &[&str]) -> Reading {
    if !(200..300).contains(&reply.status) {
        return Reading::Whole(Failure::Status {
            status: reply.status,
            body: snippet(&reply.body),
        });
    }
    let body: Body = match serde_json::from_slice(&reply.body) {
        Ok(body) => body,
        Err(e) => {
            return Reading::Whole(Failure::BadResponse {
                detail: format!("{e} (HTTP {}, {} bytes)", reply.status, reply.body.len()),
                body: snippet(&reply.body),
            });
        }
    };
    let entries = body.unprocessed.unwrap_or_default();
    match body.status.as_str() {
        "success" | "partial" | "fail" => {}
        other => {
            return Reading::Whole(Failure::BadResponse {
                detail: "unknown status".into(),
                body: other.chars().take(40).collect(),
            });
        }
    }
    let Matched {
        mut per_record,
        unmatched,
    } = match_entries(&entries, sent);
    let processed = body.processed.as_ref().and_then(as_int);
    let accounted = body.status == "success"
        || (unmatched == 0
            && processed.and_then(|p| p.checked_add(entries.len() as i64))
                == Some(sent.len() as i64));
    if !accounted {
        let detail = match (unmatched, processed) {
            (0, Some(p)) => format!(
                "status {}: {p} processed and {} unprocessed of {} records sent",
                body.status,
                entries.len(),
                sent.len()
            ),
            (0, None) => format!(
                "status {} without a processed count for {} unlisted records",
                body.status,
                per_record.iter().filter(|r| r.is_none()).count()
            ),
            (n, _) => format!("{n} unprocessed record(s) could not be matched to the records sent"),
        };
        let error = body.error.as_ref().map(text_of);
        for slot in per_record.iter_mut().filter(|slot| slot.is_none()) {
            *slot = Some(Failure::RecordUnconfirmed {
                detail: detail.clone(),
                clevertap_error: error.clone(),
            });
        }
    }
    Reading::PerRecord(per_record)
}

/// The failures of the records `unprocessed[]` names, and how many entries named none.
struct Matched {
    per_record: Vec<Option<Failure>>,
    unmatched: usize,
}

/// Matches `unprocessed[]` entries to the records sent.
fn match_entries(entries: &[Unprocessed], sent: &[&str]) -> Matched {
    let mut result: Vec<Option<Failure>> = vec![None; sent.len()];
    // Parsed lazily: only answers with an echoed record pay for it.
    let mut parsed: Option<Vec<Option<Value>>> = None;
    let mut unmatched = 0usize;
    for entry in entries {
        let error = entry.error.as_ref().map(text_of).unwrap_or_default();
        let by_echo = entry.record.as_ref().and_then(|echo| {
            let parsed = parsed.get_or_insert_with(|| {
                sent.iter()
                    .map(|text| serde_json::from_str(text).ok())
                    .collect()
            });
            (0..sent.len()).find(|&i| result[i].is_none() && parsed[i].as_ref() == Some(echo))
        });
        let index = by_echo.or_else(|| {
            record_number(&error)
                .and_then(|n| n.checked_sub(1))
                .filter(|&i| i < sent.len() && result[i].is_none())
        });
        let Some(index) = index else {
            unmatched += 1;
            continue;
        };
        result[index] = Some(match entry.code.as_ref().and_then(as_int) {
            Some(code) => Failure::RecordCode { code, error },
            None => Failure::RecordUnconfirmed {
                detail: "listed as unprocessed without a code".into(),
                clevertap_error: Some(error),
            },
        });
    }
    Matched {
        per_record: result,
        unmatched,
    }
}

/// The 1-based number after "record number" in CleverTap's error text
/// (`"... Skipped record number : 2"`).
fn record_number(error: &str) -> Option<usize> {
    const MARK: &str = "record number";
    let lower = error.to_ascii_lowercase();
    let at = lower.rfind(MARK)? + MARK.len();
    let rest = lower[at..].trim_start_matches([' ', ':', '#']);
    let digits: &str = &rest[..rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len())];
    digits.parse().ok()
}

/// An integer given as a JSON number or a numeric string.
fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON value as message text (strings without their quotes).
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The start of a body as lossy UTF-8.
fn snippet(body: &[u8]) -> String {
    let end = body.len().min(MAX_BODY_SNIPPET);
    String::from_utf8_lossy(&body[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn reply(status: u16, body: &str) -> HttpReply {
        HttpReply {
            status,
            body: Bytes::from(body.to_owned()),
        }
    }

    const SENT: [&str; 3] = [
        r#"{"type":"event","identity":"u1","evtName":"A","evtData":{}}"#,
        r#"{"type":"event","identity":"u2","evtName":"","evtData":{}}"#,
        r#"{"type":"event","identity":"u3","evtName":"C","evtData":{}}"#,
    ];

    fn code_at(r: &Reading, i: usize) -> Option<i64> {
        match r {
            Reading::PerRecord(v) => match &v[i] {
                Some(Failure::RecordCode { code, .. }) => Some(*code),
                Some(other) => panic!("record {i}: {other:?}"),
                None => None,
            },
            Reading::Whole(f) => panic!("{f:?}"),
        }
    }

    #[test]
    fn success_accepts_every_record() {
        let r = read_reply(
            &reply(
                200,
                r#"{"status":"success","processed":3,"unprocessed":[]}"#,
            ),
            &SENT,
        );
        assert_eq!(r, Reading::PerRecord(vec![None, None, None]));
    }

    #[test]
    fn an_echoed_record_is_matched_as_a_json_value_whatever_its_key_order() {
        let body = r#"{"status":"partial","processed":2,"unprocessed":[{"status":"fail","code":509,
            "error":"Event name is mandatory","record":{"evtData":{},"evtName":"","identity":"u2","type":"event"}}]}"#;
        let r = read_reply(&reply(200, body), &SENT);
        assert_eq!(code_at(&r, 0), None);
        assert_eq!(code_at(&r, 1), Some(509));
        assert_eq!(code_at(&r, 2), None);
    }

    #[test]
    fn without_an_echo_the_one_based_record_number_in_the_error_text_is_used() {
        let body = r#"{"status":"partial","processed":2,"unprocessed":[{"status":"fail","code":"512",
            "error":"Invalid event structure. Skipped record number : 3"}]}"#;
        let r = read_reply(&reply(200, body), &SENT);
        assert_eq!(code_at(&r, 0), None);
        assert_eq!(code_at(&r, 1), None);
        assert_eq!(code_at(&r, 2), Some(512));
    }

    #[test]
    fn identical_records_are_matched_one_entry_each() {
        let same = [SENT[0], SENT[0]];
        let echo = SENT[0];
        let body = format!(
            r#"{{"status":"fail","processed":0,"unprocessed":[{{"code":555,"error":"x","record":{echo}}},{{"code":555,"error":"y","record":{echo}}}]}}"#
        );
        let r = read_reply(&reply(200, &body), &same);
        assert_eq!(code_at(&r, 0), Some(555));
        assert_eq!(code_at(&r, 1), Some(555));
    }

    #[test]
    fn an_entry_that_matches_nothing_leaves_every_unaccounted_record_unconfirmed() {
        let body = r#"{"status":"partial","processed":2,"unprocessed":[{"code":509,"error":"no number",
            "record":{"something":"else"}}]}"#;
        let Reading::PerRecord(v) = read_reply(&reply(200, body), &SENT) else {
            panic!()
        };
        assert!(
            v.iter()
                .all(|f| matches!(f, Some(Failure::RecordUnconfirmed { .. })))
        );
    }

    #[test]
    fn a_record_number_out_of_range_does_not_match() {
        let body = r#"{"status":"partial","unprocessed":[{"code":509,"error":"Skipped record number : 9"}]}"#;
        let Reading::PerRecord(v) = read_reply(&reply(200, body), &SENT) else {
            panic!()
        };
        assert!(v.iter().all(Option::is_some));
    }

    #[test]
    fn fail_without_unprocessed_entries_leaves_every_record_unconfirmed() {
        let Reading::PerRecord(v) =
            read_reply(&reply(200, r#"{"status":"fail","error":"boom"}"#), &SENT)
        else {
            panic!()
        };
        assert!(v.iter().all(|f| matches!(f,
            Some(Failure::RecordUnconfirmed { clevertap_error: Some(e), .. }) if e == "boom")));
    }

    #[test]
    fn unreadable_or_unknown_bodies_are_bad_responses() {
        for body in [
            "",
            "<html>",
            r#"{"status":"great"}"#,
            r#"{"processed":1}"#,
            "[]",
        ] {
            let r = read_reply(&reply(200, body), &SENT);
            assert!(
                matches!(r, Reading::Whole(Failure::BadResponse { .. })),
                "{body}: {r:?}"
            );
        }
    }

    #[test]
    fn a_non_2xx_status_fails_the_whole_request_with_a_body_snippet() {
        let r = read_reply(
            &reply(
                401,
                r#"{"status":"fail","error":"Invalid Credentials","code":401}"#,
            ),
            &SENT,
        );
        match r {
            Reading::Whole(Failure::Status { status, body }) => {
                assert_eq!(status, 401);
                assert!(body.contains("Invalid Credentials"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_incomplete_unprocessed_list_confirms_none_of_the_unlisted_records() {
        // One entry for three records, nothing processed: the two unlisted were not taken.
        let body = r#"{"status":"fail","processed":0,"unprocessed":[{"code":509,
            "error":"Skipped record number : 1"}]}"#;
        let Reading::PerRecord(v) = read_reply(&reply(200, body), &SENT) else {
            panic!()
        };
        assert!(matches!(v[0], Some(Failure::RecordCode { code: 509, .. })));
        assert!(matches!(v[1], Some(Failure::RecordUnconfirmed { .. })));
        assert!(matches!(v[2], Some(Failure::RecordUnconfirmed { .. })));
    }

    #[test]
    fn a_complete_count_or_success_confirms_the_unlisted_records() {
        for body in [
            r#"{"status":"partial","processed":2,"unprocessed":[{"code":509,"error":"Skipped record number : 2"}]}"#,
            r#"{"status":"success","unprocessed":[{"code":509,"error":"Skipped record number : 2"}]}"#,
            r#"{"status":"partial","processed":"2","unprocessed":[{"code":509,"error":"Skipped record number : 2"}]}"#,
        ] {
            let Reading::PerRecord(v) = read_reply(&reply(200, body), &SENT) else {
                panic!()
            };
            assert_eq!(v[0], None, "{body}");
            assert!(v[1].is_some(), "{body}");
            assert_eq!(v[2], None, "{body}");
        }
    }

    #[test]
    fn a_count_that_does_not_add_up_leaves_the_unlisted_records_unconfirmed() {
        for body in [
            r#"{"status":"partial","processed":1,"unprocessed":[{"code":509,"error":"Skipped record number : 2"}]}"#,
            r#"{"status":"partial","processed":5,"unprocessed":[{"code":509,"error":"Skipped record number : 2"}]}"#,
            r#"{"status":"partial","unprocessed":[{"code":509,"error":"Skipped record number : 2"}]}"#,
        ] {
            let Reading::PerRecord(v) = read_reply(&reply(200, body), &SENT) else {
                panic!()
            };
            assert!(
                matches!(v[0], Some(Failure::RecordUnconfirmed { .. })),
                "{body}"
            );
            assert!(
                matches!(v[1], Some(Failure::RecordCode { code: 509, .. })),
                "{body}"
            );
            assert!(
                matches!(v[2], Some(Failure::RecordUnconfirmed { .. })),
                "{body}"
            );
        }
    }

    #[test]
    fn record_numbers_are_read_from_clevertap_texts() {
        assert_eq!(record_number("Skipped record number : 2"), Some(2));
        assert_eq!(record_number("x. Record Number: 17."), Some(17));
        assert_eq!(record_number("record number"), None);
        assert_eq!(record_number("nothing"), None);
    }
}
