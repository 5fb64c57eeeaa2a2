//! Issue 23's rules through the real binary: events RudderStack filters before its CleverTap
//! destination (an `integrations` object that turns CleverTap off, any type outside the five)
//! are `filtered` in `transform`, in `invoke --dry-run` over SQS and HTTP, and never
//! dead-lettered; and dynamic config sends two events of one destination to two accounts, each
//! request with its own `X-CleverTap-Account-Id`, the field the account came from gone from
//! `evtData`.

use crate::conformance::run_transform;
use crate::support::binary;
use crate::support::lambda_events::{
    batch_item_failures, function_url_request, sqs_batch, sqs_message,
};
use serde_json::{Value, json};
use std::process::Command;

/// The events RudderStack drops before CleverTap, with the code each is filtered with.
const FILTERED: [(&str, &str); 4] = [
    (
        r#"{"type":"track","userId":"u-1","messageId":"f-1","event":"Opened","integrations":{"CleverTap":false}}"#,
        "integration_disabled",
    ),
    (
        r#"{"type":"track","userId":"u-1","messageId":"f-2","event":"Opened","integrations":{"All":false,"Amplitude":true}}"#,
        "integration_disabled",
    ),
    (
        r#"{"type":"Group ","userId":"u-1","messageId":"f-3","groupId":"g"}"#,
        "filtered_message_type",
    ),
    (
        r#"{"type":"unknown","userId":"u-1","messageId":"f-4"}"#,
        "filtered_message_type",
    ),
];

const TOKEN: &str = "parity-webhook-token";
const PASSCODE: &str = "parity-passcode-secret";

fn destinations(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("destinations.json");
    let settings = json!({
        "dyn": {
            "accountId": "{{ event.properties.ctAccount || W9R-000-DFLT }}",
            "passcode": PASSCODE, "region": "in1", "trackAnonymous": true,
            "webhookToken": TOKEN
        }
    });
    std::fs::write(&path, settings.to_string()).unwrap();
    path
}

/// Runs `invoke --dry-run` on `event` (logs at debug); gives the answer and stderr.
fn dry_run(event: &Value) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let destinations = destinations(dir.path());
    let event_file = dir.path().join("event.json");
    std::fs::write(&event_file, event.to_string()).unwrap();
    let out = Command::new(binary())
        .env_clear()
        .env("RUST_LOG", "debug")
        .args(["invoke", "--dry-run", "--destinations"])
        .arg(&destinations)
        .arg(&event_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let answer = serde_json::from_slice(&out.stdout).unwrap();
    (answer, stderr)
}

/// The CleverTap requests a dry run printed, in order.
fn requests(stderr: &str) -> Vec<Value> {
    const MARK: &str = "dry-run: would send this CleverTap request:\n";
    stderr
        .split(MARK)
        .skip(1)
        .map(|rest| {
            serde_json::Deserializer::from_str(rest)
                .into_iter::<Value>()
                .next()
                .unwrap()
                .unwrap()
        })
        .collect()
}

#[test]
fn transform_shows_the_events_rudderstack_drops_as_filtered_with_their_code() {
    let destination = json!({"accountId": "W9R-1", "passcode": PASSCODE});
    let texts: Vec<&str> = FILTERED.iter().map(|(e, _)| *e).collect();
    let (out, status) = run_transform(&destination, &format!("[{}]", texts.join(",")));
    assert_eq!(status, 0, "{out}");
    assert_eq!(out["requests"], json!([]));
    for (i, (_, code)) in FILTERED.iter().enumerate() {
        assert_eq!(out["results"][i]["status"], "filtered", "{i}");
        assert_eq!(out["results"][i]["code"], *code, "{i}");
    }
}

#[test]
fn invoke_filters_them_over_sqs_and_dead_letters_none() {
    let records = FILTERED
        .iter()
        .enumerate()
        .map(|(i, (event, _))| sqs_message(&format!("m-{i}"), event, "dyn"))
        .collect();
    let (answer, stderr) = dry_run(&sqs_batch(records));
    assert!(batch_item_failures(&answer).is_empty(), "{answer}");
    assert!(requests(&stderr).is_empty(), "{stderr}");
    assert!(!stderr.contains("would dead-letter"), "{stderr}");
    // Each message is logged filtered with its event's code.
    for (i, (_, code)) in FILTERED.iter().enumerate() {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("message_id=\"m-{i}\"")) && l.contains("status="))
            .unwrap_or_else(|| panic!("no line for m-{i}:\n{stderr}"));
        assert!(line.contains("filtered") && line.contains(code), "{line}");
    }
}

#[test]
fn invoke_answers_them_filtered_over_http_with_their_codes() {
    let texts: Vec<&str> = FILTERED.iter().map(|(e, _)| *e).collect();
    let body = format!("[{}]", texts.join(","));
    let request = function_url_request("dyn", Some(&format!("Bearer {TOKEN}")), &body);
    let (answer, stderr) = dry_run(&request);
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    for (i, (_, code)) in FILTERED.iter().enumerate() {
        assert_eq!(body["results"][i]["status"], "filtered", "{body}");
        assert_eq!(body["results"][i]["code"], *code, "{body}");
    }
    assert!(!stderr.contains("would dead-letter"), "{stderr}");
    assert!(requests(&stderr).is_empty(), "{stderr}");
}

#[test]
fn dynamic_config_sends_each_event_to_its_own_account_without_the_field_it_came_from() {
    let event = |id: &str, account: Option<&str>| {
        let mut properties = json!({"plan": "pro"});
        if let Some(a) = account {
            properties["ctAccount"] = json!(a);
        }
        json!({"type": "track", "userId": "u-1", "messageId": id, "event": "Plan Viewed",
               "properties": properties})
        .to_string()
    };
    let records = vec![
        sqs_message("m-1", &event("e-1", Some("W9R-111-AAAA")), "dyn"),
        sqs_message("m-2", &event("e-2", Some("W9R-222-BBBB")), "dyn"),
        sqs_message("m-3", &event("e-3", None), "dyn"),
    ];
    let (answer, stderr) = dry_run(&sqs_batch(records));
    assert!(batch_item_failures(&answer).is_empty(), "{answer}");
    let mut sent = requests(&stderr);
    assert_eq!(sent.len(), 3, "{stderr}");
    sent.sort_by_key(|r| r["headers"]["X-CleverTap-Account-Id"].to_string());
    let accounts: Vec<&Value> = sent
        .iter()
        .map(|r| &r["headers"]["X-CleverTap-Account-Id"])
        .collect();
    assert_eq!(accounts, ["W9R-000-DFLT", "W9R-111-AAAA", "W9R-222-BBBB"]);
    for request in &sent {
        assert_eq!(request["url"], "https://in1.api.clevertap.com/1/upload");
        assert_eq!(request["headers"]["X-CleverTap-Passcode"], "<redacted>");
        let records = request["body"]["d"].as_array().unwrap();
        assert_eq!(records.len(), 1, "{request}");
        assert_eq!(records[0]["evtData"], json!({"plan": "pro"}), "{request}");
    }
    assert!(!stderr.contains(PASSCODE), "{stderr}");
}
