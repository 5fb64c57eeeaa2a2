//! Every reason code an outcome or a webhook answer can carry, in one place: they are part of
//! the contract (users alarm and redrive on them), so a code is defined once, here, and the
//! list [`ALL`] is the README's codes tables (a test holds the two together). The meaning of
//! each is in docs/contracts.md §3.

// The transform's own: rejections and filterings of one event.
// Filtered: dropped on purpose, not an error (nothing is sent, dead-lettered or retried).

/// A message type other than identify, track, page, screen and alias (trimmed, in any
/// letter case: group, reset, record, anything else): RudderStack's processor filters these
/// too.
pub const FILTERED_MESSAGE_TYPE: &str = "filtered_message_type";
/// The event's `integrations` object does not send it to CleverTap (`"CleverTap": false`,
/// `"All": false` without `"CleverTap": true`, or not an object): RudderStack's processor
/// routes it to no CleverTap destination.
pub const INTEGRATION_DISABLED: &str = "integration_disabled";
/// `context.consentManagement.deniedConsentIds` denies consent the destination's consent
/// settings require (rudder-server's consent rules).
pub const CONSENT_DENIED: &str = "consent_denied";
/// A track event whose name is not in the destination's allow list (`whitelistedEvents`).
pub const EVENT_NOT_ALLOWED: &str = "event_not_allowed";
/// A track event whose name is in the destination's deny list (`blacklistedEvents`).
pub const EVENT_DENIED: &str = "event_denied";

// Rejected: the event is bad.

/// The text is not valid JSON.
pub const INVALID_JSON: &str = "invalid_json";
/// The JSON value is not an object.
pub const NOT_AN_OBJECT: &str = "not_an_object";
/// A value the mapping writes is nested deeper than `crate::json::writer::MAX_NESTING` levels.
pub const TOO_DEEP: &str = "too_deep";
/// `type` is absent, falsy or blank.
pub const MISSING_TYPE: &str = "missing_type";
/// `type` is not a string, or one of identify, track, page, screen and alias padded with
/// white space (RudderStack's processor trims it, its transformer does not).
pub const UNSUPPORTED_TYPE: &str = "unsupported_type";
/// Neither a userId (or trait id) nor an anonymousId. Deliberate deviation: the reference
/// sends a record without identity, which CleverTap refuses (code 523).
pub const MISSING_IDS: &str = "missing_ids";
/// userId, anonymousId or previousId is an object, array or boolean.
pub const INVALID_ID: &str = "invalid_id";
/// track/page/screen without a userId while the destination's `trackAnonymous` is off.
pub const ANONYMOUS_NOT_ALLOWED: &str = "anonymous_not_allowed";
/// A track event without `event`.
pub const MISSING_EVENT_NAME: &str = "missing_event_name";
/// A track event whose `event` is not a string.
pub const INVALID_EVENT_NAME: &str = "invalid_event_name";
/// Order Completed whose products, or a track event named `Charged` whose `Items`, are
/// truthy but not a non-empty array of objects (or JSON text holding one).
pub const INVALID_PRODUCTS: &str = "invalid_products";
/// `properties` is not an object.
pub const INVALID_PROPERTIES: &str = "invalid_properties";
/// `traits` or `context.traits` of an identify is not an object.
pub const INVALID_TRAITS: &str = "invalid_traits";
/// An alias without userId.
pub const MISSING_USER_ID: &str = "missing_user_id";
/// An alias without previousId.
pub const MISSING_PREVIOUS_ID: &str = "missing_previous_id";
/// A dynamic setting (`{{ event.path || DEFAULT }}`) took a value from the event that
/// cannot be that setting: an accountId, passcode or region that is not a non-empty string
/// or number, or a region not on the allowlist.
pub const INVALID_DYNAMIC_CONFIG: &str = "invalid_dynamic_config";
/// An input line that is not UTF-8 (the `transform` command reads bytes).
pub const INVALID_UTF8: &str = "invalid_utf8";

// Bodies (SQS message or request body).
/// The body has nothing in it.
pub const EMPTY_BODY: &str = "empty_body";

// SQS messages.
/// Neither a `destinationId` attribute / query parameter nor `DEFAULT_DESTINATION_ID`.
pub const NO_DESTINATION: &str = "no_destination";
/// The `destinationId` attribute or query parameter is not `[A-Za-z0-9_.-]{1,128}`.
pub const INVALID_DESTINATION_ID: &str = "invalid_destination_id";
/// A record of the batch is not an SQS message Lambda would send.
pub const INVALID_SQS_RECORD: &str = "invalid_sqs_record";
/// FIFO: an earlier message of the same message group needs a retry, so this one was not sent.
pub const FIFO_EARLIER_MESSAGE_FAILED: &str = "fifo_earlier_message_failed";
/// The delivery gave no outcome for an item (a defect; never reported as delivered).
pub const DELIVERY_INCOMPLETE: &str = "delivery_incomplete";

// Dead letters.
/// A rejected item whose dead letter could not be written (refused, failed, too large, or no
/// queue for an SQS message): it is retried instead, since it is `rejected` only once written.
pub const DEAD_LETTER_FAILED: &str = "dead_letter_failed";

// Webhook bodies.
/// An item past `MAX_ITEMS_PER_BODY` in a webhook body (or a regulation's user past it): neither
/// sent nor dead-lettered.
pub const TOO_MANY_ITEMS: &str = "too_many_items";

// Destination settings (the secret).
pub const SECRET_NOT_FOUND: &str = "secret_not_found";
pub const SECRETS_UNAVAILABLE: &str = "secrets_unavailable";
pub const SECRET_MALFORMED: &str = "secret_malformed";
pub const SECRET_MISSING_ACCOUNT_ID: &str = "secret_missing_account_id";
pub const SECRET_MISSING_PASSCODE: &str = "secret_missing_passcode";
pub const UNKNOWN_REGION: &str = "unknown_region";

// CleverTap's answers (decided in clevertap::retry).
pub const CLEVERTAP_RECORD_REJECTED: &str = "clevertap_record_rejected";
pub const CLEVERTAP_RECORD_FAILED: &str = "clevertap_record_failed";
pub const CLEVERTAP_RECORD_UNCONFIRMED: &str = "clevertap_record_unconfirmed";
pub const CLEVERTAP_BAD_REQUEST: &str = "clevertap_bad_request";
pub const CLEVERTAP_PAYLOAD_TOO_LARGE: &str = "clevertap_payload_too_large";
pub const CLEVERTAP_UNAUTHORIZED: &str = "clevertap_unauthorized";
pub const CLEVERTAP_THROTTLED: &str = "clevertap_throttled";
pub const CLEVERTAP_UNAVAILABLE: &str = "clevertap_unavailable";
pub const CLEVERTAP_TIMEOUT: &str = "clevertap_timeout";
pub const CLEVERTAP_UNREACHABLE: &str = "clevertap_unreachable";
pub const CLEVERTAP_UNEXPECTED_STATUS: &str = "clevertap_unexpected_status";
pub const CLEVERTAP_BAD_RESPONSE: &str = "clevertap_bad_response";
pub const CLEVERTAP_INVALID_REQUEST: &str = "clevertap_invalid_request";
/// The account's circuit breaker is open: CleverTap kept failing, so nothing was sent.
pub const CLEVERTAP_CIRCUIT_OPEN: &str = "clevertap_circuit_open";
/// A request refused whole (400/413) whose two halves were refused whole too: whatever answers
/// refuses everything (a proxy, a WAF, a regression), not one bad record. Retried, never
/// dead-lettered, and counted for the account's circuit (docs/contracts.md §5).
pub const CLEVERTAP_REFUSED_WHOLE: &str = "clevertap_refused_whole";
/// No time was left in the invocation to send the record.
pub const RETRY_BUDGET_EXHAUSTED: &str = "retry_budget_exhausted";

// User deletion (regulations).
/// `regulationType` not a string, `users` missing or not an array, or bad `destinationIds`.
pub const INVALID_REGULATION: &str = "invalid_regulation";
/// `regulationType` is not `suppress_with_delete`.
pub const UNSUPPORTED_REGULATION_TYPE: &str = "unsupported_regulation_type";
/// A user that is not an object, or whose `userId` is not a string.
pub const INVALID_USER_ID: &str = "invalid_user_id";
/// A regulation inside an array, `{"batch": [...]}` or NDJSON: it must be the whole body.
pub const REGULATION_IN_BATCH: &str = "regulation_in_batch";

// Webhook answers about the request as a whole (`{"error": {"code", "message"}}`).
pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
pub const INVALID_REQUEST: &str = "invalid_request";
pub const BODY_TOO_LARGE: &str = "body_too_large";
pub const INVALID_BASE64: &str = "invalid_base64";
pub const UNAUTHORIZED: &str = "unauthorized";
/// A webhook destination outside `WEBHOOK_DESTINATION_IDS`, or a regulation naming a destination
/// other than the authenticated one (HTTP 403); over SQS, a message acting on a destination other
/// than its `destinationId` attribute (rejected, docs/contracts.md §3, "Origin").
pub const DESTINATION_NOT_ALLOWED: &str = "destination_not_allowed";

/// A webhook token matching none of the cached tokens, while the secret was read again less
/// than `WEBHOOK_TOKEN_REFRESH_SECONDS` ago (503: it may be a newer rotation).
pub const WEBHOOK_TOKEN_UNVERIFIED: &str = "webhook_token_unverified";

// Webhook queue mode.
/// SQS did not take the item (refused entry, failed call, deadline): the caller retries (503).
pub const ENQUEUE_FAILED: &str = "enqueue_failed";
/// The item is larger than one SQS message (256 KiB) can carry.
pub const EVENT_TOO_LARGE: &str = "event_too_large";

/// Which schedule a retried message follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Trouble that passes: exponential backoff up to the cap.
    Backoff,
    /// A short fixed timeout: a configuration error, or a record the invocation never sent.
    Fixed,
}

/// What a whole request's answer says about CleverTap itself, for the account's gate
/// (`delivery::gate`): its circuit breaker and its adaptive concurrency bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// CleverTap did not answer usefully: 5xx (not 501), a timeout, no connection. Counts
    /// towards opening the account's circuit.
    Down,
    /// CleverTap answered 429: too many requests in flight. Lowers the account's bound; it
    /// answered, so it closes the circuit.
    Throttled,
    /// CleverTap answered (a 2xx, a 400/413, a 401/403, any other status): it is up.
    Answered,
    /// The request never reached CleverTap (it could not be built): says nothing.
    Unknown,
}

/// What a code means beyond its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traits {
    /// The visibility schedule an SQS message retried with it follows (`crate::visibility`).
    pub schedule: Kind,
    /// What a whole request's failure with it says about CleverTap (`delivery::gate`).
    pub health: Health,
}

/// The one table keyed by code. A retry for trouble that passes backs off; a configuration
/// error that never heals by itself (or a rejected event whose dead letter was not written:
/// SQS's own redrive takes it to the dead-letter queue soon instead), and work the invocation
/// never reached, take the short fixed schedule. Unknown codes back off: waiting longer never loses a message, dead-lettering too
/// soon would. Only CleverTap failing to answer counts towards its circuit.
pub fn traits(code: &str) -> Traits {
    let (schedule, health) = match code {
        NO_DESTINATION
        | SECRET_NOT_FOUND
        | SECRET_MALFORMED
        | SECRET_MISSING_ACCOUNT_ID
        | SECRET_MISSING_PASSCODE
        | UNKNOWN_REGION
        | INVALID_SQS_RECORD
        | DEAD_LETTER_FAILED => (Kind::Fixed, Health::Answered),
        // Never sent: the invocation's time ran out before the record's turn (earlier messages of
        // its FIFO group, a long regulation, a batch larger than the time). Nothing is wrong
        // with CleverTap, so the message comes back soon instead of after the outage backoff.
        RETRY_BUDGET_EXHAUSTED => (Kind::Fixed, Health::Unknown),
        // The request could not be built: a configuration error that says nothing of CleverTap.
        CLEVERTAP_INVALID_REQUEST => (Kind::Fixed, Health::Unknown),
        CLEVERTAP_UNAVAILABLE
        | CLEVERTAP_TIMEOUT
        | CLEVERTAP_UNREACHABLE
        | CLEVERTAP_REFUSED_WHOLE => (Kind::Backoff, Health::Down),
        CLEVERTAP_THROTTLED => (Kind::Backoff, Health::Throttled),
        _ => (Kind::Backoff, Health::Answered),
    };
    Traits { schedule, health }
}

/// Every code above, the transform's included: the README's codes tables list exactly these.
pub const ALL: &[&str] = &[
    EMPTY_BODY,
    INVALID_JSON,
    NOT_AN_OBJECT,
    TOO_DEEP,
    MISSING_TYPE,
    UNSUPPORTED_TYPE,
    MISSING_IDS,
    INVALID_ID,
    ANONYMOUS_NOT_ALLOWED,
    MISSING_EVENT_NAME,
    INVALID_EVENT_NAME,
    INVALID_PRODUCTS,
    INVALID_PROPERTIES,
    INVALID_TRAITS,
    INVALID_DYNAMIC_CONFIG,
    MISSING_USER_ID,
    MISSING_PREVIOUS_ID,
    FILTERED_MESSAGE_TYPE,
    INTEGRATION_DISABLED,
    CONSENT_DENIED,
    EVENT_NOT_ALLOWED,
    EVENT_DENIED,
    NO_DESTINATION,
    INVALID_DESTINATION_ID,
    INVALID_SQS_RECORD,
    FIFO_EARLIER_MESSAGE_FAILED,
    DELIVERY_INCOMPLETE,
    DEAD_LETTER_FAILED,
    TOO_MANY_ITEMS,
    SECRET_NOT_FOUND,
    SECRETS_UNAVAILABLE,
    SECRET_MALFORMED,
    SECRET_MISSING_ACCOUNT_ID,
    SECRET_MISSING_PASSCODE,
    UNKNOWN_REGION,
    CLEVERTAP_RECORD_REJECTED,
    CLEVERTAP_RECORD_FAILED,
    CLEVERTAP_RECORD_UNCONFIRMED,
    CLEVERTAP_BAD_REQUEST,
    CLEVERTAP_PAYLOAD_TOO_LARGE,
    CLEVERTAP_UNAUTHORIZED,
    CLEVERTAP_THROTTLED,
    CLEVERTAP_UNAVAILABLE,
    CLEVERTAP_TIMEOUT,
    CLEVERTAP_UNREACHABLE,
    CLEVERTAP_UNEXPECTED_STATUS,
    CLEVERTAP_BAD_RESPONSE,
    CLEVERTAP_INVALID_REQUEST,
    CLEVERTAP_CIRCUIT_OPEN,
    CLEVERTAP_REFUSED_WHOLE,
    RETRY_BUDGET_EXHAUSTED,
    INVALID_REGULATION,
    UNSUPPORTED_REGULATION_TYPE,
    INVALID_USER_ID,
    REGULATION_IN_BATCH,
    METHOD_NOT_ALLOWED,
    INVALID_REQUEST,
    BODY_TOO_LARGE,
    INVALID_BASE64,
    INVALID_UTF8,
    UNAUTHORIZED,
    DESTINATION_NOT_ALLOWED,
    WEBHOOK_TOKEN_UNVERIFIED,
    ENQUEUE_FAILED,
    EVENT_TOO_LARGE,
];

#[cfg(test)]
mod tests {
    use super::ALL;
    use std::collections::BTreeSet;

    /// The backticked snake_case words of `text`.
    fn backticked_codes(text: &str) -> impl Iterator<Item = &str> {
        text.split('`').skip(1).step_by(2).filter(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
    }

    /// The codes the README's codes tables list: the first column of every table under a
    /// heading that says "codes".
    fn readme_codes() -> BTreeSet<String> {
        let readme = include_str!("../README.md");
        let mut codes = BTreeSet::new();
        let mut in_codes_section = false;
        for line in readme.lines() {
            if line.starts_with('#') {
                in_codes_section = line.to_ascii_lowercase().contains("codes");
            } else if in_codes_section && line.starts_with("| `") {
                let first_column = line.split('|').nth(1).unwrap_or("");
                codes.extend(backticked_codes(first_column).map(str::to_owned));
            }
        }
        codes
    }

    #[test]
    fn every_code_is_listed_once() {
        let unique: BTreeSet<&str> = ALL.iter().copied().collect();
        assert_eq!(unique.len(), ALL.len(), "a code is listed twice in ALL");
    }

    #[test]
    fn the_readme_codes_tables_list_exactly_the_codes_of_this_module() {
        let documented = readme_codes();
        let defined: BTreeSet<String> = ALL.iter().map(|c| (*c).to_owned()).collect();
        let undocumented: Vec<_> = defined.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&defined).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "codes without a README row: {undocumented:?}; README rows naming no code: {unknown:?}"
        );
    }
}
