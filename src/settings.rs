//! Destination settings: the JSON a destination's secret holds, with the same names as
//! RudderStack's CleverTap settings (docs/contracts.md §4), and the types that keep the passcode and
//! webhook token out of logs, errors and Debug output.

use crate::clevertap::endpoint::Region;
use crate::codes;
use serde::Deserialize;
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
/// part of a secret id or a log line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestinationId(Box<str>);

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

/// The two settings the mapping reads (RudderStack defaults: both off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MappingOptions {
    /// `trackAnonymous`: accept track/page/screen events that have no userId.
    pub track_anonymous: bool,
    /// `enableObjectIdMapping`: send anonymousId as CleverTap's objectId.
    pub enable_object_id_mapping: bool,
}

/// One destination's settings, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationSettings {
    pub account_id: String,
    pub passcode: Secret,
    pub region: Region,
    pub mapping: MappingOptions,
    /// `webhookToken`: enables the HTTP entrypoint for this destination (the first one of a
    /// `webhookToken` list).
    pub webhook_token: Option<Secret>,
    /// Tokens accepted besides `webhook_token` while it is being rotated: the rest of a
    /// `webhookToken` list, then `previousWebhookToken` (docs/contracts.md §4).
    pub previous_webhook_tokens: Vec<Secret>,
}

/// The most webhook tokens one destination accepts at once (`webhookToken` list and
/// `previousWebhookToken` together): each one is compared with every request's token.
pub const MAX_WEBHOOK_TOKENS: usize = 4;

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

/// Accepts RudderStack's loose booleans: `true`/`false`, or the strings `"true"`/`"false"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum LooseBool {
    Bool(bool),
    Text(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSettings {
    account_id: Option<String>,
    passcode: Option<String>,
    region: Option<String>,
    track_anonymous: Option<LooseBool>,
    enable_object_id_mapping: Option<LooseBool>,
    webhook_token: Option<OneOrMany>,
    previous_webhook_token: Option<String>,
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

fn loose_bool(name: &'static str, value: Option<LooseBool>) -> Result<bool, SettingsError> {
    match value {
        None => Ok(false),
        Some(LooseBool::Bool(b)) => Ok(b),
        Some(LooseBool::Text(t)) if t.eq_ignore_ascii_case("true") => Ok(true),
        Some(LooseBool::Text(t)) if t.eq_ignore_ascii_case("false") || t.is_empty() => Ok(false),
        Some(LooseBool::Text(_)) => Err(SettingsError::Malformed {
            detail: format!("{name} must be true or false"),
        }),
    }
}

impl DestinationSettings {
    /// Parses a secret string. Unknown fields are ignored, so a secret may carry other
    /// RudderStack settings.
    pub fn from_json(text: &str) -> Result<Self, SettingsError> {
        let raw: RawSettings =
            serde_json::from_str(text).map_err(|e| SettingsError::Malformed {
                // serde_json's messages can quote values ("invalid type: string \"...\""): keep
                // only the category and position, never the text.
                detail: format!(
                    "{:?} error at line {} column {}",
                    e.classify(),
                    e.line(),
                    e.column()
                )
                .to_lowercase(),
            })?;
        let account_id = raw
            .account_id
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or(SettingsError::MissingAccountId)?;
        let passcode = raw
            .passcode
            .filter(|s| !s.trim().is_empty())
            .ok_or(SettingsError::MissingPasscode)?;
        let region = Region::parse(raw.region.as_deref().map(str::trim))?;
        let mut tokens = webhook_tokens(raw.webhook_token, raw.previous_webhook_token)?.into_iter();
        Ok(DestinationSettings {
            account_id,
            passcode: Secret::new(passcode),
            region,
            mapping: MappingOptions {
                track_anonymous: loose_bool("trackAnonymous", raw.track_anonymous)?,
                enable_object_id_mapping: loose_bool(
                    "enableObjectIdMapping",
                    raw.enable_object_id_mapping,
                )?,
            },
            webhook_token: tokens.next(),
            previous_webhook_tokens: tokens.collect(),
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
                r#"{"accountId":"A","passcode":"pc-secret-9","trackAnonymous":"pc-secret-9"}"#,
                "secret_malformed",
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
