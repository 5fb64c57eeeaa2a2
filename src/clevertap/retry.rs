//! The one place that decides what a CleverTap failure means: delivered after all, rejected
//! (the record is bad), split (find the bad record), retried now (CleverTap took nothing),
//! unclear (CleverTap may hold it: sent once more, alone), or retried later (credentials or
//! configuration). One exhaustive match, so a new kind of failure cannot slip
//! through unclassified (docs/contracts.md §5, docs/clevertap-api.md "Responses").

use crate::codes;
use crate::outcome::Reason;

/// CleverTap's per-record code for "miscellaneous server error": the only transient one
/// (docs/clevertap-api.md, "Responses").
pub const CODE_TRANSIENT: i64 = 555;
/// CleverTap's per-record code for "discarded by the account's own rule": counts as delivered.
pub const CODE_DISCARDED: i64 = 528;

/// Longest piece of a detail text kept in a message.
const MAX_DETAIL_CHARS: usize = 300;

/// Everything that can go wrong with a request or with one record of it. CleverTap's own text
/// is kept for the debug log only ([`Failure::clevertap_text`]): it may echo a value of the
/// event (an email, a phone number), so reasons never carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A per-record code inside a 2xx answer (`unprocessed[].code`).
    RecordCode { code: i64, error: String },
    /// A record CleverTap did not account for: listed without a code, or not listed in an
    /// answer that does not add up. CleverTap may or may not hold it.
    RecordUnconfirmed {
        detail: String,
        clevertap_error: Option<String>,
    },
    /// A non-2xx HTTP status for the whole request.
    Status { status: u16, body: String },
    /// No answer in time (the transport's own timeout, or the invocation deadline).
    Timeout,
    /// The request never reached CleverTap.
    Unreachable { detail: String },
    /// A 2xx answer whose body is not CleverTap's documented shape (or is over the read limit).
    BadResponse { detail: String, body: String },
    /// The request could not even be built (e.g. a passcode that is not a valid header value).
    InvalidRequest { detail: String },
}

impl Failure {
    /// CleverTap's own words about the failure, if any: for the debug log, never for a reason.
    pub fn clevertap_text(&self) -> Option<&str> {
        match self {
            Failure::RecordCode { error, .. } => Some(error),
            Failure::RecordUnconfirmed {
                clevertap_error, ..
            } => clevertap_error.as_deref(),
            Failure::Status { body, .. } | Failure::BadResponse { body, .. } => Some(body),
            Failure::Timeout | Failure::Unreachable { .. } | Failure::InvalidRequest { .. } => None,
        }
    }
}

/// What to do about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Counts as delivered (528: discarded by the account's own rule).
    Discarded,
    /// The record is bad; retrying cannot help.
    Reject(Reason),
    /// The request holds a bad record somewhere: split it in halves; a record alone is rejected
    /// with this reason. CleverTap took none of the request.
    Split(Reason),
    /// CleverTap took none of it, for a passing reason: send again within this invocation
    /// while the retry budget allows.
    RetryNow { reason: Reason, throttled: bool },
    /// CleverTap may or may not hold the record (an answer that does not account for it, an
    /// unreadable answer, no answer in time): sent once more, alone in its request, so that the
    /// answer cannot be ambiguous; never a third time in one invocation.
    Unclear(Reason),
    /// Not resent within this invocation; the source retries later. `credentials` means the
    /// cached settings must be dropped.
    RetryLater { reason: Reason, credentials: bool },
}

impl Verdict {
    /// Whether the failure may go away by sending the same records again soon.
    pub const fn is_retryable_now(&self) -> bool {
        matches!(self, Verdict::RetryNow { .. } | Verdict::Unclear(_))
    }

    /// The reason the verdict gives (the code a failure is reported with).
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Verdict::Discarded => None,
            Verdict::Reject(reason)
            | Verdict::Split(reason)
            | Verdict::Unclear(reason)
            | Verdict::RetryNow { reason, .. }
            | Verdict::RetryLater { reason, .. } => Some(reason),
        }
    }
}

pub use crate::codes::Health;

/// The verdict on a request refused whole (400/413) whose two halves were refused whole too
/// (`first` is the halves' reason). `everything`: the halves of the whole request, so the
/// account's problem, not the records' (it counts for the circuit, `codes::traits`); else the
/// halves of a part, so several bad records, not halved further. Retried later under its own
/// code either way, never dead-lettered.
pub fn refused_whole(first: &Reason, records: usize, everything: bool) -> Verdict {
    let what = if everything {
        "not one bad record but a refusal of everything"
    } else {
        "several bad records among them, not halved further"
    };
    Verdict::RetryLater {
        reason: Reason::new(
            codes::CLEVERTAP_REFUSED_WHOLE,
            format!(
                "{records} records and both halves holding them were refused whole ({}): {what}",
                first.code
            ),
        ),
        credentials: false,
    }
}

/// The verdict on the circuit's probe (one record) refused whole (400/413, `first`): retried
/// under `clevertap_refused_whole`, never rejected. The circuit opened on failures, so a
/// refusal of this one record is as likely whatever answers refusing everything as the record
/// itself; a bad record is found the next time it goes in a request of its own or with others.
pub fn probe_refused(first: &Reason) -> Verdict {
    Verdict::RetryLater {
        reason: Reason::new(
            codes::CLEVERTAP_REFUSED_WHOLE,
            format!(
                "the circuit's probe, one record, was refused whole ({}): not judged on a probe",
                first.code
            ),
        ),
        credentials: false,
    }
}

/// The verdict on records of a refused request (400/413, `refusal` the part's reason, when
/// known) that its halving, capped at `limit` requests (`delivery::job::halving_limit`), did
/// not narrow down: retried later under the refusal's own code, never dead-lettered; not a sign
/// of an outage, so the caller does not count it for the circuit.
pub fn halving_stopped(refusal: Option<&Reason>, records: usize, limit: usize) -> Verdict {
    let code = refusal.map_or("refused whole", |r| r.code.as_ref());
    Verdict::RetryLater {
        reason: Reason::new(
            codes::CLEVERTAP_REFUSED_WHOLE,
            format!(
                "{records} records of a request refused whole ({code}) were not narrowed down: \
                 the halving stopped at its request limit ({limit} requests)"
            ),
        ),
        credentials: false,
    }
}

impl Verdict {
    /// What this verdict on a whole request says about CleverTap's health, from its reason
    /// code: the one mapping of failures to the circuit breaker and the adaptive bound.
    pub fn health(&self) -> Health {
        self.reason().map_or(Health::Answered, |reason| {
            codes::traits(&reason.code).health
        })
    }

    /// What this verdict on a whole request (`probe`: the circuit's probe) tells the circuit
    /// once it is in: a refusal to split says nothing yet (its halves tell, and a refusal of
    /// everything is then counted, `refused_whole`), except for the probe, which was answered.
    pub fn request_health(&self, probe: bool) -> Health {
        match self {
            Verdict::Split(_) if !probe => Health::Unknown,
            _ => self.health(),
        }
    }
}

/// What a per-record code says about the record, for messages: the field it names, where the
/// code names one (docs/clevertap-api.md, "Responses").
fn record_code_meaning(code: i64) -> &'static str {
    match code {
        509 => "event name missing",
        512 => "event structure invalid",
        513 => "restricted system event",
        514 => "gender invalid",
        515 => "email invalid",
        516 => "phone invalid",
        517 => "employment invalid",
        518 => "education invalid",
        519 => "marital status invalid",
        520 => "age invalid",
        522 => "too many event properties",
        523 => "neither identity nor objectId",
        524 => "neither an event nor a profile",
        525 => "ts not in epoch seconds",
        526 => "objectId invalid",
        530..=535 => "device token invalid",
        _ => "see CleverTap's error codes",
    }
}

/// Classifies a failure. The single source of truth for what is retryable.
pub fn classify(failure: &Failure) -> Verdict {
    match failure {
        Failure::RecordCode { code, .. } => match *code {
            CODE_DISCARDED => Verdict::Discarded,
            CODE_TRANSIENT => Verdict::RetryNow {
                reason: Reason::new(
                    codes::CLEVERTAP_RECORD_FAILED,
                    "CleverTap could not process the record (code 555)",
                ),
                throttled: false,
            },
            other => Verdict::Reject(Reason::new(
                codes::CLEVERTAP_RECORD_REJECTED,
                format!(
                    "CleverTap rejected the record (code {other}: {})",
                    record_code_meaning(other)
                ),
            )),
        },
        Failure::RecordUnconfirmed { detail, .. } => Verdict::Unclear(Reason::new(
            codes::CLEVERTAP_RECORD_UNCONFIRMED,
            format!("CleverTap did not confirm the record: {detail}"),
        )),
        Failure::Status { status, .. } => classify_status(*status),
        Failure::Timeout => Verdict::Unclear(Reason::new(
            codes::CLEVERTAP_TIMEOUT,
            "CleverTap did not answer in time",
        )),
        Failure::Unreachable { detail } => Verdict::RetryNow {
            reason: Reason::new(
                codes::CLEVERTAP_UNREACHABLE,
                format!("could not reach CleverTap: {}", clip(detail)),
            ),
            throttled: false,
        },
        Failure::BadResponse { detail, .. } => Verdict::Unclear(Reason::new(
            codes::CLEVERTAP_BAD_RESPONSE,
            format!("CleverTap's answer could not be read: {}", clip(detail)),
        )),
        Failure::InvalidRequest { detail } => Verdict::RetryLater {
            reason: Reason::new(codes::CLEVERTAP_INVALID_REQUEST, clip(detail)),
            credentials: false,
        },
    }
}

/// HTTP statuses (docs/contracts.md §5): 400/413 split, 401/403 credentials, 408/429/5xx (not
/// 501) transient, anything else a configuration error left to the source's redrive policy.
/// CleverTap's body is not quoted (see [`Failure`]).
fn classify_status(status: u16) -> Verdict {
    let text = |what: &str| format!("CleverTap answered HTTP {status} ({what})");
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

/// Our own detail text (transport errors), at most [`MAX_DETAIL_CHARS`] characters, on one line.
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
        v.reason().map_or("discarded", |r| &r.code)
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
    fn a_rejected_record_message_names_the_code_and_its_field_but_never_clevertaps_text() {
        let v = classify(&Failure::RecordCode {
            code: 515,
            error: "Invalid email ana@example.com. Skipped record number : 2".into(),
        });
        let Verdict::Reject(r) = v else {
            panic!("{v:?}")
        };
        assert!(r.message.contains("515"), "{}", r.message);
        assert!(r.message.contains("email invalid"), "{}", r.message);
        assert!(!r.message.contains("ana@example.com"), "{}", r.message);
    }

    #[test]
    fn no_reason_quotes_what_clevertap_wrote() {
        let echo = "+15550100 ana@example.com";
        for f in [
            Failure::RecordCode {
                code: 555,
                error: echo.into(),
            },
            Failure::RecordCode {
                code: 512,
                error: echo.into(),
            },
            Failure::RecordUnconfirmed {
                detail: "x".into(),
                clevertap_error: Some(echo.into()),
            },
            Failure::Status {
                status: 400,
                body: echo.into(),
            },
            Failure::Status {
                status: 503,
                body: echo.into(),
            },
            Failure::Status {
                status: 401,
                body: echo.into(),
            },
            Failure::BadResponse {
                detail: "x".into(),
                body: echo.into(),
            },
        ] {
            let v = classify(&f);
            let reason = v.reason().expect("a failure has a reason");
            assert!(
                !reason.message.contains("ana@example.com"),
                "{f:?}: {reason:?}"
            );
            assert_eq!(f.clevertap_text(), Some(echo));
        }
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
    fn unreachable_is_resent_and_answers_that_may_have_been_taken_are_unclear() {
        assert!(matches!(
            classify(&Failure::Unreachable { detail: "x".into() }),
            Verdict::RetryNow { .. }
        ));
        for f in [
            Failure::Timeout,
            Failure::BadResponse {
                detail: "x".into(),
                body: String::new(),
            },
            Failure::RecordUnconfirmed {
                detail: "x".into(),
                clevertap_error: None,
            },
        ] {
            assert!(matches!(classify(&f), Verdict::Unclear(_)), "{f:?}");
        }
    }

    #[test]
    fn only_5xx_timeouts_and_lost_connections_say_clevertap_is_down() {
        for s in [500, 502, 503, 504, 599, 408] {
            assert_eq!(status(s).health(), Health::Down, "{s}");
        }
        assert_eq!(classify(&Failure::Timeout).health(), Health::Down);
        let unreachable = Failure::Unreachable { detail: "x".into() };
        assert_eq!(classify(&unreachable).health(), Health::Down);
        assert_eq!(status(429).health(), Health::Throttled);
        // CleverTap answered: never a reason to open the circuit.
        for s in [400, 401, 403, 404, 413, 501] {
            assert_eq!(status(s).health(), Health::Answered, "{s}");
        }
        let record = |code| Failure::RecordCode {
            code,
            error: String::new(),
        };
        for code in [509, 528, 555] {
            assert_eq!(classify(&record(code)).health(), Health::Answered, "{code}");
        }
        let bad = Failure::BadResponse {
            detail: "x".into(),
            body: String::new(),
        };
        assert_eq!(classify(&bad).health(), Health::Answered);
        let unbuilt = Failure::InvalidRequest { detail: "x".into() };
        assert_eq!(classify(&unbuilt).health(), Health::Unknown);
    }

    #[test]
    fn long_detail_texts_are_clipped_to_one_line() {
        let long = format!("a\nb{}", "x".repeat(1000));
        let v = classify(&Failure::Unreachable { detail: long });
        let reason = match v {
            Verdict::RetryNow { reason, .. } => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason.message.len() < 450, "{}", reason.message.len());
        assert!(!reason.message.contains('\n'));
    }
}
