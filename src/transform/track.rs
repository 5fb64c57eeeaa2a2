//! track, page and screen -> an event record, as the reference builds it: the event name (or
//! "Web Page Viewed: <name>" / "Screen Viewed: <name>"), the properties with objects and arrays
//! as JSON text, and "Order Completed" (any letter case) as CleverTap's `Charged` event with
//! `Charged ID`, `Amount` and `Items`.

use super::event::{Event, Field, Raw, RawPairs};
use super::ids::Ids;
use super::record::{Members, RecordBuf, RecordWriter, Val};
use super::ts::ts;
use super::value::{Kind, as_str, js_lower_eq, js_to_string, js_trim, kind, present, truthy};
use super::{Rejection, codes};
use crate::settings::MappingOptions;
use std::borrow::Cow;

/// Which of the event-like calls this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Track,
    Page,
    Screen,
}

/// Properties the `Charged` mapping reads itself (reference `extractCustomFields` exclusions).
const CHARGED_EXCLUDED: [&str; 4] = ["checkout_id", "revenue", "products", "ts"];

pub fn event(
    ev: &Event<'_>,
    ids: &Ids<'_>,
    opts: MappingOptions,
    call: Call,
    buf: &mut RecordBuf,
) -> Result<(), Rejection> {
    if !opts.track_anonymous && !truthy(ids.user) {
        return Err(Rejection::new(
            codes::ANONYMOUS_NOT_ALLOWED,
            "the event has no userId and the destination's trackAnonymous setting is off",
        ));
    }
    let props: Option<&RawPairs<'_>> = match &ev.properties {
        Field::Absent => None,
        Field::NotObject => {
            return Err(Rejection::new(
                codes::INVALID_PROPERTIES,
                "properties must be a JSON object",
            ));
        }
        Field::Object(p) => Some(p),
    };
    let prop = |key: &str| props.and_then(|p| p.get(key)).copied();

    let charged = ev
        .event
        .and_then(as_str)
        .is_some_and(|name| js_lower_eq(&name, "order completed"));

    // A plain event passes its properties on as they are (already one value per key).
    let (name, charged_data): (Cow<'_, str>, Option<Members<'_>>) = if charged {
        (Cow::Borrowed("Charged"), Some(charged_data(props)?))
    } else {
        let name = match call {
            Call::Track => track_name(ev.event)?,
            Call::Page => viewed_name("Web Page Viewed", ev, props),
            Call::Screen => viewed_name("Screen Viewed", ev, props),
        };
        (name, None)
    };

    let mut w = RecordWriter::new(buf);
    w.text("evtName", &name);
    match (&charged_data, props) {
        (Some(data), _) => w.members("evtData", data, false),
        (None, Some(props)) => w.flat_members("evtData", props),
        (None, None) => w.flat_members("evtData", &RawPairs::default()),
    }
    .map_err(Rejection::from_write)?;
    w.ts(ts(prop("ts")));
    w.text("type", "event");
    let written = match (opts.enable_object_id_mapping, ids.anonymous, ids.user) {
        (true, Some(anon), _) => w.id("objectId", anon),
        (_, _, Some(user)) => w.id("identity", user),
        (false, Some(anon), None) => w.id("identity", anon),
        _ => {
            return Err(Rejection::new(
                codes::MISSING_IDS,
                "the event has neither userId nor anonymousId",
            ));
        }
    };
    written.map_err(Rejection::from_write)?;
    w.finish();
    Ok(())
}

/// The name of a track event: `event`, required, a string.
fn track_name<'a>(event: Option<Raw<'a>>) -> Result<Cow<'a, str>, Rejection> {
    let Some(event) = present(event) else {
        return Err(Rejection::new(
            codes::MISSING_EVENT_NAME,
            "a track event needs an event name in \"event\"",
        ));
    };
    match as_str(event) {
        Some(name) => Ok(name),
        None => Err(Rejection::new(
            codes::INVALID_EVENT_NAME,
            "the event name in \"event\" must be a string",
        )),
    }
}

/// "Web Page Viewed: <name>" / "Screen Viewed: <name>", the name from `event`,
/// `properties.event`, `name` or `properties.name`; the prefix alone without a name. The name is
/// HTML-escaped and the result trimmed, as the reference's Handlebars template does.
fn viewed_name<'a>(prefix: &str, ev: &Event<'a>, props: Option<&RawPairs<'a>>) -> Cow<'a, str> {
    let prop = |key: &str| props.and_then(|p| p.get(key)).copied();
    let name = [ev.event, prop("event"), ev.name, prop("name")]
        .into_iter()
        .find_map(present);
    match name {
        None => Cow::Owned(prefix.to_owned()),
        Some(raw) => {
            let text = format!("{prefix}: {}", html_escape(&js_to_string(raw)));
            Cow::Owned(js_trim(&text).to_owned())
        }
    }
}

/// Handlebars' `escapeExpression`.
fn html_escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'', '`', '=']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '`' => out.push_str("&#x60;"),
            '=' => out.push_str("&#x3D;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `evtData` of the `Charged` event: `Charged ID` (checkout_id), `Amount` (revenue), `Items`
/// (products, which must be a non-empty array of objects), then the other properties.
fn charged_data<'a>(props: Option<&RawPairs<'a>>) -> Result<Members<'a>, Rejection> {
    let prop = |key: &str| present(props.and_then(|p| p.get(key)).copied());
    let mut data = Members::with_capacity(props.map_or(0, RawPairs::len) + 3);
    if let Some(v) = prop("checkout_id") {
        data.insert(Cow::Borrowed("Charged ID"), Val::Flat(v));
    }
    if let Some(v) = prop("revenue") {
        data.insert(Cow::Borrowed("Amount"), Val::Flat(v));
    }
    if let Some(v) = prop("products") {
        data.insert(Cow::Borrowed("Items"), Val::Flat(v));
    }
    for (k, v) in props.into_iter().flat_map(RawPairs::iter) {
        if !CHARGED_EXCLUDED.contains(&k.as_ref()) {
            data.insert(k.clone(), Val::Flat(*v));
        }
    }
    let items = match data.get("Items") {
        Some(Val::Flat(raw)) => Some(*raw),
        _ => None,
    };
    if let Some(items) = items {
        if !is_array_of_objects(items) {
            return Err(Rejection::new(
                codes::INVALID_PRODUCTS,
                "Order Completed products must be a non-empty array of objects",
            ));
        }
        data.insert(Cow::Borrowed("Items"), Val::Nested(items));
    }
    Ok(data)
}

fn is_array_of_objects(raw: Raw<'_>) -> bool {
    super::event::array_elements(raw)
        .is_some_and(|items| !items.is_empty() && items.iter().all(|i| kind(*i) == Kind::Object))
}
