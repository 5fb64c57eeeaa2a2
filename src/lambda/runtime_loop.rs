//! The runtime loop: lambda_runtime hands each invocation's raw payload (`raw_payload`) and
//! deadline to the one handler; after it, the summary line and metrics (`logs`). The memory the
//! invocation freed stays with malloc for the next one (`allocator`).

use super::StartError;
use super::raw_payload::{PayloadSlot, RawPayload};
use crate::handler::{Handler, HandlerError};
use crate::ports::{CleverTapApi, DeadLetterSink, SettingsSource};
use crate::sources::Shape;
use lambda_runtime::{LambdaEvent, service_fn};
use serde::de::IgnoredAny;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// The runtime loop around one handler. lambda_runtime wraps each invocation in a span carrying
/// its `requestId`, so every line below carries it.
pub async fn serve<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: Handler<S, C, D>,
) -> Result<(), StartError> {
    let handler = &handler;
    let slot = PayloadSlot::default();
    let taken = slot.clone();
    let cold = std::sync::atomic::AtomicBool::new(true);
    let cold = &cold;
    let service = service_fn(move |event: LambdaEvent<IgnoredAny>| {
        let payload = taken.take();
        async move {
            let started = Instant::now();
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            let invocation = handler.handle(payload, deadline).await;
            let kind = invocation.shape.map_or("unknown", Shape::as_str);
            let metrics = handler.take_metrics();
            let code = invocation.answer.as_ref().err().map(HandlerError::code);
            let cold_start = cold.swap(false, std::sync::atomic::Ordering::Relaxed);
            super::logs::after_invocation(&event.context, &handler.config, cold_start).write(
                kind,
                &metrics,
                code,
                started.elapsed(),
            );
            invocation.answer
        }
    });
    lambda_runtime::Runtime::new(service)
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(RawPayload { slot })
        .run()
        .await
        .map_err(StartError::Loop)
}

/// The invocation deadline (`Lambda-Runtime-Deadline-Ms`, ms since the epoch) as a monotonic
/// instant; a deadline in the past is now. A value too small to be a time since the epoch
/// (before 2001) is milliseconds from now, at most Lambda's 15 minutes: `cargo lambda watch`
/// sends a fixed 600000 (docs/contracts.md §7, offline mode).
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    if deadline_ms < 1_000_000_000_000 {
        return Instant::now() + Duration::from_millis(deadline_ms.min(900_000));
    }
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Instant::now() + left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_in_the_future_keeps_its_distance() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let d = deadline_from_epoch_ms(now_ms + 10_000);
        let left = d - Instant::now();
        assert!(
            left > Duration::from_secs(9) && left <= Duration::from_secs(10),
            "{left:?}"
        );
    }

    #[test]
    fn a_deadline_in_the_past_is_now() {
        let d = deadline_from_epoch_ms(1_700_000_000_000);
        assert!(d <= Instant::now());
    }

    #[test]
    fn a_deadline_too_small_for_an_epoch_time_is_relative_as_cargo_lambda_watch_means_it() {
        let left = deadline_from_epoch_ms(600_000) - Instant::now();
        assert!(left > Duration::from_secs(590), "{left:?}");
        let left = deadline_from_epoch_ms(999_999_999_999) - Instant::now();
        assert!(left <= Duration::from_secs(900), "{left:?}");
    }
}
