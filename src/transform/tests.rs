//! One test per mapping rule (fixture in, JSON out), the bad-input list, and a property test
//! that no JSON value given as an event panics or yields invalid JSON.

use super::*;
use crate::settings::DestinationSettings;
use proptest::prelude::*;
use serde_json::{Value, json};

const DEFAULT: MappingOptions = MappingOptions {
    track_anonymous: true,
    enable_object_id_mapping: false,
    event_timestamp_as_ts: false,
};
const OBJECT_ID: MappingOptions = MappingOptions {
    track_anonymous: true,
    enable_object_id_mapping: true,
    event_timestamp_as_ts: false,
};

fn records_with<'s>(event: &str, opts: impl Into<TransformOptions<'s>>) -> Vec<Value> {
    match transform_event(event, opts).result {
        Mapped::Records(records) => records
            .iter()
            .map(|r| serde_json::from_str(r.as_str()).expect("a record is valid JSON"))
            .collect(),
        other => panic!("not mapped {other:?}: {event}"),
    }
}

fn records(event: &str) -> Vec<Value> {
    records_with(event, DEFAULT)
}

fn one(event: &str) -> Value {
    let mut r = records(event);
    assert_eq!(r.len(), 1, "{r:?}");
    r.remove(0)
}

fn code_with<'s>(event: &str, opts: impl Into<TransformOptions<'s>>) -> String {
    match transform_event(event, opts).result {
        Mapped::Rejected(reason) => {
            assert!(!reason.message.is_empty());
            reason.code.into_owned()
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// The code of a filtered event.
fn filtered_with<'s>(event: &str, opts: impl Into<TransformOptions<'s>>) -> String {
    match transform_event(event, opts).result {
        Mapped::Filtered(reason) => {
            assert!(!reason.message.is_empty());
            reason.code.into_owned()
        }
        other => panic!("expected the event filtered, got {other:?}"),
    }
}

fn code(event: &str) -> String {
    code_with(event, DEFAULT)
}

#[test]
fn reserved_traits_map_to_clevertap_profile_keys_and_the_rest_pass_through() {
    let r = one(
        r#"{"type":"identify","userId":"u1","traits":{"email":"a@x.io","name":"Ana","phone":"+1","birthday":"1990-01-01","avatar":"p.png","employed":"Y","education":"Grad","married":"N","customerType":"Gold","plan":"pro","seats":3}}"#,
    );
    assert_eq!(
        r,
        json!({"type":"profile","identity":"u1","profileData":{"Email":"a@x.io","Name":"Ana","Phone":"+1","DOB":"1990-01-01","Photo":"p.png","Employed":"Y","Education":"Grad","Married":"N","Customer Type":"Gold","plan":"pro","seats":3}})
    );
}

#[test]
fn name_is_built_from_first_and_last_name_only_when_there_is_no_name() {
    let r = one(
        r#"{"type":"identify","userId":"u1","traits":{"first_name":"Kenji","lastname":"Sato"}}"#,
    );
    assert_eq!(r["profileData"], json!({"Name":"Kenji Sato"}));
    let r = one(
        r#"{"type":"identify","userId":"u1","traits":{"name":"N","firstName":"F","lastName":"L"}}"#,
    );
    assert_eq!(r["profileData"], json!({"Name":"N"}));
    let r = one(r#"{"type":"identify","userId":"u1","traits":{"firstName":"OnlyFirst"}}"#);
    assert_eq!(r["profileData"], json!({}));
}

#[test]
fn gender_takes_the_usual_spellings_as_m_or_f_and_drops_anything_else() {
    for (given, want) in [
        ("f", "F"),
        ("FEMALE", "F"),
        ("Female", "F"),
        ("m", "M"),
        ("male", "M"),
        ("MALE", "M"),
    ] {
        let r = one(&format!(
            r#"{{"type":"identify","userId":"u1","traits":{{"gender":"{given}"}}}}"#
        ));
        assert_eq!(r["profileData"]["Gender"], want, "{given}");
    }
    for given in [r#""nonbinary""#, r#""FeMale""#, "1", "true"] {
        let r = one(&format!(
            r#"{{"type":"identify","userId":"u1","traits":{{"gender":{given}}}}}"#
        ));
        assert_eq!(r["profileData"], json!({}), "{given}");
    }
}

#[test]
fn context_traits_fill_in_mapped_keys_and_override_custom_traits_as_the_reference_does() {
    let r = one(
        r#"{"type":"identify","userId":"u1","traits":{"email":"t@x.io","color":"red"},"context":{"traits":{"email":"c@x.io","phone":"+2","color":"blue","size":"L"}}}"#,
    );
    assert_eq!(
        r["profileData"],
        json!({"Email":"t@x.io","Phone":"+2","color":"blue","size":"L"})
    );
}

#[test]
fn nested_traits_become_json_text_except_subscription_categories_and_nulls_are_dropped() {
    // Issue 23, rule 2: the JSON text's keys are in production order (this test wrote them in
    // input order before: `{"zip":"1","n":2.5}`).
    let r = one(
        r#"{"type":"identify","userId":"u1","traits":{"address":{"zip":"1","n":2.50},"tags":["a",1e21],"category-unsubscribe":{"email":["M"]},"category-resubscribe":{"sms":["N"]},"gone":null}}"#,
    );
    assert_eq!(
        r["profileData"],
        json!({"address":"{\"n\":2.5,\"zip\":\"1\"}","tags":"[\"a\",1e+21]","category-unsubscribe":{"email":["M"]},"category-resubscribe":{"sms":["N"]}})
    );
}

#[test]
fn override_fields_are_merged_last_and_a_key_never_appears_twice_in_profile_data() {
    let event = r#"{"type":"identify","userId":"u1","traits":{"customerType":"Gold","Customer Type":"Silver","overrideFields":{"Customer Type":"VIP","Email":null,"nested":{"a":1}},"email":"e@x.io"}}"#;
    let text = transform_event(event, DEFAULT)
        .result
        .into_records()
        .unwrap()[0]
        .as_str()
        .to_owned();
    assert_eq!(text.matches("\"Customer Type\"").count(), 1, "{text}");
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        r["profileData"],
        json!({"Customer Type":"VIP","nested":{"a":1}})
    );
}

#[test]
fn override_fields_from_context_traits_apply_when_traits_have_none() {
    let r =
        one(r#"{"type":"identify","userId":"u1","context":{"traits":{"overrideFields":{"x":1}}}}"#);
    assert_eq!(r["profileData"], json!({"x":1}));
}

#[test]
fn identify_ts_comes_from_traits_or_context_traits_as_epoch_seconds() {
    let r = one(r#"{"type":"identify","userId":"u1","traits":{"ts":"2024-03-05T10:20:30.999Z"}}"#);
    assert_eq!(r["ts"], 1_709_634_030);
    let r = one(r#"{"type":"identify","userId":"u1","context":{"traits":{"ts":1709634000}}}"#);
    assert_eq!(r["ts"], 1_709_634_000);
    let r = one(r#"{"type":"identify","userId":"u1","traits":{"ts":"not a date"}}"#);
    assert!(r.get("ts").is_none());
}

#[test]
fn identity_is_the_user_id_else_a_trait_id_else_the_anonymous_id() {
    assert_eq!(
        one(r#"{"type":"identify","userId":"u1","anonymousId":"a1"}"#)["identity"],
        "u1"
    );
    assert_eq!(
        one(r#"{"type":"identify","userId":"","anonymousId":"a1"}"#)["identity"],
        "a1"
    );
    assert_eq!(
        one(r#"{"type":"identify","anonymousId":"a1","context":{"traits":{"id":"t1"}}}"#)["identity"],
        "t1"
    );
    assert_eq!(
        one(r#"{"type":"identify","userId":12345}"#)["identity"],
        12345
    );
}

#[test]
fn with_object_id_mapping_the_anonymous_id_is_the_object_id_and_the_user_id_goes_inside_profile_data()
 {
    let r = records_with(
        r#"{"type":"identify","userId":"u1","anonymousId":"a1"}"#,
        OBJECT_ID,
    );
    assert_eq!(
        r,
        vec![json!({"type":"profile","profileData":{"identity":"u1"},"objectId":"a1"})]
    );
    let r = records_with(r#"{"type":"identify","userId":"u1"}"#, OBJECT_ID);
    assert_eq!(
        r,
        vec![json!({"type":"profile","profileData":{},"identity":"u1"})]
    );
    let r = records_with(r#"{"type":"identify","anonymousId":"a1"}"#, OBJECT_ID);
    assert_eq!(
        r,
        vec![json!({"type":"profile","profileData":{},"objectId":"a1"})]
    );
}

fn token_event(os: &str, integrations: &str) -> String {
    format!(
        r#"{{"type":"identify","userId":"u1","anonymousId":"a1","context":{{"os":{{"name":"{os}"}},"device":{{"token":"tok"}}}},"integrations":{integrations}}}"#
    )
}

#[test]
fn an_android_or_apple_device_token_becomes_a_token_record_after_the_profile() {
    for (os, want) in [
        ("android", "fcm"),
        ("Android", "fcm"),
        ("iOS", "apns"),
        ("watchOS", "apns"),
        ("ipados", "apns"),
        ("tvOS", "apns"),
    ] {
        let r = records_with(&token_event(os, "{}"), OBJECT_ID);
        assert_eq!(r.len(), 2, "{os}");
        assert_eq!(
            r[1],
            json!({"type":"token","tokenData":{"id":"tok","type":want},"objectId":"a1"}),
            "{os}"
        );
    }
    assert_eq!(
        records_with(&token_event("windows", "{}"), OBJECT_ID).len(),
        1
    );
    assert_eq!(
        records_with(&token_event("android", "{}"), DEFAULT).len(),
        1
    );
}

#[test]
fn the_integrations_token_type_is_used_only_when_clevertap_allows_it() {
    let r = records_with(
        &token_event("android", r#"{"clevertap":{"deviceTokenType":"wns"}}"#),
        OBJECT_ID,
    );
    assert_eq!(r[1]["tokenData"]["type"], "wns");
    let r = records_with(
        &token_event("android", r#"{"CleverTap":{"deviceTokenType":"bogus"}}"#),
        OBJECT_ID,
    );
    assert_eq!(r[1]["tokenData"]["type"], "fcm");
    let r = records_with(
        &token_event(
            "ios",
            r#"{"clevertap":{"deviceTokenType":"chrome","chromeKeys":{"p256dh":"k","auth":"a"}}}"#,
        ),
        OBJECT_ID,
    );
    assert_eq!(
        r[1]["tokenData"],
        json!({"id":"tok","type":"chrome","keys":{"p256dh":"k","auth":"a"}})
    );
}

#[test]
fn track_gives_an_event_record_with_name_properties_and_ts() {
    let r = one(
        r#"{"type":"track","userId":"u1","event":"Level Up","properties":{"level":7,"ts":1709634030,"none":null,"big":9007199254740993,"neg":-12500.0}}"#,
    );
    assert_eq!(
        r,
        json!({"type":"event","evtName":"Level Up","evtData":{"level":7,"ts":1709634030,"none":null,"big":9007199254740992_u64,"neg":-12500},"ts":1709634030,"identity":"u1"})
    );
    let text = transform_event(
        r#"{"type":"track","userId":"u1","event":"x","properties":{"n":2000.0,"m":1e-7}}"#,
        DEFAULT,
    )
    .result
    .into_records()
    .unwrap()[0]
        .as_str()
        .to_owned();
    assert!(text.contains("\"n\":2000,\"m\":1e-7"), "{text}");
}

#[test]
fn without_track_anonymous_an_event_without_user_id_is_rejected() {
    let strict = MappingOptions::default();
    for kind in ["track", "page", "screen"] {
        let event = format!(r#"{{"type":"{kind}","anonymousId":"a1","event":"E"}}"#);
        assert_eq!(code_with(&event, strict), "anonymous_not_allowed", "{kind}");
    }
    let r = records_with(r#"{"type":"track","userId":"u1","event":"E"}"#, strict);
    assert_eq!(r[0]["identity"], "u1");
}

#[test]
fn track_with_object_id_mapping_prefers_the_anonymous_id() {
    let r = records_with(
        r#"{"type":"track","userId":"u1","anonymousId":"a1","event":"E"}"#,
        OBJECT_ID,
    );
    assert_eq!(r[0]["objectId"], "a1");
    assert!(r[0].get("identity").is_none());
    let r = records_with(r#"{"type":"track","userId":"u1","event":"E"}"#, OBJECT_ID);
    assert_eq!(r[0]["identity"], "u1");
}

#[test]
fn order_completed_in_any_letter_case_becomes_charged_with_items() {
    let r = one(
        r#"{"type":"track","userId":"u1","event":"ORDER completed","properties":{"checkout_id":"c1","revenue":10,"products":[{"id":"p","price":1.50}],"ts":"2024-03-05T10:20:30Z","currency":"EUR","extra":{"a":1}}}"#,
    );
    assert_eq!(
        r,
        json!({"type":"event","evtName":"Charged","evtData":{"Charged ID":"c1","Amount":10,"Items":[{"id":"p","price":1.5}],"currency":"EUR","extra":"{\"a\":1}"},"ts":1709634030,"identity":"u1"})
    );
}

#[test]
fn order_completed_products_that_are_not_a_non_empty_array_of_objects_are_rejected() {
    for products in [
        r#"{"id":"p"}"#,
        r#"["p1","p2"]"#,
        "[]",
        r#"[{"a":1},2]"#,
        "[null]",
        "5",
        "true",
        r#""[1,2]""#,
        r#""not json""#,
        r#""[{}] x""#,
    ] {
        let event = format!(
            r#"{{"type":"track","userId":"u1","event":"Order Completed","properties":{{"products":{products}}}}}"#
        );
        assert_eq!(code(&event), "invalid_products", "{products}");
    }
}

#[test]
fn a_track_event_named_charged_keeps_items_nested() {
    let r = one(
        r#"{"type":"track","userId":"u1","event":"Charged","properties":{"Amount":5,"Items":[{"id":"p1","qty":2.0}],"note":{"a":1}}}"#,
    );
    assert_eq!(
        r["evtData"],
        json!({"Amount":5,"Items":[{"id":"p1","qty":2}],"note":"{\"a\":1}"})
    );
    // Only the exact name: any other spelling is a plain event, Items become JSON text.
    let r = one(r#"{"type":"track","userId":"u1","event":"charged","properties":{"Items":[1]}}"#);
    assert_eq!(r["evtData"]["Items"], "[1]");
    // Empty, or holding something that is not an object: rejected, like Order Completed.
    for items in ["[]", "[1]", r#"[{"a":1},"b"]"#, r#"{"a":1}"#, "7"] {
        let event = format!(
            r#"{{"type":"track","userId":"u1","event":"Charged","properties":{{"Items":{items}}}}}"#
        );
        assert_eq!(code(&event), "invalid_products", "{items}");
    }
    // Falsy Items are not looked at, as in the reference.
    let r = one(r#"{"type":"track","userId":"u1","event":"Charged","properties":{"Items":0}}"#);
    assert_eq!(r["evtData"], json!({"Items":0}));
}

#[test]
fn products_given_as_json_text_are_sent_as_the_array_they_hold() {
    let r = one(
        r#"{"type":"track","userId":"u1","event":"Order Completed","properties":{"checkout_id":"c","products":" [ {\"id\":\"p1\",\"price\":9.50} ] "}}"#,
    );
    assert_eq!(
        r["evtData"],
        json!({"Charged ID":"c","Items":[{"id":"p1","price":9.5}]})
    );
    let text = transform_event(
        r#"{"type":"track","userId":"u1","event":"Charged","properties":{"Items":"[{\"n\":1e21}]"}}"#,
        DEFAULT,
    )
    .result
    .into_records()
    .unwrap()[0]
        .as_str()
        .to_owned();
    assert!(text.contains(r#""Items":[{"n":1e+21}]"#), "{text}");
}

#[test]
fn subscription_categories_stay_nested_in_the_event_data_of_track_page_screen_and_charged() {
    let props = r#""properties":{"category-unsubscribe":{"email":["Marketing"]},"category-resubscribe":["sms"],"other":{"a":1}}"#;
    let want = json!({"category-unsubscribe":{"email":["Marketing"]},"category-resubscribe":["sms"],"other":"{\"a\":1}"});
    for head in [
        r#""type":"track","event":"Prefs""#,
        r#""type":"page","name":"P""#,
        r#""type":"screen","name":"S""#,
        r#""type":"track","event":"Charged""#,
    ] {
        let r = one(&format!(r#"{{{head},"userId":"u1",{props}}}"#));
        assert_eq!(r["evtData"], want, "{head}");
    }
    let r = one(&format!(
        r#"{{"type":"track","event":"Order Completed","userId":"u1",{props}}}"#
    ));
    assert_eq!(r["evtData"], want);
}

#[test]
fn reserved_javascript_names_are_never_custom_fields_and_proto_never_reaches_evt_data() {
    let reserved =
        r#""constructor":"c","prototype":"p","__proto__":{"x":1},"\u005f_proto__":null,"kept":1"#;
    let r = one(&format!(
        r#"{{"type":"identify","userId":"u1","traits":{{{reserved}}},"context":{{"traits":{{"constructor":2}}}}}}"#
    ));
    assert_eq!(r["profileData"], json!({"kept":1}));
    let r = one(&format!(
        r#"{{"type":"track","userId":"u1","event":"Order Completed","properties":{{{reserved}}}}}"#
    ));
    assert_eq!(r["evtData"], json!({"kept":1}));
    // A plain event: the reference assigns every member, so only __proto__ is lost.
    for event in ["E", "Charged"] {
        let r = one(&format!(
            r#"{{"type":"track","userId":"u1","event":"{event}","properties":{{{reserved}}}}}"#
        ));
        assert_eq!(
            r["evtData"],
            json!({"constructor":"c","prototype":"p","kept":1}),
            "{event}"
        );
    }
    let r = one(
        r#"{"type":"identify","userId":"u1","traits":{"overrideFields":{"__proto__":{"x":1},"constructor":"k"}}}"#,
    );
    assert_eq!(r["profileData"], json!({"constructor":"k"}));
}

#[test]
fn chrome_keys_go_with_any_token_type_and_the_first_truthy_integration_spelling_wins() {
    let token = |integrations: &str| {
        let mut r = records_with(&token_event("android", integrations), OBJECT_ID);
        assert_eq!(r.len(), 2, "{integrations}");
        r.remove(1)["tokenData"].clone()
    };
    assert_eq!(
        token(r#"{"clevertap":{"chromeKeys":{"p256dh":"k","auth":"a"}}}"#),
        json!({"id":"tok","type":"fcm","keys":{"p256dh":"k","auth":"a"}})
    );
    // Nulls, empty objects and empty arrays go, at any depth; nothing left, no keys.
    assert_eq!(
        token(
            r#"{"clevertap":{"chromeKeys":{"p256dh":"k","auth":null,"e":{},"l":[null,{},[]],"n":{"m":{"z":null}},"s":"","f":false,"z":0}}}"#
        ),
        json!({"id":"tok","type":"fcm","keys":{"p256dh":"k","s":"","f":false,"z":0}})
    );
    for empty in ["{}", "[]", "null", r#"{"a":null}"#, "[[],{}]"] {
        assert_eq!(
            token(&format!(r#"{{"clevertap":{{"chromeKeys":{empty}}}}}"#)),
            json!({"id":"tok","type":"fcm"}),
            "{empty}"
        );
    }
    assert_eq!(
        token(r#"{"CleverTap":{"chromeKeys":"k1"}}"#)["keys"],
        json!("k1")
    );
    // Order: clevertap, Clevertap, CleverTap, CLEVERTAP; the first truthy one, even `{}`.
    assert_eq!(
        token(r#"{"CLEVERTAP":{"deviceTokenType":"gcm"},"clevertap":{"deviceTokenType":"wns"}}"#)["type"],
        "wns"
    );
    assert_eq!(
        token(r#"{"CLEVERTAP":{"deviceTokenType":"gcm"},"CleverTap":{"deviceTokenType":"mpns"}}"#)
            ["type"],
        "mpns"
    );
    assert_eq!(
        token(r#"{"clevertap":null,"Clevertap":false,"CLEVERTAP":{"deviceTokenType":"gcm"}}"#)["type"],
        "gcm"
    );
    assert_eq!(
        token(r#"{"Clevertap":{},"CLEVERTAP":{"deviceTokenType":"gcm"}}"#)["type"],
        "fcm"
    );
    assert_eq!(
        token(r#"{"clevertap":"yes","CLEVERTAP":{"deviceTokenType":"gcm"}}"#)["type"],
        "fcm"
    );
}

#[test]
fn a_track_event_without_a_string_event_name_is_rejected() {
    assert_eq!(
        code(r#"{"type":"track","userId":"u1"}"#),
        "missing_event_name"
    );
    assert_eq!(
        code(r#"{"type":"track","userId":"u1","event":""}"#),
        "missing_event_name"
    );
    assert_eq!(
        code(r#"{"type":"track","userId":"u1","event":{"a":1}}"#),
        "invalid_event_name"
    );
}

#[test]
fn properties_that_are_not_an_object_are_rejected_and_traits_too() {
    assert_eq!(
        code(r#"{"type":"track","userId":"u1","event":"E","properties":"x"}"#),
        "invalid_properties"
    );
    assert_eq!(
        code(r#"{"type":"identify","userId":"u1","traits":[1]}"#),
        "invalid_traits"
    );
    assert_eq!(
        one(r#"{"type":"track","userId":"u1","event":"E","properties":null}"#)["evtData"],
        json!({})
    );
}

#[test]
fn page_and_screen_names_come_from_event_then_properties_event_then_name_then_properties_name() {
    let cases = [
        (
            r#""event":"A","name":"B","properties":{"name":"C"}"#,
            "Web Page Viewed: A",
        ),
        (
            r#""name":"B","properties":{"event":"P","name":"C"}"#,
            "Web Page Viewed: P",
        ),
        (
            r#""name":"B","properties":{"name":"C"}"#,
            "Web Page Viewed: B",
        ),
        (r#""properties":{"name":"C"}"#, "Web Page Viewed: C"),
        (r#""name":"""#, "Web Page Viewed"),
        (
            r#""name":"Tom & Jerry <3>""#,
            "Web Page Viewed: Tom &amp; Jerry &lt;3&gt;",
        ),
        (r#""name":7"#, "Web Page Viewed: 7"),
    ];
    for (fields, want) in cases {
        let r = one(&format!(r#"{{"type":"page","userId":"u1",{fields}}}"#));
        assert_eq!(r["evtName"], want, "{fields}");
        let r = one(&format!(r#"{{"type":"Screen","userId":"u1",{fields}}}"#));
        assert_eq!(
            r["evtName"],
            want.replace("Web Page Viewed", "Screen Viewed"),
            "{fields}"
        );
    }
}

#[test]
fn alias_ties_the_user_id_to_the_previous_id() {
    let r = one(r#"{"type":"alias","userId":"u2","previousId":"a1","traits":{"ts":"1970-01-02"}}"#);
    assert_eq!(
        r,
        json!({"type":"profile","profileData":{"identity":"u2"},"ts":86400,"identity":"a1"})
    );
    assert_eq!(
        code(r#"{"type":"alias","userId":"u2"}"#),
        "missing_previous_id"
    );
    assert_eq!(
        code(r#"{"type":"alias","anonymousId":"a","previousId":"p"}"#),
        "missing_user_id"
    );
}

#[test]
fn the_event_type_is_case_insensitive_and_a_missing_padded_or_non_string_type_is_rejected() {
    assert_eq!(
        one(r#"{"type":"TrAcK","userId":"u1","event":"E"}"#)["evtName"],
        "E"
    );
    assert_eq!(code(r#"{"userId":"u1"}"#), "missing_type");
    assert_eq!(code(r#"{"type":"","userId":"u1"}"#), "missing_type");
    assert_eq!(code(r#"{"type":"  ","userId":"u1"}"#), "missing_type");
    assert_eq!(code(r#"{"type":null,"userId":"u1"}"#), "missing_type");
    assert_eq!(code(r#"{"type":5,"userId":"u1"}"#), "unsupported_type");
    // rudder-server trims before its filter, the transformer does not: rejected, not filtered.
    assert_eq!(
        code(r#"{"type":" track ","userId":"u1","event":"E"}"#),
        "unsupported_type"
    );
}

#[test]
fn every_type_outside_the_five_is_filtered_as_rudderstack_filters_it() {
    // Issue 23, rule 6: "purchase" was rejected (`unsupported_type`) before.
    for kind in [
        "group",
        "GROUP",
        " Group ",
        "reset",
        "Record",
        "purchase",
        " Unknown ",
        "grou p",
    ] {
        // Filtered before anything else is looked at: no ids needed.
        let event = format!(r#"{{"type":"{kind}","messageId":"m-1","groupId":"g"}}"#);
        assert_eq!(
            filtered_with(&event, DEFAULT),
            "filtered_message_type",
            "{kind}"
        );
        assert_eq!(
            transform_event(&event, DEFAULT).message_id.as_deref(),
            Some("m-1")
        );
    }
}

#[test]
fn an_integrations_object_that_turns_clevertap_off_filters_the_event() {
    let with = |integrations: &str| {
        format!(r#"{{"type":"track","userId":"u1","event":"E","integrations":{integrations}}}"#)
    };
    for off in [
        r#"{"CleverTap":false}"#,
        r#"{"All":false}"#,
        r#"{"All":false,"Amplitude":true}"#,
        r#"{"All":false,"CleverTap":"yes"}"#,
        r#"{"All":"false","CleverTap":true}"#,
        r#"{"All":null}"#,
        r#"[]"#,
        r#""CleverTap""#,
        r#"null"#,
    ] {
        assert_eq!(
            filtered_with(&with(off), DEFAULT),
            "integration_disabled",
            "{off}"
        );
    }
    for on in [
        r#"{}"#,
        r#"{"All":true}"#,
        r#"{"All":false,"CleverTap":true}"#,
        r#"{"All":false,"CleverTap":{"deviceTokenType":"fcm"}}"#,
        r#"{"All":true,"CleverTap":"yes","clevertap":false}"#,
    ] {
        assert_eq!(one(&with(on))["evtName"], "E", "{on}");
    }
}

fn settings_with(extra: &str) -> DestinationSettings {
    let text = format!(r#"{{"accountId":"A","passcode":"p","trackAnonymous":true{extra}}}"#);
    DestinationSettings::from_json(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// rudder-server's consent rules (`processor/consent.go`), one row each: the destination's
/// consent settings, the event's `context.consentManagement` (none: absent), and whether the
/// event is filtered.
#[test]
fn consent_follows_rudder_server_rules_for_each_provider_and_strategy() {
    const ONE_TRUST: &str = r#","oneTrustCookieCategories":[{"oneTrustCookieCategory":"A"},{"oneTrustCookieCategory":"B"},{"oneTrustCookieCategory":""}]"#;
    const KETCH: &str = r#","ketchConsentPurposes":[{"purpose":"P1"},{"purpose":"P2"}]"#;
    const GCM_ONE_TRUST: &str = r#","consentManagement":[{"provider":"oneTrust","consents":[{"consent":"A"},{"consent":"B"}]}]"#;
    const GCM_CUSTOM_OR: &str = r#","consentManagement":[{"provider":"custom","resolutionStrategy":"or","consents":[{"consent":"A"},{"consent":"B"}]}]"#;
    const GCM_CUSTOM_AND: &str = r#","consentManagement":[{"provider":"custom","resolutionStrategy":"and","consents":[{"consent":"A"},{"consent":"B"}]}]"#;
    const GCM_IUBENDA: &str =
        r#","consentManagement":[{"provider":"iubenda","consents":[{"consent":"A"}]}]"#;
    let one_trust_and_ketch = format!("{ONE_TRUST}{KETCH}");
    let custom_and_one_trust = format!("{GCM_CUSTOM_OR}{ONE_TRUST}");
    let rows: &[(&str, Option<&str>, bool)] = &[
        // OneTrust: filtered when any configured category is denied.
        (ONE_TRUST, Some(r#"{"deniedConsentIds":["B"]}"#), true),
        (ONE_TRUST, Some(r#"{"deniedConsentIds":["C","D"]}"#), false),
        (
            ONE_TRUST,
            Some(r#"{"provider":"oneTrust","deniedConsentIds":["A"]}"#),
            true,
        ),
        (
            ONE_TRUST,
            Some(r#"{"provider":"ketch","deniedConsentIds":["A"]}"#),
            false,
        ),
        (ONE_TRUST, Some(r#"{"deniedConsentIds":["a"]}"#), false),
        // Empty and missing lists, and what is not a consent id, deny nothing.
        (ONE_TRUST, Some(r#"{"deniedConsentIds":[]}"#), false),
        (ONE_TRUST, Some(r#"{"provider":"oneTrust"}"#), false),
        (ONE_TRUST, None, false),
        (ONE_TRUST, Some(r#"{"deniedConsentIds":"A"}"#), false),
        (
            ONE_TRUST,
            Some(r#"{"deniedConsentIds":["",5,null]}"#),
            false,
        ),
        (ONE_TRUST, Some(r#"{"deniedConsentIds":["",5,"A"]}"#), true),
        (ONE_TRUST, Some(r#"{"deniedConsentIds":[""]}"#), false),
        ("", Some(r#"{"deniedConsentIds":["A","B","P1"]}"#), false),
        // Ketch: filtered only when every configured purpose is denied.
        (KETCH, Some(r#"{"deniedConsentIds":["P1"]}"#), false),
        (KETCH, Some(r#"{"deniedConsentIds":["P1","X","P2"]}"#), true),
        (
            KETCH,
            Some(r#"{"provider":"ketch","deniedConsentIds":["P1","P2"]}"#),
            true,
        ),
        (
            KETCH,
            Some(r#"{"provider":"oneTrust","deniedConsentIds":["P1","P2"]}"#),
            false,
        ),
        // Both legacy settings without a provider: OneTrust decides when it has categories.
        (
            &one_trust_and_ketch,
            Some(r#"{"deniedConsentIds":["P1","P2"]}"#),
            false,
        ),
        (
            &one_trust_and_ketch,
            Some(r#"{"deniedConsentIds":["A"]}"#),
            true,
        ),
        // Generic consent management, the event's provider and (not custom) its strategy.
        (
            GCM_ONE_TRUST,
            Some(r#"{"provider":"oneTrust","deniedConsentIds":["B"]}"#),
            true,
        ),
        (
            GCM_ONE_TRUST,
            Some(r#"{"provider":"oneTrust","resolutionStrategy":"and","deniedConsentIds":["B"]}"#),
            true,
        ),
        (
            GCM_ONE_TRUST,
            Some(r#"{"provider":"oneTrust","resolutionStrategy":"or","deniedConsentIds":["B"]}"#),
            false,
        ),
        (
            GCM_ONE_TRUST,
            Some(
                r#"{"provider":"oneTrust","resolutionStrategy":"or","deniedConsentIds":["B","A"]}"#,
            ),
            true,
        ),
        (
            GCM_ONE_TRUST,
            Some(r#"{"deniedConsentIds":["A","B"]}"#),
            false,
        ),
        (
            GCM_IUBENDA,
            Some(r#"{"provider":"iubenda","deniedConsentIds":["A"]}"#),
            true,
        ),
        (
            GCM_IUBENDA,
            Some(r#"{"provider":"Iubenda","deniedConsentIds":["A"]}"#),
            false,
        ),
        // custom: the destination's strategy, whatever the event says.
        (
            GCM_CUSTOM_OR,
            Some(r#"{"provider":"custom","resolutionStrategy":"and","deniedConsentIds":["A"]}"#),
            false,
        ),
        (
            GCM_CUSTOM_OR,
            Some(r#"{"provider":"custom","deniedConsentIds":["A","B"]}"#),
            true,
        ),
        (
            GCM_CUSTOM_AND,
            Some(r#"{"provider":"custom","resolutionStrategy":"or","deniedConsentIds":["A"]}"#),
            true,
        ),
        (
            GCM_CUSTOM_AND,
            Some(r#"{"provider":"custom","deniedConsentIds":["C"]}"#),
            false,
        ),
        // A provider without generic settings falls back to the legacy ones.
        (
            &custom_and_one_trust,
            Some(r#"{"provider":"oneTrust","deniedConsentIds":["B"]}"#),
            true,
        ),
        (
            &custom_and_one_trust,
            Some(r#"{"provider":"ketch","deniedConsentIds":["B"]}"#),
            false,
        ),
        (
            &custom_and_one_trust,
            Some(r#"{"deniedConsentIds":["A"]}"#),
            true,
        ),
        // Per source type, as the dashboard exports it: the cloud list is the one used.
        (
            r#","oneTrustCookieCategories":{"web":[{"oneTrustCookieCategory":"W"}],"cloud":[{"oneTrustCookieCategory":"A"}]}"#,
            Some(r#"{"deniedConsentIds":["A"]}"#),
            true,
        ),
        (
            r#","oneTrustCookieCategories":{"web":[{"oneTrustCookieCategory":"W"}],"cloud":[{"oneTrustCookieCategory":"A"}]}"#,
            Some(r#"{"deniedConsentIds":["W"]}"#),
            false,
        ),
        (
            r#","consentManagement":{"cloud":[{"provider":"custom","resolutionStrategy":"or","consents":[{"consent":"A"}]}],"web":[]}"#,
            Some(r#"{"provider":"custom","deniedConsentIds":["A"]}"#),
            true,
        ),
    ];
    for (settings, consent, want) in rows {
        let settings = settings_with(settings);
        let context = consent.map_or(String::new(), |c| {
            format!(r#","context":{{"consentManagement":{c}}}"#)
        });
        for event in [
            format!(r#"{{"type":"track","userId":"u1","event":"E"{context}}}"#),
            format!(r#"{{"type":"identify","userId":"u1"{context}}}"#),
        ] {
            let got = transform_event(&event, &settings).result;
            if *want {
                assert_eq!(
                    got.reason().map(|r| &*r.code),
                    Some("consent_denied"),
                    "{settings:?} {event}"
                );
                assert!(got.is_filtered(), "{event}");
            } else {
                assert!(got.records().is_some(), "{settings:?} {event}: {got:?}");
            }
        }
    }
}

#[test]
fn consent_is_checked_before_the_event_is_validated() {
    let settings = settings_with(r#","oneTrustCookieCategories":[{"oneTrustCookieCategory":"A"}]"#);
    // Not a valid track event (no ids, no name), but the user denied consent: filtered.
    let event = r#"{"type":"track","context":{"consentManagement":{"deniedConsentIds":["A"]}}}"#;
    assert_eq!(filtered_with(event, &settings), "consent_denied");
    // Without the settings, the same event is rejected.
    assert_eq!(code(event), "missing_ids");
}

#[test]
fn an_allow_list_sends_only_the_track_events_it_names() {
    let settings = settings_with(
        r#","eventFilteringOption":"whitelistedEvents","whitelistedEvents":[{"eventName":" Signed Up "},{"eventName":"Order Completed"}],"blacklistedEvents":[{"eventName":"Signed Up"}]"#,
    );
    for name in ["Signed Up", "  Signed Up\\t", "Order Completed"] {
        let event = format!(r#"{{"type":"track","userId":"u1","event":"{name}"}}"#);
        assert!(
            transform_event(&event, &settings)
                .result
                .records()
                .is_some(),
            "{name}"
        );
    }
    // Case counts; an event without a string name is not allowed either.
    for name in [r#""signed up""#, r#""Other""#, r#""""#, "7"] {
        let event = format!(r#"{{"type":"TRACK","userId":"u1","event":{name}}}"#);
        assert_eq!(
            filtered_with(&event, &settings),
            "event_not_allowed",
            "{name}"
        );
    }
    assert_eq!(
        filtered_with(r#"{"type":"track","userId":"u1"}"#, &settings),
        "event_not_allowed"
    );
}

#[test]
fn a_deny_list_drops_the_track_events_it_names_and_keeps_the_rest() {
    let settings = settings_with(
        r#","eventFilteringOption":"blacklistedEvents","blacklistedEvents":[{"eventName":"Spam "},{"eventName":""}],"whitelistedEvents":[{"eventName":"Other"}]"#,
    );
    for name in ["Spam", " Spam "] {
        let event = format!(r#"{{"type":"track","userId":"u1","event":"{name}"}}"#);
        assert_eq!(filtered_with(&event, &settings), "event_denied", "{name}");
    }
    let r = records_with(
        r#"{"type":"track","userId":"u1","event":"spam"}"#,
        &settings,
    );
    assert_eq!(r[0]["evtName"], "spam");
    let r = records_with(
        r#"{"type":"track","userId":"u1","event":"Other"}"#,
        &settings,
    );
    assert_eq!(r[0]["evtName"], "Other");
    // A track event without a name is not denied; it is rejected as without a name.
    assert_eq!(
        code_with(r#"{"type":"track","userId":"u1"}"#, &settings),
        "missing_event_name"
    );
}

#[test]
fn event_filters_leave_other_event_types_alone_and_disable_filters_nothing() {
    let allow_nothing = settings_with(
        r#","eventFilteringOption":"whitelistedEvents","whitelistedEvents":[{"eventName":""}]"#,
    );
    let others = [
        r#"{"type":"identify","userId":"u1","event":"X"}"#,
        r#"{"type":"page","userId":"u1","name":"X","event":"X"}"#,
        r#"{"type":"screen","userId":"u1","name":"X"}"#,
        r#"{"type":"alias","userId":"u1","previousId":"a1","event":"X"}"#,
    ];
    for event in others {
        assert!(
            transform_event(event, &allow_nothing)
                .result
                .records()
                .is_some(),
            "{event}"
        );
    }
    assert_eq!(
        filtered_with(
            r#"{"type":"track","userId":"u1","event":"X"}"#,
            &allow_nothing
        ),
        "event_not_allowed"
    );
    let disabled = settings_with(
        r#","eventFilteringOption":"disable","whitelistedEvents":[{"eventName":"Y"}],"blacklistedEvents":[{"eventName":"X"}]"#,
    );
    assert!(
        transform_event(r#"{"type":"track","userId":"u1","event":"X"}"#, &disabled)
            .result
            .records()
            .is_some()
    );
}

#[test]
fn an_event_with_neither_user_id_nor_anonymous_id_is_rejected_up_front() {
    assert_eq!(
        code(r#"{"type":"identify","traits":{"email":"e"}}"#),
        "missing_ids"
    );
    assert_eq!(code(r#"{"type":"track","event":"E"}"#), "missing_ids");
    assert_eq!(
        code_with(r#"{"type":"track","event":"E"}"#, OBJECT_ID),
        "missing_ids"
    );
    assert_eq!(
        code(r#"{"type":"track","event":"E","userId":{"id":1}}"#),
        "invalid_id"
    );
}

#[test]
fn the_message_id_is_reported_when_it_is_a_string() {
    let t = transform_event(r#"{"type":"nope","messageId":"m-\u00e9"}"#, DEFAULT);
    assert_eq!(t.message_id.as_deref(), Some("m-é"));
    assert!(
        transform_event(r#"{"messageId":5}"#, DEFAULT)
            .message_id
            .is_none()
    );
}

#[test]
fn text_that_is_not_json_or_not_an_object_is_rejected_with_its_own_code() {
    assert_eq!(code("{\"type\":"), "invalid_json");
    assert_eq!(code("not json"), "invalid_json");
    assert_eq!(code("{} trailing"), "invalid_json");
    assert_eq!(code("[{\"type\":\"track\"}]"), "not_an_object");
    assert_eq!(code("\"str\""), "not_an_object");
    assert_eq!(code("null"), "not_an_object");
}

#[test]
fn ten_thousand_levels_of_nesting_in_a_mapped_value_are_rejected_as_too_deep() {
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let event =
        format!(r#"{{"type":"track","userId":"u1","event":"E","properties":{{"deep":{deep}}}}}"#);
    assert_eq!(code(&event), "too_deep");
    let event = format!(
        r#"{{"type":"identify","userId":"u1","traits":{{"overrideFields":{{"x":{deep}}}}}}}"#
    );
    assert_eq!(code(&event), "too_deep");
}

#[test]
fn deep_nesting_in_a_part_the_mapping_ignores_does_not_reject_the_event() {
    let deep = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let event =
        format!(r#"{{"type":"track","userId":"u1","event":"E","context":{{"page":{deep}}}}}"#);
    assert_eq!(one(&event)["evtName"], "E");
}

#[test]
fn strings_with_every_kind_of_escape_come_out_as_the_same_text() {
    let r = one(
        r#"{"type":"track","userId":"u\"1\\","event":"E\u0000\b\f\n\r\t\/\u00e9\ud83d\ude00\u2028","properties":{"k\"ey":"v\u001f","n":{"s":"\u0007\\"},"lone":"\ud800x"}}"#,
    );
    assert_eq!(r["identity"], "u\"1\\");
    assert_eq!(r["evtName"], "E\u{0}\u{8}\u{c}\n\r\t/é😀\u{2028}");
    assert_eq!(r["evtData"]["k\"ey"], "v\u{1f}");
    assert_eq!(r["evtData"]["n"], "{\"s\":\"\\u0007\\\\\"}");
    assert_eq!(r["evtData"]["lone"], "\u{FFFD}x");
}

#[test]
fn huge_numbers_are_written_as_javascript_would_hold_them() {
    let r = one(
        r#"{"type":"track","userId":"u1","event":"E","properties":{"a":1e400,"b":123456789012345678901234567890,"c":{"d":-1e400}}}"#,
    );
    assert_eq!(r["evtData"]["a"], Value::Null);
    assert_eq!(r["evtData"]["b"].as_f64(), Some(1.2345678901234568e29));
    assert_eq!(r["evtData"]["c"], "{\"d\":null}");
}

#[test]
fn a_key_given_twice_takes_its_last_value_as_javascript_does() {
    let r =
        one(r#"{"type":"track","type":"identify","userId":"u1","traits":{"plan":"a","plan":"b"}}"#);
    assert_eq!(r["profileData"], json!({"plan":"b"}));
}

#[test]
fn the_upload_body_joins_records_without_reparsing() {
    let a = Record::from_json(r#"{"type":"event","evtName":"A"}"#);
    let b = Record::from_json(r#"{"type":"event","evtName":"B"}"#);
    assert_eq!(
        upload_body([&a, &b]),
        br#"{"d":[{"type":"event","evtName":"A"},{"type":"event","evtName":"B"}]}"#
    );
    assert_eq!(upload_body([]), br#"{"d":[]}"#);
}

/// Any JSON value, nested up to `depth`, with odd strings and numbers.
fn any_json(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".*".prop_map(Value::String),
        prop::sample::select(vec![
            "identify",
            "TRACK",
            "page",
            "screen",
            "alias",
            "Order Completed",
            "Charged",
            "group",
            "E",
            "custom",
            "oneTrust",
            "or",
            "[{\"a\":1}]",
            "",
            "u1"
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(depth, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "type",
                        "userId",
                        "anonymousId",
                        "previousId",
                        "event",
                        "name",
                        "properties",
                        "traits",
                        "context",
                        "os",
                        "device",
                        "token",
                        "integrations",
                        "clevertap",
                        "deviceTokenType",
                        "products",
                        "overrideFields",
                        "ts",
                        "email",
                        "gender",
                        "firstName",
                        "lastName",
                        "messageId",
                        "category-unsubscribe",
                        "consentManagement",
                        "deniedConsentIds",
                        "provider",
                        "resolutionStrategy",
                        "Items",
                        "chromeKeys",
                        "__proto__",
                        "constructor",
                        "x\"y",
                    ])
                    .prop_map(str::to_owned),
                    inner,
                ),
                0..8,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A destination with every kind of filter, on values the generated events use.
fn filtering_settings() -> DestinationSettings {
    DestinationSettings::from_json(
        r#"{"accountId":"A","passcode":"p",
        "oneTrustCookieCategories":[{"oneTrustCookieCategory":"u1"}],
        "ketchConsentPurposes":[{"purpose":"E"}],
        "consentManagement":[{"provider":"custom","resolutionStrategy":"or","consents":[{"consent":"u1"}]}],
        "eventFilteringOption":"blacklistedEvents","blacklistedEvents":[{"eventName":"E"}]}"#,
    )
    .expect("valid settings")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_json_value_given_as_an_event_gives_valid_records_or_a_rejection(
        v in any_json(6),
        object_id in any::<bool>(),
        anonymous in any::<bool>(),
    ) {
        let mapping = MappingOptions { track_anonymous: anonymous, enable_object_id_mapping: object_id, event_timestamp_as_ts: false };
        let settings = filtering_settings();
        let text = v.to_string();
        for opts in [TransformOptions::from(mapping), TransformOptions { mapping, filters: &settings.filters, dynamic: None }] {
            match transform_event(&text, opts).result {
                Mapped::Records(records) => {
                    prop_assert!(!records.is_empty());
                    for r in records {
                        let parsed: Result<Value, _> = serde_json::from_str(r.as_str());
                        prop_assert!(parsed.is_ok(), "invalid record {}", r.as_str());
                    }
                }
                Mapped::Filtered(reason) | Mapped::Rejected(reason) => {
                    prop_assert!(!reason.code.is_empty());
                    prop_assert!(!reason.message.is_empty());
                }
            }
        }
    }

    #[test]
    fn deeply_nested_values_in_any_field_never_panic(depth in 100usize..3000, field in 0usize..4) {
        let deep = format!("{}\"\\ud800\"{}", "[".repeat(depth), "]".repeat(depth));
        let event = match field {
            0 => format!(r#"{{"type":"track","userId":"u","event":"E","properties":{{"d":{deep}}}}}"#),
            1 => format!(r#"{{"type":"identify","userId":"u","traits":{{"d":{deep}}}}}"#),
            2 => format!(r#"{{"type":"identify","userId":"u","traits":{{"name":{deep},"firstName":"a"}}}}"#),
            _ => format!(r#"{{"type":"page","userId":"u","name":{deep}}}"#),
        };
        let t = transform_event(&event, DEFAULT);
        if let Mapped::Records(records) = t.result {
            for r in records {
                prop_assert!(serde_json::from_str::<Value>(r.as_str()).is_ok());
            }
        }
    }
}

// Issue 23: truthiness of ids, values kept as the reference keeps them, dynamic config and the
// event timestamp setting.

#[test]
fn a_boolean_trait_id_is_the_identity_and_an_object_one_is_rejected() {
    let r = one(r#"{"type":"identify","anonymousId":"a1","traits":{"id":true}}"#);
    assert_eq!(r["identity"], true);
    assert_eq!(
        code(r#"{"type":"identify","anonymousId":"a1","traits":{"userId":{"x":1}}}"#),
        "invalid_id"
    );
}

#[test]
fn with_object_id_mapping_falsy_ids_count_as_absent() {
    let r = records_with(
        r#"{"type":"track","userId":"u1","anonymousId":0,"event":"E"}"#,
        OBJECT_ID,
    );
    assert_eq!(r[0]["identity"], "u1");
    assert!(r[0].get("objectId").is_none());
    // A userId of 0 goes in neither profileData nor identity under the mapping.
    let r = records_with(
        r#"{"type":"identify","userId":0,"anonymousId":"a1"}"#,
        OBJECT_ID,
    );
    assert_eq!(r[0]["objectId"], "a1");
    assert_eq!(r[0]["profileData"], json!({}));
    // Without the mapping 0 is present, as getFieldValueFromMessage takes it.
    assert_eq!(
        one(r#"{"type":"track","userId":0,"anonymousId":"a1","event":"E"}"#)["identity"],
        0
    );
}

#[test]
fn a_numeric_device_token_and_an_array_event_name_are_taken_as_the_reference_takes_them() {
    let r = records_with(
        r#"{"type":"identify","userId":"u1","anonymousId":"a1","context":{"device":{"token":12345},"os":{"name":"Android"}}}"#,
        OBJECT_ID,
    );
    assert_eq!(r[1]["tokenData"]["id"], 12345);
    let r = one(
        r#"{"type":"track","userId":"u1","event":["order completed"],"properties":{"revenue":5}}"#,
    );
    assert_eq!(r["evtName"], "Charged");
    // An array name that is not Order Completed stays no name.
    assert_eq!(
        code(r#"{"type":"track","userId":"u1","event":["Other"]}"#),
        "invalid_event_name"
    );
}

#[test]
fn dotted_traits_build_json_text_in_identify_and_order_completed_but_not_in_track() {
    let r = one(
        r#"{"type":"identify","userId":"u1","traits":{"a.y":1,"a.b":2},"context":{"traits":{"a.c":3}}}"#,
    );
    assert_eq!(r["profileData"]["a"], "{\"b\":2,\"y\":1,\"c\":3}");
    let r = one(r#"{"type":"track","userId":"u1","event":"E","properties":{"a.b":1}}"#);
    assert_eq!(r["evtData"], json!({"a.b": 1}));
    assert_eq!(
        code(r#"{"type":"identify","userId":"u1","traits":{"a.__proto__.b":1}}"#),
        "invalid_traits"
    );
    assert_eq!(
        code(
            r#"{"type":"track","userId":"u1","event":"Order Completed","properties":{"x.prototype":1}}"#
        ),
        "invalid_properties"
    );
}

fn dynamic(settings: &str) -> DestinationSettings {
    DestinationSettings::from_json(settings).unwrap()
}

#[test]
fn dynamic_settings_take_the_event_value_remove_it_and_fall_back_to_the_default() {
    let s = dynamic(
        r#"{"accountId":"{{ event.context.acct || W9R-D }}","passcode":"{{ event.context.pc || pc-default-secret }}","region":"{{ event.context.region || in1 }}","trackAnonymous":"{{ event.properties.anon || }}"}"#,
    );
    let event = r#"{"type":"track","anonymousId":"a1","event":"E","context":{"acct":"W9R-E","pc":"pc-event-secret","region":"us1"},"properties":{"anon":1,"k":"v"}}"#;
    let t = transform_event(event, &s);
    let records = t.result.records().unwrap();
    let account = records[0].account().unwrap();
    assert_eq!(account.account_id, "W9R-E");
    assert_eq!(account.passcode.expose(), "pc-event-secret");
    assert_eq!(account.region, crate::clevertap::endpoint::Region::Us1);
    let record: Value = serde_json::from_str(records[0].as_str()).unwrap();
    // trackAnonymous came from properties.anon (1: on), which is gone from evtData.
    assert_eq!(record["evtData"], json!({"k": "v"}));
    assert_eq!(record["identity"], "a1");
    // No value in the event: the defaults, the settings' own account, the event as it came.
    let t = transform_event(
        r#"{"type":"track","anonymousId":"a1","event":"E","properties":{"k":"v"}}"#,
        &s,
    );
    assert_eq!(t.result.reason().unwrap().code, "anonymous_not_allowed");
    let t = transform_event(
        r#"{"type":"track","userId":"u1","event":"E","properties":{"anon":null}}"#,
        &s,
    );
    let records = t.result.records().unwrap();
    assert!(records[0].account().is_none());
    // A null value is no value: it stays in the event.
    let record: Value = serde_json::from_str(records[0].as_str()).unwrap();
    assert_eq!(record["evtData"], json!({"anon": null}));
}

#[test]
fn a_dynamic_value_that_cannot_be_the_setting_rejects_the_event_without_showing_it() {
    let s = dynamic(
        r#"{"accountId":"{{ event.context.acct || W9R-D }}","passcode":"{{ event.context.pc || p }}","region":"{{ event.context.region || in1 }}"}"#,
    );
    for context in [
        r#"{"acct":{"x":1}}"#,
        r#"{"acct":"  "}"#,
        r#"{"pc":["pc-leak-secret"]}"#,
        r#"{"region":"pc-leak-secret"}"#,
    ] {
        let event = format!(r#"{{"type":"track","userId":"u1","event":"E","context":{context}}}"#);
        let t = transform_event(&event, &s);
        let reason = t.result.reason().unwrap();
        assert_eq!(reason.code, "invalid_dynamic_config", "{context}");
        assert!(reason.message.contains("context."), "{}", reason.message);
        assert!(
            !reason.message.contains("pc-leak-secret"),
            "{}",
            reason.message
        );
    }
    // Filters look at the event as it came, before dynamic config.
    let event = r#"{"type":"group","context":{"acct":{"x":1}}}"#;
    assert!(transform_event(event, &s).result.is_filtered());
}

#[test]
fn two_settings_naming_one_field_the_first_by_name_takes_it() {
    let s = dynamic(
        r#"{"accountId":"{{ event.properties.v || W9R-D }}","trackAnonymous":"{{ event.properties.v || }}","passcode":"p"}"#,
    );
    let t = transform_event(
        r#"{"type":"track","anonymousId":"a1","event":"E","properties":{"v":"W9R-V"}}"#,
        &s,
    );
    // accountId took it; trackAnonymous got its empty default: off.
    assert_eq!(t.result.reason().unwrap().code, "anonymous_not_allowed");
}

#[test]
fn event_timestamp_as_ts_dates_a_record_without_a_ts_of_its_own_only_when_on() {
    let on = MappingOptions {
        event_timestamp_as_ts: true,
        ..DEFAULT
    };
    let track = r#"{"type":"track","userId":"u1","event":"E","timestamp":"2024-03-05T10:20:30.123Z","originalTimestamp":"2020-01-01T00:00:00Z"}"#;
    assert_eq!(records_with(track, on)[0]["ts"], 1_709_634_030);
    assert!(records_with(track, DEFAULT)[0].get("ts").is_none());
    let original =
        r#"{"type":"identify","userId":"u1","originalTimestamp":"2024-03-05T10:20:30Z"}"#;
    assert_eq!(records_with(original, on)[0]["ts"], 1_709_634_030);
    let alias =
        r#"{"type":"alias","userId":"u1","previousId":"a1","timestamp":"2024-03-05T10:20:30Z"}"#;
    assert_eq!(records_with(alias, on)[0]["ts"], 1_709_634_030);
    // A ts of the event's own wins.
    let own = r#"{"type":"track","userId":"u1","event":"E","timestamp":"2024-03-05T10:20:30Z","properties":{"ts":12}}"#;
    assert_eq!(records_with(own, on)[0]["ts"], 12);
}
