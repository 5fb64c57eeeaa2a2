//! Events dropped on purpose, before any mapping: what RudderStack filters before its CleverTap
//! transformer sees an event (the user's denied consent, message types the destination does not
//! take in cloud mode), and the destination's event allow or deny list, which RudderStack applies
//! only in device mode. A filtered event is not an error: nothing is sent, nothing retried.

use super::codes;
use super::event::{ConsentInfo, Event};
use crate::js::value::{as_str, js_lower_eq, js_trim};
use crate::outcome::Reason;
use crate::settings::{ConsentSettings, EventFilter, Filters, ResolutionStrategy};
use std::borrow::Cow;

/// RudderStack message types that CleverTap's destination does not take in cloud mode:
/// rudder-server's processor drops them as filtered before its transformer sees them. Other
/// unknown types reach the transformer, which rejects them (`unsupported_type`).
const FILTERED_TYPES: [&str; 3] = ["group", "reset", "record"];

/// Why `ev` is dropped on purpose, if it is. In rudder-server's order: consent first (it picks
/// the destinations an event goes to), then the message type; then the event filter.
pub(crate) fn filtered(ev: &Event<'_>, filters: &Filters) -> Option<Reason> {
    if !filters.consent.is_empty()
        && ev.context.consent.denied_consent_ids.is_some()
        && consent_denied(&ev.context.consent, &filters.consent)
    {
        return Some(Reason::new(
            codes::CONSENT_DENIED,
            "the user denied consent the destination requires (context.consentManagement)",
        ));
    }
    let kind = ev.kind.and_then(as_str);
    if let Some(kind) = &kind {
        let trimmed = kind.trim();
        if FILTERED_TYPES.iter().any(|t| js_lower_eq(trimmed, t)) {
            let shown: String = trimmed.chars().take(64).collect();
            return Some(Reason::new(
                codes::FILTERED_MESSAGE_TYPE,
                format!(
                    "message type {shown:?} is not sent to CleverTap (RudderStack filters it too)"
                ),
            ));
        }
    }
    match &filters.events {
        EventFilter::Disabled => None,
        _ if !kind.is_some_and(|k| js_lower_eq(&k, "track")) => None,
        events => event_filtered(ev, events),
    }
}

/// The allow or deny list on a track event, as RudderStack's JavaScript SDK applies it.
fn event_filtered(ev: &Event<'_>, events: &EventFilter) -> Option<Reason> {
    let name = ev.event.and_then(as_str).filter(|n| !n.is_empty());
    let listed = |names: &[Box<str>]| {
        name.as_deref()
            .is_some_and(|n| names.iter().any(|l| **l == *js_trim(n)))
    };
    match events {
        EventFilter::Allow(names) if !listed(names) => Some(Reason::new(
            codes::EVENT_NOT_ALLOWED,
            "the event name is not in the destination's allowed events (whitelistedEvents)",
        )),
        EventFilter::Deny(names) if listed(names) => Some(Reason::new(
            codes::EVENT_DENIED,
            "the event name is in the destination's denied events (blacklistedEvents)",
        )),
        _ => None,
    }
}

/// rudder-server's consent rule (`processor/consent.go`) for this destination: whether the
/// event must not reach it.
pub(crate) fn consent_denied(info: &ConsentInfo<'_>, settings: &ConsentSettings) -> bool {
    // Denied ids: the non-empty strings of the list (anything else in it is ignored).
    let denied: Vec<Cow<'_, str>> = info
        .denied_consent_ids
        .and_then(crate::json::reader::array_elements)
        .unwrap_or_default()
        .into_iter()
        .filter_map(as_str)
        .filter(|id| !id.is_empty())
        .collect();
    if denied.is_empty() {
        return false;
    }
    let is_denied = |id: &str| denied.iter().any(|d| d == id);
    let provider = info.provider.and_then(as_str).unwrap_or_default();

    if let Some(rule) = settings.generic.iter().find(|g| *g.provider == *provider) {
        let strategy = if provider == "custom" {
            rule.resolution_strategy
        } else {
            info.resolution_strategy
                .and_then(as_str)
                .map_or(ResolutionStrategy::And, |s| {
                    ResolutionStrategy::from_name(&s)
                })
        };
        return match strategy {
            // At least one configured consent must be given.
            ResolutionStrategy::Or => rule.consents.iter().all(|c| is_denied(c)),
            // Every configured consent must be given.
            ResolutionStrategy::And => rule.consents.iter().any(|c| is_denied(c)),
        };
    }
    if (provider.is_empty() || provider == "oneTrust") && !settings.one_trust.is_empty() {
        return settings.one_trust.iter().any(|c| is_denied(c));
    }
    if (provider.is_empty() || provider == "ketch") && !settings.ketch.is_empty() {
        return settings.ketch.iter().all(|c| is_denied(c));
    }
    false
}
