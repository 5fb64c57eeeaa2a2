//! Dead-lettering a batch's rejected messages, all in one `SendMessageBatch` series: the letter
//! carries only the rejected events (or the body as it came), and the routing and reason as
//! attributes, so it can be redriven as it is. A letter that cannot be sent turns its message
//! into a retry: a rejected event is acked only once its dead letter is written.

use super::decode::Message;
use crate::credentials::SettingsSource;
use crate::deadletter::{DeadLetter, DeadLetterSink, Origin};
use crate::entrypoints::handler::{CleverTapApi, Handler};
use crate::entrypoints::pipeline::Settled;
use crate::outcome::{Outcome, Status};

/// Dead-letters the rejected messages; returns, per message, whether it must be reported in
/// `batchItemFailures` (a retry, or a rejection whose dead letter could not be sent).
pub(super) async fn dead_letter<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    messages: &[Message],
    settled: &[Settled],
) -> Vec<bool> {
    let mut failed: Vec<bool> = settled
        .iter()
        .map(|s| s.outcome.status() == Status::Retry)
        .collect();
    let mut letters = Vec::new();
    let mut senders = Vec::new();
    for (i, (m, s)) in messages.iter().zip(settled).enumerate() {
        if let Outcome::Rejected(reason) = &s.outcome {
            let body = s.dead_letter_body.clone().unwrap_or_else(|| m.body.clone());
            letters.push(DeadLetter::new(
                body,
                reason,
                Origin {
                    destination_id: m.destination_attr.as_deref(),
                    source_message_id: m.id.as_deref(),
                    message_group_id: m.group_id.as_deref(),
                },
            ));
            senders.push(i);
        }
    }
    if letters.is_empty() {
        return failed;
    }
    let results = handler.dead_letters.send(&letters).await;
    for (n, &i) in senders.iter().enumerate() {
        match results.get(n) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                let _span = messages[i].span().entered();
                tracing::error!(
                    message_id = messages[i].id.as_deref().unwrap_or(""),
                    code = e.code(),
                    error = %e,
                    "dead letter not sent: the message is reported for a retry"
                );
                failed[i] = true;
            }
            None => failed[i] = true,
        }
    }
    failed
}
