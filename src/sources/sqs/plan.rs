//! What is to become of each message: the settings of every destination the batch names are
//! fetched once, together, before any message is planned; then each message, as the engine
//! pulls it (a standard queue's first uploads may be under way by then), is decided at once (no
//! destination, no settings, a body that cannot be read), or becomes events to deliver, or a
//! regulation to carry out. A destination whose settings cannot be had never judges an event:
//! its messages are retried, never dead-lettered.

use super::decode::Message;
use crate::codes;
use crate::credentials::CredentialsError;
use crate::engine::Work;
use crate::engine::erase::Target;
use crate::engine::prepare::prepare;
use crate::input::Body;
use crate::outcome::{Outcome, Reason};
use crate::ports::SettingsSource;
use crate::regulation::Regulation;
use crate::settings::{DestinationId, DestinationSettings};
use std::collections::HashMap;
use std::sync::Arc;

/// Each destination's settings, or why they cannot be had.
pub(super) type SettingsMap =
    HashMap<DestinationId, Result<Arc<DestinationSettings>, CredentialsError>>;

/// Fetches each destination's settings once, all at the same time: the messages' own, or the
/// ones a regulation names in place of its message's.
pub(super) async fn fetch_settings<S: SettingsSource>(
    source: &S,
    messages: &[Message],
    bodies: &[Result<Body<'_>, Reason>],
) -> SettingsMap {
    let mut wanted: Vec<&DestinationId> = Vec::new();
    for (m, body) in messages.iter().zip(bodies) {
        let named = match body {
            Ok(Body::Regulation(r)) if !r.destination_ids.is_empty() => &r.destination_ids[..],
            _ => m
                .destination
                .as_ref()
                .map(std::slice::from_ref)
                .unwrap_or(&[]),
        };
        for d in named {
            if !wanted.contains(&d) {
                wanted.push(d);
            }
        }
    }
    let fetched = futures_util::future::join_all(wanted.iter().map(|d| source.settings(d))).await;
    wanted.into_iter().cloned().zip(fetched).collect()
}

/// A destination's settings from the map, or the retry reason of a destination without them.
fn settings_of(
    settings: &SettingsMap,
    destination: &DestinationId,
) -> Result<Arc<DestinationSettings>, Reason> {
    match settings.get(destination) {
        Some(Ok(s)) => Ok(Arc::clone(s)),
        Some(Err(e)) => Err(e.reason()),
        None => Err(Reason::new(
            codes::SECRETS_UNAVAILABLE,
            "destination settings were not fetched",
        )),
    }
}

pub(super) fn plan<'a>(
    message: &'a Message,
    body: Result<Body<'a>, Reason>,
    settings: &SettingsMap,
) -> Work<'a> {
    let items = match body {
        Ok(Body::Regulation(regulation)) => return plan_regulation(message, regulation, settings),
        Ok(Body::Events(items)) => Ok(items),
        Err(reason) => Err(reason),
    };
    let destination = match &message.destination {
        Ok(d) => d,
        Err(outcome) => return Work::Decided(outcome.clone()),
    };
    let settings = match settings_of(settings, destination) {
        Ok(s) => s,
        Err(reason) => return Work::Decided(Outcome::Retry(reason)),
    };
    match items {
        Err(reason) => Work::Decided(Outcome::Rejected(reason)),
        Ok(items) => Work::Events {
            destination: destination.clone(),
            prepared: prepare(items, &settings),
            settings,
        },
    }
}

/// A regulation goes to the destinations its body names, else to its message's.
fn plan_regulation<'a>(
    message: &Message,
    regulation: Regulation<'a>,
    settings: &SettingsMap,
) -> Work<'a> {
    let destinations = if regulation.destination_ids.is_empty() {
        match &message.destination {
            Ok(d) => vec![d.clone()],
            Err(outcome) => return Work::Decided(outcome.clone()),
        }
    } else {
        regulation.destination_ids.clone()
    };
    let targets = destinations
        .into_iter()
        .map(|destination| Target {
            settings: settings_of(settings, &destination),
            destination,
        })
        .collect();
    Work::Regulation {
        regulation,
        targets,
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fakes;
    use crate::lambda_events::{QUEUE_ARN, sqs_message, sqs_record};

    #[tokio::test]
    async fn a_failed_settings_fetch_is_not_repeated_within_the_invocation() {
        let mut h = fakes::handler();
        h.settings_source.down = vec!["dest-b".into()];
        let track = r#"{"type":"track","event":"Viewed","userId":"u-1"}"#;
        let regulation = r#"{"regulationType":"suppress_with_delete","destinationIds":["dest-b","dest-a"],"users":[{"userId":"u-9"}]}"#;
        let failures = fakes::sqs_failures(
            &h,
            vec![
                sqs_message("m-1", track, "dest-b"),
                sqs_message("m-2", track, "dest-b"),
                sqs_message("m-3", "[{},{}]", "dest-b"),
                // A regulation for several destinations comes without a destinationId
                // attribute (the origin rule).
                sqs_record(QUEUE_ARN, "m-4", regulation, None),
                sqs_message("m-5", track, "dest-a"),
            ],
        )
        .await;
        assert_eq!(failures, ["m-1", "m-2", "m-3", "m-4"]);
        let mut fetched = h.settings_source.fetched.lock().unwrap().clone();
        fetched.sort();
        assert_eq!(fetched, ["dest-a", "dest-b"], "one lookup per destination");
        // Nothing was sent for dest-b, and its messages carry Secrets Manager's code.
        assert!(h.clevertap.calls().iter().all(|c| c.account != "ACC-B"));
        let metrics = h.take_metrics();
        assert_eq!(metrics.per_destination["dest-b"].retried, 3);
    }
}
