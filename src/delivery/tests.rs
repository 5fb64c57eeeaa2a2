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
    /// An honest but incomplete answer, from these bytes per record (cycled): `b % 4 == 0`
    /// fails the record (code 555, 509, 528 or none, by `b % 4` of the next byte); a failed
    /// record is listed only when `b % 5 != 0`, by echo (`b % 2 == 0`), by record number, or by
    /// neither (`b % 7 == 0`: it matches nothing); `processed` is the true count, given as a
    /// number, a string, or not at all (`bytes[0] % 3`).
    Lossy(Vec<u8>),
    /// Takes every record, then answers `success` padded past the read limit.
    OverLimit,
    /// Takes every record, then never answers in time.
    TimeoutAfterTaking,
    /// Takes no record and answers with this status and body.
    Raw(u16, &'static str),
    /// Takes every record after this long.
    Slow(Duration),
}

#[derive(Default)]
struct FakeState {
    script: VecDeque<Behaviour>,
    /// Identity of every record CleverTap accepted (or discarded by rule), with a count.
    accepted: HashMap<String, usize>,
    /// Identity of every record sent after CleverTap had accepted it.
    resent_after_accept: Vec<String>,
    /// Per record identity, the sends whose answer was not a refusal of the whole request
    /// (400/413/429/5xx/401): the sends CleverTap may have taken.
    sends_maybe_taken: HashMap<String, usize>,
    requests: usize,
    /// The number of records (or identities) of every request.
    items_per_request: Vec<usize>,
    /// Requests being answered now, and the most at once.
    in_flight: usize,
    max_in_flight: usize,
    /// `base_url + path`, account id and passcode of every request.
    sent_to: Vec<(String, String, String)>,
    /// When set, before the script: a request holding any of these identities is answered
    /// this status (a bad record, or with every identity, a blanket refusal); others succeed.
    refuse_holding: Option<(std::collections::HashSet<String>, u16)>,
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

    /// Answers `status` to every request holding one of `bad`'s identities, success otherwise.
    fn refusing(bad: impl IntoIterator<Item = String>, status: u16) -> Self {
        Fake {
            state: Mutex::new(FakeState {
                refuse_holding: Some((bad.into_iter().collect(), status)),
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
        Behaviour::Lossy(bytes) => {
            let bytes = if bytes.is_empty() { vec![0] } else { bytes };
            let byte = |i: usize| bytes[i % bytes.len()];
            let mut unprocessed = Vec::new();
            let mut processed = 0;
            for (i, r) in records.iter().enumerate() {
                let b = byte(i);
                let fails = b % 4 == 0;
                let code = [Some(555), Some(509), Some(528), None][usize::from(byte(i + 1) % 4)];
                if !fails || code == Some(528) {
                    *state.accepted.entry(identity(r)).or_default() += 1;
                }
                if !fails {
                    processed += 1;
                    continue;
                }
                if b % 5 == 0 {
                    continue;
                }
                let mut entry = json!({"status": "fail"});
                if let Some(code) = code {
                    entry["code"] = json!(code);
                }
                if b % 7 == 0 {
                    entry["error"] = json!("failed");
                    entry["record"] = json!({"identity": "nobody"});
                } else if b % 2 == 0 {
                    entry["error"] = json!("failed");
                    entry["record"] = r.clone();
                } else {
                    entry["error"] = json!(format!("failed. Skipped record number : {}", i + 1));
                }
                unprocessed.push(entry);
            }
            let mut body = json!({"status": if unprocessed.is_empty() && processed == records.len() {
                "success" } else { "partial" }, "unprocessed": unprocessed});
            match bytes[0] % 3 {
                0 => body["processed"] = json!(processed),
                1 => body["processed"] = json!(processed.to_string()),
                _ => {}
            }
            Some(reply(200, body))
        }
        Behaviour::OverLimit => {
            for r in records {
                *state.accepted.entry(identity(r)).or_default() += 1;
            }
            let padding = "x".repeat(records.len() * 2048 + 128 * 1024);
            Some(reply(
                200,
                json!({"status":"success","processed":records.len(),"unprocessed":[],"padding":padding}),
            ))
        }
        Behaviour::Raw(status, body) => Some(HttpReply {
            status,
            body: Bytes::from_static(body.as_bytes()),
        }),
        Behaviour::Slow(_) => {
            for r in records {
                *state.accepted.entry(identity(r)).or_default() += 1;
            }
            Some(reply(
                200,
                json!({"status":"success","processed":records.len(),"unprocessed":[]}),
            ))
        }
        Behaviour::TimeoutAfterTaking => {
            for r in records {
                *state.accepted.entry(identity(r)).or_default() += 1;
            }
            None
        }
    }
}

/// Counts a send CleverTap may have taken: every one but those it refused, whole (a status)
/// or by a listed record code other than 528.
fn count_sends(state: &mut FakeState, records: &[Value], reply: Option<&HttpReply>) {
    let refused: Vec<String> = match reply {
        Some(r) if r.status != 200 => return,
        Some(r) => serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|b| b["unprocessed"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|e| e["code"].as_i64().is_some_and(|c| c != 528))
            .filter_map(|e| {
                let number = e["error"]
                    .as_str()?
                    .rsplit(": ")
                    .next()?
                    .parse::<usize>()
                    .ok();
                match &e["record"] {
                    Value::Null => number.and_then(|n| records.get(n - 1)).map(identity),
                    echo => Some(identity(echo)),
                }
            })
            .collect(),
        None => Vec::new(),
    };
    for r in records {
        let id = identity(r);
        if !refused.contains(&id) {
            *state.sends_maybe_taken.entry(id).or_default() += 1;
        }
    }
}

impl Transport for Fake {
    async fn post(&self, request: ApiRequest<'_>) -> Result<HttpReply, TransportError> {
        let body: Value = serde_json::from_slice(&request.body).expect("valid JSON body");
        let records = body["d"]
            .as_array()
            .or_else(|| body["identity"].as_array())
            .cloned()
            .unwrap_or_default();
        let behaviour = {
            let mut state = self.state();
            state.requests += 1;
            state.items_per_request.push(records.len());
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
            match &state.refuse_holding {
                Some((bad, status)) => {
                    if records.iter().any(|r| bad.contains(&identity(r))) {
                        Behaviour::Status(*status)
                    } else {
                        Behaviour::Success
                    }
                }
                None => state.script.pop_front().unwrap_or(Behaviour::Success),
            }
        };
        if let Behaviour::Slow(delay) = behaviour {
            {
                let mut state = self.state();
                state.in_flight += 1;
                state.max_in_flight = state.max_in_flight.max(state.in_flight);
            }
            tokio::time::sleep(delay).await;
            self.state().in_flight -= 1;
        }
        if matches!(behaviour, Behaviour::Hang) {
            count_sends(&mut self.state(), &records, None);
            std::future::pending::<()>().await;
        }
        let mut state = self.state();
        let reply = answer(&mut state, &records, behaviour);
        count_sends(&mut state, &records, reply.as_ref());
        drop(state);
        // As the real client: an answer past the read limit is cut there.
        reply
            .map(|mut r| {
                r.body.truncate(request.max_reply_bytes);
                r
            })
            .ok_or(TransportError::Timeout)
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
        breaker: BreakerPolicy::default(),
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
    run_with(test_policy(), fake, sizes)
}

fn run_with(
    policy: DeliveryPolicy,
    fake: Fake,
    sizes: &[usize],
) -> (DeliveryReport, Delivery<Fake>) {
    paused_runtime().block_on(async {
        let delivery = Delivery::new(fake, policy);
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
        Behaviour::Success,
    ]);
    let (report, delivery) = run(fake, &[4, 4]);
    // [e0, e1] -> 400 -> [e0] 400, [e1] ok -> [0-0,0-1] ok, so [0-2,0-3] holds the 400: split
    // without being sent whole -> [0-2] ok, so [0-3] is sent alone: ok.
    assert_eq!(
        report.outcomes,
        vec![Outcome::Delivered, Outcome::Delivered]
    );
    assert_eq!(report.stats.splits, 3);
    let state = delivery.transport().state();
    assert_eq!(state.items_per_request, [8, 4, 4, 2, 1, 1]);
}

#[test]
fn four_records_whose_halving_needs_a_fifth_request_are_retried_not_sent_again() {
    // The same answers for four records: the fifth request is over the limit (max(N, 3) = 4).
    let fake = Fake::scripted([
        Behaviour::Status(400),
        Behaviour::Status(400),
        Behaviour::Success,
        Behaviour::Success,
        Behaviour::Success,
    ]);
    let (report, delivery) = run(fake, &[2, 2]);
    assert_eq!(report.outcomes[1], Outcome::Delivered);
    let reason = report.outcomes[0].reason().expect("retried");
    assert_eq!(reason.code, codes::CLEVERTAP_REFUSED_WHOLE);
    assert!(
        reason.message.contains("request limit"),
        "{}",
        reason.message
    );
    assert_eq!(report.outcomes[0].status(), crate::outcome::Status::Retry);
    assert_eq!(delivery.transport().state().items_per_request, [4, 2, 2, 1]);
}

#[test]
fn retries_stop_at_the_budget_with_the_last_failure_as_reason() {
    let fake = Fake::scripted(std::iter::repeat_n(Behaviour::Status(503), 10_000));
    // The circuit would open first (see the circuit tests below).
    let policy = DeliveryPolicy {
        breaker: BreakerPolicy {
            failure_threshold: u32::MAX,
            ..BreakerPolicy::default()
        },
        ..test_policy()
    };
    let (report, delivery) = run_with(policy, fake, &[1]);
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

    #[test]
    fn over_any_answers_a_delivered_event_was_taken_and_no_record_is_sent_more_than_twice_where_it_may_have_been_taken(
        sizes in proptest::collection::vec(1usize..=3, 1..60),
        script in proptest::collection::vec(any_answer(), 0..24),
    ) {
        let (report, delivery) = run(Fake::scripted(script), &sizes);
        prop_assert_eq!(report.outcomes.len(), sizes.len());
        let state = delivery.transport().state();
        for (e, outcome) in report.outcomes.iter().enumerate() {
            if *outcome == Outcome::Delivered {
                for k in 0..sizes[e] {
                    prop_assert!(
                        state.accepted.contains_key(&format!("{e}-{k}")),
                        "event {} delivered but record {} never taken", e, k
                    );
                }
            }
        }
        for (record, sends) in &state.sends_maybe_taken {
            prop_assert!(*sends <= 2, "record {} sent {} times where CleverTap may have taken it", record, sends);
        }
        for (record, copies) in &state.accepted {
            prop_assert!(*copies <= 2, "CleverTap took record {} {} times", record, copies);
        }
    }
}

fn any_answer() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        2 => Just(Behaviour::Success),
        2 => proptest::collection::vec(any::<u8>(), 1..8).prop_map(Behaviour::Partial),
        6 => proptest::collection::vec(any::<u8>(), 1..12).prop_map(Behaviour::Lossy),
        1 => Just(Behaviour::OverLimit),
        1 => Just(Behaviour::TimeoutAfterTaking),
        1 => Just(Behaviour::Status(400)),
        1 => Just(Behaviour::Status(429)),
        1 => Just(Behaviour::Status(503)),
        1 => Just(Behaviour::Status(401)),
        1 => Just(Behaviour::Timeout),
    ]
}

#[test]
fn an_incomplete_unprocessed_list_confirms_none_of_the_unlisted_records() {
    // One entry for 1000 records, nothing processed: the 999 unlisted were not taken. They are
    // too many to send alone, so they are left for the next delivery, never counted delivered.
    let answer = r#"{"status":"fail","processed":0,"unprocessed":[{"code":509,"error":"Skipped record number : 1"}]}"#;
    let (report, delivery) = run(Fake::scripted([Behaviour::Raw(200, answer)]), &[1; 1000]);
    assert!(matches!(report.outcomes[0], Outcome::Rejected(_)));
    for outcome in &report.outcomes[1..] {
        assert_eq!(
            outcome.reason().map(|r| r.code.as_ref()),
            Some(codes::CLEVERTAP_RECORD_UNCONFIRMED),
            "{outcome:?}"
        );
    }
    assert_eq!(delivery.transport().state().requests, 1);
}

#[test]
fn a_few_unconfirmed_records_are_sent_once_more_each_alone() {
    let answer =
        r#"{"status":"partial","unprocessed":[{"code":509,"error":"Skipped record number : 2"}]}"#;
    let (report, delivery) = run(Fake::scripted([Behaviour::Raw(200, answer)]), &[1; 4]);
    assert!(matches!(report.outcomes[1], Outcome::Rejected(_)));
    for e in [0, 2, 3] {
        assert_eq!(report.outcomes[e], Outcome::Delivered, "{e}");
    }
    let state = delivery.transport().state();
    assert_eq!(
        state.requests, 4,
        "the first request, then three of one record each"
    );
    assert_eq!(state.sends_maybe_taken["0-0"], 2);
    assert_eq!(
        state.sends_maybe_taken.get("1-0"),
        None,
        "refused by its code: not taken"
    );
}

#[test]
fn answers_that_never_account_for_the_records_send_each_at_most_twice() {
    // An entry that matches nothing, on every answer: before, every backoff step resent them all.
    let answer = r#"{"status":"partial","unprocessed":[{"code":509,"error":"x","record":{"identity":"nobody"}}]}"#;
    let fake = Fake::scripted(std::iter::repeat_n(Behaviour::Raw(200, answer), 1000));
    let (report, delivery) = run(fake, &[1; 20]);
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| o.reason().map(|r| r.code.as_ref())
                == Some(codes::CLEVERTAP_RECORD_UNCONFIRMED))
    );
    let state = delivery.transport().state();
    assert!(
        state.sends_maybe_taken.values().all(|&n| n == 2),
        "{:?}",
        state.sends_maybe_taken
    );
    assert_eq!(state.requests, 21);
}

#[test]
fn an_answer_past_the_old_one_mebibyte_limit_is_still_read() {
    // 1000 records all listed with their echo: an answer larger than the request itself.
    let sizes = [1; 1000];
    let fake = Fake::scripted([Behaviour::Partial(vec![0])]);
    let (report, delivery) = run(fake, &sizes);
    // Every byte 0: each record fails with code 555 (b % 3 == 0), echoed: resent once, then taken.
    assert!(report.outcomes.iter().all(|o| *o == Outcome::Delivered));
    assert_eq!(delivery.transport().state().requests, 2);
}

/// A policy whose circuit opens after `threshold` failures, for 10 s at first (up to 100 s).
fn breaker_policy(threshold: u32) -> DeliveryPolicy {
    DeliveryPolicy {
        breaker: BreakerPolicy {
            failure_threshold: threshold,
            min_failing: Duration::ZERO,
            cooldown: Duration::from_secs(10),
            max_cooldown: Duration::from_secs(100),
        },
        ..test_policy()
    }
}

fn codes_of(report: &DeliveryReport) -> Vec<String> {
    report
        .outcomes
        .iter()
        .map(|o| {
            o.reason()
                .map_or("delivered".into(), |r| r.code.to_string())
        })
        .collect()
}

#[test]
fn an_outage_opens_the_circuit_then_only_small_probes_go_until_one_is_answered() {
    paused_runtime().block_on(async {
        // 5 failures open it; the first probe fails too; then CleverTap is back.
        let fake = Fake::scripted(std::iter::repeat_n(Behaviour::Status(503), 6));
        let delivery = Delivery::new(fake, breaker_policy(5));
        let events = events(&[1, 1, 1]);
        let slices: Vec<&[Record]> = events.iter().map(Vec::as_slice).collect();
        let deadline = || Instant::now() + Duration::from_secs(30);
        let requests = |d: &Delivery<Fake>| d.transport().state().requests;

        let report = delivery.upload(&settings(), &slices, deadline()).await;
        assert_eq!(requests(&delivery), 5, "the threshold, then nothing more");
        assert_eq!(codes_of(&report), vec![codes::CLEVERTAP_CIRCUIT_OPEN; 3]);
        let message = &report.outcomes[0].reason().unwrap().message;
        assert!(message.contains("clevertap_unavailable"), "{message}");
        assert_eq!(report.stats.circuit_opened, 1);
        assert_eq!(report.stats.circuit_refused, 1);

        // While open: answered at once, without a request, deletes included.
        let started = Instant::now();
        let report = delivery.upload(&settings(), &slices, deadline()).await;
        let deleted = delivery.delete(&settings(), &["u-1"], deadline()).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(requests(&delivery), 5);
        assert_eq!(codes_of(&report), vec![codes::CLEVERTAP_CIRCUIT_OPEN; 3]);
        assert_eq!(codes_of(&deleted), vec![codes::CLEVERTAP_CIRCUIT_OPEN]);

        // After the cooldown (10 s ± 20 %): one probe of one record; it fails.
        tokio::time::sleep(Duration::from_secs(13)).await;
        let report = delivery.upload(&settings(), &slices, deadline()).await;
        assert_eq!(requests(&delivery), 6);
        assert_eq!(report.stats.probes, 1);
        assert_eq!(
            delivery.transport().state().items_per_request[5],
            PROBE_ITEMS
        );
        assert_eq!(codes_of(&report), vec![codes::CLEVERTAP_CIRCUIT_OPEN; 3]);

        // The cooldown doubled: still open after 13 s more.
        tokio::time::sleep(Duration::from_secs(13)).await;
        delivery.upload(&settings(), &slices, deadline()).await;
        assert_eq!(requests(&delivery), 6);

        // Then the probe is answered: the circuit closes and the rest goes in the same call.
        tokio::time::sleep(Duration::from_secs(12)).await;
        let report = delivery.upload(&settings(), &slices, deadline()).await;
        assert_eq!(codes_of(&report), vec!["delivered"; 3]);
        assert_eq!(report.stats.circuit_closed, 1);
        let state = delivery.transport().state();
        assert_eq!(state.items_per_request[6..], [1, 2]);
    });
}

#[test]
fn every_chunk_of_a_call_waits_for_the_probe_instead_of_being_refused() {
    paused_runtime().block_on(async {
        let fake = Fake::scripted(std::iter::repeat_n(Behaviour::Status(503), 2));
        let delivery = Delivery::new(fake, breaker_policy(2));
        let deadline = || Instant::now() + Duration::from_secs(30);
        let one = events(&[1]);
        let one: Vec<&[Record]> = one.iter().map(Vec::as_slice).collect();
        delivery.upload(&settings(), &one, deadline()).await;
        assert_eq!(delivery.transport().state().requests, 2);

        tokio::time::sleep(Duration::from_secs(13)).await;
        // Three chunks of 1000 records: the first probes, the others wait for its answer.
        let many = events(&[1; 3000]);
        let many: Vec<&[Record]> = many.iter().map(Vec::as_slice).collect();
        let report = delivery.upload(&settings(), &many, deadline()).await;
        assert!(report.outcomes.iter().all(|o| *o == Outcome::Delivered));
        let state = delivery.transport().state();
        assert_eq!(state.items_per_request[2], PROBE_ITEMS);
        assert_eq!(
            state.requests,
            2 + 4,
            "the probe, its chunk's rest, two more chunks"
        );
    });
}

#[test]
fn bad_requests_and_record_codes_never_open_the_circuit() {
    // Even with a threshold of one: CleverTap answered every time.
    let fake = Fake::scripted([
        Behaviour::Status(400),
        Behaviour::Status(413),
        Behaviour::Partial(vec![4]),
        Behaviour::Status(401),
        Behaviour::Status(429),
        Behaviour::Success,
        Behaviour::Success,
        Behaviour::Success,
    ]);
    let (report, delivery) = run_with(breaker_policy(1), fake, &[1, 1, 1, 1]);
    assert!(
        !codes_of(&report).contains(&codes::CLEVERTAP_CIRCUIT_OPEN.to_owned()),
        "{:?}",
        codes_of(&report)
    );
    assert_eq!(report.stats.circuit_opened, 0);
    assert!(!delivery.gate("ACC").breaker().is_open());
}

#[test]
fn a_429_lowers_the_accounts_bound_and_successes_raise_it_again() {
    paused_runtime().block_on(async {
        // Four chunks at once: the first answer is a 429 (at once), the others take a second.
        let script = std::iter::once(Behaviour::Status(429)).chain(std::iter::repeat_n(
            Behaviour::Slow(Duration::from_secs(1)),
            1000,
        ));
        let policy = DeliveryPolicy {
            max_concurrent_requests: 4,
            ..breaker_policy(5)
        };
        let delivery = Delivery::new(Fake::scripted(script), policy);
        let deadline = || Instant::now() + Duration::from_secs(30);
        let run = |chunks: usize| {
            let delivery = &delivery;
            async move {
                delivery.transport().state().max_in_flight = 0;
                let events = events(&vec![1; chunks * 1000]);
                let slices: Vec<&[Record]> = events.iter().map(Vec::as_slice).collect();
                let report = delivery.upload(&settings(), &slices, deadline()).await;
                assert!(report.outcomes.iter().all(|o| *o == Outcome::Delivered));
                delivery.transport().state().max_in_flight
            }
        };
        let bound = || delivery.gate("ACC").limiter().bound();

        assert_eq!(
            run(4).await,
            2,
            "after the 429 the others went two at a time"
        );
        assert_eq!(bound(), 2, "halved once");
        // Four successes so far; six more raise the bound by one.
        assert_eq!(run(6).await, 2, "never more than the lowered bound");
        assert_eq!(bound(), 3);
        // Step by step back to the maximum, never above it.
        assert!(run(40).await <= 4);
        assert_eq!(bound(), 4);
        assert_eq!(run(8).await, 4);
    });
}

#[test]
fn a_blip_of_failures_is_left_to_the_resends_and_never_opens_the_circuit() {
    // Eight 503s in a row, within a second or two: more than the threshold, but the default
    // policy wants the failures to last 10 s before it opens.
    let fake = Fake::scripted(std::iter::repeat_n(Behaviour::Status(503), 8));
    let (report, delivery) = run(fake, &[1, 1]);
    assert_eq!(codes_of(&report), vec!["delivered"; 2]);
    assert_eq!(report.stats.circuit_opened, 0);
    assert!(!delivery.gate("ACC").breaker().is_open());
    assert_eq!(delivery.transport().state().requests, 9);
}

#[test]
fn events_dynamic_config_sends_elsewhere_go_in_requests_of_their_own_account() {
    paused_runtime().block_on(async {
        let delivery = Delivery::new(Fake::default(), test_policy());
        let account = |id: &str, passcode: &str| {
            Some(Arc::new(Account {
                account_id: id.to_owned(),
                passcode: crate::settings::Secret::new(passcode),
                region: crate::clevertap::endpoint::Region::Default,
            }))
        };
        let mut events = events(&[1, 1, 1, 2]);
        for (i, to) in [
            (0, account("B", "pc-b")),
            (2, account("C", "pc-c")),
            (3, account("B", "pc-b")),
        ] {
            events[i] = events[i]
                .drain(..)
                .map(|r| r.with_account(to.clone()))
                .collect();
        }
        let slices: Vec<&[Record]> = events.iter().map(Vec::as_slice).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        let report = delivery.upload(&settings(), &slices, deadline).await;
        let state = delivery.transport().state();
        let mut sent: Vec<(String, String, usize)> = state
            .sent_to
            .iter()
            .zip(&state.items_per_request)
            .map(|((_, account, passcode), n)| (account.clone(), passcode.clone(), *n))
            .collect();
        sent.sort();
        // One request per account: B's two events (three records) together, with B's passcode.
        assert_eq!(
            sent,
            [
                ("ACC".into(), "pc-secret".into(), 1),
                ("B".into(), "pc-b".into(), 3),
                ("C".into(), "pc-c".into(), 1),
            ]
        );
        assert_eq!(report.outcomes, vec![Outcome::Delivered; 4]);
        assert_eq!(report.stats.requests as usize, state.requests);
        assert_eq!(report.stats.records_accepted, 5);
    });
}

#[test]
fn a_400_to_everything_retries_every_record_in_three_requests_and_counts_for_the_circuit() {
    // A stand-in answering 400 to every upload: the request and both its halves are refused
    // whole, so nothing is dead-lettered and the halving stops there.
    let fake = Fake::scripted(std::iter::repeat_n(Behaviour::Status(400), 1000));
    let (report, delivery) = run_with(breaker_policy(1), fake, &[1; 100]);
    let codes = codes_of(&report);
    assert!(
        codes.iter().all(|c| c == codes::CLEVERTAP_REFUSED_WHOLE),
        "{codes:?}"
    );
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| o.status() == crate::outcome::Status::Retry)
    );
    let requests = delivery.transport().state().requests;
    assert!(requests <= 100, "{requests} requests for 100 records");
    assert_eq!(requests, 3);
    assert_eq!(
        report.stats.circuit_opened, 1,
        "the refusal counts for the circuit"
    );
    assert!(delivery.gate("ACC").breaker().is_open());
}

#[test]
fn two_records_refused_whole_each_are_retried_not_rejected() {
    let fake = Fake::scripted(std::iter::repeat_n(Behaviour::Status(400), 10));
    let (report, delivery) = run(fake, &[1, 1]);
    assert_eq!(
        codes_of(&report),
        [
            codes::CLEVERTAP_REFUSED_WHOLE,
            codes::CLEVERTAP_REFUSED_WHOLE
        ]
    );
    assert_eq!(delivery.transport().state().requests, 3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever CleverTap answers to the halving, a call of N records (one request's worth)
    /// costs at most max(N, 3) requests (one for N = 1), and at most 1 + 2⌈log₂ N⌉.
    #[test]
    fn refusals_of_any_pattern_cost_at_most_max_n_3_requests(
        n in 1usize..=300,
        script in proptest::collection::vec(
            prop_oneof![
                2 => Just(Behaviour::Status(400)),
                1 => Just(Behaviour::Status(413)),
                2 => Just(Behaviour::Success),
            ],
            0..64,
        ),
    ) {
        let sizes = vec![1; n];
        let (report, delivery) = run(Fake::scripted(script), &sizes);
        prop_assert_eq!(report.outcomes.len(), n);
        let requests = delivery.transport().state().requests;
        let log2 = usize::BITS - (n - 1).leading_zeros();
        let bound = 1 + 2 * log2 as usize;
        prop_assert!(requests <= bound, "{} requests for {} records (bound {})", requests, n, bound);
        prop_assert!(requests <= job::halving_limit(n), "{} requests for {} records", requests, n);
    }
}

/// Runs `n` one-record events against a CleverTap refusing (`status`) every request holding
/// one of `bad` (record indexes); the report, the sizes of the requests, and the delivery.
fn run_refusing(
    policy: DeliveryPolicy,
    n: usize,
    bad: &[usize],
    status: u16,
) -> (DeliveryReport, Vec<usize>, Delivery<Fake>) {
    let fake = Fake::refusing(bad.iter().map(|e| format!("{e}-0")), status);
    let (report, delivery) = run_with(policy, fake, &vec![1; n]);
    let sizes = delivery.transport().state().items_per_request.clone();
    (report, sizes, delivery)
}

/// Checks one run over `bad`: the request limit, one outcome per record, a good record never
/// rejected, a record rejected only for its own refusal, a retry only as `refused_whole`.
fn check_refusing(n: usize, bad: &[usize], status: u16) -> usize {
    let (report, sizes, _) = run_refusing(test_policy(), n, bad, status);
    assert!(
        sizes.len() <= job::halving_limit(n),
        "{} requests for {n} records, bad {bad:?} ({status}): {sizes:?}",
        sizes.len()
    );
    assert_eq!(report.outcomes.len(), n);
    let rejected_code = if status == 400 {
        codes::CLEVERTAP_BAD_REQUEST
    } else {
        codes::CLEVERTAP_PAYLOAD_TOO_LARGE
    };
    for (e, outcome) in report.outcomes.iter().enumerate() {
        match outcome {
            Outcome::Delivered => assert!(!bad.contains(&e), "{n} {bad:?}: bad {e} delivered"),
            Outcome::Rejected(reason) => {
                assert!(bad.contains(&e), "{n} {bad:?}: good record {e} rejected");
                assert_eq!(reason.code, rejected_code);
            }
            Outcome::Retry(reason) => {
                assert_eq!(
                    reason.code,
                    codes::CLEVERTAP_REFUSED_WHOLE,
                    "{n} {bad:?} {e}"
                )
            }
            other => panic!("{n} {bad:?}: {e} {other:?}"),
        }
    }
    sizes.len()
}

/// The worst case of the halving's requests for N = 1..=8 (docs/contracts.md §5).
const WORST_REQUESTS: [usize; 8] = [1, 3, 3, 4, 5, 6, 7, 7];

#[test]
fn the_halving_sends_at_most_max_n_3_requests_whatever_records_are_bad() {
    // Every set of bad records up to 8 records; beyond, none, all, each one, each pair of
    // neighbours and a spread of pseudo-random sets, up to 64 records; 400 and 413 alike.
    for n in 1..=64usize {
        let mut sets: Vec<Vec<usize>> = Vec::new();
        if n <= 8 {
            for mask in 0u32..(1 << n) {
                sets.push((0..n).filter(|i| mask & (1 << i) != 0).collect());
            }
        } else {
            sets.push(Vec::new());
            sets.push((0..n).collect());
            sets.extend((0..n).map(|i| vec![i]));
            sets.extend((1..n).map(|i| vec![i - 1, i]));
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ n as u64;
            for _ in 0..16 {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let density = 1 + (x >> 60) as usize;
                sets.push(
                    (0..n)
                        .filter(|i| (x >> (i % 61)) as usize % 16 < density)
                        .collect(),
                );
            }
        }
        let worst = [400, 413]
            .iter()
            .flat_map(|&status| sets.iter().map(move |bad| check_refusing(n, bad, status)))
            .max()
            .unwrap_or(0);
        let log2 = (usize::BITS - (n - 1).leading_zeros()) as usize;
        assert!(
            worst <= job::halving_limit(n).min(1 + 2 * log2),
            "{n}: {worst}"
        );
        if n <= 8 {
            assert_eq!(worst, WORST_REQUESTS[n - 1], "{n} records");
        }
    }
}

#[test]
fn one_bad_record_among_two_to_eight_is_rejected_alone_where_the_limit_allows() {
    for n in 2..=8usize {
        for at in 0..n {
            let (report, sizes, delivery) = run_refusing(breaker_policy(1), n, &[at], 400);
            assert!(sizes.len() <= job::halving_limit(n), "{n} {at}: {sizes:?}");
            let resolved = report.outcomes[at].status() == crate::outcome::Status::Rejected;
            for (e, outcome) in report.outcomes.iter().enumerate() {
                match outcome.reason() {
                    None => assert_ne!(e, at, "{n} {at}"),
                    Some(r) if e == at && resolved => {
                        assert_eq!(r.code, codes::CLEVERTAP_BAD_REQUEST)
                    }
                    Some(r) => {
                        assert_eq!(
                            outcome.status(),
                            crate::outcome::Status::Retry,
                            "{n} {at} {e}"
                        );
                        assert_eq!(r.code, codes::CLEVERTAP_REFUSED_WHOLE);
                        assert!(r.message.contains("request limit"), "{}", r.message);
                    }
                }
            }
            // From 7 records (and for 2) the limit always finds it; never counted as an outage.
            if n == 2 || n >= 7 {
                assert!(resolved, "{n} records, bad at {at}: {:?}", report.outcomes);
                assert!(
                    report
                        .outcomes
                        .iter()
                        .filter(|o| **o == Outcome::Delivered)
                        .count()
                        == n - 1
                );
            }
            assert!(!delivery.gate("ACC").breaker().is_open(), "{n} {at}");
        }
    }
}

#[test]
fn a_blanket_refusal_of_two_to_ten_records_is_retried_in_three_requests_and_counted_once() {
    for status in [400, 413] {
        for n in 2..=10usize {
            let all: Vec<usize> = (0..n).collect();
            for (threshold, opens) in [(1, true), (2, false)] {
                let (report, sizes, delivery) =
                    run_refusing(breaker_policy(threshold), n, &all, status);
                assert_eq!(sizes.len(), 3, "{n} ({status}): {sizes:?}");
                assert_eq!(
                    codes_of(&report),
                    vec![codes::CLEVERTAP_REFUSED_WHOLE; n],
                    "{n} ({status})"
                );
                assert!(
                    report
                        .outcomes
                        .iter()
                        .all(|o| o.status() == crate::outcome::Status::Retry)
                );
                assert_eq!(
                    delivery.gate("ACC").breaker().is_open(),
                    opens,
                    "{n} {threshold}"
                );
            }
        }
    }
}

#[test]
fn a_probe_refused_whole_is_retried_not_rejected_so_a_refusal_of_everything_rejects_nothing() {
    paused_runtime().block_on(async {
        // Whatever answers refuses everything with 400, for ever.
        let fake = Fake::scripted(std::iter::repeat_n(Behaviour::Status(400), 100));
        let delivery = Delivery::new(fake, breaker_policy(1));
        let events = events(&[1, 1, 1, 1]);
        let slices: Vec<&[Record]> = events.iter().map(Vec::as_slice).collect();
        let deadline = || Instant::now() + Duration::from_secs(30);
        // The whole and both halves refused: a refusal of everything, which opens the circuit.
        let report = delivery.upload(&settings(), &slices, deadline()).await;
        assert_eq!(codes_of(&report), vec![codes::CLEVERTAP_REFUSED_WHOLE; 4]);
        assert!(delivery.gate("ACC").breaker().is_open());
        // After the cooldown the probe goes: one record, refused whole like everything else.
        // One record refused on a probe says nothing about that record: retried, never
        // rejected (dead-lettered), and nothing else of the call is judged either.
        tokio::time::sleep(Duration::from_secs(13)).await;
        let report = delivery.upload(&settings(), &slices, deadline()).await;
        assert_eq!(report.stats.probes, 1);
        assert!(
            report
                .outcomes
                .iter()
                .all(|o| o.status() == crate::outcome::Status::Retry),
            "{:?}",
            codes_of(&report)
        );
        assert_eq!(report.stats.records_rejected, 0);
    });
}

#[test]
fn one_record_refused_whole_is_rejected_in_one_request() {
    let (report, sizes, delivery) = run_refusing(breaker_policy(1), 1, &[0], 400);
    assert_eq!(sizes, [1]);
    assert_eq!(codes_of(&report), [codes::CLEVERTAP_BAD_REQUEST]);
    assert_eq!(
        report.outcomes[0].status(),
        crate::outcome::Status::Rejected
    );
    assert!(!delivery.gate("ACC").breaker().is_open());
}
