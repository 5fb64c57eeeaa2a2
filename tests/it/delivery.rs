//! Delivery through the real HTTP client against a local mock CleverTap: batching, partial
//! answers, retries, splitting, the per-account bound and the deadline.

use crate::support::mock_clevertap::{Echo, MockCleverTap, RecordedRequest, Reply};
use rudder_clevertap::clevertap::client::{HttpTimeouts, HttpTransport};
use rudder_clevertap::delivery::{BreakerPolicy, Delivery, DeliveryPolicy, DeliveryReport};
use rudder_clevertap::outcome::{Outcome, Status};
use rudder_clevertap::settings::DestinationSettings;
use rudder_clevertap::transform::Record;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

pub const PASSCODE: &str = "pc-very-secret-123";

pub fn settings(account: &str) -> DestinationSettings {
    DestinationSettings::from_json(&format!(
        r#"{{"accountId":"{account}","passcode":"{PASSCODE}","region":"in1"}}"#
    ))
    .unwrap()
}

pub fn policy(mock: &MockCleverTap) -> DeliveryPolicy {
    DeliveryPolicy {
        max_concurrent_requests: 5,
        retry_budget: Duration::from_secs(2),
        safety_margin: Duration::from_millis(200),
        endpoint_override: Some(mock.url().to_owned()),
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(40),
        breaker: no_breaker(),
    }
}

/// A circuit that never opens: these tests look at retries, budgets and deadlines, which an
/// open circuit would cut short (`outage_through_the_http_client` has the circuit on).
pub fn no_breaker() -> BreakerPolicy {
    BreakerPolicy {
        failure_threshold: u32::MAX,
        ..BreakerPolicy::default()
    }
}

pub fn delivery(policy: DeliveryPolicy) -> Delivery<HttpTransport> {
    let transport = HttpTransport::new(HttpTimeouts {
        connect: Duration::from_secs(1),
        request: Duration::from_secs(10),
    })
    .unwrap();
    Delivery::new(transport, policy)
}

/// A small event record, unique by `n`.
pub fn record(n: usize) -> Record {
    Record::from_json(format!(
        r#"{{"type":"event","identity":"user-{n}","evtName":"Order Completed","evtData":{{"n":{n}}},"ts":1700000000}}"#
    ))
}

/// `count` events of one record each.
fn single_record_events(count: usize) -> Vec<Vec<Record>> {
    (0..count).map(|n| vec![record(n)]).collect()
}

fn as_slices(events: &[Vec<Record>]) -> Vec<&[Record]> {
    events.iter().map(Vec::as_slice).collect()
}

fn deadline_in(d: Duration) -> Instant {
    Instant::now() + d
}

fn statuses(report: &DeliveryReport) -> Vec<Status> {
    report.outcomes.iter().map(Outcome::status).collect()
}

fn code(outcome: &Outcome) -> &str {
    outcome.reason().map_or("", |r| &r.code)
}

/// The `n` field of each record of a request.
fn numbers(req: &RecordedRequest) -> Vec<u64> {
    req.records()
        .iter()
        .map(|r| r["evtData"]["n"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn every_event_is_delivered_when_clevertap_accepts_everything() {
    let mock = MockCleverTap::start();
    let d = delivery(policy(&mock));
    let events = vec![vec![record(0)], vec![record(1), record(2)], vec![record(3)]];
    let report = d
        .upload(
            &settings("ACC-1"),
            &as_slices(&events),
            deadline_in(Duration::from_secs(5)),
        )
        .await;
    assert_eq!(statuses(&report), vec![Status::Delivered; 3]);
    assert!(!report.credentials_rejected);
    assert_eq!(report.stats.requests, 1);
    assert_eq!(report.stats.records_accepted, 4);

    let sent = mock.requests();
    assert_eq!(sent.len(), 1);
    let req = &sent[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/1/upload");
    assert_eq!(req.account_id, "ACC-1");
    assert_eq!(req.passcode, PASSCODE);
    assert_eq!(req.content_type, "application/json");
    assert_eq!(numbers(req), vec![0, 1, 2, 3], "records keep their order");
    let expected: Value = serde_json::from_str(&format!(
        r#"{{"d":[{},{},{},{}]}}"#,
        record(0).as_str(),
        record(1).as_str(),
        record(2).as_str(),
        record(3).as_str()
    ))
    .unwrap();
    assert_eq!(req.json(), expected);
}

#[tokio::test]
async fn a_partial_answer_rejects_only_the_failed_events_matched_by_echo_and_by_number() {
    let mock = MockCleverTap::start();
    // Record 1 echoed (event 1), record 4 only by its number (event 3's second record).
    mock.then(|req| Reply::unprocessed(req, &[(1, 509, Echo::Record), (4, 512, Echo::Number)]));
    let d = delivery(policy(&mock));
    let events = vec![
        vec![record(0)],
        vec![record(1)],
        vec![record(2)],
        vec![record(3), record(4)],
        vec![record(5)],
    ];
    let report = d
        .upload(
            &settings("ACC-1"),
            &as_slices(&events),
            deadline_in(Duration::from_secs(5)),
        )
        .await;
    assert_eq!(
        statuses(&report),
        vec![
            Status::Delivered,
            Status::Rejected,
            Status::Delivered,
            Status::Rejected,
            Status::Delivered
        ]
    );
    let rejected = report.outcomes[1].reason().unwrap();
    assert_eq!(rejected.code, "clevertap_record_rejected");
    assert!(rejected.message.contains("509"), "{}", rejected.message);
    assert!(report.outcomes[3].reason().unwrap().message.contains("512"));
    assert_eq!(mock.requests().len(), 1, "rejected records are not resent");
    assert_eq!(report.stats.records_rejected, 2);
}

#[tokio::test]
async fn records_failing_with_555_are_resent_once_and_nothing_processed_is_sent_twice() {
    let mock = MockCleverTap::start();
    mock.then(|req| Reply::unprocessed(req, &[(0, 555, Echo::Record), (2, 555, Echo::Number)]));
    let d = delivery(policy(&mock));
    let events = single_record_events(4);
    let report = d
        .upload(
            &settings("ACC-1"),
            &as_slices(&events),
            deadline_in(Duration::from_secs(5)),
        )
        .await;
    assert_eq!(statuses(&report), vec![Status::Delivered; 4]);
    let sent = mock.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(numbers(&sent[0]), vec![0, 1, 2, 3]);
    assert_eq!(
        numbers(&sent[1]),
        vec![0, 2],
        "only the failed records go again"
    );
    assert_eq!(report.stats.retries, 1);
}

#[tokio::test]
async fn a_528_discard_counts_as_delivered() {
    let mock = MockCleverTap::start();
    mock.then(|req| Reply::unprocessed(req, &[(0, 528, Echo::Record)]));
    let d = delivery(policy(&mock));
    let events = single_record_events(2);
    let report = d
        .upload(
            &settings("ACC-1"),
            &as_slices(&events),
            deadline_in(Duration::from_secs(5)),
        )
        .await;
    assert_eq!(statuses(&report), vec![Status::Delivered; 2]);
    assert_eq!(report.stats.records_discarded, 1);
    assert_eq!(report.stats.records_accepted, 1);
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn throttling_on_the_first_requests_is_retried_until_success() {
    let mock = MockCleverTap::start();
    mock.script([
        Reply::status(
            429,
            r#"{"status":"fail","error":"Too many concurrent requests"}"#,
        ),
        Reply::status(
            429,
            r#"{"status":"fail","error":"Too many concurrent requests"}"#,
        ),
    ]);
    let d = delivery(policy(&mock));
    let events = single_record_events(3);
    let report = d
        .upload(
            &settings("ACC-1"),
            &as_slices(&events),
            deadline_in(Duration::from_secs(5)),
        )
        .await;
    assert_eq!(statuses(&report), vec![Status::Delivered; 3]);
    assert_eq!(report.stats.throttled, 2);
    assert_eq!(report.stats.requests, 3);
    assert_eq!(mock.requests().len(), 3);
}

#[tokio::test]
async fn server_errors_throughout_give_retry_outcomes_before_the_deadline() {
    for status in [500, 503] {
        let mock = MockCleverTap::start();
        mock.respond_with(move |_| Reply::status(status, "down"));
        let mut p = policy(&mock);
        p.retry_budget = Duration::from_secs(30);
        let d = delivery(p);
        let events = single_record_events(3);
        // Long enough for several attempts even on a loaded machine, short enough to keep the
        // suite fast.
        let deadline = deadline_in(Duration::from_millis(3000));
        let report = d
            .upload(&settings("ACC-1"), &as_slices(&events), deadline)
            .await;
        // The last resend is cut at deadline - margin (200 ms). Here only "before the deadline"
        // is asserted, as a loaded machine can delay the wake-up by tens of milliseconds; the
        // exact cut is checked in paused time (src/delivery/tests.rs).
        assert!(Instant::now() < deadline, "returned after the deadline");
        assert_eq!(statuses(&report), vec![Status::Retry; 3]);
        assert_eq!(code(&report.outcomes[0]), "clevertap_unavailable");
        assert!(mock.requests().len() > 1, "retried within the budget");
        assert!(!report.credentials_rejected);
    }
}

#[tokio::test]
async fn the_retry_budget_stops_retries_before_the_deadline_does() {
    let mock = MockCleverTap::start();
    mock.respond_with(|_| Reply::status(503, "down"));
    let mut p = policy(&mock);
    p.retry_budget = Duration::from_millis(300);
    let d = delivery(p);
    let events = single_record_events(1);
    let started = Instant::now();
    let report = d
        .upload(
            &settings("ACC-1"),
            &as_slices(&events),
            deadline_in(Duration::from_secs(10)),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(code(&report.outcomes[0]), "clevertap_unavailable");
    assert!(
        report.outcomes[0]
            .reason()
            .unwrap()
            .message
            .contains("retry budget exhausted")
    );
}

#[tokio::test]
async fn a_hanging_clevertap_gives_retry_outcomes_before_the_deadline() {
    let mock = MockCleverTap::start();
    mock.respond_with(|req| Reply::success(req).after(Duration::from_secs(30)));
    let d = delivery(policy(&mock));
    let events = single_record_events(2);
    let deadline = deadline_in(Duration::from_millis(800));
    let report = d
        .upload(&settings("ACC-1"), &as_slices(&events), deadline)
        .await;
    let margin_start = deadline - Duration::from_millis(200);
    assert!(
        // Cut at the start of the margin; the slack absorbs scheduling on a loaded machine
        // and still proves the answer came well before the deadline.
        Instant::now() < margin_start + Duration::from_millis(120),
        "returned {:?} after the margin began",
        Instant::now() - margin_start
    );
    assert_eq!(statuses(&report), vec![Status::Retry; 2]);
    assert_eq!(code(&report.outcomes[0]), "clevertap_timeout");
}

#[tokio::test]
async fn a_malformed_answer_gives_retry() {
    let mock = MockCleverTap::start();
    mock.respond_with(|_| Reply::status(200, "<html>oops</html>"));
    let mut p = policy(&mock);
    p.retry_budget = Duration::from_millis(100);
    let d = delivery(p);
    let events = single_record_events(2);
    let report = d
        .upload(
            &settings("ACC-1"),
            &as_slices(&events),
            deadline_in(Duration::from_secs(5)),
        )
        .await;
    assert_eq!(statuses(&report), vec![Status::Retry; 2]);
    assert_eq!(code(&report.outcomes[0]), "clevertap_bad_response");
}

#[tokio::test]
async fn unauthorized_gives_retry_and_asks_for_the_credentials_to_be_dropped() {
    let mock = MockCleverTap::start();
    mock.respond_with(|_| {
        Reply::status(
            401,
            r#"{"status":"fail","error":"Invalid Credentials","code":401}"#,
        )
    });
    let d = delivery(policy(&mock));
    let events = single_record_events(2);
    let report = d
        .upload(
            &settings("ACC-1"),
            &as_slices(&events),
            deadline_in(Duration::from_secs(5)),
        )
        .await;
    assert_eq!(statuses(&report), vec![Status::Retry; 2]);
    assert_eq!(code(&report.outcomes[0]), "clevertap_unauthorized");
    assert!(report.credentials_rejected);
    assert_eq!(
        mock.requests().len(),
        1,
        "not resent with the same credentials"
    );
}

#[tokio::test]
async fn a_404_is_a_configuration_error_left_to_the_source() {
    let mock = MockCleverTap::start();
    mock.respond_with(|_| Reply::status(404, "not found"));
    let d = delivery(policy(&mock));
    let events = single_record_events(1);
    let report = d
        .upload(
            &settings("ACC-1"),
            &as_slices(&events),
            deadline_in(Duration::from_secs(5)),
        )
        .await;
    assert_eq!(code(&report.outcomes[0]), "clevertap_unexpected_status");
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn a_400_on_a_full_request_rejects_only_the_event_with_the_bad_record() {
    let mock = MockCleverTap::start();
    mock.respond_with(|req| {
        if req.body.contains("\"user-637\"") {
            Reply::status(400, r#"{"status":"fail","error":"Bad Request"}"#)
        } else {
            Reply::success(req)
        }
    });
    let d = delivery(policy(&mock));
    let events = single_record_events(1000);
    let report = d
        .upload(
            &settings("ACC-1"),
            &as_slices(&events),
            deadline_in(Duration::from_secs(10)),
        )
        .await;
    for (i, outcome) in report.outcomes.iter().enumerate() {
        if i == 637 {
            assert_eq!(code(outcome), "clevertap_bad_request", "{outcome:?}");
            assert_eq!(outcome.status(), Status::Rejected);
        } else {
            assert_eq!(outcome, &Outcome::Delivered, "event {i}");
        }
    }
    // Every good record was accepted exactly once.
    let mut accepted: HashMap<u64, usize> = HashMap::new();
    for req in mock.requests() {
        if !req.body.contains("\"user-637\"") {
            for n in numbers(&req) {
                *accepted.entry(n).or_default() += 1;
            }
        }
    }
    assert_eq!(accepted.len(), 999);
    assert!(accepted.values().all(|&c| c == 1));
    assert!(
        mock.requests().len() <= 1 + 2 * 10,
        "{}",
        mock.requests().len()
    );
}

#[tokio::test]
async fn two_thousand_five_hundred_events_go_in_requests_of_1000_1000_and_500() {
    let mock = MockCleverTap::start();
    let d = delivery(policy(&mock));
    let events = single_record_events(2500);
    let report = d
        .upload(
            &settings("ACC-1"),
            &as_slices(&events),
            deadline_in(Duration::from_secs(10)),
        )
        .await;
    assert!(report.outcomes.iter().all(|o| *o == Outcome::Delivered));
    let mut sizes: Vec<usize> = mock.requests().iter().map(|r| r.records().len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![500, 1000, 1000]);
    let mut all: Vec<u64> = mock.requests().iter().flat_map(numbers).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..2500).collect::<Vec<u64>>(),
        "each record sent once"
    );
}

#[tokio::test]
async fn requests_in_flight_per_account_never_exceed_the_bound_across_calls() {
    let mock = MockCleverTap::start();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    mock.respond_with(move |req| {
        // Every third request is throttled, so retries also compete for the bound.
        if seen.fetch_add(1, Ordering::SeqCst) % 3 == 2 {
            Reply::status(429, "").after(Duration::from_millis(20))
        } else {
            Reply::success(req).after(Duration::from_millis(60))
        }
    });
    let mut p = policy(&mock);
    p.max_concurrent_requests = 3;
    let d = Arc::new(delivery(p));
    let events = Arc::new(
        (0..10)
            .map(|c| {
                (0..400)
                    .map(|n| vec![record(c * 1000 + n)])
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>(),
    );
    // Ten concurrent calls for ACC-1, and ten for ACC-2: 400 records each, one request each.
    let mut calls = Vec::new();
    for account in ["ACC-1", "ACC-2"] {
        for c in 0..10 {
            let d = d.clone();
            let events = events.clone();
            calls.push(tokio::spawn(async move {
                let slices = as_slices(&events[c]);
                d.upload(
                    &settings(account),
                    &slices,
                    deadline_in(Duration::from_secs(20)),
                )
                .await
            }));
        }
    }
    for call in calls {
        let report = call.await.unwrap();
        assert!(report.outcomes.iter().all(|o| *o == Outcome::Delivered));
    }
    for account in ["ACC-1", "ACC-2"] {
        let max = mock.max_in_flight(account);
        assert!(max <= 3, "{account}: {max} in flight");
        assert!(max >= 2, "{account}: the calls did overlap ({max})");
    }
    assert!(mock.requests_for("ACC-1").len() >= 10);
}

#[tokio::test]
async fn deletes_go_by_100_identities_one_call_at_a_time_per_account() {
    let mock = MockCleverTap::start();
    mock.respond_with(|req| Reply::success(req).after(Duration::from_millis(30)));
    let d = delivery(policy(&mock));
    let ids: Vec<String> = (0..250).map(|n| format!("user-{n}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let report = d
        .delete(
            &settings("ACC-1"),
            &id_refs,
            deadline_in(Duration::from_secs(10)),
        )
        .await;
    assert_eq!(report.outcomes.len(), 250);
    assert!(report.outcomes.iter().all(|o| *o == Outcome::Delivered));
    let sent = mock.requests();
    assert!(sent.iter().all(|r| r.path == "/1/delete/profiles.json"));
    let mut sizes: Vec<usize> = sent.iter().map(|r| r.identities().len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![50, 100, 100]);
    assert_eq!(mock.max_in_flight_on("ACC-1", "/1/delete/profiles.json"), 1);
}

#[tokio::test]
async fn a_rejected_identity_in_a_delete_call_is_rejected_alone() {
    let mock = MockCleverTap::start();
    mock.then(|req| Reply::unprocessed(req, &[(1, 523, Echo::Record)]));
    let d = delivery(policy(&mock));
    let report = d
        .delete(
            &settings("ACC-1"),
            &["a", "b", "c"],
            deadline_in(Duration::from_secs(5)),
        )
        .await;
    assert_eq!(
        statuses(&report),
        vec![Status::Delivered, Status::Rejected, Status::Delivered]
    );
    assert_eq!(
        mock.requests()[0].json(),
        serde_json::json!({"identity": ["a", "b", "c"]})
    );
}

#[tokio::test]
async fn an_unreachable_clevertap_gives_retry_with_code_clevertap_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let p = DeliveryPolicy {
        endpoint_override: Some(url),
        retry_budget: Duration::from_millis(100),
        safety_margin: Duration::from_millis(100),
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(20),
        breaker: no_breaker(),
        ..DeliveryPolicy::default()
    };
    let d = delivery(p);
    let events = single_record_events(1);
    let report = d
        .upload(
            &settings("ACC-1"),
            &as_slices(&events),
            deadline_in(Duration::from_secs(5)),
        )
        .await;
    assert_eq!(code(&report.outcomes[0]), "clevertap_unreachable");
}

#[tokio::test]
async fn a_deadline_already_inside_the_margin_sends_nothing() {
    let mock = MockCleverTap::start();
    let d = delivery(policy(&mock));
    let events = single_record_events(2);
    let report = d
        .upload(
            &settings("ACC-1"),
            &as_slices(&events),
            deadline_in(Duration::from_millis(100)),
        )
        .await;
    assert_eq!(statuses(&report), vec![Status::Retry; 2]);
    assert_eq!(code(&report.outcomes[0]), "retry_budget_exhausted");
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn uploads_and_deletes_of_one_account_share_one_bound() {
    let mock = MockCleverTap::start();
    mock.respond_with(|req| Reply::success(req).after(Duration::from_millis(50)));
    let mut p = policy(&mock);
    p.max_concurrent_requests = 2;
    let d = delivery(p);
    let events = single_record_events(3000);
    let slices = as_slices(&events);
    let ids: Vec<String> = (0..300).map(|n| format!("user-{n}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let s = settings("ACC-1");
    let deadline = deadline_in(Duration::from_secs(10));
    let (uploaded, deleted) = tokio::join!(
        d.upload(&s, &slices, deadline),
        d.delete(&s, &id_refs, deadline)
    );
    assert!(uploaded.outcomes.iter().all(|o| *o == Outcome::Delivered));
    assert!(deleted.outcomes.iter().all(|o| *o == Outcome::Delivered));
    assert_eq!(mock.requests().len(), 6);
    assert_eq!(mock.max_in_flight("ACC-1"), 2);
    assert_eq!(mock.max_in_flight_on("ACC-1", "/1/delete/profiles.json"), 1);
}

#[tokio::test]
async fn an_outage_through_the_http_client_opens_the_circuit_and_a_probe_closes_it() {
    let mock = MockCleverTap::start();
    mock.respond_with(|_| Reply::status(503, "{}"));
    let d = delivery(DeliveryPolicy {
        breaker: BreakerPolicy {
            failure_threshold: 3,
            min_failing: Duration::ZERO,
            cooldown: Duration::from_millis(200),
            max_cooldown: Duration::from_secs(2),
        },
        ..policy(&mock)
    });
    let events = single_record_events(3);
    let slices = as_slices(&events);
    let account = settings("ACC-1");
    let upload = || d.upload(&account, &slices, deadline_in(Duration::from_secs(5)));
    let report = upload().await;
    assert_eq!(mock.requests().len(), 3, "the threshold, then nothing");
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| code(o) == "clevertap_circuit_open"),
        "{:?}",
        report.outcomes
    );
    // Open: answered without a request.
    upload().await;
    assert_eq!(mock.requests().len(), 3);
    // After the cooldown, CleverTap is back: one probe of one record, then the rest.
    mock.respond_with(Reply::success);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = upload().await;
    assert!(report.outcomes.iter().all(|o| *o == Outcome::Delivered));
    let sent = mock.requests();
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[3].records().len(), 1, "the probe");
    assert_eq!(sent[4].records().len(), 2);
}
