//! Events dropped on purpose, before any mapping: what RudderStack filters before its CleverTap
//! transformer sees an event (an `integrations` object that turns CleverTap off, the user's
//! denied consent, message types the destination does not take), and the destination's event
//! allow or deny list, which RudderStack applies
//! only in device mode. A filtered event is not an error: nothing is sent, nothing retried.

use super::codes;
use super::event::{ConsentInfo, Event, Integration};
use crate::js::value::{Kind, as_str, js_lower_eq, js_trim, kind};
use crate::outcome::Reason;
use crate::settings::{ConsentSettings, EventFilter, Filters, ResolutionStrategy};
use std::borrow::Cow;

/// The message types CleverTap's destination takes (its `supportedMessageTypes`): rudder-server's
/// processor filters every other type, trimmed and lower-cased, before its transformer sees the
/// event (`processor/eventfilter`).
const SUPPORTED_TYPES: [&str; 5] = ["identify", "track", "page", "screen", "alias"];

/// The destination's name in an event's `integrations` object (its display name, matched
/// exactly by rudder-server).
const DISPLAY_NAME: &str = "CleverTap";

/// Why `ev` is dropped on purpose, if it is. In rudder-server's order: the `integrations`
/// object and consent (they pick the destinations an event goes to), then the message type;
/// then the event filter.
pub(crate) fn filtered(ev: &Event<'_>, filters: &Filters) -> Option<Reason> {
    if let Some(reason) = integration_disabled(&ev.integrations) {
        return Some(reason);
    }
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
        // A blank type is no type: the transform rejects it (`missing_type`), as rudder-server
        // does (status 400).
        let trimmed = kind.trim();
        if !trimmed.is_empty() && !SUPPORTED_TYPES.iter().any(|t| js_lower_eq(trimmed, t)) {
            let shown: String = trimmed.chars().take(64).collect();
            return Some(Reason::new(
                codes::FILTERED_MESSAGE_TYPE,
                format!(
                    "message type {shown:?} is not sent to CleverTap, which takes identify, track, page, screen and alias (RudderStack filters it too)"
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

/// rudder-server's `FilterClientIntegrations` for this destination: an `integrations` value
/// that is not an object, or whose `All` is not a boolean, sends the event nowhere; a boolean
/// `CleverTap` decides; an object `CleverTap` sends it; otherwise `All` (true when absent).
fn integration_disabled(integrations: &Integration<'_>) -> Option<Reason> {
    let disabled = |why: &str| {
        Some(Reason::new(
            codes::INTEGRATION_DISABLED,
            format!("the event's integrations object does not send it to {DISPLAY_NAME}: {why}"),
        ))
    };
    if integrations.not_object {
        return disabled("integrations is not an object");
    }
    let all = match integrations.all.map(kind) {
        None => true,
        Some(Kind::Bool(all)) => all,
        Some(_) => return disabled("All is not a boolean"),
    };
    match integrations.display_name.map(kind) {
        Some(Kind::Bool(true)) | Some(Kind::Object) => None,
        Some(Kind::Bool(false)) => disabled("\"CleverTap\": false"),
        _ if all => None,
        _ => disabled("\"All\": false"),
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
