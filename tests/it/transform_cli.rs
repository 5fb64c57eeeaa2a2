//! The real binary's `transform` command on bad and large inputs: every item gets a result at
//! its index, bad lines do not stop the others, and the exit status says what happened.

use crate::support;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Output, Stdio};

const DEST: &str = r#"{"accountId":"ACC-1","passcode":"pc-very-secret","region":"in1","trackAnonymous":true,"enableObjectIdMapping":true}"#;

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout not JSON ({e}): {}", self.stdout))
    }
}

fn finish(out: Output) -> Run {
    let run = Run {
        status: out.status.code().expect("exit status"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!run.stdout.contains("pc-very-secret") && !run.stderr.contains("pc-very-secret"));
    run
}

/// Runs `transform` with `dest` as settings on `input` bytes given as a file.
fn run_file(dest: &str, input: &[u8]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dest.json"), dest).unwrap();
    std::fs::write(dir.path().join("in"), input).unwrap();
    finish(
        Command::new(support::binary())
            .arg("transform")
            .arg("--destination")
            .arg(dir.path().join("dest.json"))
            .arg(dir.path().join("in"))
            .output()
            .unwrap(),
    )
}

fn codes(out: &Value) -> Vec<Value> {
    out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.get("code").cloned().unwrap_or(Value::Null))
        .collect()
}

fn track(i: usize) -> String {
    format!(
        r#"{{"type":"track","messageId":"m-{i}","userId":"u-{i}","event":"E{i}","properties":{{"i":{i}}}}}"#
    )
}

#[test]
fn an_ndjson_line_that_is_not_json_is_rejected_at_its_index_and_the_others_are_transformed() {
    let input = format!(
        "{}\n{}\n{{\"type\": broken\n\n{}\n",
        track(0),
        track(1),
        track(3)
    );
    let run = run_file(DEST, input.as_bytes());
    assert_eq!(run.status, 1, "{}", run.stderr);
    let out = run.json();
    assert_eq!(
        codes(&out),
        vec![Value::Null, Value::Null, json!("invalid_json"), Value::Null]
    );
    assert_eq!(out["results"][2]["status"], "rejected");
    assert_eq!(out["results"][2]["index"], 2);
    assert_eq!(out["results"][3]["messageId"], "m-3");
    let request = &out["requests"][0];
    assert_eq!(request["url"], "https://in1.api.clevertap.com/1/upload");
    assert_eq!(request["events"], json!([0, 1, 3]));
    assert_eq!(request["body"]["d"][2]["evtName"], "E3");
}

#[test]
fn an_unknown_region_exits_with_status_2_and_a_message_naming_the_region() {
    let dest = DEST.replace("in1", "evil.example.com#");
    let run = run_file(&dest, track(0).as_bytes());
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("region") && run.stderr.contains("evil.example.com#"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn a_line_that_is_not_utf8_is_rejected_at_its_index() {
    let mut input = format!("{}\n", track(0)).into_bytes();
    input.extend_from_slice(b"{\"type\":\"track\",\"event\":\"\xff\xfe\"}\n");
    input.extend_from_slice(format!("{}\n", track(2)).as_bytes());
    let run = run_file(DEST, &input);
    assert_eq!(run.status, 1);
    assert_eq!(
        codes(&run.json()),
        vec![Value::Null, json!("invalid_utf8"), Value::Null]
    );
    // The same when the bad line comes first and the input cannot be streamed line by line.
    let mut input = b"\xff\n".to_vec();
    input.extend_from_slice(track(1).as_bytes());
    let run = run_file(DEST, &input);
    assert_eq!(codes(&run.json()), vec![json!("invalid_utf8"), Value::Null]);
}

#[test]
fn ten_thousand_levels_of_nesting_are_rejected_without_crashing() {
    let deep = format!("{}0{}", "[".repeat(10_000), "]".repeat(10_000));
    let input = format!(
        "{}\n{{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\",\"properties\":{{\"d\":{deep}}}}}\n",
        track(0)
    );
    let run = run_file(DEST, input.as_bytes());
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(codes(&run.json()), vec![Value::Null, json!("too_deep")]);
}

#[test]
fn empty_input_prints_no_requests_and_no_results_and_exits_0() {
    let run = run_file(DEST, b" \n\n");
    assert_eq!(run.status, 0);
    assert_eq!(run.json(), json!({"requests": [], "results": []}));
}

#[test]
fn a_pretty_printed_single_event_and_a_non_object_item_are_handled() {
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&track(0)).unwrap()).unwrap();
    let run = run_file(DEST, pretty.as_bytes());
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.json()["requests"][0]["events"], json!([0]));
    let run = run_file(DEST, format!("[{}, 42]", track(0)).as_bytes());
    assert_eq!(run.status, 1);
    assert_eq!(
        codes(&run.json()),
        vec![Value::Null, json!("not_an_object")]
    );
}

#[test]
fn stdin_is_read_when_the_file_is_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dest.json"), DEST).unwrap();
    let mut child = Command::new(support::binary())
        .arg("transform")
        .arg("--destination")
        .arg(dir.path().join("dest.json"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!("{}\n{}\n", track(0), track(1));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let run = finish(child.wait_with_output().unwrap());
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.json()["requests"][0]["events"], json!([0, 1]));
}

#[test]
fn requests_hold_at_most_1000_records_and_an_event_and_its_token_never_straddle_two() {
    // 999 single-record events, then identifies with a device token (two records each).
    let mut lines: Vec<String> = (0..999).map(track).collect();
    for i in 0..3 {
        lines.push(format!(
            r#"{{"type":"identify","userId":"u{i}","anonymousId":"a{i}","context":{{"os":{{"name":"android"}},"device":{{"token":"t{i}"}}}}}}"#
        ));
    }
    let run = run_file(DEST, lines.join("\n").as_bytes());
    assert_eq!(run.status, 0, "{}", run.stderr);
    let out = run.json();
    let requests = out["requests"].as_array().unwrap();
    let sizes: Vec<usize> = requests
        .iter()
        .map(|r| r["body"]["d"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![999, 6]);
    assert_eq!(
        requests[1]["events"],
        json!([999, 999, 1000, 1000, 1001, 1001])
    );
    assert_eq!(requests[1]["body"]["d"][1]["type"], "token");
    assert_eq!(out["results"].as_array().unwrap().len(), 1002);
    for r in requests {
        assert_eq!(r["headers"]["X-CleverTap-Passcode"], "<redacted>");
        assert_eq!(r["headers"]["X-CleverTap-Account-Id"], "ACC-1");
    }
}

#[test]
fn usage_errors_and_unreadable_files_exit_with_status_2() {
    let out = finish(
        Command::new(support::binary())
            .arg("transform")
            .output()
            .unwrap(),
    );
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("--destination"), "{}", out.stderr);
    let out = finish(
        Command::new(support::binary())
            .args(["transform", "--destination", "/nonexistent/dest.json", "-"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.status, 2);
    assert!(
        out.stderr.contains("/nonexistent/dest.json"),
        "{}",
        out.stderr
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dest.json"), DEST).unwrap();
    let out = finish(
        Command::new(support::binary())
            .arg("transform")
            .arg("--destination")
            .arg(dir.path().join("dest.json"))
            .arg(dir.path().join("missing.ndjson"))
            .output()
            .unwrap(),
    );
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("missing.ndjson"), "{}", out.stderr);
    let out = run_file(r#"{"accountId":"A"}"#, b"{}");
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("passcode"), "{}", out.stderr);
}

#[test]
fn the_sample_events_transform_cleanly() {
    let root = support::repo_root();
    let out = finish(
        Command::new(support::binary())
            .current_dir(&root)
            .args([
                "transform",
                "--destination",
                "events/destination.example.json",
                "events/rudderstack-events.ndjson",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "ok")
    );
    assert!(v["requests"][0]["body"]["d"].as_array().unwrap().len() >= 6);
}

#[test]
fn filtered_events_get_status_filtered_with_code_and_message_and_exit_0() {
    let dest = r#"{"accountId":"ACC-1","passcode":"pc-very-secret","trackAnonymous":true,
        "oneTrustCookieCategories":[{"oneTrustCookieCategory":"C0004"}],
        "eventFilteringOption":"blacklistedEvents","blacklistedEvents":[{"eventName":"Spam"}]}"#;
    let lines = [
        track(0),
        r#"{"type":"group","messageId":"m-1","userId":"u","groupId":"g"}"#.to_owned(),
        r#"{"type":"track","messageId":"m-2","userId":"u","event":"E","context":{"consentManagement":{"deniedConsentIds":["C0004"]}}}"#.to_owned(),
        r#"{"type":"track","messageId":"m-3","userId":"u","event":"Spam"}"#.to_owned(),
        track(4),
    ];
    let run = run_file(dest, lines.join("\n").as_bytes());
    assert_eq!(run.status, 0, "{}", run.stderr);
    let out = run.json();
    let statuses: Vec<&str> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "filtered", "filtered", "filtered", "ok"]);
    assert_eq!(
        codes(&out),
        vec![
            Value::Null,
            json!("filtered_message_type"),
            json!("consent_denied"),
            json!("event_denied"),
            Value::Null
        ]
    );
    for i in 1..4 {
        let r = &out["results"][i];
        assert_eq!(r["messageId"], format!("m-{i}"));
        assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{r}");
    }
    let requests = out["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["events"], json!([0, 4]));
}

#[test]
fn a_rejected_event_among_filtered_ones_still_exits_1() {
    let input = format!(
        "{}\n{}\n{}",
        r#"{"type":"group","userId":"u","groupId":"g"}"#,
        r#"{"type":" track ","userId":"u"}"#,
        track(2)
    );
    let run = run_file(DEST, input.as_bytes());
    assert_eq!(run.status, 1, "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["results"][0]["status"], "filtered");
    assert_eq!(out["results"][1]["status"], "rejected");
    assert_eq!(out["results"][1]["code"], "unsupported_type");
    assert_eq!(out["requests"][0]["events"], json!([2]));
}
