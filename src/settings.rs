//! Destination settings: the JSON a destination's secret holds, with the same names as
//! RudderStack's CleverTap settings (docs/contracts.md §4), including its consent management and
//! event filtering settings, and the types that keep the passcode and webhook token out of logs,
//! errors and Debug output.

use crate::clevertap::endpoint::Region;
use crate::codes;
use crate::js::value::js_trim;
use crate::settings_template::{DynamicConfig, Setting};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// A secret string (passcode, webhook token). Debug and Display print `<redacted>`; the value is
/// only reachable through [`Secret::expose`], at the one place that must send it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    pub fn new(value: impl Into<Box<str>>) -> Self {
        Secret(value.into())
    }

    /// The secret value, for an HTTP header or a constant-time comparison; never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A destination id, checked against `[A-Za-z0-9_.-]{1,128}` (docs/contracts.md §2) before it becomes
/// part of a secret id or a log line. Shared, not copied, when cloned: every message of a batch
/// names one (cpu2: one allocation per batch instead of one per message).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestinationId(std::sync::Arc<str>);

/// A destination id outside `[A-Za-z0-9_.-]{1,128}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid destination id: expected 1 to 128 characters from A-Z a-z 0-9 _ . -")]
pub struct InvalidDestinationId;

impl DestinationId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(value: &str) -> Result<Self, InvalidDestinationId> {
        let ok = !value.is_empty()
            && value.len() <= Self::MAX_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(DestinationId(value.into()))
        } else {
            Err(InvalidDestinationId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DestinationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The settings the mapping reads (all off by default), each on when its value is truthy in
/// JavaScript, as the reference tests them (`"false"` is a non-empty string: on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MappingOptions {
    /// `trackAnonymous`: accept track/page/screen events that have no userId.
    pub track_anonymous: bool,
    /// `enableObjectIdMapping`: send anonymousId as CleverTap's objectId.
    pub enable_object_id_mapping: bool,
    /// `eventTimestampAsTs` (this project's, not RudderStack's): a record without a `ts` of its
    /// own (`traits.ts`, `properties.ts`) is dated by the event's `timestamp`, else its
    /// `originalTimestamp`.
    pub event_timestamp_as_ts: bool,
}

/// Where a destination's requests go: the CleverTap account, its passcode and its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: String,
    pub passcode: Secret,
    pub region: Region,
}

impl Account {
    /// The settings' own account.
    pub fn of(settings: &DestinationSettings) -> Self {
        Account {
            account_id: settings.account_id.clone(),
            passcode: settings.passcode.clone(),
            region: settings.region,
        }
    }
}

/// Which events the destination drops on purpose (filtered: not sent, not an error), from
/// RudderStack's consent management and event filtering settings. Empty by default, and then
/// the transform does not look at the events' consent at all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filters {
    pub consent: ConsentSettings,
    pub events: EventFilter,
}

/// No filters (what a secret without consent or event filter settings gives).
pub static NO_FILTERS: Filters = Filters {
    consent: ConsentSettings {
        one_trust: Vec::new(),
        ketch: Vec::new(),
        generic: Vec::new(),
    },
    events: EventFilter::Disabled,
};

/// The destination's consent settings, in the shapes rudder-server's processor reads
/// (`processor/consent.go`). Consent ids compare exactly (case and spaces count), as there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsentSettings {
    /// `oneTrustCookieCategories[].oneTrustCookieCategory`: the event is filtered when any of
    /// them is denied.
    pub one_trust: Vec<Box<str>>,
    /// `ketchConsentPurposes[].purpose`: the event is filtered when all of them are denied.
    pub ketch: Vec<Box<str>>,
    /// `consentManagement[]`: one entry per provider that has consents.
    pub generic: Vec<GenericConsent>,
}

impl ConsentSettings {
    /// Whether nothing is configured (then no event is filtered for consent).
    pub fn is_empty(&self) -> bool {
        self.one_trust.is_empty() && self.ketch.is_empty() && self.generic.is_empty()
    }
}

/// One provider of the generic consent management (`consentManagement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericConsent {
    /// `provider`, as the events name it in `context.consentManagement.provider`.
    pub provider: Box<str>,
    /// `resolutionStrategy`: used for the `custom` provider (other providers take the event's);
    /// `"or"` is Or, any other string or none is And, as rudder-server reads it.
    pub resolution_strategy: ResolutionStrategy,
    /// `consents[].consent`, never empty.
    pub consents: Vec<Box<str>>,
}

/// How the configured consents combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolutionStrategy {
    /// The user must consent to all of them: filtered when any is denied (the default).
    #[default]
    And,
    /// The user must consent to at least one: filtered when all are denied.
    Or,
}

impl ResolutionStrategy {
    /// rudder-server's reading: `"or"` is Or, anything else And.
    pub fn from_name(name: &str) -> Self {
        if name == "or" {
            ResolutionStrategy::Or
        } else {
            ResolutionStrategy::And
        }
    }
}

/// `eventFilteringOption` with its list: which track events are sent, by name. RudderStack
/// applies these only in device mode (its JavaScript SDK); here they apply to track events,
/// with the SDK's rules: names compare case-sensitively after trimming white space on both
/// sides, and a track event without a string name is dropped by an allow list, kept by a deny
/// list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EventFilter {
    /// `disable` (or absent): every event goes.
    #[default]
    Disabled,
    /// `whitelistedEvents`: only the track events named here go (trimmed names).
    Allow(Vec<Box<str>>),
    /// `blacklistedEvents`: the track events named here are dropped (trimmed names).
    Deny(Vec<Box<str>>),
}

/// One destination's settings, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationSettings {
    pub account_id: String,
    pub passcode: Secret,
    pub region: Region,
    pub mapping: MappingOptions,
    /// Consent and event filters: which events are dropped on purpose.
    pub filters: Filters,
    /// `webhookToken`: enables the HTTP entrypoint for this destination (the first one of a
    /// `webhookToken` list).
    pub webhook_token: Option<Secret>,
    /// Tokens accepted besides `webhook_token` while it is being rotated: the rest of a
    /// `webhookToken` list, then `previousWebhookToken` (docs/contracts.md §4).
    pub previous_webhook_tokens: Vec<Secret>,
    /// The settings given as `{{ event.path || DEFAULT }}` templates, resolved per event
    /// (`transform/dynamic.rs`); the fields above then hold the defaults. `None`: no template.
    pub dynamic: Option<std::sync::Arc<DynamicConfig>>,
}

impl DestinationSettings {
    /// The settings with the requests going to `account` instead of their own.
    pub fn for_account(&self, account: &Account) -> DestinationSettings {
        DestinationSettings {
            account_id: account.account_id.clone(),
            passcode: account.passcode.clone(),
            region: account.region,
            ..self.clone()
        }
    }
}

/// The most webhook tokens one destination accepts at once (`webhookToken` list and
/// `previousWebhookToken` together): each one is compared with every request's token.
pub const MAX_WEBHOOK_TOKENS: usize = 4;

/// What a JSON error of a secret says, without its text: serde_json's messages can quote values
/// ("invalid type: string \"...\""), so only the category and position are kept.
pub fn json_error_without_text(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
    .to_lowercase()
}

impl DestinationSettings {
    /// Every webhook token accepted for this destination: the current one first.
    pub fn webhook_tokens(&self) -> impl Iterator<Item = &Secret> {
        self.webhook_token
            .iter()
            .chain(self.previous_webhook_tokens.iter())
    }
}

/// Why a secret string is not usable settings. Messages never include a value from the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("destination settings are not a JSON object of the expected shape ({detail})")]
    Malformed { detail: String },
    #[error("destination settings have no accountId")]
    MissingAccountId,
    #[error("destination settings have no passcode")]
    MissingPasscode,
    #[error(transparent)]
    UnknownRegion(#[from] crate::clevertap::endpoint::UnknownRegion),
}

impl SettingsError {
    /// The stable snake_case code of this error.
    pub const fn code(&self) -> &'static str {
        match self {
            SettingsError::Malformed { .. } => codes::SECRET_MALFORMED,
            SettingsError::MissingAccountId => codes::SECRET_MISSING_ACCOUNT_ID,
            SettingsError::MissingPasscode => codes::SECRET_MISSING_PASSCODE,
            SettingsError::UnknownRegion(_) => codes::UNKNOWN_REGION,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSettings {
    account_id: Option<String>,
    passcode: Option<String>,
    region: Option<String>,
    track_anonymous: Option<Value>,
    enable_object_id_mapping: Option<Value>,
    event_timestamp_as_ts: Option<Value>,
    webhook_token: Option<OneOrMany>,
    previous_webhook_token: Option<String>,
    one_trust_cookie_categories: Option<Value>,
    ketch_consent_purposes: Option<Value>,
    consent_management: Option<Value>,
    event_filtering_option: Option<Value>,
    whitelisted_events: Option<Value>,
    blacklisted_events: Option<Value>,
}

fn malformed(detail: String) -> SettingsError {
    SettingsError::Malformed { detail }
}

/// The source type whose list is used when a consent setting is given per source type.
pub const CONSENT_SOURCE_TYPE: &str = "cloud";

/// The list a consent setting holds: the flat list rudder-server reads, or, in the
/// per-source-type object RudderStack's dashboard exports (`{"web": [...], "cloud": [...]}`),
/// the list of [`CONSENT_SOURCE_TYPE`]: events reach this function server to server, as from a
/// RudderStack cloud source. Absent or null: no list.
fn source_list<'v>(name: &str, value: Option<&'v Value>) -> Result<&'v [Value], SettingsError> {
    let list = match value {
        Some(Value::Object(by_source)) => by_source.get(CONSENT_SOURCE_TYPE),
        other => other,
    };
    match list {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(malformed(format!(
            "{name} must be a list, or an object of lists by source type"
        ))),
    }
}

/// The string `field` of each entry of `list` (absent, null and empty ones skipped).
fn entry_strings<'v>(
    name: &str,
    list: &'v [Value],
    field: &str,
) -> Result<Vec<&'v str>, SettingsError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let Value::Object(entry) = entry else {
            return Err(malformed(format!(
                "{name}[{i}] must be an object with \"{field}\""
            )));
        };
        match entry.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => {
                if !text.is_empty() {
                    out.push(text.as_str());
                }
            }
            Some(_) => {
                return Err(malformed(format!("{name}[{i}].{field} must be a string")));
            }
        }
    }
    Ok(out)
}

fn boxed(items: Vec<&str>) -> Vec<Box<str>> {
    items.into_iter().map(Box::from).collect()
}

fn consent_settings(raw: &RawSettings) -> Result<ConsentSettings, SettingsError> {
    let one_trust = source_list(
        "oneTrustCookieCategories",
        raw.one_trust_cookie_categories.as_ref(),
    )?;
    let ketch = source_list("ketchConsentPurposes", raw.ketch_consent_purposes.as_ref())?;
    let generic_list = source_list("consentManagement", raw.consent_management.as_ref())?;
    let mut generic: Vec<GenericConsent> = Vec::new();
    for (i, entry) in generic_list.iter().enumerate() {
        let name = format!("consentManagement[{i}]");
        let Value::Object(fields) = entry else {
            return Err(malformed(format!("{name} must be an object")));
        };
        let text = |field: &str| match fields.get(field) {
            None | Some(Value::Null) => Ok(""),
            Some(Value::String(t)) => Ok(t.as_str()),
            Some(_) => Err(malformed(format!("{name}.{field} must be a string"))),
        };
        let provider = text("provider")?;
        // rudder-server's `switch`: "or" is Or, any other string (or none) And.
        let resolution_strategy = ResolutionStrategy::from_name(text("resolutionStrategy")?);
        let consents = match fields.get("consents") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => {
                entry_strings(&format!("{name}.consents"), list, "consent")?
            }
            Some(_) => return Err(malformed(format!("{name}.consents must be a list"))),
        };
        // As rudder-server: a provider without name or consents is no rule; a provider given
        // twice keeps its last entry.
        if provider.is_empty() || consents.is_empty() {
            continue;
        }
        generic.retain(|g| &*g.provider != provider);
        generic.push(GenericConsent {
            provider: provider.into(),
            resolution_strategy,
            consents: boxed(consents),
        });
    }
    Ok(ConsentSettings {
        one_trust: boxed(entry_strings(
            "oneTrustCookieCategories",
            one_trust,
            "oneTrustCookieCategory",
        )?),
        ketch: boxed(entry_strings("ketchConsentPurposes", ketch, "purpose")?),
        generic,
    })
}

/// The names of an event list, trimmed as the SDK trims them.
fn event_names(name: &str, value: Option<&Value>) -> Result<Vec<Box<str>>, SettingsError> {
    let list = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(malformed(format!(
                "{name} must be a list of {{\"eventName\": ...}}"
            )));
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let Value::Object(entry) = entry else {
            return Err(malformed(format!(
                "{name}[{i}] must be an object with \"eventName\""
            )));
        };
        match entry.get("eventName") {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => out.push(Box::from(js_trim(text))),
            Some(_) => return Err(malformed(format!("{name}[{i}].eventName must be a string"))),
        }
    }
    Ok(out)
}

fn event_filter(raw: &RawSettings) -> Result<EventFilter, SettingsError> {
    let allow = event_names("whitelistedEvents", raw.whitelisted_events.as_ref())?;
    let deny = event_names("blacklistedEvents", raw.blacklisted_events.as_ref())?;
    match &raw.event_filtering_option {
        None | Some(Value::Null) => Ok(EventFilter::Disabled),
        Some(Value::String(option)) => match option.as_str() {
            "" | "disable" => Ok(EventFilter::Disabled),
            "whitelistedEvents" => Ok(EventFilter::Allow(allow)),
            "blacklistedEvents" => Ok(EventFilter::Deny(deny)),
            _ => Err(malformed(
                "eventFilteringOption must be disable, whitelistedEvents or blacklistedEvents"
                    .into(),
            )),
        },
        Some(_) => Err(malformed(
            "eventFilteringOption must be disable, whitelistedEvents or blacklistedEvents".into(),
        )),
    }
}

/// `webhookToken`: one string, or a list of them (the current one first).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The accepted tokens, current first, blanks dropped, at most [`MAX_WEBHOOK_TOKENS`].
fn webhook_tokens(
    current: Option<OneOrMany>,
    previous: Option<String>,
) -> Result<Vec<Secret>, SettingsError> {
    let mut tokens: Vec<String> = match current {
        None => Vec::new(),
        Some(OneOrMany::One(t)) => vec![t],
        Some(OneOrMany::Many(ts)) => ts,
    };
    tokens.extend(previous);
    tokens.retain(|t| !t.is_empty());
    if tokens.len() > MAX_WEBHOOK_TOKENS {
        return Err(SettingsError::Malformed {
            detail: format!(
                "webhookToken and previousWebhookToken hold more than {MAX_WEBHOOK_TOKENS} tokens"
            ),
        });
    }
    Ok(tokens.into_iter().map(Secret::new).collect())
}

/// JavaScript truthiness of a setting's JSON value (absent: off).
fn truthy_setting(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => true,
    }
}

/// A text setting: its value, or a template's default (the template noted in `dynamic`).
fn text_setting(
    setting: Setting,
    value: Option<String>,
    dynamic: &mut DynamicConfig,
) -> Option<String> {
    let value = value?;
    match crate::settings_template::parse(&value) {
        Some((template, default)) => {
            dynamic.add(setting, template);
            Some(default)
        }
        None => Some(value),
    }
}

/// A switch: truthy in JavaScript, or a template whose default text decides (`"false"` is on,
/// an empty default off).
fn switch_setting(setting: Setting, value: Option<&Value>, dynamic: &mut DynamicConfig) -> bool {
    if let Some(Value::String(text)) = value
        && let Some((template, default)) = crate::settings_template::parse(text)
    {
        dynamic.add(setting, template);
        return !default.is_empty();
    }
    truthy_setting(value)
}

impl DestinationSettings {
    /// Parses a secret string. Unknown fields are ignored, so a secret may carry other
    /// RudderStack settings.
    pub fn from_json(text: &str) -> Result<Self, SettingsError> {
        let mut raw: RawSettings =
            serde_json::from_str(text).map_err(|e| SettingsError::Malformed {
                detail: json_error_without_text(&e),
            })?;
        let mut dynamic = DynamicConfig::default();
        let account_id = text_setting(Setting::AccountId, raw.account_id.take(), &mut dynamic)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or(SettingsError::MissingAccountId)?;
        let passcode = text_setting(Setting::Passcode, raw.passcode.take(), &mut dynamic)
            .filter(|s| !s.trim().is_empty())
            .ok_or(SettingsError::MissingPasscode)?;
        let region = text_setting(Setting::Region, raw.region.take(), &mut dynamic);
        let region = Region::parse(region.as_deref().map(str::trim))?;
        let mapping = MappingOptions {
            track_anonymous: switch_setting(
                Setting::TrackAnonymous,
                raw.track_anonymous.as_ref(),
                &mut dynamic,
            ),
            enable_object_id_mapping: switch_setting(
                Setting::EnableObjectIdMapping,
                raw.enable_object_id_mapping.as_ref(),
                &mut dynamic,
            ),
            event_timestamp_as_ts: switch_setting(
                Setting::EventTimestampAsTs,
                raw.event_timestamp_as_ts.as_ref(),
                &mut dynamic,
            ),
        };
        let filters = Filters {
            consent: consent_settings(&raw)?,
            events: event_filter(&raw)?,
        };
        let mut tokens = webhook_tokens(raw.webhook_token, raw.previous_webhook_token)?.into_iter();
        Ok(DestinationSettings {
            account_id,
            passcode: Secret::new(passcode),
            region,
            mapping,
            filters,
            webhook_token: tokens.next(),
            previous_webhook_tokens: tokens.collect(),
            dynamic: (!dynamic.is_empty()).then(|| std::sync::Arc::new(dynamic)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"{"accountId":"W9R-486-4W5Z","passcode":"pc-secret-9","region":"in1",
        "trackAnonymous":true,"enableObjectIdMapping":"true","webhookToken":"tok-secret-7",
        "someOtherRudderSetting":[1,2]}"#;

    #[test]
    fn a_full_secret_parses_and_unknown_fields_are_ignored() {
        let s = DestinationSettings::from_json(FULL).unwrap();
        assert_eq!(s.account_id, "W9R-486-4W5Z");
        assert_eq!(s.passcode.expose(), "pc-secret-9");
        assert_eq!(s.region, Region::In1);
        assert!(s.mapping.track_anonymous);
        assert!(s.mapping.enable_object_id_mapping);
        assert_eq!(
            s.webhook_token.as_ref().map(Secret::expose),
            Some("tok-secret-7")
        );
    }

    #[test]
    fn absent_settings_take_rudderstack_defaults() {
        let s = DestinationSettings::from_json(r#"{"accountId":"A","passcode":"p"}"#).unwrap();
        assert_eq!(s.region, Region::Default);
        assert_eq!(s.mapping, MappingOptions::default());
        assert!(s.webhook_token.is_none());
    }

    #[test]
    fn debug_output_never_shows_the_passcode_or_token() {
        let s = DestinationSettings::from_json(FULL).unwrap();
        let shown = format!("{s:?} {} {}", s.passcode, s.webhook_token.clone().unwrap());
        assert!(!shown.contains("pc-secret-9"), "{shown}");
        assert!(!shown.contains("tok-secret-7"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn each_broken_secret_gets_its_own_code_and_no_value_in_the_message() {
        let cases = [
            ("not json pc-secret-9", "secret_malformed"),
            (r#"{"accountId":"A","passcode":123456}"#, "secret_malformed"),
            (r#"["pc-secret-9"]"#, "secret_malformed"),
            (r#"{"passcode":"pc-secret-9"}"#, "secret_missing_account_id"),
            (r#"{"accountId":"A"}"#, "secret_missing_passcode"),
            (
                r#"{"accountId":"A","passcode":" "}"#,
                "secret_missing_passcode",
            ),
            (
                r#"{"accountId":"A","passcode":"pc-secret-9","region":"evil.example"}"#,
                "unknown_region",
            ),
            (
                r#"{"accountId":"{{ event.a || }}","passcode":"pc-secret-9"}"#,
                "secret_missing_account_id",
            ),
            (
                r#"{"accountId":"A","passcode":"{{ event.a || \" \" }}"}"#,
                "secret_missing_passcode",
            ),
            (
                r#"{"accountId":"A","passcode":"pc-secret-9","region":"{{ event.r || evil }}"}"#,
                "unknown_region",
            ),
        ];
        for (text, code) in cases {
            let err = DestinationSettings::from_json(text).unwrap_err();
            assert_eq!(err.code(), code, "{text}");
            assert!(!err.to_string().contains("pc-secret-9"), "{err}");
            assert!(!err.to_string().contains("123456"), "{err}");
        }
    }

    #[test]
    fn switches_are_on_when_javascript_finds_them_truthy() {
        // Issue 23, rule 3: a string other than "true"/"false" was `secret_malformed` before,
        // and "false" was off.
        for (value, on) in [
            ("true", true),
            ("\"false\"", true),
            ("\"no\"", true),
            ("1", true),
            ("{}", true),
            ("false", false),
            ("\"\"", false),
            ("0", false),
            ("null", false),
        ] {
            let s = with(&format!(
                r#","trackAnonymous":{value},"enableObjectIdMapping":{value},"eventTimestampAsTs":{value}"#
            ))
            .unwrap();
            assert_eq!(s.mapping.track_anonymous, on, "{value}");
            assert_eq!(s.mapping.enable_object_id_mapping, on, "{value}");
            assert_eq!(s.mapping.event_timestamp_as_ts, on, "{value}");
        }
        assert!(!with("").unwrap().mapping.event_timestamp_as_ts);
    }

    #[test]
    fn templates_give_their_default_and_are_kept_for_each_event() {
        let s = with(
            r#","region":"{{ event.context.region || \"in1\" }}","trackAnonymous":"{{ event.x || }}","enableObjectIdMapping":"{{ event.y || false }}""#,
        )
        .unwrap();
        assert_eq!(s.region, Region::In1);
        assert!(!s.mapping.track_anonymous);
        // The default is text: "false" is a non-empty string, on.
        assert!(s.mapping.enable_object_id_mapping);
        assert!(s.dynamic.is_some());
        assert!(with("").unwrap().dynamic.is_none());
        // Braces that are no template are an ordinary value.
        let plain = DestinationSettings::from_json(r#"{"accountId":"{{ A }}","passcode":"p"}"#);
        assert_eq!(plain.unwrap().account_id, "{{ A }}");
    }

    fn with(extra: &str) -> Result<DestinationSettings, SettingsError> {
        DestinationSettings::from_json(&format!(r#"{{"accountId":"A","passcode":"p"{extra}}}"#))
    }

    fn names(items: &[&str]) -> Vec<Box<str>> {
        items.iter().map(|s| Box::from(*s)).collect()
    }

    #[test]
    fn a_secret_without_consent_or_event_filter_settings_filters_nothing() {
        let s = with("").unwrap();
        assert_eq!(s.filters, Filters::default());
        assert_eq!(s.filters, NO_FILTERS);
        assert!(s.filters.consent.is_empty());
        let s = with(r#","oneTrustCookieCategories":[{"oneTrustCookieCategory":""}],"ketchConsentPurposes":null,"consentManagement":[],"eventFilteringOption":"","whitelistedEvents":[{"eventName":""}]"#).unwrap();
        assert_eq!(s.filters, NO_FILTERS);
    }

    #[test]
    fn consent_settings_are_read_flat_or_per_source_type_taking_the_cloud_list() {
        let flat = with(
            r#","oneTrustCookieCategories":[{"oneTrustCookieCategory":"C1"},{"oneTrustCookieCategory":""},{}],
            "ketchConsentPurposes":[{"purpose":"P1"}],
            "consentManagement":[
                {"provider":"custom","resolutionStrategy":"or","consents":[{"consent":"X"},{"consent":""}]},
                {"provider":"oneTrust","consents":[{"consent":"Y"}]},
                {"provider":"custom","resolutionStrategy":"and","consents":[{"consent":"Z"}]},
                {"provider":"","consents":[{"consent":"Q"}]},
                {"provider":"ketch","consents":[]}]"#,
        )
        .unwrap()
        .filters
        .consent;
        assert_eq!(flat.one_trust, names(&["C1"]));
        assert_eq!(flat.ketch, names(&["P1"]));
        assert_eq!(
            flat.generic,
            vec![
                GenericConsent {
                    provider: "oneTrust".into(),
                    resolution_strategy: ResolutionStrategy::And,
                    consents: names(&["Y"]),
                },
                GenericConsent {
                    provider: "custom".into(),
                    resolution_strategy: ResolutionStrategy::And,
                    consents: names(&["Z"]),
                },
            ]
        );
        let by_source = with(
            r#","oneTrustCookieCategories":{"web":[{"oneTrustCookieCategory":"W"}],"cloud":[{"oneTrustCookieCategory":"C"}]},
            "ketchConsentPurposes":{"android":[{"purpose":"A"}]},
            "consentManagement":{"cloud":[{"provider":"custom","resolutionStrategy":"or","consents":[{"consent":"X"}]}],"ios":"ignored"}"#,
        )
        .unwrap()
        .filters
        .consent;
        assert_eq!(CONSENT_SOURCE_TYPE, "cloud");
        assert_eq!(by_source.one_trust, names(&["C"]));
        assert!(by_source.ketch.is_empty());
        assert_eq!(by_source.generic.len(), 1);
        assert_eq!(
            by_source.generic[0].resolution_strategy,
            ResolutionStrategy::Or
        );
    }

    #[test]
    fn event_filter_settings_keep_the_chosen_list_trimmed() {
        let lists = r#","whitelistedEvents":[{"eventName":" A "},{"eventName":"b"},{}],"blacklistedEvents":[{"eventName":"\tC"}]"#;
        let allow = with(&format!(
            r#"{lists},"eventFilteringOption":"whitelistedEvents""#
        ))
        .unwrap();
        assert_eq!(allow.filters.events, EventFilter::Allow(names(&["A", "b"])));
        let deny = with(&format!(
            r#"{lists},"eventFilteringOption":"blacklistedEvents""#
        ))
        .unwrap();
        assert_eq!(deny.filters.events, EventFilter::Deny(names(&["C"])));
        for option in [r#""disable""#, "null", r#""""#] {
            let s = with(&format!(r#"{lists},"eventFilteringOption":{option}"#)).unwrap();
            assert_eq!(s.filters.events, EventFilter::Disabled, "{option}");
        }
        assert_eq!(with(lists).unwrap().filters.events, EventFilter::Disabled);
    }

    #[test]
    fn broken_consent_or_event_filter_settings_are_refused_naming_the_setting() {
        let cases = [
            (
                r#","eventFilteringOption":"secret-allow""#,
                "eventFilteringOption",
            ),
            (r#","eventFilteringOption":true"#, "eventFilteringOption"),
            (r#","whitelistedEvents":"secret-a""#, "whitelistedEvents"),
            (
                r#","blacklistedEvents":["secret-a"]"#,
                "blacklistedEvents[0]",
            ),
            (
                r#","whitelistedEvents":[{"eventName":7}]"#,
                "whitelistedEvents[0].eventName",
            ),
            (
                r#","oneTrustCookieCategories":"secret-a""#,
                "oneTrustCookieCategories",
            ),
            (
                r#","oneTrustCookieCategories":{"cloud":"secret-a"}"#,
                "oneTrustCookieCategories",
            ),
            (
                r#","oneTrustCookieCategories":[{"oneTrustCookieCategory":1}]"#,
                "oneTrustCookieCategories[0].oneTrustCookieCategory",
            ),
            (
                r#","ketchConsentPurposes":[["secret-a"]]"#,
                "ketchConsentPurposes[0]",
            ),
            (r#","consentManagement":[7]"#, "consentManagement[0]"),
            (
                r#","consentManagement":[{"provider":"custom","resolutionStrategy":["secret-xor"]}]"#,
                "consentManagement[0].resolutionStrategy",
            ),
            (
                r#","consentManagement":[{"provider":["secret-a"]}]"#,
                "consentManagement[0].provider",
            ),
            (
                r#","consentManagement":[{"provider":"p","consents":{"consent":"secret-a"}}]"#,
                "consentManagement[0].consents",
            ),
            (
                r#","consentManagement":[{"provider":"p","consents":[{"consent":false}]}]"#,
                "consentManagement[0].consents[0].consent",
            ),
        ];
        for (extra, key) in cases {
            let err = with(extra).unwrap_err();
            assert_eq!(err.code(), "secret_malformed", "{extra}");
            let shown = err.to_string();
            assert!(shown.contains(key), "{extra}: {shown}");
            assert!(!shown.contains("secret-"), "{shown}");
        }
    }

    #[test]
    fn a_current_and_previous_webhook_token_or_a_list_of_them_are_all_accepted() {
        let tokens = |json: &str| -> Vec<String> {
            DestinationSettings::from_json(json)
                .unwrap()
                .webhook_tokens()
                .map(|t| t.expose().to_owned())
                .collect()
        };
        assert_eq!(
            tokens(
                r#"{"accountId":"A","passcode":"p","webhookToken":"new","previousWebhookToken":"old"}"#
            ),
            ["new", "old"]
        );
        assert_eq!(
            tokens(r#"{"accountId":"A","passcode":"p","webhookToken":["new","","old"]}"#),
            ["new", "old"]
        );
        assert_eq!(
            tokens(r#"{"accountId":"A","passcode":"p","previousWebhookToken":"old"}"#),
            ["old"]
        );
        assert!(tokens(r#"{"accountId":"A","passcode":"p","webhookToken":""}"#).is_empty());
        let too_many = r#"{"accountId":"A","passcode":"p","webhookToken":["t1","t2","t3","t4"],
            "previousWebhookToken":"t5"}"#;
        let err = DestinationSettings::from_json(too_many).unwrap_err();
        assert_eq!(err.code(), "secret_malformed");
        assert!(!err.to_string().contains("t5"), "{err}");
        let err = DestinationSettings::from_json(
            r#"{"accountId":"A","passcode":"p","webhookToken":[7]}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), "secret_malformed");
        let s = DestinationSettings::from_json(
            r#"{"accountId":"A","passcode":"p","webhookToken":"tok-new-1","previousWebhookToken":"tok-old-2"}"#,
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("tok-new-1") && !shown.contains("tok-old-2"),
            "{shown}"
        );
    }

    #[test]
    fn destination_ids_follow_the_documented_pattern() {
        for ok in ["dest-1", "A.b_C-9", &"x".repeat(128)] {
            assert!(DestinationId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "a b", "ü", &"x".repeat(129), "../x"] {
            assert!(DestinationId::parse(bad).is_err(), "{bad}");
        }
    }
}
