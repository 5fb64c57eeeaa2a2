//! Delivery logic against a scripted in-memory transport, in paused time: the outcome rules,
//! and a property of the accounting: every event gets exactly one outcome, and an event is
//! delivered only if CleverTap accepted every one of its records.

use super::*;
use crate::clevertap::transport::{ApiRequest, HttpReply, TransportError};
use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};

/// One scripted answer of the fake CleverTap.
#[derive(Debug, Clone)]
enum Behaviour {
    Success,
    /// Per record, from these bytes (cycled): `b % 4 == 0` fails it with code
    /// `[555, 509, 528][b % 3]`, echoed when `b % 2 == 0`, else by record number.
    Partial(Vec<u8>),
    Status(u16),
    Timeout,
    /// Never answers: only the deadline ends it.
    Hang,
}

#[derive(Default)]
struct FakeState {
    script: VecDeque<Behaviour>,
    /// Identity of every record CleverTap accepted (or discarded by rule), with a count.
    accepted: HashMap<String, usize>,
    /// Identity of every record sent after CleverTap had accepted it.
    resent_after_accept: Vec<String>,
    requests: usize,
    /// `base_url + path`, account id and passcode of every request.
    sent_to: Vec<(String, String, String)>,
}

#[derive(Default)]
struct Fake {
    state: Mutex<FakeState>,
}

impl Fake {
    fn scripted(script: impl IntoIterator<Item = Behaviour>) -> Self {
        Fake {
            state: Mutex::new(FakeState {
                script: script.into_iter().collect(),
                ..FakeState::default()
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }
}

fn identity(record: &Value) -> String {
    record["identity"].as_str().unwrap_or_default().to_owned()
}

fn answer(state: &mut FakeState, records: &[Value], behaviour: Behaviour) -> Option<HttpReply> {
    let reply = |status: u16, body: Value| HttpReply {
        status,
        body: Bytes::from(body.to_string()),
    };
    match behaviour {
        Behaviour::Success => {
            for r in records {
                *state.accepted.entry(identity(r)).or_default() += 1;
            }
            Some(reply(
                200,
                json!({"status":"success","processed":records.len(),"unprocessed":[]}),
            ))
        }
        Behaviour::Partial(bytes) => {
            let bytes = if bytes.is_empty() { vec![1] } else { bytes };
            let mut unprocessed = Vec::new();
            for (i, r) in records.iter().enumerate() {
                let b = bytes[i % bytes.len()];
                let fails = b % 4 == 0;
                let code = [555, 509, 528][usize::from(b % 3)];
                if !fails || code == 528 {
                    *state.accepted.entry(identity(r)).or_default() += 1;
                }
                if fails {
                    let error = format!("failed. Skipped record number : {}", i + 1);
                    unprocessed.push(if b % 2 == 0 {
                        json!({"status":"fail","code":code,"error":error,"record":r})
                    } else {
                        json!({"status":"fail","code":code,"error":error})
                    });
                }
            }
            let status = if unprocessed.is_empty() {
                "success"
            } else {
                "partial"
            };
            Some(reply(
                200,
                json!({"status":status,"processed":records.len()-unprocessed.len(),"unprocessed":unprocessed}),
            ))
        }
        Behaviour::Status(status) => Some(reply(status, json!({"status":"fail"}))),
        Behaviour::Timeout | Behaviour::Hang => None,
    }
}

impl Transport for Fake {
    async fn post(&self, request: ApiRequest<'_>) -> Result<HttpReply, TransportError> {
        let body: Value = serde_json::from_slice(&request.body).expect("valid JSON body");
        let records = body["d"].as_array().cloned().unwrap_or_default();
        let behaviour = {
            let mut state = self.state();
            state.requests += 1;
            state.sent_to.push((
                format!("{}{}", request.base_url, request.path),
                request.account_id.to_owned(),
                request.passcode.expose().to_owned(),
            ));
            for r in &records {
                let id = identity(r);
                if state.accepted.contains_key(&id) {
                    state.resent_after_accept.push(id);
                }
            }
            state.script.pop_front().unwrap_or(Behaviour::Success)
        };
        if matches!(behaviour, Behaviour::Hang) {
            std::future::pending::<()>().await;
        }
        let reply = answer(&mut self.state(), &records, behaviour);
        reply.ok_or(TransportError::Timeout)
    }
}

fn settings() -> DestinationSettings {
    DestinationSettings::from_json(r#"{"accountId":"ACC","passcode":"pc-secret"}"#).unwrap()
}

fn test_policy() -> DeliveryPolicy {
    DeliveryPolicy {
        max_concurrent_requests: 2,
        retry_budget: Duration::from_secs(5),
        safety_margin: Duration::from_secs(3),
        endpoint_override: Some("http://fake".into()),
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(200),
    }
}

/// Events with `sizes[e]` records each; record identities are `e-k`.
fn events(sizes: &[usize]) -> Vec<Vec<Record>> {
    sizes
        .iter()
        .enumerate()
        .map(|(e, &n)| {
            (0..n)
                .map(|k| {
                    Record::from_json(format!(
                        r#"{{"type":"event","identity":"{e}-{k}","evtName":"E","evtData":{{}}}}"#
                    ))
                })
                .collect()
        })
        .collect()
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

fn run(fake: Fake, sizes: &[usize]) -> (DeliveryReport, Delivery<Fake>) {
    paused_runtime().block_on(async {
        let delivery = Delivery::new(fake, test_policy());
        let events = events(sizes);
        let slices: Vec<&[Record]> = events.iter().map(Vec::as_slice).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        let report = delivery.upload(&settings(), &slices, deadline).await;
        (report, delivery)
    })
}

#[test]
fn records_resent_after_555_that_meet_a_401_leave_their_events_to_retry() {
    // Partial bytes per record: 1 accepted; 0 and 12 fail with 555 (b % 3 == 0). The resend of
    // those two records then meets a 401: not resent again, credentials flagged.
    let fake = Fake::scripted([Behaviour::Partial(vec![1, 0, 12]), Behaviour::Status(401)]);
    let (report, delivery) = run(fake, &[2, 1]);
    assert_eq!(report.outcomes.len(), 2);
    for outcome in &report.outcomes {
        assert_eq!(
            outcome.reason().unwrap().code,
            codes::CLEVERTAP_UNAUTHORIZED
        );
    }
    assert!(report.credentials_rejected);
    assert_eq!(delivery.transport().state().requests, 2);
}

#[test]
fn a_rejected_record_makes_its_event_rejected_while_others_are_delivered() {
    // b = 4: fails, 4 % 3 == 1 -> 509, echoed.
    let fake = Fake::scripted([Behaviour::Partial(vec![1, 1, 4])]);
    let (report, _) = run(fake, &[2, 1]);
    assert_eq!(report.outcomes[0], Outcome::Delivered);
    assert_eq!(
        report.outcomes[1].reason().unwrap().code,
        codes::CLEVERTAP_RECORD_REJECTED
    );
}

#[test]
fn a_400_splits_the_request_in_halves_until_each_part_goes_through() {
    // 400 on the whole request, then on the half holding event 0, then success.
    let fake = Fake::scripted([
        Behaviour::Status(400),
        Behaviour::Status(400),
        Behaviour::Success,
        Behaviour::Success,
        Behaviour::Success,
    ]);
    let (report, delivery) = run(fake, &[2, 2]);
    // [0-0,0-1,1-0,1-1] -> 400 -> [0-0,0-1] 400 -> [0-0] ok, [0-1] ok; [1-0,1-1] ok.
    assert_eq!(
        report.outcomes,
        vec![Outcome::Delivered, Outcome::Delivered]
    );
    assert_eq!(report.stats.splits, 2);
    assert_eq!(delivery.transport().state().requests, 5);
}

#[test]
fn retries_stop_at_the_budget_with_the_last_failure_as_reason() {
    let fake = Fake::scripted(std::iter::repeat_n(Behaviour::Status(503), 10_000));
    let (report, delivery) = run(fake, &[1]);
    assert_eq!(
        report.outcomes[0].reason().unwrap().code,
        codes::CLEVERTAP_UNAVAILABLE
    );
    assert!(
        report.stats.elapsed <= Duration::from_secs(5),
        "{:?}",
        report.stats.elapsed
    );
    assert!(delivery.transport().state().requests > 3);
}

#[test]
fn a_hang_ends_at_the_deadline_minus_the_margin() {
    let fake = Fake::scripted([Behaviour::Hang]);
    let (report, _) = run(fake, &[1, 1]);
    assert_eq!(
        report.outcomes[0].reason().unwrap().code,
        codes::CLEVERTAP_TIMEOUT
    );
    assert!(
        report.stats.elapsed <= Duration::from_secs(27),
        "{:?}",
        report.stats.elapsed
    );
}

#[test]
fn without_an_override_the_url_comes_from_the_region_allowlist() {
    paused_runtime().block_on(async {
        let policy = DeliveryPolicy {
            endpoint_override: None,
            ..test_policy()
        };
        let delivery = Delivery::new(Fake::default(), policy);
        let settings = DestinationSettings::from_json(
            r#"{"accountId":"ACC-9","passcode":"pc-9","region":"mec1"}"#,
        )
        .unwrap();
        let events = events(&[1]);
        let slices: Vec<&[Record]> = events.iter().map(Vec::as_slice).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        delivery.upload(&settings, &slices, deadline).await;
        delivery.delete(&settings, &["u1"], deadline).await;
        let sent = delivery.transport().state().sent_to.clone();
        assert_eq!(
            sent,
            vec![
                (
                    "https://mec1.api.clevertap.com/1/upload".to_owned(),
                    "ACC-9".to_owned(),
                    "pc-9".to_owned()
                ),
                (
                    "https://mec1.api.clevertap.com/1/delete/profiles.json".to_owned(),
                    "ACC-9".to_owned(),
                    "pc-9".to_owned()
                ),
            ]
        );
    });
}

#[test]
fn events_without_records_are_delivered_and_nothing_is_sent() {
    let (report, delivery) = run(Fake::default(), &[0, 0]);
    assert_eq!(
        report.outcomes,
        vec![Outcome::Delivered, Outcome::Delivered]
    );
    assert_eq!(delivery.transport().state().requests, 0);
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        3 => Just(Behaviour::Success),
        4 => proptest::collection::vec(any::<u8>(), 1..8).prop_map(Behaviour::Partial),
        1 => Just(Behaviour::Status(400)),
        1 => Just(Behaviour::Status(429)),
        1 => Just(Behaviour::Status(500)),
        1 => Just(Behaviour::Status(401)),
        1 => Just(Behaviour::Timeout),
        1 => Just(Behaviour::Hang),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_event_gets_one_outcome_and_is_delivered_only_if_all_its_records_were_accepted(
        sizes in proptest::collection::vec(1usize..=2, 1..40),
        script in proptest::collection::vec(behaviour(), 0..16),
    ) {
        let (report, delivery) = run(Fake::scripted(script), &sizes);
        prop_assert_eq!(report.outcomes.len(), sizes.len());
        let state = delivery.transport().state();
        for (e, outcome) in report.outcomes.iter().enumerate() {
            if *outcome == Outcome::Delivered {
                for k in 0..sizes[e] {
                    prop_assert!(
                        state.accepted.contains_key(&format!("{e}-{k}")),
                        "event {} delivered but record {} never accepted", e, k
                    );
                }
            }
        }
        prop_assert!(
            state.resent_after_accept.is_empty(),
            "records sent again after CleverTap accepted them: {:?}", state.resent_after_accept
        );
        let records: usize = sizes.iter().sum();
        let s = &report.stats;
        prop_assert_eq!(
            (s.records_accepted + s.records_discarded + s.records_rejected + s.records_retry) as usize,
            records
        );
    }
}
