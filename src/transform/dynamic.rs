//! Dynamic config, as rudder-transformer's `dynamicConfigParser` applies it before the
//! destination transform: a setting whose whole value is `{{ event.a.b || DEFAULT }}` takes the
//! event's value at `a.b` when it is there and not null, and that field is then removed from
//! the event (so it never reaches `evtData` or `profileData`); otherwise the setting is
//! `DEFAULT`, with its quotes removed. One secret can so route events to several CleverTap
//! accounts (`accountId`, `passcode`, `region`), or switch the mapping per event
//! (docs/contracts.md §4, "Dynamic config").
//!
//! The templates are read once, with the settings (`settings.rs`); each event is resolved here,
//! settings in bytewise order of their names (the order the reference walks them in), so two
//! settings naming one field: the first takes it, the second its default.

use super::event::{Raw, object_members};
use super::{Reason, codes};
use crate::clevertap::endpoint::Region;
use crate::js::value::{Kind, as_str, js_to_string, js_trim, kind, truthy};
use crate::json::reader::parse_value;
use crate::json::writer::write_str;
use crate::settings::{Account, DestinationSettings, MappingOptions, Secret};
pub use crate::settings_template::{DynamicConfig, Setting, Template, parse};

/// What one event makes of the settings.
#[derive(Debug)]
pub struct Resolved {
    /// The event without the fields the settings took; `None` when none was taken.
    pub text: Option<String>,
    pub mapping: MappingOptions,
    /// The account the event goes to, when it is not the settings' own.
    pub account: Option<Account>,
}

/// Resolves the templates of `settings` for the event `text`. A value the event gives that
/// cannot be the setting (an accountId that is no text, an unknown region) rejects the event;
/// the message names the setting and the field, never the value.
pub fn resolve(text: &str, settings: &DestinationSettings) -> Result<Resolved, Reason> {
    let mut out = Resolved {
        text: None,
        mapping: settings.mapping,
        account: None,
    };
    let Some(config) = settings.dynamic.as_deref() else {
        return Ok(out);
    };
    let mut account = Account::of(settings);
    for (setting, template) in &config.entries {
        let Some(path) = &template.path else { continue };
        let current = out.text.as_deref().unwrap_or(text);
        let Some((value, rest)) = take(current, path) else {
            continue;
        };
        out.text = Some(rest);
        let raw = parse_value(&value).ok_or_else(|| invalid(*setting, path, "is not JSON"))?;
        match setting {
            Setting::TrackAnonymous => out.mapping.track_anonymous = truthy(Some(raw)),
            Setting::EnableObjectIdMapping => {
                out.mapping.enable_object_id_mapping = truthy(Some(raw))
            }
            Setting::EventTimestampAsTs => out.mapping.event_timestamp_as_ts = truthy(Some(raw)),
            Setting::AccountId => account.account_id = text_value(*setting, path, raw)?,
            Setting::Passcode => account.passcode = Secret::new(text_value(*setting, path, raw)?),
            Setting::Region => {
                let name = text_value(*setting, path, raw)?;
                account.region = Region::parse(Some(&name))
                    .map_err(|_| invalid(*setting, path, "is not a known region"))?;
            }
        }
    }
    if account != Account::of(settings) {
        out.account = Some(account);
    }
    Ok(out)
}

fn invalid(setting: Setting, path: &[Box<str>], why: &str) -> Reason {
    Reason::new(
        codes::INVALID_DYNAMIC_CONFIG,
        format!(
            "the event's {} (the destination's dynamic {}) {why}",
            path.join("."),
            setting.name()
        ),
    )
}

/// A string or number as the text a header carries (trimmed, not empty).
fn text_value(setting: Setting, path: &[Box<str>], raw: Raw<'_>) -> Result<String, Reason> {
    let text = match kind(raw) {
        Kind::String => as_str(raw).map(|s| js_trim(&s).to_owned()),
        Kind::Number => Some(js_to_string(raw)),
        _ => None,
    };
    text.filter(|t| !t.is_empty())
        .ok_or_else(|| invalid(setting, path, "is not a non-empty string or number"))
}

/// The value at `path` in the event `text`, when it is there and not null, and the event's
/// text without it. Only objects are walked into (`get-value`).
fn take(text: &str, path: &[Box<str>]) -> Option<(String, String)> {
    let (last, parents) = path.split_last()?;
    let mut parent = parse_value(text)?;
    for segment in parents {
        parent = object_members(parent)?.get(segment).copied()?;
    }
    let members = object_members(parent)?;
    let value = members.get(last).copied()?;
    if kind(value) == Kind::Null {
        return None;
    }
    // The parent object written again without the member, in place.
    let mut rebuilt = String::with_capacity(parent.get().len());
    rebuilt.push('{');
    for (key, v) in members.iter().filter(|(k, _)| k.as_ref() != last.as_ref()) {
        if rebuilt.len() > 1 {
            rebuilt.push(',');
        }
        write_str(&mut rebuilt, key);
        rebuilt.push(':');
        rebuilt.push_str(v.get());
    }
    rebuilt.push('}');
    let start = (parent.get().as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let end = start + parent.get().len();
    let mut rest = String::with_capacity(text.len());
    rest.push_str(text.get(..start)?);
    rest.push_str(&rebuilt);
    rest.push_str(text.get(end..)?);
    Some((value.get().to_owned(), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(t: &Template) -> Option<Vec<&str>> {
        t.path
            .as_ref()
            .map(|p| p.iter().map(|s| s.as_ref()).collect())
    }

    #[test]
    fn templates_are_read_as_the_reference_reads_them() {
        let (t, d) = parse("  {{ event.properties.ctAccount || \"W9R-1\" }} ").unwrap();
        assert_eq!(path(&t), Some(vec!["properties", "ctAccount"]));
        assert_eq!(d, "W9R-1");
        let (t, d) = parse("{{message.context.traits.acct||}}").unwrap();
        assert_eq!(path(&t), Some(vec!["context", "traits", "acct"]));
        assert_eq!(d, "");
        // A path outside the event: the default always.
        let (t, d) = parse("{{ metadata.sourceId || x }}").unwrap();
        assert_eq!((path(&t), d.as_str()), (None, "x"));
        // Not templates: ordinary values.
        for value in [
            "W9R-486-4W5Z",
            "{{ event.properties.acct }}",
            "{{ event.1a || x }}",
            "{{ event.a-b || x }}",
            "{{ || x }}",
            "x {{ event.a || b }}",
            "{{ event..a || b }}",
        ] {
            assert!(parse(value).is_none(), "{value}");
        }
    }

    #[test]
    fn a_value_is_taken_out_of_the_event_and_null_or_absent_leaves_it_alone() {
        let text = r#"{"type":"track","properties":{"a":1,"acct":"W9R-2","b":{"c":2}}}"#;
        let p = |s: &str| -> Box<[Box<str>]> { s.split('.').map(Box::from).collect() };
        let (value, rest) = take(text, &p("properties.acct")).unwrap();
        assert_eq!(value, "\"W9R-2\"");
        assert_eq!(rest, r#"{"type":"track","properties":{"a":1,"b":{"c":2}}}"#);
        let (value, rest) = take(text, &p("properties.b.c")).unwrap();
        assert_eq!(value, "2");
        assert_eq!(
            rest,
            r#"{"type":"track","properties":{"a":1,"acct":"W9R-2","b":{}}}"#
        );
        assert!(take(text, &p("properties.missing")).is_none());
        assert!(take(r#"{"properties":{"acct":null}}"#, &p("properties.acct")).is_none());
        assert!(take(r#"{"properties":"acct"}"#, &p("properties.acct")).is_none());
    }
}
