//! User deletion (docs/contracts.md §6) through the real binary: regulations arrive as SQS messages and
//! HTTP requests under the Runtime API, settings come from Secrets Manager and dead letters go
//! to SQS (both moto_server, through the real AWS SDK), profiles are deleted on the CleverTap
//! mock. Also the `transform` and `invoke --dry-run` commands on regulations.

use crate::support::lambda_events::{
    FIFO_ARN, batch_item_failures, sqs_message as message, sqs_message_on as message_on,
    webhook_request,
};
use crate::support::mock_clevertap::{MockCleverTap, RecordedRequest, Reply};
use crate::support::moto::MotoServer;
use crate::support::runtime_api::{LambdaProcess, RuntimeApi};
use crate::support::{binary, repo_root};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);
const PASSCODE_A: &str = "pc-secret-a-1234";
const PASSCODE_B: &str = "pc-secret-b-5678";
const TOKEN_A: &str = "webhook-token-a-9999";
const DELETE_PATH: &str = "/1/delete/profiles.json";
const TRACK: &str =
    r#"{"type":"track","event":"Order Completed","userId":"u-1","messageId":"e-1"}"#;

/// moto (two destinations' secrets, a dead-letter queue), the CleverTap mock, and the binary.
struct Stack {
    moto: MotoServer,
    clevertap: MockCleverTap,
    api: RuntimeApi,
    process: LambdaProcess,
    dlq_url: String,
}

impl Stack {
    async fn start() -> Stack {
        let moto = MotoServer::start();
        moto.create_secrets(&[
            (
                "dest-a",
                json!({"accountId": "ACC-A", "passcode": PASSCODE_A, "webhookToken": TOKEN_A}),
            ),
            (
                "dest-b",
                json!({"accountId": "ACC-B", "passcode": PASSCODE_B, "region": "in1"}),
            ),
        ])
        .await;
        let dlq_url = moto.create_queue("rudder-clevertap-dlq").await;
        let clevertap = MockCleverTap::start();
        let api = RuntimeApi::start().await;
        let mut env = moto.env();
        env.push(("CLEVERTAP_ENDPOINT", clevertap.url().to_owned()));
        env.push(("DEAD_LETTER_QUEUE_URL", dlq_url.clone()));
        env.push(("RETRY_BUDGET_SECONDS", "1".into()));
        let process = LambdaProcess::start(&api, &env);
        Stack {
            moto,
            clevertap,
            api,
            process,
            dlq_url,
        }
    }

    async fn invoke(&self, payload: &Value) -> Value {
        self.api
            .invoke(payload.to_string(), TIMEOUT)
            .await
            .response()
    }

    async fn failures(&self, records: Vec<Value>) -> Vec<String> {
        batch_item_failures(&self.invoke(&json!({"Records": records})).await)
    }

    /// An HTTP API v2 request to `dest-a` with its token; (status, body).
    async fn webhook(&self, body: &str) -> (u64, Value) {
        let authorization = format!("Bearer {TOKEN_A}");
        let response = self
            .invoke(&webhook_request("dest-a", Some(&authorization), body))
            .await;
        let status = response["statusCode"].as_u64().unwrap();
        let body = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        (status, body)
    }

    /// The delete calls CleverTap received for one account.
    fn deletes_for(&self, account: &str) -> Vec<RecordedRequest> {
        self.clevertap
            .requests_for(account)
            .into_iter()
            .filter(|r| r.path == DELETE_PATH)
            .collect()
    }

    /// Every dead letter on the queue: (body, attributes).
    async fn dead_letters(&self, expected: usize) -> Vec<(String, HashMap<String, String>)> {
        self.moto.receive_messages(&self.dlq_url, expected).await
    }

    fn assert_no_secret_in_logs(&self) {
        let logs = self.process.logs();
        for secret in [PASSCODE_A, PASSCODE_B, TOKEN_A] {
            assert!(!logs.contains(secret), "a secret leaked:\n{logs}");
        }
    }
}

/// A regulation of `users` (ids; `None` for a user without userId) naming `destinations`.
fn regulation(destinations: &[&str], users: &[Option<String>]) -> String {
    let users: Vec<Value> = users
        .iter()
        .map(|u| match u {
            Some(id) => json!({"userId": id}),
            None => json!({"email": "nobody@example.com"}),
        })
        .collect();
    let mut r = json!({"regulationType": "suppress_with_delete", "users": users});
    if !destinations.is_empty() {
        r["destinationIds"] = json!(destinations);
    }
    r.to_string()
}

fn user_ids(range: std::ops::Range<usize>) -> Vec<Option<String>> {
    range.map(|i| Some(format!("u-{i}"))).collect()
}

#[tokio::test]
async fn two_hundred_fifty_users_are_deleted_in_three_calls_of_at_most_100_one_at_a_time() {
    let s = Stack::start().await;
    s.clevertap
        .respond_with(|req| Reply::success(req).after(Duration::from_millis(50)));
    let body = regulation(&[], &user_ids(0..250));
    let failures = s.failures(vec![message("m-1", &body, "dest-a")]).await;
    assert!(failures.is_empty(), "{failures:?}\n{}", s.process.logs());

    let deletes = s.deletes_for("ACC-A");
    assert_eq!(deletes.len(), 3, "{deletes:?}");
    assert!(deletes.iter().all(|d| d.identities().len() <= 100));
    assert!(deletes.iter().all(|d| d.passcode == PASSCODE_A));
    let mut deleted: Vec<String> = deletes.iter().flat_map(|d| d.identities()).collect();
    deleted.sort();
    let mut expected: Vec<String> = (0..250).map(|i| format!("u-{i}")).collect();
    expected.sort();
    assert_eq!(deleted, expected, "every user once");
    assert_eq!(s.clevertap.max_in_flight_on("ACC-A", DELETE_PATH), 1);
    assert!(s.dead_letters(0).await.is_empty());
    s.assert_no_secret_in_logs();
}

#[tokio::test]
async fn over_http_a_failing_call_gives_retry_to_exactly_its_users_and_a_400_rejects_its_users() {
    let s = Stack::start().await;
    // The second call (u-100..u-199) fails with a 500 every time; u-7 makes its call a 400.
    s.clevertap.respond_with(|req| {
        let ids = req.identities();
        if ids.iter().any(|id| id == "u-100") {
            Reply::status(500, "Internal Server Error")
        } else if ids.iter().any(|id| id == "u-7") {
            Reply::status(400, r#"{"status":"fail","error":"bad identity"}"#)
        } else {
            Reply::success(req)
        }
    });
    let body = regulation(&["dest-a"], &user_ids(0..250));
    let (status, answer) = s.webhook(&body).await;
    assert_eq!(status, 503, "{answer}\n{}", s.process.logs());
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 250);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i);
        assert_eq!(r["userId"], format!("u-{i}"));
        let expected = match i {
            7 => "rejected",
            100..=199 => "retry",
            _ => "delivered",
        };
        assert_eq!(r["status"], expected, "user {i}: {r}");
    }
    assert_eq!(results[7]["code"], "clevertap_bad_request");
    assert_eq!(answer["retry"], 100);
    assert_eq!(answer["rejected"], 1);
    assert_eq!(answer["delivered"], 149);
    // The rejected user is dead-lettered alone, in a regulation a redrive can replay.
    let letters = s.dead_letters(1).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter: Value = serde_json::from_str(&letters[0].0).unwrap();
    assert_eq!(letter["users"], json!([{"userId": "u-7"}]));
    assert_eq!(letter["destinationIds"], json!(["dest-a"]));
    assert_eq!(letters[0].1["rejectionCode"], "clevertap_bad_request");
    assert_eq!(letters[0].1["destinationId"], "dest-a");
    assert_eq!(s.clevertap.max_in_flight_on("ACC-A", DELETE_PATH), 1);
}

#[tokio::test]
async fn over_sqs_a_failing_delete_reports_the_message_and_a_rejected_user_is_dead_lettered() {
    let s = Stack::start().await;
    s.clevertap.respond_with(|req| {
        let ids = req.identities();
        if ids.iter().any(|id| id == "down") {
            Reply::status(500, "")
        } else if ids.iter().any(|id| id == "bad") {
            Reply::status(400, "")
        } else {
            Reply::success(req)
        }
    });
    let failing = regulation(&[], &[Some("down".into())]);
    let rejecting = regulation(&[], &[Some("ok".into()), Some("bad".into())]);
    let failures = s
        .failures(vec![
            message("m-down", &failing, "dest-a"),
            message("m-bad", &rejecting, "dest-b"),
        ])
        .await;
    assert_eq!(failures, ["m-down"], "{}", s.process.logs());
    let letters = s.dead_letters(1).await;
    assert_eq!(
        letters.len(),
        1,
        "a retry is never dead-lettered: {letters:?}"
    );
    let (body, attributes) = &letters[0];
    let letter: Value = serde_json::from_str(body).unwrap();
    assert_eq!(letter["users"], json!([{"userId": "bad"}]));
    assert_eq!(attributes["sourceMessageId"], "m-bad");
    assert_eq!(attributes["destinationId"], "dest-b");
    assert_eq!(attributes["rejectionCode"], "clevertap_bad_request");
    let deleted: Vec<String> = s
        .deletes_for("ACC-B")
        .iter()
        .flat_map(|d| d.identities())
        .collect();
    assert!(deleted.contains(&"ok".to_owned()), "{deleted:?}");
}

#[tokio::test]
async fn one_regulation_naming_two_destinations_deletes_in_both_accounts() {
    let s = Stack::start().await;
    let body = regulation(&["dest-a", "dest-b"], &user_ids(0..3));
    // No destinationId attribute: a message with one acts on that destination only.
    let record = crate::support::lambda_events::sqs_record(
        crate::support::lambda_events::QUEUE_ARN,
        "m-1",
        &body,
        None,
    );
    let failures = s.failures(vec![record]).await;
    assert!(failures.is_empty(), "{failures:?}\n{}", s.process.logs());
    for (account, passcode) in [("ACC-A", PASSCODE_A), ("ACC-B", PASSCODE_B)] {
        let deletes = s.deletes_for(account);
        assert_eq!(deletes.len(), 1, "{account}");
        assert_eq!(deletes[0].identities(), ["u-0", "u-1", "u-2"]);
        assert_eq!(deletes[0].passcode, passcode);
    }
    s.assert_no_secret_in_logs();
}

#[tokio::test]
async fn users_without_user_id_and_unknown_regulation_types_are_dead_lettered_with_their_codes() {
    let s = Stack::start().await;
    let partly = regulation(&[], &[Some("u-1".into()), None, Some("u-3".into())]);
    let unknown = r#"{"regulationType":"suppress","users":[{"userId":"u-9"}]}"#;
    let malformed = r#"{"regulationType":"suppress_with_delete","users":"u-9"}"#;
    let failures = s
        .failures(vec![
            message("m-partly", &partly, "dest-a"),
            message("m-unknown", unknown, "dest-a"),
            message("m-malformed", malformed, "dest-a"),
        ])
        .await;
    assert!(failures.is_empty(), "{failures:?}\n{}", s.process.logs());
    let deletes = s.deletes_for("ACC-A");
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].identities(), ["u-1", "u-3"]);

    let letters = s.dead_letters(3).await;
    let by_source: HashMap<&str, &(String, HashMap<String, String>)> = letters
        .iter()
        .map(|l| (l.1["sourceMessageId"].as_str(), l))
        .collect();
    let (body, attributes) = by_source["m-partly"];
    assert_eq!(attributes["rejectionCode"], "missing_user_id");
    let letter: Value = serde_json::from_str(body).unwrap();
    assert_eq!(letter["users"], json!([{"email": "nobody@example.com"}]));
    let (body, attributes) = by_source["m-unknown"];
    assert_eq!(attributes["rejectionCode"], "unsupported_regulation_type");
    assert_eq!(body, unknown, "an undecodable regulation goes as it came");
    assert_eq!(
        by_source["m-malformed"].1["rejectionCode"],
        "invalid_regulation"
    );
}

#[tokio::test]
async fn over_http_a_regulation_naming_another_destination_gets_403_and_nothing_is_deleted() {
    let s = Stack::start().await;
    let (status, answer) = s
        .webhook(&regulation(&["dest-a", "dest-b"], &user_ids(0..2)))
        .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "destination_not_allowed");
    let (status, answer) = s
        .webhook(r#"{"regulationType":"suppress","users":[{"userId":"u-1"}]}"#)
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "unsupported_regulation_type");
    assert!(s.clevertap.requests().is_empty());
    assert!(s.dead_letters(0).await.is_empty());
}

#[tokio::test]
async fn fifo_stops_at_a_regulation_needing_a_retry_and_keeps_the_order() {
    let s = Stack::start().await;
    s.clevertap.respond_with(|req| {
        if req.path == DELETE_PATH {
            Reply::status(503, "")
        } else {
            Reply::success(req)
        }
    });
    let failures = s
        .failures(vec![
            message_on(FIFO_ARN, "f-1", TRACK, "dest-a"),
            message_on(FIFO_ARN, "f-2", &regulation(&[], &user_ids(1..2)), "dest-a"),
            message_on(FIFO_ARN, "f-3", TRACK, "dest-a"),
        ])
        .await;
    assert_eq!(failures, ["f-2", "f-3"], "{}", s.process.logs());
    let sent: Vec<String> = s
        .clevertap
        .requests_for("ACC-A")
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(sent.first().map(String::as_str), Some("/1/upload"));
    assert!(
        sent[1..].iter().all(|p| p == DELETE_PATH),
        "nothing after f-2 is sent: {sent:?}"
    );
}

/// `transform` on a regulation: delete requests of at most 100 identities, `events` the
/// regulation's index, and a rejected result when a user has no userId.
#[test]
fn transform_shows_the_delete_requests_of_a_regulation() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest.json");
    std::fs::write(
        &dest,
        r#"{"accountId":"ACC-1","passcode":"pc-very-secret","region":"in1"}"#,
    )
    .unwrap();
    let run = |body: &str| {
        let input = dir.path().join("in.json");
        std::fs::write(&input, body).unwrap();
        let out = Command::new(binary())
            .arg("transform")
            .arg("--destination")
            .arg(&dest)
            .arg(&input)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(!stdout.contains("pc-very-secret"));
        let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        (out.status.code(), json)
    };

    let (code, out) = run(&regulation(&["other-destination"], &user_ids(0..250)));
    assert_eq!(code, Some(0), "{out}");
    let requests = out["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 3);
    let mut all = Vec::new();
    for r in requests {
        assert_eq!(
            r["url"],
            "https://in1.api.clevertap.com/1/delete/profiles.json"
        );
        assert_eq!(r["headers"]["X-CleverTap-Passcode"], "<redacted>");
        let ids = r["body"]["identity"].as_array().unwrap();
        assert!(ids.len() <= 100);
        assert_eq!(r["events"], json!(vec![0; ids.len()]));
        all.extend(ids.iter().cloned());
    }
    assert_eq!(all.len(), 250);
    assert_eq!(
        out["results"],
        json!([{"index": 0, "messageId": null, "status": "ok"}])
    );

    let (code, out) = run(&regulation(&[], &[Some("a".into()), None]));
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out["requests"][0]["body"], json!({"identity": ["a"]}));
    assert_eq!(out["results"][0]["status"], "rejected");
    assert_eq!(out["results"][0]["code"], "missing_user_id");

    let (code, out) = run(r#"{"regulationType":"nope","users":[]}"#);
    assert_eq!(code, Some(1));
    assert_eq!(out["results"][0]["code"], "unsupported_regulation_type");
    assert!(out["requests"].as_array().unwrap().is_empty());

    // As in the handler, a regulation must be the whole input, not an NDJSON line.
    let ndjson = format!("{TRACK}\n{}\n", regulation(&[], &user_ids(0..1)));
    let (code, out) = run(&ndjson);
    assert_eq!(code, Some(1));
    assert_eq!(out["results"][0]["status"], "ok");
    assert_eq!(out["results"][1]["code"], "regulation_in_batch");
    assert_eq!(
        out["requests"].as_array().unwrap().len(),
        1,
        "the track upload only"
    );
}

/// `invoke --dry-run` on the regulation samples shows the delete requests it would send.
#[test]
fn the_regulation_samples_run_under_invoke_dry_run() {
    let invoke = |event: &str| {
        let out = Command::new(binary())
            .current_dir(repo_root())
            .env_clear()
            .env("RUST_LOG", "info")
            .args([
                "invoke",
                "--dry-run",
                "--destinations",
                "events/destinations.example.json",
                event,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let response: Value = serde_json::from_slice(&out.stdout).unwrap();
        (response, stderr)
    };

    let (response, stderr) = invoke("events/sqs-regulation.json");
    assert_eq!(response, json!({"batchItemFailures": []}), "{stderr}");
    assert!(stderr.contains("https://in1.api.clevertap.com/1/delete/profiles.json"));
    assert!(stderr.contains("https://us1.api.clevertap.com/1/delete/profiles.json"));
    assert!(
        stderr.contains("would dead-letter this message"),
        "{stderr}"
    );
    assert!(stderr.contains("missing_user_id"));

    let (response, stderr) = invoke("events/http-regulation.json");
    assert_eq!(response["statusCode"], 200, "{stderr}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["delivered"], 2);
    assert_eq!(body["results"][0]["userId"], "user-1001");
    assert!(stderr.contains("/1/delete/profiles.json"));
    for secret in [
        "FAKE-PASSCODE-A",
        "FAKE-PASSCODE-B",
        "example-webhook-token-a",
    ] {
        assert!(!stderr.contains(secret), "{secret} leaked");
    }
}

/// Sync mode, scaled ten times (100 ms per delete call, a 6 s deadline: 30 calls fit): a
/// regulation of 5,000 users sent again while answered 503 is deleted within 8 requests, each
/// user in at most 2 calls.
#[tokio::test]
async fn sync_a_regulation_of_5000_users_resent_while_503_finishes_each_user_in_at_most_2_calls() {
    use crate::support::mock_clevertap::Reply;
    let s = Stack::start().await;
    s.clevertap
        .respond_with(|req| Reply::success(req).after(Duration::from_millis(100)));
    let body = regulation(&["dest-a"], &user_ids(0..5000));
    let authorization = format!("Bearer {TOKEN_A}");
    let request = webhook_request("dest-a", Some(&authorization), &body);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = s
            .api
            .invoke(request.to_string(), Duration::from_secs(6))
            .await
            .response();
        let status = response["statusCode"].as_u64().unwrap_or(0);
        statuses.push(status);
        if status < 500 {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&200), "{statuses:?}");
    let mut calls: HashMap<String, usize> = HashMap::new();
    for r in s.deletes_for("ACC-A") {
        for id in r.identities() {
            *calls.entry(id).or_default() += 1;
        }
    }
    assert_eq!(calls.len(), 5000, "after {statuses:?}");
    let most = calls.values().copied().max().unwrap_or(0);
    assert!(
        most <= 2,
        "a user was in {most} delete calls ({statuses:?})"
    );
}
