//! The one place that decides what a CleverTap failure means: delivered after all, rejected
//! (the record is bad), split (find the bad record), retried now (transient), or retried later
//! (credentials or configuration). One exhaustive match, so a new kind of failure cannot slip
//! through unclassified (docs/contracts.md §5, docs/clevertap-api.md "Responses").

use crate::codes;
use crate::outcome::Reason;

/// CleverTap's per-record code for "miscellaneous server error": the only transient one
/// (docs/clevertap-api.md, "Responses").
pub const CODE_TRANSIENT: i64 = 555;
/// CleverTap's per-record code for "discarded by the account's own rule": counts as delivered.
pub const CODE_DISCARDED: i64 = 528;

/// Longest piece of CleverTap's own text kept in a message.
const MAX_DETAIL_CHARS: usize = 300;

/// Everything that can go wrong with a request or with one record of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A per-record code inside a 2xx answer (`unprocessed[].code`).
    RecordCode { code: i64, error: String },
    /// A record CleverTap did not confirm: an `unprocessed[]` entry without a code, or an entry
    /// that could not be matched to a record (then every unconfirmed record of the request).
    RecordUnconfirmed { detail: String },
    /// A non-2xx HTTP status for the whole request.
    Status { status: u16, body: String },
    /// No answer in time (the transport's own timeout, or the invocation deadline).
    Timeout,
    /// The request never reached CleverTap.
    Unreachable { detail: String },
    /// A 2xx answer whose body is not CleverTap's documented shape.
    BadResponse { detail: String },
    /// The request could not even be built (e.g. a passcode that is not a valid header value).
    InvalidRequest { detail: String },
}

/// What to do about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Counts as delivered (528: discarded by the account's own rule).
    Discarded,
    /// The record is bad; retrying cannot help.
    Reject(Reason),
    /// The request holds a bad record somewhere: split it in halves; a record alone is rejected
    /// with this reason.
    Split(Reason),
    /// Transient: send again within this invocation while the retry budget allows.
    RetryNow { reason: Reason, throttled: bool },
    /// Not resent within this invocation; the source retries later. `credentials` means the
    /// cached settings must be dropped.
    RetryLater { reason: Reason, credentials: bool },
}

impl Verdict {
    /// Whether the failure may go away by sending the same records again soon.
    pub const fn is_retryable_now(&self) -> bool {
        matches!(self, Verdict::RetryNow { .. })
    }
}

/// Classifies a failure. The single source of truth for what is retryable.
pub fn classify(failure: &Failure) -> Verdict {
    match failure {
        Failure::RecordCode { code, error } => match *code {
            CODE_DISCARDED => Verdict::Discarded,
            CODE_TRANSIENT => Verdict::RetryNow {
                reason: Reason::new(
                    codes::CLEVERTAP_RECORD_FAILED,
                    format!(
                        "CleverTap could not process the record (code 555): {}",
                        clip(error)
                    ),
                ),
                throttled: false,
            },
            other => Verdict::Reject(Reason::new(
                codes::CLEVERTAP_RECORD_REJECTED,
                format!(
                    "CleverTap rejected the record (code {other}): {}",
                    clip(error)
                ),
            )),
        },
        Failure::RecordUnconfirmed { detail } => Verdict::RetryNow {
            reason: Reason::new(
                codes::CLEVERTAP_RECORD_UNCONFIRMED,
                format!("CleverTap did not confirm the record: {}", clip(detail)),
            ),
            throttled: false,
        },
        Failure::Status { status, body } => classify_status(*status, body),
        Failure::Timeout => Verdict::RetryNow {
            reason: Reason::new(codes::CLEVERTAP_TIMEOUT, "CleverTap did not answer in time"),
            throttled: false,
        },
        Failure::Unreachable { detail } => Verdict::RetryNow {
            reason: Reason::new(
                codes::CLEVERTAP_UNREACHABLE,
                format!("could not reach CleverTap: {}", clip(detail)),
            ),
            throttled: false,
        },
        Failure::BadResponse { detail } => Verdict::RetryNow {
            reason: Reason::new(
                codes::CLEVERTAP_BAD_RESPONSE,
                format!("CleverTap's answer could not be read: {}", clip(detail)),
            ),
            throttled: false,
        },
        Failure::InvalidRequest { detail } => Verdict::RetryLater {
            reason: Reason::new(codes::CLEVERTAP_INVALID_REQUEST, clip(detail)),
            credentials: false,
        },
    }
}

/// HTTP statuses (docs/contracts.md §5): 400/413 split, 401/403 credentials, 408/429/5xx (not 501)
/// transient, anything else a configuration error left to the source's redrive policy.
fn classify_status(status: u16, body: &str) -> Verdict {
    let text = |what: &str| format!("CleverTap answered HTTP {status} ({what}): {}", clip(body));
    match status {
        400 => Verdict::Split(Reason::new(
            codes::CLEVERTAP_BAD_REQUEST,
            text("bad request"),
        )),
        413 => Verdict::Split(Reason::new(
            codes::CLEVERTAP_PAYLOAD_TOO_LARGE,
            text("payload too large"),
        )),
        401 | 403 => Verdict::RetryLater {
            reason: Reason::new(
                codes::CLEVERTAP_UNAUTHORIZED,
                text("credentials or region rejected; the cached settings are dropped"),
            ),
            credentials: true,
        },
        408 => Verdict::RetryNow {
            reason: Reason::new(codes::CLEVERTAP_TIMEOUT, text("request timeout")),
            throttled: false,
        },
        429 => Verdict::RetryNow {
            reason: Reason::new(
                codes::CLEVERTAP_THROTTLED,
                text("too many concurrent requests"),
            ),
            throttled: true,
        },
        501 => Verdict::RetryLater {
            reason: Reason::new(codes::CLEVERTAP_UNEXPECTED_STATUS, text("not implemented")),
            credentials: false,
        },
        500..=599 => Verdict::RetryNow {
            reason: Reason::new(codes::CLEVERTAP_UNAVAILABLE, text("server error")),
            throttled: false,
        },
        _ => Verdict::RetryLater {
            reason: Reason::new(
                codes::CLEVERTAP_UNEXPECTED_STATUS,
                text("unexpected status"),
            ),
            credentials: false,
        },
    }
}

/// CleverTap's text, at most [`MAX_DETAIL_CHARS`] characters, on one line.
fn clip(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_DETAIL_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX_DETAIL_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: u16) -> Verdict {
        classify(&Failure::Status {
            status: s,
            body: String::new(),
        })
    }

    fn code_of(v: &Verdict) -> &str {
        match v {
            Verdict::Discarded => "discarded",
            Verdict::Reject(r) | Verdict::Split(r) => &r.code,
            Verdict::RetryNow { reason, .. } | Verdict::RetryLater { reason, .. } => &reason.code,
        }
    }

    #[test]
    fn only_555_is_a_transient_record_code_and_528_counts_as_delivered() {
        let rec = |code| {
            classify(&Failure::RecordCode {
                code,
                error: "x".into(),
            })
        };
        assert!(rec(555).is_retryable_now());
        assert_eq!(rec(528), Verdict::Discarded);
        for code in [
            509, 512, 513, 514, 515, 516, 520, 523, 524, 525, 526, 530, 535, 999,
        ] {
            let v = rec(code);
            assert!(matches!(v, Verdict::Reject(_)), "{code}: {v:?}");
            assert_eq!(code_of(&v), codes::CLEVERTAP_RECORD_REJECTED);
        }
    }

    #[test]
    fn a_rejected_record_message_names_the_clevertap_code_and_text() {
        let v = classify(&Failure::RecordCode {
            code: 509,
            error: "Event name is mandatory. Skipped record number : 2".into(),
        });
        let Verdict::Reject(r) = v else {
            panic!("{v:?}")
        };
        assert!(r.message.contains("509"), "{}", r.message);
        assert!(
            r.message.contains("Event name is mandatory"),
            "{}",
            r.message
        );
    }

    #[test]
    fn http_statuses_follow_the_design_table() {
        assert!(matches!(status(400), Verdict::Split(_)));
        assert!(matches!(status(413), Verdict::Split(_)));
        for s in [401, 403] {
            assert!(matches!(
                status(s),
                Verdict::RetryLater {
                    credentials: true,
                    ..
                }
            ));
        }
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(status(s).is_retryable_now(), "{s}");
        }
        assert!(matches!(
            status(429),
            Verdict::RetryNow {
                throttled: true,
                ..
            }
        ));
        for s in [100, 304, 404, 405, 409, 501] {
            let v = status(s);
            assert!(
                matches!(
                    v,
                    Verdict::RetryLater {
                        credentials: false,
                        ..
                    }
                ),
                "{s}: {v:?}"
            );
            assert_eq!(code_of(&v), codes::CLEVERTAP_UNEXPECTED_STATUS);
        }
    }

    #[test]
    fn network_trouble_and_unreadable_answers_are_retried_now() {
        for f in [
            Failure::Timeout,
            Failure::Unreachable { detail: "x".into() },
            Failure::BadResponse { detail: "x".into() },
            Failure::RecordUnconfirmed { detail: "x".into() },
        ] {
            assert!(classify(&f).is_retryable_now(), "{f:?}");
        }
    }

    #[test]
    fn long_texts_from_clevertap_are_clipped_to_one_line() {
        let long = format!("a\nb{}", "x".repeat(1000));
        let v = classify(&Failure::Status {
            status: 500,
            body: long,
        });
        let reason = match v {
            Verdict::RetryNow { reason, .. } => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason.message.len() < 450, "{}", reason.message.len());
        assert!(!reason.message.contains('\n'));
    }
}
