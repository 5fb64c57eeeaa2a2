//! Dynamic config templates in a destination's settings (docs/contracts.md §4, "Dynamic
//! config"): a setting whose whole value is `{{ event.a.b || DEFAULT }}` names where in each
//! event its value is looked for. Read once, with the settings; resolved per event by
//! `transform::dynamic`. A leaf, so the settings and the transform both use it without
//! importing each other.

/// The settings a template may stand for: the ones the transform and the requests read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Setting {
    // In bytewise order of their names.
    AccountId,
    EnableObjectIdMapping,
    EventTimestampAsTs,
    Passcode,
    Region,
    TrackAnonymous,
}

impl Setting {
    pub fn name(self) -> &'static str {
        match self {
            Setting::AccountId => "accountId",
            Setting::EnableObjectIdMapping => "enableObjectIdMapping",
            Setting::EventTimestampAsTs => "eventTimestampAsTs",
            Setting::Passcode => "passcode",
            Setting::Region => "region",
            Setting::TrackAnonymous => "trackAnonymous",
        }
    }
}

/// One setting's template: where in the event its value is looked for. Holds no setting value
/// (the default is the settings' own value), so it can be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The members to walk down from the event; none when the path is not inside the event
    /// (`metadata.x`, `destination.x`: this function has no such objects), and the default
    /// always applies.
    pub(crate) path: Option<Box<[Box<str>]>>,
}

/// A setting value read as a template: the template and the default text, or `None` when the
/// value is no template (then it is an ordinary value, braces and all).
pub fn parse(value: &str) -> Option<(Template, String)> {
    let trimmed = value.trim();
    let content = trimmed.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let (path, default) = content.split_once("||")?;
    let (path, default) = (path.trim(), default.trim());
    let valid = !path.is_empty()
        && path.split('.').all(|segment| {
            let mut bytes = segment.bytes();
            bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
    if !valid {
        return None;
    }
    // `event.` names the message; so does `message.` (the request's own member).
    let inside = path
        .strip_prefix("event.")
        .or_else(|| path.strip_prefix("message."));
    let template = Template {
        path: inside.map(|p| p.split('.').map(Box::from).collect()),
    };
    Some((template, default.replace('"', "").trim().to_owned()))
}

/// The templates of one destination's settings, in bytewise order of the settings' names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DynamicConfig {
    pub(crate) entries: Vec<(Setting, Template)>,
}

impl DynamicConfig {
    pub fn add(&mut self, setting: Setting, template: Template) {
        self.entries.push((setting, template));
        self.entries.sort_by_key(|(s, _)| *s);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
