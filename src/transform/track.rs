//! track, page and screen -> an event record, as the reference builds it: the event name (or
//! `Web Page Viewed: <name>` / `Screen Viewed: <name>`), the properties with objects and arrays
//! as JSON text (the subscription categories kept as objects, `__proto__` never sent), and
//! "Order Completed" (any letter case) as CleverTap's `Charged` event with `Charged ID`, `Amount`
//! and `Items`. Any event that ends up named `Charged` (Order Completed, or a track event users
//! name `Charged` themselves) sends `Items` as nested JSON, and only as an array of objects.

use super::event::{Event, Field, Raw, RawPairs};
use super::event_ts;
use super::ids::Ids;
use super::order::key_cmp;
use super::path::{self, is_path};
use super::record::{Members, RecordBuf, RecordWriter, Val, converted};
use super::{Rejection, codes};
use crate::js::ts::ts;
use crate::js::value::{Kind, as_str, js_lower_eq, js_to_string, js_trim, kind, present, truthy};
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

/// Keys the reference's `extractCustomFields` never copies (JavaScript's reserved member names).
pub const RESERVED: [&str; 3] = ["__proto__", "constructor", "prototype"];

/// CleverTap's purchase event, whose `Items` is sent as nested JSON.
const CHARGED: &str = "Charged";

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

    // `get(message.event).toString().toLowerCase()`: an array name is joined with commas, so
    // `["Order Completed"]` is Order Completed too.
    let order_completed = ev
        .event
        .filter(|e| truthy(Some(*e)) && matches!(kind(*e), Kind::String | Kind::Array))
        .is_some_and(|e| js_lower_eq(&js_to_string(e), "order completed"));

    // A plain event passes its properties on as they are (already one value per key).
    let (name, charged_data): (Cow<'_, str>, Option<Members<'_>>) = if order_completed {
        (Cow::Borrowed(CHARGED), Some(order_data(props)?))
    } else {
        let name = match call {
            Call::Track => track_name(ev.event)?,
            Call::Page => viewed_name("Web Page Viewed", ev, props),
            Call::Screen => viewed_name("Screen Viewed", ev, props),
        };
        let data = if name == CHARGED {
            Some(charged_items(event_data(props))?)
        } else {
            None
        };
        (name, data)
    };

    let mut w = RecordWriter::new(buf);
    w.text("evtName", &name);
    match (&charged_data, props) {
        (Some(data), _) => w.members("evtData", data, false),
        (None, Some(props)) => w.converted_members("evtData", props),
        (None, None) => w.converted_members("evtData", &RawPairs::default()),
    }
    .map_err(Rejection::from_write)?;
    w.ts(ts(prop("ts")).or_else(|| event_ts(opts, ev)));
    w.text("type", "event");
    // As the reference: with objectId mapping a truthy anonymousId is the objectId, else a
    // truthy user id the identity; without it the first present user id, else anonymousId.
    let written = match (
        opts.enable_object_id_mapping,
        ids.object_id(),
        ids.truthy_user(),
        ids.user.or(ids.anonymous),
    ) {
        (true, Some(anon), _, _) => w.id("objectId", anon),
        (true, None, Some(user), _) => w.id("identity", user),
        (false, _, _, Some(id)) => w.id("identity", id),
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

/// `evtData` of a plain event as [`Members`], for a `Charged` event whose `Items` needs a look.
fn event_data<'a>(props: Option<&RawPairs<'a>>) -> Members<'a> {
    let mut data = Members::with_capacity(props.map_or(0, RawPairs::len));
    for (k, v) in props.into_iter().flat_map(RawPairs::iter) {
        if let Some(val) = converted(k, *v) {
            data.insert(k.clone(), val);
        }
    }
    data
}

/// `evtData` of Order Completed: `Charged ID` (checkout_id), `Amount` (revenue), `Items`
/// (products), then the other properties except the reserved JavaScript names, then the
/// `Items` rule of every `Charged` event.
fn order_data<'a>(props: Option<&RawPairs<'a>>) -> Result<Members<'a>, Rejection> {
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
    // The reference's `extractCustomFields` with its path setter (`path.rs`): a dotted key
    // builds an object, taken in production order (index keys first, then bytewise).
    let mut keys: Vec<&Cow<'a, str>> = props
        .into_iter()
        .flat_map(RawPairs::iter)
        .map(|(k, _)| k)
        .filter(|k| !CHARGED_EXCLUDED.contains(&k.as_ref()) && !RESERVED.contains(&k.as_ref()))
        .collect();
    let paths = keys.iter().any(|k| is_path(k));
    if paths {
        keys.sort_by(|a, b| key_cmp(a, b));
    }
    for k in keys {
        let Some(v) = props.and_then(|p| p.get(k)).copied() else {
            continue;
        };
        if paths && is_path(k) {
            path::set(&mut data, k, v, |key, raw| converted(key, raw))
                .map_err(|e| Rejection::new(codes::INVALID_PROPERTIES, e.describe("property")))?;
        } else if let Some(val) = converted(k, v) {
            data.insert(k.clone(), val);
        }
    }
    charged_items(data)
}

/// The reference's rule for the `Items` of a `Charged` event: when `Items` is truthy, it is read
/// as JSON (an array or object as it is, a string as the JSON text it holds) and must be a
/// non-empty array of objects, sent as nested JSON. Falsy `Items` pass on as they are.
///
/// Deliberate differences: every element must be an object (the reference looks at the first
/// one only, so `[{}, 2]` or `[null]` would pass), and a string that is not JSON is rejected
/// here (the reference fails with a JavaScript `SyntaxError`, which RudderStack retries).
fn charged_items(mut data: Members<'_>) -> Result<Members<'_>, Rejection> {
    let items = match data.get("Items") {
        Some(Val::Flat(raw)) if truthy(Some(*raw)) => *raw,
        _ => return Ok(data),
    };
    let invalid = || {
        Rejection::new(
            codes::INVALID_PRODUCTS,
            "the Items of a Charged event (Order Completed products) must be a non-empty array of objects",
        )
    };
    let val = match kind(items) {
        Kind::Array if is_array_of_objects(items) => Val::Nested(items),
        Kind::String => {
            let text = as_str(items).ok_or_else(invalid)?;
            match crate::json::reader::parse_value(&text) {
                Some(parsed) if is_array_of_objects(parsed) => {}
                _ => return Err(invalid()),
            }
            Val::Json(text)
        }
        _ => return Err(invalid()),
    };
    data.insert(Cow::Borrowed("Items"), val);
    Ok(data)
}
fn is_array_of_objects(raw: Raw<'_>) -> bool {
    crate::json::reader::array_elements(raw)
        .is_some_and(|items| !items.is_empty() && items.iter().all(|i| kind(*i) == Kind::Object))
}
