//! Telling SQS when a retried message comes back (docs/contracts.md §3, "Visibility backoff").
//!
//! The schedule: a retry for passing trouble (CleverTap or Secrets Manager failing, an open
//! circuit, time running out) waits `min(cap, base × 2^(receives − 1))`, drawn from the upper
//! quarter of that step so that messages failed together spread out; a configuration error
//! that never heals by itself (or a rejected event whose dead letter was not written) waits a
//! short fixed time, so it reaches the dead-letter queue
//! after `MaxReceiveCount` receives in reasonable time. Which message gets which timeout is
//! decided in `sources::sqs::backoff`.
//!
//! Which schedule a code follows is `codes::traits`. The port that applies it is
//! `ports::MessageVisibility`; the real one is `aws::sqs_visibility`.

use crate::codes;
use crate::config::Config;
use std::sync::Arc;

/// The lowest timeout drawn, in percent of the step.
pub const JITTER_FLOOR_PERCENT: u64 = 75;

pub use crate::codes::Kind;

/// The schedule a retry with `code` follows (`codes::traits`, the one table keyed by code).
pub fn kind_of(code: &str) -> Kind {
    codes::traits(code).schedule
}

/// The visibility schedule, in whole seconds (SQS's unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub base: u64,
    pub cap: u64,
    pub fixed: u64,
}

impl Schedule {
    pub fn from_config(config: &Config) -> Self {
        Schedule {
            base: config.visibility_backoff_base.as_secs(),
            cap: config.visibility_backoff_cap.as_secs(),
            fixed: config.visibility_config_error.as_secs(),
        }
    }

    /// `min(cap, base × 2^(receives − 1))`, without overflow.
    pub fn step(&self, receives: u32) -> u64 {
        let doublings = receives.saturating_sub(1).min(40);
        self.base
            .checked_mul(1u64 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The lowest and highest timeout after receive number `receives`.
    pub fn range(&self, kind: Kind, receives: u32) -> (u64, u64) {
        match kind {
            Kind::Fixed => (self.fixed, self.fixed),
            Kind::Backoff => {
                let step = self.step(receives);
                ((step * JITTER_FLOOR_PERCENT).div_ceil(100).min(step), step)
            }
        }
    }

    /// The least time a message survives of backoff trouble before its `max_receives`-th
    /// receive fails and SQS dead-letters it: the sum of the lowest timeouts.
    pub fn least_coverage(&self, max_receives: u32) -> u64 {
        (1..=max_receives)
            .map(|r| self.range(Kind::Backoff, r).0)
            .sum()
    }
}

/// One message's new visibility timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibilityChange {
    /// The receipt handle of this receive of the message.
    pub receipt_handle: String,
    /// Seconds from now until the message is visible again.
    pub timeout_seconds: u32,
}

/// Why one visibility change did not happen. The message then comes back after the queue's
/// own visibility timeout.
#[derive(Debug, thiserror::Error)]
pub enum VisibilityError {
    #[error("SQS refused the visibility change ({code}): {message}")]
    Refused { code: String, message: String },
    #[error("could not build the SQS request: {0}")]
    Build(String),
    #[error("SQS ChangeMessageVisibilityBatch failed")]
    Send(#[source] Arc<aws_sdk_sqs::Error>),
    #[error("SQS did not report on the visibility change")]
    Unreported,
    #[error("no time was left before the invocation deadline")]
    OutOfTime,
}

impl VisibilityError {
    /// Stable snake_case code, for logs.
    pub const fn code(&self) -> &'static str {
        "visibility_change_failed"
    }
}

/// The queue URL of an SQS queue ARN (`arn:PARTITION:sqs:REGION:ACCOUNT:NAME`), as SQS names
/// it: `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME` (`.amazonaws.com.cn` in China). The SDK
/// sends the request to its own endpoint (`AWS_ENDPOINT_URL` in tests) and names the queue by
/// this URL.
pub fn queue_url_of_arn(arn: &str) -> Option<String> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some(partition), Some("sqs"), Some(region), Some(account), Some(name)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    if parts.next().is_some() || ![partition, region, account, name].into_iter().all(plain) {
        return None;
    }
    let domain = if partition == "aws-cn" {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Some(format!("https://sqs.{region}.{domain}/{account}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: Schedule = Schedule {
        base: 1200,
        cap: 4800,
        fixed: 60,
    };
    /// The template's MaxReceiveCount default (tests/it/template.rs checks the template).
    const MAX_RECEIVE_COUNT: u32 = 30;

    #[test]
    fn the_step_doubles_per_receive_up_to_the_cap() {
        let steps: Vec<u64> = (1..=5).map(|r| DEFAULTS.step(r)).collect();
        assert_eq!(steps, [1200, 2400, 4800, 4800, 4800]);
        assert_eq!(DEFAULTS.step(0), 1200);
        assert_eq!(DEFAULTS.step(u32::MAX), 4800);
        let huge = Schedule {
            base: u64::MAX / 2,
            cap: u64::MAX,
            fixed: 0,
        };
        assert_eq!(huge.step(3), u64::MAX, "no overflow");
    }

    #[test]
    fn the_jitter_stays_in_the_upper_quarter_of_the_step_and_fixed_is_fixed() {
        assert_eq!(DEFAULTS.range(Kind::Backoff, 1), (900, 1200));
        assert_eq!(DEFAULTS.range(Kind::Backoff, 9), (3600, 4800));
        assert_eq!(DEFAULTS.range(Kind::Fixed, 9), (60, 60));
        let scaled = Schedule {
            base: 1,
            cap: 4,
            fixed: 1,
        };
        assert_eq!(scaled.range(Kind::Backoff, 1), (1, 1));
        assert_eq!(scaled.range(Kind::Backoff, 3), (3, 4));
    }

    #[test]
    fn the_defaults_outlast_a_day_of_trouble_and_end_within_the_four_day_retention() {
        let least = DEFAULTS.least_coverage(MAX_RECEIVE_COUNT);
        assert!(least >= 24 * 3600, "{least} s");
        let most: u64 = (1..=MAX_RECEIVE_COUNT)
            .map(|r| DEFAULTS.range(Kind::Backoff, r).1)
            .sum();
        assert!(most < 4 * 24 * 3600, "{most} s");
        // A configuration error reaches the dead-letter queue in about half an hour.
        assert_eq!(u64::from(MAX_RECEIVE_COUNT) * DEFAULTS.fixed, 1800);
    }

    #[test]
    fn only_configuration_errors_take_the_fixed_schedule() {
        for code in [
            codes::NO_DESTINATION,
            codes::SECRET_NOT_FOUND,
            codes::SECRET_MALFORMED,
            codes::SECRET_MISSING_ACCOUNT_ID,
            codes::SECRET_MISSING_PASSCODE,
            codes::UNKNOWN_REGION,
            codes::CLEVERTAP_INVALID_REQUEST,
            codes::INVALID_SQS_RECORD,
            codes::DEAD_LETTER_FAILED,
            codes::RETRY_BUDGET_EXHAUSTED,
        ] {
            assert_eq!(kind_of(code), Kind::Fixed, "{code}");
        }
        for code in [
            codes::SECRETS_UNAVAILABLE,
            codes::CLEVERTAP_CIRCUIT_OPEN,
            codes::CLEVERTAP_UNAVAILABLE,
            codes::CLEVERTAP_TIMEOUT,
            codes::CLEVERTAP_UNREACHABLE,
            codes::CLEVERTAP_THROTTLED,
            codes::CLEVERTAP_UNAUTHORIZED,
            codes::CLEVERTAP_UNEXPECTED_STATUS,
            codes::CLEVERTAP_RECORD_FAILED,
            codes::CLEVERTAP_RECORD_UNCONFIRMED,
            codes::CLEVERTAP_BAD_RESPONSE,
            codes::FIFO_EARLIER_MESSAGE_FAILED,
            codes::DELIVERY_INCOMPLETE,
            "a_code_added_later",
        ] {
            assert_eq!(kind_of(code), Kind::Backoff, "{code}");
        }
    }

    #[test]
    fn a_queue_arn_gives_the_queue_url_sqs_names_it_by() {
        assert_eq!(
            queue_url_of_arn("arn:aws:sqs:us-east-1:123456789012:events").as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/events")
        );
        assert_eq!(
            queue_url_of_arn("arn:aws:sqs:eu-west-1:123456789012:events.fifo").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/events.fifo")
        );
        assert_eq!(
            queue_url_of_arn("arn:aws-cn:sqs:cn-north-1:123456789012:q").as_deref(),
            Some("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q")
        );
        for bad in [
            "",
            "arn:aws:sns:us-east-1:123456789012:topic",
            "arn:aws:sqs:us-east-1:123456789012",
            "arn:aws:sqs:us-east-1:123456789012:a:b",
            "arn:aws:sqs::123456789012:q",
            "arn:aws:sqs:us-east-1:123/456:q",
        ] {
            assert_eq!(queue_url_of_arn(bad), None, "{bad}");
        }
    }
}
