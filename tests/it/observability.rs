//! What an operator sees, checked on the real binary under the Runtime API (moto for Secrets
//! Manager and the dead-letter queue, the CleverTap mock): with `AWS_LAMBDA_LOG_FORMAT=JSON`
//! every output line is JSON with a timestamp, message lines carry their message id (field and
//! span), every line of an invocation carries its X-Ray trace id, each invocation has one
//! summary line under its request id whose `destinations` is an object, the EMF documents have
//! the `_aws` block CloudWatch requires with real values for every metric and one `ColdStart`,
//! Lambda's WARN level drops the summary but keeps every metric, and no secret, token or event
//! payload reaches the output of a run where things fail.

use crate::support::lambda_events::{sqs_message as message, webhook_request};
use crate::support::mock_clevertap::{Echo, MockCleverTap, Reply};
use crate::support::moto::MotoServer;
use crate::support::runtime_api::{LambdaProcess, RuntimeApi};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(15);
/// The trace header the test Runtime API sends with every invocation.
const TRACE_ID: &str = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1";
const PASSCODE_A: &str = "pc-secret-a-1234";
const TOKEN_A: &str = "webhook-token-a-9999";
const PASSCODE_BAD: &str = "pc-secret-c-0000";
const WRONG_TOKEN: &str = "guessed-token-zzzz";
/// In every event's properties: must never reach an info line.
const PAYLOAD_MARKER: &str = "payload-marker-7f3c";

fn track(user: &str) -> String {
    json!({"type": "track", "event": "Order Completed", "userId": user,
           "messageId": format!("e-{user}"),
           "properties": {"revenue": 10, "note": PAYLOAD_MARKER}})
    .to_string()
}

/// The binary in JSON log mode with a CleverTap that throttles once, then rejects the records
/// of `u-reject` and fails those of `u-retry` transiently (code 555) until the budget is spent.
struct Stack {
    _moto: MotoServer,
    clevertap: MockCleverTap,
    api: RuntimeApi,
    process: LambdaProcess,
}

impl Stack {
    async fn start() -> Stack {
        let moto = MotoServer::start();
        moto.create_secrets(&[
            (
                "dest-a",
                json!({"accountId": "ACC-A", "passcode": PASSCODE_A, "webhookToken": TOKEN_A}),
            ),
            // No accountId: unusable, and its passcode must not show in the error.
            ("dest-bad", json!({"passcode": PASSCODE_BAD})),
        ])
        .await;
        let dlq_url = moto.create_queue("rudder-clevertap-dlq").await;
        let clevertap = MockCleverTap::start();
        clevertap.script([Reply::status(429, "")]);
        clevertap.respond_with(|req| {
            let failed: Vec<(usize, i64, Echo)> = req
                .records()
                .iter()
                .enumerate()
                .filter_map(|(i, r)| match r["identity"].as_str() {
                    Some("u-reject") => Some((i, 512, Echo::Record)),
                    Some("u-retry") => Some((i, 555, Echo::Record)),
                    _ => None,
                })
                .collect();
            Reply::unprocessed(req, &failed)
        });
        let api = RuntimeApi::start().await;
        let mut env = moto.env();
        env.push(("CLEVERTAP_ENDPOINT", clevertap.url().to_owned()));
        env.push(("DEAD_LETTER_QUEUE_URL", dlq_url));
        env.push(("RETRY_BUDGET_SECONDS", "1".into()));
        env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON".into()));
        // Our own debug lines too: they must not leak secrets either.
        env.push(("RUST_LOG", "info,rudder_clevertap=debug".into()));
        let process = LambdaProcess::start(&api, &env);
        Stack {
            _moto: moto,
            clevertap,
            api,
            process,
        }
    }

    /// Every output line so far, each parsed as JSON (a line that is not JSON fails the test).
    fn lines(&self) -> Vec<Value> {
        let logs = self.process.logs();
        logs.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n---\n{logs}"))
            })
            .collect()
    }

    /// Waits until `n` summary lines were written (they follow the answer closely).
    async fn wait_for_summaries(&self, n: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let summaries: Vec<Value> = self
                .lines()
                .into_iter()
                .filter(|l| l["fields"]["message"] == "invocation summary")
                .collect();
            if summaries.len() >= n || started.elapsed() > Duration::from_secs(5) {
                return summaries;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The batch that delivers, rejects, retries and dead-letters, on dest-a and dest-bad.
    async fn run_failing_batch(&self) -> Value {
        let batch = json!({"Records": [
            message("m-ok", &track("u-1"), "dest-a"),
            message("m-reject", &track("u-reject"), "dest-a"),
            message("m-retry", &track("u-retry"), "dest-a"),
            message("m-not-json", &format!("{{\"note\":\"{PAYLOAD_MARKER}\","), "dest-a"),
            message("m-bad-secret", &track("u-2"), "dest-bad"),
        ]});
        self.api.invoke(batch.to_string(), TIMEOUT).await.response()
    }
}

fn span_field<'a>(line: &'a Value, key: &str) -> Option<&'a str> {
    line["spans"]
        .as_array()?
        .iter()
        .find_map(|s| s.get(key).and_then(Value::as_str))
}

#[tokio::test]
async fn json_log_lines_carry_the_message_id_and_each_invocation_has_one_summary_under_its_request_id()
 {
    let s = Stack::start().await;
    let response = s.run_failing_batch().await;
    let mut failures: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("{response}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    failures.sort_unstable();
    assert_eq!(
        failures,
        ["m-bad-secret", "m-retry"],
        "{}",
        s.process.logs()
    );

    let summaries = s.wait_for_summaries(1).await;
    assert_eq!(summaries.len(), 1, "{}", s.process.logs());
    let lines = s.lines();
    // Every message that did not simply go through has a line naming it, in its own span.
    for id in ["m-reject", "m-retry", "m-not-json", "m-bad-secret"] {
        let line = lines
            .iter()
            .find(|l| l["fields"]["message"] == "message" && l["fields"]["message_id"] == id)
            .unwrap_or_else(|| panic!("no line for {id}:\n{}", s.process.logs()));
        assert_eq!(line["span"]["name"], "message", "{line}");
        assert_eq!(line["span"]["message_id"], id, "{line}");
        assert!(line["span"]["destination"].is_string(), "{line}");
        assert_eq!(span_field(line, "requestId"), Some("req-0000"), "{line}");
        assert!(
            line["fields"]["code"].is_string(),
            "a failure without a code: {line}"
        );
    }
    // Lines during delivery carry the destination through the upload span.
    let throttled = lines
        .iter()
        .find(|l| l["fields"]["message"] == "clevertap request failed")
        .unwrap_or_else(|| panic!("the 429 was not logged:\n{}", s.process.logs()));
    assert_eq!(span_field(throttled, "destination"), Some("dest-a"));
    assert_eq!(throttled["fields"]["code"], "clevertap_throttled");

    let summary = &summaries[0];
    assert_eq!(summary["level"], "INFO");
    assert_eq!(summary["span"]["requestId"], "req-0000", "{summary}");
    // Every line of the invocation carries the trace id the Runtime API gave it.
    assert_eq!(summary["span"]["xrayTraceId"], TRACE_ID, "{summary}");
    let during: Vec<&Value> = lines
        .iter()
        .filter(|l| span_field(l, "requestId") == Some("req-0000"))
        .collect();
    assert!(during.len() >= 5, "{}", s.process.logs());
    for line in during {
        assert_eq!(span_field(line, "xrayTraceId"), Some(TRACE_ID), "{line}");
        // An RFC 3339 time, without which Lambda's own level filter counts the line as INFO.
        assert!(
            line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
    }
    let f = &summary["fields"];
    assert_eq!(f["kind"], "sqs");
    assert_eq!(f["delivered"], 1, "{summary}");
    assert_eq!(f["rejected"], 2, "{summary}");
    assert_eq!(f["retried"], 2, "{summary}");
    assert_eq!(f["dead_lettered"], 2, "{summary}");
    assert!(f["requests"].as_u64().unwrap() >= 2, "{summary}");
    assert!(f["retries"].as_u64().unwrap() >= 1, "{summary}");
    assert!(f["duration_ms"].is_u64(), "{summary}");
    // An object, not a string, so Logs Insights reads into it.
    let per = &f["destinations"];
    assert!(per.is_object(), "{summary}");
    assert_eq!(per["dest-a"]["delivered"], 1, "{per}");
    assert_eq!(per["dest-a"]["dead_lettered"], 2, "{per}");
    assert_eq!(per["dest-bad"]["retried"], 1, "{per}");

    // A second invocation: its own summary, under its own request id.
    let answer = s
        .api
        .invoke(
            webhook_request("dest-a", Some("Bearer nope"), "{}").to_string(),
            TIMEOUT,
        )
        .await
        .response();
    assert_eq!(answer["statusCode"], 401);
    let summaries = s.wait_for_summaries(2).await;
    assert_eq!(summaries.len(), 2);
    assert_eq!(summaries[1]["span"]["requestId"], "req-0001");
    assert_eq!(summaries[1]["fields"]["kind"], "http_api_v2");
}

#[tokio::test]
async fn the_emf_documents_have_the_aws_block_and_real_values_for_every_metric() {
    let s = Stack::start().await;
    s.run_failing_batch().await;
    s.wait_for_summaries(1).await;
    let docs: Vec<Value> = s
        .lines()
        .into_iter()
        .filter(|l| l.get("_aws").is_some())
        .collect();
    assert_eq!(docs.len(), 2, "one per destination:\n{}", s.process.logs());

    for doc in &docs {
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].is_u64(), "{doc}");
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert!((1..=2).contains(&directives.len()), "{doc}");
        for d in directives {
            assert_eq!(d["Namespace"], "RudderCleverTap");
            // Every dimension set names members of the root that hold strings.
            for set in d["Dimensions"].as_array().unwrap() {
                for name in set.as_array().unwrap() {
                    let name = name.as_str().unwrap();
                    assert!(doc[name].is_string(), "dimension {name} missing: {doc}");
                }
            }
            // Every metric has a name, a valid unit, and a number (or array of numbers) at the root.
            for m in d["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                assert!(
                    ["Count", "Milliseconds"].contains(&m["Unit"].as_str().unwrap()),
                    "{m}"
                );
                let value = &doc[name];
                let numeric = value.is_number()
                    || value.as_array().is_some_and(|a| {
                        !a.is_empty() && a.len() <= 100 && a.iter().all(Value::is_number)
                    });
                assert!(numeric, "{name} has no numeric value: {doc}");
            }
        }
        assert_eq!(doc["function"], "rudder-clevertap");
        assert_eq!(doc["xrayTraceId"], TRACE_ID, "{doc}");
        assert_eq!(doc["requestId"], "req-0000", "{doc}");
        assert_eq!(doc["level"], "INFO", "{doc}");
    }

    let a = docs.iter().find(|d| d["destination"] == "dest-a").unwrap();
    assert_eq!(a["EventsDelivered"], 1, "{a}");
    assert_eq!(a["EventsRejected"], 2, "{a}");
    assert_eq!(a["EventsRetried"], 1, "{a}");
    assert_eq!(a["EventsDeadLettered"], 2, "{a}");
    let requests = a["UploadRequests"].as_u64().unwrap();
    assert_eq!(requests as usize, s.clevertap.requests_for("ACC-A").len());
    assert!(requests >= 2, "{a}");
    assert_eq!(a["CleverTapThrottled"], 1, "{a}");
    // The container's first invocation: one cold start, on one document only.
    let cold: Vec<&Value> = docs.iter().filter_map(|d| d.get("ColdStart")).collect();
    assert_eq!(cold, [&json!(1)], "{docs:?}");
    assert_eq!(a["SecretsCacheMiss"], 1, "{a}");
    let latencies = a["UploadLatency"].as_array().unwrap();
    assert_eq!(latencies.len() as u64, requests, "{a}");
    assert!(latencies.iter().all(|l| l.as_f64().unwrap() > 0.0), "{a}");

    let bad = docs
        .iter()
        .find(|d| d["destination"] == "dest-bad")
        .unwrap();
    assert_eq!(bad["EventsRetried"], 1, "{bad}");
    assert_eq!(bad["SecretsCacheMiss"], 1, "{bad}");
    assert_eq!(bad["UploadRequests"], 0, "{bad}");

    // A warm invocation answers from the cache: no miss.
    s.api
        .invoke(
            json!({"Records": [message("m-again", &track("u-3"), "dest-a")]}).to_string(),
            TIMEOUT,
        )
        .await
        .response();
    s.wait_for_summaries(2).await;
    let again = s
        .lines()
        .into_iter()
        .filter(|l| l.get("_aws").is_some() && l["destination"] == "dest-a")
        .nth(1)
        .unwrap();
    assert_eq!(again["SecretsCacheMiss"], 0, "{again}");
    assert_eq!(again["ColdStart"], 0, "a warm invocation: {again}");
    assert_eq!(again["EventsDelivered"], 1, "{again}");
}

#[tokio::test]
async fn no_secret_token_or_event_payload_reaches_the_output_of_a_failing_run() {
    let s = Stack::start().await;
    s.run_failing_batch().await;
    // Webhooks: a guessed token, then the right one with an event CleverTap rejects.
    for authorization in [format!("Bearer {WRONG_TOKEN}"), format!("Bearer {TOKEN_A}")] {
        s.api
            .invoke(
                webhook_request("dest-a", Some(&authorization), &track("u-reject")).to_string(),
                TIMEOUT,
            )
            .await
            .response();
    }
    s.wait_for_summaries(3).await;
    let logs = s.process.logs();
    for secret in [PASSCODE_A, PASSCODE_BAD, TOKEN_A, WRONG_TOKEN] {
        assert!(!logs.contains(secret), "{secret} leaked:\n{logs}");
    }
    let info_and_above: Vec<Value> = s
        .lines()
        .into_iter()
        .filter(|l| l.get("level").is_some_and(|v| v != "DEBUG" && v != "TRACE"))
        .collect();
    assert!(info_and_above.len() >= 3, "{logs}");
    for line in &info_and_above {
        assert!(
            !line.to_string().contains(PAYLOAD_MARKER),
            "an event payload in an info line: {line}"
        );
    }
    // The secrets really were used: the failure is not for lack of trying.
    assert!(
        s.clevertap
            .requests_for("ACC-A")
            .iter()
            .all(|r| r.passcode == PASSCODE_A)
    );
}

#[tokio::test]
async fn at_lambdas_warn_level_the_summary_is_left_out_but_every_metric_is_kept() {
    let moto = MotoServer::start();
    moto.create_secrets(&[(
        "dest-a",
        json!({"accountId": "ACC-A", "passcode": PASSCODE_A}),
    )])
    .await;
    let clevertap = MockCleverTap::start();
    let api = RuntimeApi::start().await;
    let mut env = moto.env();
    env.push(("CLEVERTAP_ENDPOINT", clevertap.url().to_owned()));
    env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON".into()));
    // What Lambda sets from LoggingConfig.ApplicationLogLevel; it wins over RUST_LOG.
    env.push(("AWS_LAMBDA_LOG_LEVEL", "WARN".into()));
    env.push(("RUST_LOG", "info".into()));
    env.push(("METRICS_NAMESPACE", "Team/Stack".into()));
    env.push(("METRICS_PER_DESTINATION", "false".into()));
    let process = LambdaProcess::start(&api, &env);
    let batch = json!({"Records": [message("m-1", &track("u-1"), "dest-a")]});
    let response = api.invoke(batch.to_string(), TIMEOUT).await.response();
    assert_eq!(response, json!({"batchItemFailures": []}));
    let started = Instant::now();
    let docs = loop {
        let docs: Vec<Value> = process
            .logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l.get("_aws").is_some())
            .collect();
        if !docs.is_empty() || started.elapsed() > Duration::from_secs(5) {
            break docs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let logs = process.logs();
    // One document of totals, function-level only, at a level Lambda's WARN filter keeps.
    assert_eq!(docs.len(), 1, "{logs}");
    let doc = &docs[0];
    assert_eq!(doc["level"], "WARN", "{doc}");
    assert_eq!(doc["EventsDelivered"], 1, "{doc}");
    assert_eq!(doc["ColdStart"], 1, "{doc}");
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Team/Stack");
    assert_eq!(directive["Dimensions"], json!([["function"]]));
    assert!(doc.get("destination").is_none(), "{doc}");
    // Nothing below WARN: no summary, no info line, the same as Lambda would keep.
    assert!(!logs.contains("invocation summary"), "{logs}");
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let line: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let level = line["level"].as_str().unwrap_or_default();
        assert!(["WARN", "ERROR"].contains(&level), "{line}");
    }
}
