//! identify -> a profile record (and, with objectId mapping, a device token record), as the
//! reference's `getClevertapProfile` / `mapIdentifyPayload*` build them: reserved traits mapped
//! to CleverTap's profile keys, every other trait passed through, objects and arrays as JSON
//! text, `overrideFields` merged last, nulls left out.

use super::event::{Event, Raw, RawPairs};
use super::event_ts;
use super::ids::Ids;
use super::order::key_cmp;
use super::path::{self, is_path};
use super::record::{KEPT_NESTED, Members, PROTO, RecordBuf, RecordWriter, Val};
use super::track::RESERVED;
use super::{Rejection, codes, traits_object};
use crate::js::ts::ts;
use crate::js::value::{Kind, as_str, js_to_string, kind, present, truthy};
use crate::settings::MappingOptions;
use std::borrow::Cow;

/// Reserved traits: CleverTap profile key and trait name (reference `CleverTapIdentify.json`).
const MAPPED: [(&str, &str); 10] = [
    ("Email", "email"),
    ("Name", "name"),
    ("Phone", "phone"),
    ("Gender", "gender"),
    ("Employed", "employed"),
    ("DOB", "birthday"),
    ("Education", "education"),
    ("Married", "married"),
    ("Customer Type", "customerType"),
    ("Photo", "avatar"),
];

/// Traits that are not passed through (reference `CLEVERTAP_DEFAULT_EXCLUSION`).
const EXCLUDED: [&str; 21] = [
    "email",
    "firstName",
    "firstname",
    "first_name",
    "lastName",
    "lastname",
    "last_name",
    "name",
    "phone",
    "gender",
    "education",
    "employed",
    "birthday",
    "married",
    "customerType",
    "anonymousId",
    "avatar",
    "userId",
    "id",
    "ts",
    "overrideFields",
];

const FIRST_NAME: [&str; 3] = ["firstName", "firstname", "first_name"];
const LAST_NAME: [&str; 3] = ["lastName", "lastname", "last_name"];

/// Apple operating systems whose tokens are APNs tokens (reference `isAppleFamily`).
const APPLE_OS: [&str; 4] = ["ios", "watchos", "ipados", "tvos"];

/// Token types CleverTap accepts (docs/clevertap-api.md, "Record shapes").
const TOKEN_TYPES: [&str; 6] = ["fcm", "apns", "chrome", "gcm", "wns", "mpns"];

fn member<'a>(pairs: Option<&RawPairs<'a>>, key: &str) -> Option<Raw<'a>> {
    pairs.and_then(|p| p.get(key)).copied()
}

/// The first present value of `key` in traits, then context.traits.
fn from_traits<'a>(
    t: Option<&RawPairs<'a>>,
    c: Option<&RawPairs<'a>>,
    keys: &[&str],
) -> Option<Raw<'a>> {
    [t, c]
        .into_iter()
        .flat_map(|src| keys.iter().map(move |k| member(src, k)))
        .find_map(present)
}

/// `Gender`: the reference's fixed spellings; anything else is dropped.
fn gender(raw: Raw<'_>) -> Option<&'static str> {
    let s = as_str(raw)?;
    match s.as_ref() {
        "f" | "F" | "Female" | "female" | "FEMALE" => Some("F"),
        "m" | "M" | "Male" | "male" | "MALE" => Some("M"),
        _ => None,
    }
}

pub fn identify(
    ev: &Event<'_>,
    ids: &Ids<'_>,
    opts: MappingOptions,
    buf: &mut RecordBuf,
) -> Result<(), Rejection> {
    let traits = traits_object(&ev.traits, "traits")?;
    let ctx = traits_object(&ev.context.traits, "context.traits")?;
    let props = ev.properties.object();

    let mut profile: Members<'_> =
        Members::with_capacity(traits.map_or(0, RawPairs::len) + ctx.map_or(0, RawPairs::len) + 2);
    for (dest, src) in MAPPED {
        let mut value = from_traits(traits, ctx, &[src]);
        if dest == "Email" {
            value = value.or_else(|| present(member(props, "email")));
        }
        let Some(value) = value else { continue };
        if dest == "Gender" {
            if let Some(g) = gender(value) {
                profile.insert(Cow::Borrowed(dest), Val::Text(Cow::Borrowed(g)));
            }
        } else {
            profile.insert(Cow::Borrowed(dest), Val::Flat(value));
        }
    }
    let name_set = matches!(profile.get("Name"), Some(Val::Flat(r)) if truthy(Some(*r)));
    if !name_set {
        let first = from_traits(traits, ctx, &FIRST_NAME);
        let last = from_traits(traits, ctx, &LAST_NAME);
        if let (Some(f), Some(l)) = (first, last)
            && truthy(Some(f))
            && truthy(Some(l))
        {
            let full = format!("{} {}", js_to_string(f), js_to_string(l));
            profile.insert(Cow::Borrowed("Name"), Val::Text(Cow::Owned(full)));
        }
    }
    custom_traits(&mut profile, traits, ctx)?;
    let overrides = [
        member(traits, "overrideFields"),
        member(ctx, "overrideFields"),
    ]
    .into_iter()
    .find(|r| truthy(*r))
    .flatten();
    if let Some(overrides) = overrides.filter(|r| kind(*r) == Kind::Object)
        && let Some(members) = super::event::object_members(overrides)
    {
        // `Object.assign` turns `__proto__` into a prototype, never a member. Deliberate
        // difference: lodash's `pickBy` then copies that prototype's members into the
        // reference's profile; they are not sent here.
        for (key, value) in members.iter().filter(|(k, _)| k.as_ref() != PROTO) {
            profile.insert(key.clone(), Val::Nested(*value));
        }
    }

    // With objectId mapping only truthy ids count (`if (anonymousId)`, `if (userId)`).
    let object_id = if opts.enable_object_id_mapping {
        ids.object_id()
    } else {
        None
    };
    if let (Some(_), Some(user)) = (object_id, ids.truthy_user()) {
        profile.insert(Cow::Borrowed("identity"), Val::Flat(user));
    }

    let stamp = ts([member(traits, "ts"), member(ctx, "ts")]
        .into_iter()
        .find(|r| truthy(*r))
        .flatten())
    .or_else(|| event_ts(opts, ev));

    let mut w = RecordWriter::new(buf);
    w.text("type", "profile");
    w.members("profileData", &profile, true)
        .map_err(Rejection::from_write)?;
    w.ts(stamp);
    let identity = if opts.enable_object_id_mapping {
        ids.truthy_user()
    } else {
        ids.user.or(ids.anonymous)
    };
    match (object_id, identity) {
        (Some(anon), _) => w.id("objectId", anon),
        (None, Some(id)) => w.id("identity", id),
        (None, None) => {
            return Err(Rejection::new(
                codes::MISSING_IDS,
                "the event has neither userId nor anonymousId",
            ));
        }
    }
    .map_err(Rejection::from_write)?;
    w.finish();

    if let Some(anon) = object_id {
        device_token(ev, anon, buf)?;
    }
    Ok(())
}

/// A custom trait as the reference stores it: the subscription categories as objects, every
/// other value as it is (objects and arrays become JSON text when written).
fn custom_value<'a>(key: &str, raw: Raw<'a>) -> Option<Val<'a>> {
    Some(if KEPT_NESTED.contains(&key) {
        Val::Nested(raw)
    } else {
        Val::Flat(raw)
    })
}

/// The reference's `extractCustomFields(message, profile, ["traits", "context.traits"], ...)`:
/// every trait not excluded (by its whole key), then every context trait, each stored with the
/// path setter (`path.rs`), so a dotted key builds an object. Its second pass walks the keys of
/// both (the traits' first), storing those context.traits has; keys are taken in production
/// order (index keys first, then bytewise), the order rudder-server hands them over in.
fn custom_traits<'a>(
    profile: &mut Members<'a>,
    traits: Option<&RawPairs<'a>>,
    ctx: Option<&RawPairs<'a>>,
) -> Result<(), Rejection> {
    let keep = |k: &str| !EXCLUDED.contains(&k) && !RESERVED.contains(&k);
    let sources = || [traits, ctx].into_iter().flatten().flat_map(RawPairs::iter);
    if !sources().any(|(k, _)| keep(k) && is_path(k)) {
        for (key, value) in sources().filter(|(k, _)| keep(k)) {
            if let Some(val) = custom_value(key, *value) {
                profile.insert(key.clone(), val);
            }
        }
        return Ok(());
    }
    let kept = |src: Option<&RawPairs<'a>>| -> Vec<Cow<'a, str>> {
        src.into_iter()
            .flat_map(RawPairs::iter)
            .map(|(k, _)| k)
            .filter(|k| keep(k))
            .cloned()
            .collect()
    };
    let mut trait_keys = kept(traits);
    let mut ctx_keys = kept(ctx);
    trait_keys.sort_by(|a, b| key_cmp(a, b));
    ctx_keys.sort_by(|a, b| key_cmp(a, b));
    let store = |profile: &mut Members<'a>, src: &RawPairs<'a>, key: &Cow<'a, str>| {
        let Some(value) = src.get(key).copied() else {
            return Ok(());
        };
        if !is_path(key) {
            if let Some(val) = custom_value(key, value) {
                profile.insert(key.clone(), val);
            }
            return Ok(());
        }
        path::set(profile, key, value, custom_value)
            .map_err(|e| Rejection::new(codes::INVALID_TRAITS, e.describe("trait")))
    };
    if let Some(traits) = traits {
        for key in &trait_keys {
            store(profile, traits, key)?;
        }
    }
    if let Some(ctx) = ctx {
        for key in trait_keys.iter().chain(&ctx_keys) {
            store(profile, ctx, key)?;
        }
    }
    Ok(())
}

/// The device token record: objectId mapping on, an anonymousId, `context.device.token`, and an
/// Android or Apple OS. The integration settings are the first truthy one of
/// `integrations.clevertap`, `.Clevertap`, `.CleverTap`, `.CLEVERTAP`. The type is its
/// `deviceTokenType` when that is one of CleverTap's types, else fcm (Android) or apns (Apple);
/// its `chromeKeys`, when defined and not null, go in `keys` whatever the type, without nulls,
/// empty objects or empty arrays (the reference cleans the whole token record that way).
fn device_token(ev: &Event<'_>, anon: Raw<'_>, buf: &mut RecordBuf) -> Result<(), Rejection> {
    // Any truthy string or number is sent as it is (a numeric token stays a number).
    let Some(token) = ev
        .context
        .device_token
        .filter(|t| matches!(kind(*t), Kind::String | Kind::Number) && truthy(Some(*t)))
    else {
        return Ok(());
    };
    let Some(os) = ev
        .context
        .os_name
        .and_then(as_str)
        .map(|s| s.to_lowercase())
    else {
        return Ok(());
    };
    let default_type = if os == "android" {
        "fcm"
    } else if APPLE_OS.contains(&os.as_str()) {
        "apns"
    } else {
        return Ok(());
    };
    let integration = ev
        .integrations
        .clevertap()
        .and_then(super::event::object_members);
    let setting = |key: &str| integration.as_ref().and_then(|i| i.get(key)).copied();
    let override_type = setting("deviceTokenType").and_then(as_str);
    let token_type = match override_type.as_deref() {
        Some(t) if TOKEN_TYPES.contains(&t) => t,
        _ => default_type,
    };
    let mut w = RecordWriter::new(buf);
    w.text("type", "token");
    w.open("tokenData");
    w.id("id", token).map_err(Rejection::from_write)?;
    w.text("type", token_type);
    if let Some(keys) = setting("chromeKeys") {
        w.pruned("keys", keys).map_err(Rejection::from_write)?;
    }
    w.close();
    w.id("objectId", anon).map_err(Rejection::from_write)?;
    w.finish();
    Ok(())
}
