//! Every case and batch of tests/fixtures/conformance/cases.json, cases-2.json and cases-3.json
//! (where a name is in several, the latest file wins, as the fixtures README says), through the
//! library and through the built binary's `transform` command: the records CleverTap must
//! receive, compared as JSON values (key order ignored, numbers as doubles; JSON text inside
//! them exactly), which events are rejected or filtered, and, where a case records them
//! (`expect.headers`, dynamic config), the account each request goes to.

use crate::support;
use rudder_clevertap::clevertap::endpoint::UPLOAD_PATH;
use rudder_clevertap::settings::DestinationSettings;
use rudder_clevertap::transform::{Mapped, Record, transform_event};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::process::Command;

/// The cases, with events kept as their exact text (member order matters for nested values).
#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
    batches: Vec<Batch>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    destination: Value,
    event: Box<RawValue>,
    expect: Value,
}

#[derive(Deserialize)]
struct Batch {
    name: String,
    destination: Value,
    events: Vec<Box<RawValue>>,
    expect: Value,
}

fn load(file: &str) -> Cases {
    let path = support::conformance_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The three files, a later one's expectations replacing an earlier one's of the same name.
fn cases() -> Cases {
    let mut all = load("cases.json");
    for (file, least) in [("cases-2.json", 11), ("cases-3.json", 22)] {
        let later = load(file);
        assert!(
            later.cases.len() + later.batches.len() >= least,
            "{file}: {}",
            later.cases.len()
        );
        for case in later.cases {
            match all.cases.iter_mut().find(|c| c.name == case.name) {
                Some(slot) => *slot = case,
                None => all.cases.push(case),
            }
        }
        for batch in later.batches {
            match all.batches.iter_mut().find(|b| b.name == batch.name) {
                Some(slot) => *slot = batch,
                None => all.batches.push(batch),
            }
        }
    }
    all
}

/// The indices `expect[key]` lists (none when absent).
fn indices(expect: &Value, key: &str) -> Vec<u64> {
    expect
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_u64().unwrap()).collect())
        .unwrap_or_default()
}

#[test]
fn the_second_file_restates_group_as_filtered_and_adds_its_cases() {
    let all = cases();
    let group = all.cases.iter().find(|c| c.name == "reject/group").unwrap();
    assert_eq!(group.expect["status"], "filtered");
    assert!(all.cases.iter().any(|c| c.name == "track/ts-rfc2822"));
    let names: std::collections::HashSet<&str> = all.cases.iter().map(|c| &*c.name).collect();
    assert_eq!(names.len(), all.cases.len(), "a name appears twice");
    let mixed = all
        .batches
        .iter()
        .find(|b| b.name == "batch/mixed-default")
        .unwrap();
    assert_eq!(indices(&mixed.expect, "filtered"), [3]);
}

#[test]
fn the_third_file_restates_unknown_types_as_filtered_and_nested_keys_in_production_order() {
    let all = cases();
    let case = |name: &str| all.cases.iter().find(|c| c.name == name).unwrap();
    assert_eq!(case("reject/unknown-type").expect["status"], "filtered");
    // Superseded expectations of cases.json: JSON text in rudder-server's key order.
    assert_eq!(
        case("track/nested-properties").expect["records"][0]["evtData"]["filters"],
        "{\"color\":[\"red\",\"blue\"],\"size\":42}"
    );
    for name in [
        "track/order-completed-charged",
        "track/nested-number-formatting",
    ] {
        assert!(case(name).expect["records"].is_array(), "{name}");
    }
    let mixed = all
        .batches
        .iter()
        .find(|b| b.name == "batch/mixed-default")
        .unwrap();
    assert_eq!(
        mixed.expect["requests"][0]["records"][5]["evtData"]["shipping"],
        "{\"cost\":5,\"method\":\"express\"}"
    );
    assert!(
        all.cases
            .iter()
            .any(|c| c.name == "settings/dynamic-config-account-id")
    );
    assert!(
        all.batches
            .iter()
            .any(|b| b.name == "batch/dynamic-config-account-id-split")
    );
}

/// The account id a request must carry: the case's recorded header, else the destination's.
fn expected_account(destination: &Value, expect: &Value) -> Value {
    expect["headers"]["X-CleverTap-Account-Id"]
        .as_str()
        .map_or_else(|| destination["accountId"].clone(), Value::from)
}

/// JSON text without the whitespace between tokens (member order kept), for NDJSON lines.
pub fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

fn message_id(event: &RawValue) -> Value {
    let v: Value = serde_json::from_str(event.get()).unwrap();
    v["messageId"].clone()
}

/// JSON equality with object key order ignored and numbers compared as doubles.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn settings(destination: &Value) -> DestinationSettings {
    DestinationSettings::from_json(&destination.to_string()).unwrap()
}

fn upload_url(s: &DestinationSettings) -> String {
    format!("{}{}", s.region.base_url(), UPLOAD_PATH)
}

/// An event's input index and records.
type Transformed = (usize, Vec<Record>);

fn records_of(result: &Mapped<Vec<Record>>) -> &[Record] {
    result.records().map_or(&[], Vec::as_slice)
}

/// The account an event's records go to: the one dynamic config chose, else the settings'.
fn account_of(s: &DestinationSettings, records: &[Record]) -> String {
    records
        .first()
        .and_then(Record::account)
        .map_or_else(|| s.account_id.clone(), |a| a.account_id.clone())
}

#[test]
fn every_conformance_case_passes_through_the_library() {
    let all = cases();
    assert!(
        all.cases.len() >= 40,
        "expected the full case list, got {}",
        all.cases.len()
    );
    let mut failures = Vec::new();
    for case in &all.cases {
        let name = &case.name;
        let s = settings(&case.destination);
        let got = transform_event(case.event.get(), &s);
        let expect = &case.expect;
        assert_eq!(
            got.message_id.as_deref(),
            message_id(&case.event).as_str(),
            "{name}"
        );
        match (expect["status"].as_str().unwrap(), &got.result) {
            ("ok", Mapped::Records(records)) => {
                let records: Vec<Value> = records
                    .iter()
                    .map(|r| serde_json::from_str(r.as_str()).unwrap())
                    .collect();
                if !same(&Value::Array(records.clone()), &expect["records"]) {
                    failures.push(format!(
                        "{name}: got {records:?}, expected {}",
                        expect["records"]
                    ));
                }
                if expect["url"].as_str() != Some(upload_url(&s).as_str()) {
                    failures.push(format!("{name}: url {}", upload_url(&s)));
                }
                let account = Value::from(account_of(&s, records_of(&got.result)));
                if account != expected_account(&case.destination, expect) {
                    failures.push(format!("{name}: account {account}"));
                }
            }
            ("rejected", Mapped::Rejected(reason)) | ("filtered", Mapped::Filtered(reason)) => {
                assert!(
                    !reason.code.is_empty() && !reason.message.is_empty(),
                    "{name}"
                );
            }
            (status, result) => failures.push(format!("{name}: expected {status}, got {result:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs `transform` on `events` (JSON text) for `destination`; returns stdout as JSON and the
/// exit status.
pub fn run_transform(destination: &Value, events: &str) -> (Value, i32) {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest.json");
    let input = dir.path().join("events.json");
    std::fs::write(&dest, destination.to_string()).unwrap();
    std::fs::write(&input, events).unwrap();
    let out = Command::new(support::binary())
        .args(["transform", "--destination"])
        .arg(&dest)
        .arg(&input)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (value, out.status.code().unwrap())
}

#[test]
fn every_conformance_case_passes_through_the_transform_command() {
    let all = cases();
    for case in &all.cases {
        let name = &case.name;
        let (out, status) = run_transform(&case.destination, case.event.get());
        let expect = &case.expect;
        let results = out["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "{name}");
        assert_eq!(results[0]["index"], 0, "{name}");
        assert_eq!(results[0]["messageId"], message_id(&case.event), "{name}");
        let requests = out["requests"].as_array().unwrap();
        if expect["status"] == "ok" {
            assert_eq!(status, 0, "{name}");
            assert_eq!(results[0]["status"], "ok", "{name}");
            assert!(results[0].get("code").is_none(), "{name}");
            assert_eq!(requests.len(), 1, "{name}");
            let request = &requests[0];
            assert_eq!(request["url"], expect["url"], "{name}");
            assert_eq!(request["method"], "POST", "{name}");
            assert_eq!(
                request["headers"]["X-CleverTap-Passcode"], "<redacted>",
                "{name}"
            );
            assert_eq!(
                request["headers"]["X-CleverTap-Account-Id"],
                expected_account(&case.destination, expect),
                "{name}"
            );
            assert_eq!(
                request["headers"]["Content-Type"], "application/json",
                "{name}"
            );
            assert!(
                same(&request["body"]["d"], &expect["records"]),
                "{name}: {}",
                request["body"]
            );
            let n = expect["records"].as_array().unwrap().len();
            assert_eq!(request["events"], Value::from(vec![0; n]), "{name}");
        } else {
            let want = expect["status"].as_str().unwrap();
            assert!(want == "rejected" || want == "filtered", "{name}: {want}");
            // Filtered is no error: the command exits 0 when nothing is rejected.
            assert_eq!(status, if want == "rejected" { 1 } else { 0 }, "{name}");
            assert_eq!(results[0]["status"], want, "{name}");
            assert!(
                results[0]["code"].as_str().is_some_and(|c| !c.is_empty()),
                "{name}"
            );
            assert!(
                results[0]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{name}"
            );
            assert!(requests.is_empty(), "{name}");
        }
        let printed = serde_json::to_string(&out).unwrap();
        assert!(
            !printed.contains(case.destination["passcode"].as_str().unwrap()),
            "{name}"
        );
    }
}

fn check_batch(name: &str, batch: &Batch, requests: &[Value], results: &[Value]) {
    let expect = &batch.expect;
    let expected_requests = expect["requests"].as_array().unwrap();
    assert_eq!(requests.len(), expected_requests.len(), "{name}");
    for (got, want) in requests.iter().zip(expected_requests) {
        assert_eq!(got["url"], want["url"], "{name}");
        assert!(
            same(&got["body"]["d"], &want["records"]),
            "{name}: {}",
            got["body"]
        );
        assert_eq!(got["events"], want["events"], "{name}");
        if let Some(account) = want["headers"]["X-CleverTap-Account-Id"].as_str() {
            assert_eq!(got["headers"]["X-CleverTap-Account-Id"], account, "{name}");
        }
    }
    let with_status = |status: &str| -> Vec<u64> {
        results
            .iter()
            .filter(|r| r["status"] == status)
            .map(|r| r["index"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        with_status("rejected"),
        indices(expect, "rejected"),
        "{name}"
    );
    assert_eq!(
        with_status("filtered"),
        indices(expect, "filtered"),
        "{name}"
    );
    assert_eq!(results.len(), batch.events.len(), "{name}");
}

#[test]
fn every_conformance_batch_passes_through_the_library() {
    use rudder_clevertap::batch::chunk_by_size;
    use rudder_clevertap::clevertap::request::MAX_RECORDS_PER_UPLOAD;
    let all = cases();
    for batch in &all.batches {
        let name = &batch.name;
        let s = settings(&batch.destination);
        let mut results = Vec::new();
        let mut ok = Vec::new();
        for (i, event) in batch.events.iter().enumerate() {
            let t = transform_event(event.get(), &s);
            results.push(serde_json::json!({"index": i, "status": t.result.status()}));
            if let Mapped::Records(records) = t.result {
                ok.push((i, records));
            }
        }
        // One request series per account, accounts in order of first appearance.
        let mut accounts: Vec<(String, Vec<&Transformed>)> = Vec::new();
        for event in &ok {
            let account = account_of(&s, &event.1);
            match accounts.iter_mut().find(|(a, _)| *a == account) {
                Some((_, events)) => events.push(event),
                None => accounts.push((account, vec![event])),
            }
        }
        let mut requests = Vec::new();
        for (account, of_account) in &accounts {
            for chunk in chunk_by_size(
                of_account.iter().map(|(_, r)| r.len()),
                MAX_RECORDS_PER_UPLOAD,
            ) {
                let events = &of_account[chunk];
                let body: Value =
                    serde_json::from_slice(&rudder_clevertap::transform::upload_body(
                        events.iter().flat_map(|(_, r)| r.iter()),
                    ))
                    .unwrap();
                let indices: Vec<usize> = events
                    .iter()
                    .flat_map(|(i, r)| std::iter::repeat_n(*i, r.len()))
                    .collect();
                requests.push(serde_json::json!({
                    "url": upload_url(&s), "body": body, "events": indices,
                    "headers": {"X-CleverTap-Account-Id": account},
                }));
            }
        }
        check_batch(name, batch, &requests, &results);
    }
}

#[test]
fn every_conformance_batch_passes_through_the_transform_command() {
    let all = cases();
    for batch in &all.batches {
        let name = &batch.name;
        let texts: Vec<&str> = batch.events.iter().map(|e| e.get()).collect();
        for form in ["array", "batch", "ndjson"] {
            let text = match form {
                "array" => format!("[{}]", texts.join(",")),
                "batch" => format!("{{\"batch\": [\n{}\n]}}", texts.join(",\n")),
                _ => texts
                    .iter()
                    .map(|t| minify(t))
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            let (out, status) = run_transform(&batch.destination, &text);
            let rejected = !indices(&batch.expect, "rejected").is_empty();
            assert_eq!(status, if rejected { 1 } else { 0 }, "{name} {form}");
            for r in out["results"].as_array().unwrap() {
                if r["status"] != "ok" {
                    assert!(r["code"].as_str().is_some_and(|c| !c.is_empty()), "{r}");
                    assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{r}");
                }
            }
            check_batch(
                &format!("{name} ({form})"),
                batch,
                out["requests"].as_array().unwrap(),
                out["results"].as_array().unwrap(),
            );
        }
    }
}
