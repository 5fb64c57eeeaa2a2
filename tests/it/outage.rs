//! A day-long CleverTap outage, in compressed time, through the real binary: a moto SQS queue
//! with the template's redrive policy (its `MaxReceiveCount` default), and a poller that plays
//! the Lambda event source mapping: it receives up to the batch size, invokes the function
//! through the Runtime API with the real receipt handles and receive counts, deletes what the
//! function did not report, and leaves the rest to SQS.
//!
//! Time is compressed through the function's own knobs, never by sleeping less: every
//! duration of the schedule (visibility base and cap, the circuit's cooldown, the outage) is
//! divided by the same factor, the default base in seconds, so that the base becomes SQS's
//! smallest unit (1 s). The verdicts count receives, requests and dead letters; none depends
//! on how fast the machine is.

use crate::support::lambda_events::message_attribute;
use crate::support::mock_clevertap::{MockCleverTap, Reply};
use crate::support::moto::MotoServer;
use crate::support::repo_root;
use crate::support::runtime_api::{LambdaProcess, RuntimeApi};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use rudder_clevertap::config;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// The poller's batch size: at most this many messages per invocation. The template's (its
/// `QueueBatchSize` default, 10,000, and at most 6 MB) is larger, but these tests never have
/// more than 86 messages on the queue, so both hand over the same batches.
const BATCH_SIZE: usize = 100;
/// The function's timeout in the template: each invocation's deadline.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The source queue's own visibility timeout in these tests: what a message waits when the
/// function does not change it. Not scaled, so a missing visibility change shows as a stall.
const QUEUE_VISIBILITY_TIMEOUT: u64 = 30;
/// One hour, in seconds.
const HOUR: u64 = 3600;

/// The time compression: the default visibility base, in seconds, becomes 1 s.
fn factor() -> u64 {
    config::DEFAULT_VISIBILITY_BACKOFF_BASE.as_secs()
}

/// `MaxReceiveCount` as deployed: the template's default.
fn max_receive_count() -> u32 {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let default = &template["Parameters"]["MaxReceiveCount"]["Default"];
    default
        .as_u64()
        .expect("MaxReceiveCount has a numeric default") as u32
}

/// The function's variables for the compressed schedule.
fn scaled_env() -> Vec<(&'static str, String)> {
    let f = factor();
    let cap = config::DEFAULT_VISIBILITY_BACKOFF_CAP.as_secs();
    assert_eq!(cap % f, 0, "the cap scales to whole seconds");
    let cooldown = config::DEFAULT_CIRCUIT_COOLDOWN.as_secs_f64() / f as f64;
    vec![
        ("VISIBILITY_BACKOFF_BASE_SECONDS", "1".into()),
        ("VISIBILITY_BACKOFF_CAP_SECONDS", (cap / f).to_string()),
        // 60 s scaled is less than SQS's one second: one second it is.
        ("VISIBILITY_CONFIG_ERROR_SECONDS", "1".into()),
        ("CIRCUIT_COOLDOWN_SECONDS", format!("{cooldown:.4}")),
        // As deployed.
        ("RETRY_BUDGET_SECONDS", "20".into()),
        ("SECRETS_TTL_SECONDS", "300".into()),
    ]
}

/// moto with the source queue (the template's redrive policy) and its dead-letter queue.
struct Queues {
    sqs: aws_sdk_sqs::Client,
    url: String,
    arn: String,
    dlq_url: String,
    /// FIFO queues (both, as SQS wants): messages go in one group.
    fifo: bool,
}

impl Queues {
    /// The source queue and its dead-letter queue, both FIFO (`QueueType=fifo`) or standard.
    async fn create_of_type(moto: &MotoServer, fifo: bool) -> Queues {
        let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
        let (suffix, fifo_attributes): (&str, &[(QueueAttributeName, &str)]) = if fifo {
            (
                ".fifo",
                &[
                    (QueueAttributeName::FifoQueue, "true"),
                    (QueueAttributeName::ContentBasedDeduplication, "true"),
                ],
            )
        } else {
            ("", &[])
        };
        let dlq_url = moto
            .create_queue_with(&format!("soak-dlq{suffix}"), fifo_attributes)
            .await;
        let dlq_arn = queue_arn(&sqs, &dlq_url).await;
        let redrive = json!({"deadLetterTargetArn": dlq_arn,
                             "maxReceiveCount": max_receive_count()});
        let queue = sqs
            .create_queue()
            .queue_name(format!("soak-events{suffix}"));
        let url = fifo_attributes
            .iter()
            .fold(queue, |q, (name, value)| q.attributes(name.clone(), *value))
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                QUEUE_VISIBILITY_TIMEOUT.to_string(),
            )
            .attributes(QueueAttributeName::MessageRetentionPeriod, "345600")
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let arn = queue_arn(&sqs, &url).await;
        Queues {
            sqs,
            url,
            arn,
            dlq_url,
            fifo,
        }
    }

    async fn send(&self, body: &str, destination: &str) {
        let mut send = self.sqs.send_message();
        if self.fifo {
            send = send.message_group_id("user-1");
        }
        send.queue_url(&self.url)
            .message_body(body)
            .message_attributes(
                "destinationId",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(destination)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Messages on a queue, visible or not. moto counts the visible and the invisible ones at
    /// two moments, so a message turning visible in between is in neither count: two readings,
    /// apart, never both miss it.
    async fn depth(&self, url: &str) -> u64 {
        let first = self.depth_once(url).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        first.max(self.depth_once(url).await)
    }

    async fn depth_once(&self, url: &str) -> u64 {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let get = |name: QueueAttributeName| -> u64 {
            attributes
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        get(QueueAttributeName::ApproximateNumberOfMessages)
            + get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    }

    /// Everything on the dead-letter queue: (body, destinationId, rejectionCode), reading
    /// until `expected` came or 5 s passed.
    async fn dead_letters(&self, expected: usize) -> Vec<(String, String, Option<String>)> {
        let mut got = Vec::new();
        let started = Instant::now();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(600)
                .message_attribute_names("All")
                .send()
                .await
                .unwrap();
            for m in out.messages() {
                let attribute = |name: &str| {
                    m.message_attributes()
                        .and_then(|a| a.get(name))
                        .and_then(|v| v.string_value())
                        .map(str::to_owned)
                };
                got.push((
                    m.body().unwrap_or_default().to_owned(),
                    attribute("destinationId").unwrap_or_default(),
                    attribute("rejectionCode"),
                ));
            }
            if out.messages().is_empty()
                && (got.len() >= expected || started.elapsed() > Duration::from_secs(5))
            {
                return got;
            }
            if out.messages().is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .unwrap()
}

/// The Lambda event source mapping, played by the test: one poller, one function instance.
struct Poller<'a> {
    queues: &'a Queues,
    api: &'a RuntimeApi,
    /// Per message id, the highest receive count seen.
    receives: HashMap<String, u32>,
    invocations: usize,
    /// Each invocation's deadline.
    timeout: Duration,
}

impl<'a> Poller<'a> {
    fn new(queues: &'a Queues, api: &'a RuntimeApi) -> Self {
        Poller {
            queues,
            api,
            receives: HashMap::new(),
            invocations: 0,
            timeout: FUNCTION_TIMEOUT,
        }
    }

    /// Receives up to the batch size; if anything came, invokes the function with it, deletes
    /// what it did not report and leaves the rest. Returns how many messages came.
    async fn poll(&mut self) -> usize {
        let sqs = &self.queues.sqs;
        let mut records = Vec::new();
        let mut handles = HashMap::new();
        while records.len() < BATCH_SIZE {
            let out = sqs
                .receive_message()
                .queue_url(&self.queues.url)
                .max_number_of_messages(10)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .unwrap();
            let got = out.messages().len();
            for m in out.messages() {
                let id = m.message_id().unwrap().to_owned();
                let attributes: serde_json::Map<String, Value> = m
                    .attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                            .collect()
                    })
                    .unwrap_or_default();
                let count: u32 = attributes["ApproximateReceiveCount"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let seen = self.receives.entry(id.clone()).or_default();
                *seen = (*seen).max(count);
                let message_attributes: serde_json::Map<String, Value> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    message_attribute(
                                        v.string_value().unwrap_or_default(),
                                        v.data_type(),
                                    ),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let handle = m.receipt_handle().unwrap().to_owned();
                records.push(json!({
                    "messageId": id, "receiptHandle": handle, "body": m.body(),
                    "attributes": attributes, "messageAttributes": message_attributes,
                    "md5OfBody": m.md5_of_body(), "eventSource": "aws:sqs",
                    "eventSourceARN": self.queues.arn, "awsRegion": "us-east-1",
                }));
                handles.insert(id, handle);
            }
            if got < 10 {
                break;
            }
        }
        if records.is_empty() {
            return 0;
        }
        let received = records.len();
        self.invocations += 1;
        let response = self
            .api
            .invoke(json!({"Records": records}).to_string(), self.timeout)
            .await
            .response();
        let reported: BTreeSet<String> =
            crate::support::lambda_events::batch_item_failures(&response)
                .into_iter()
                .collect();
        let done: Vec<DeleteMessageBatchRequestEntry> = handles
            .iter()
            .filter(|(id, _)| !reported.contains(*id))
            .enumerate()
            .map(|(n, (_, handle))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(n.to_string())
                    .receipt_handle(handle)
                    .build()
                    .unwrap()
            })
            .collect();
        for chunk in done.chunks(10) {
            sqs.delete_message_batch()
                .queue_url(&self.queues.url)
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await
                .unwrap();
        }
        received
    }

    fn max_receives(&self) -> u32 {
        self.receives.values().copied().max().unwrap_or(0)
    }
}

fn track(user: &str) -> String {
    json!({"type": "track", "event": "Viewed", "userId": user, "messageId": format!("e-{user}")})
        .to_string()
}

/// The users CleverTap accepted: identities of records in requests answered while up.
fn accepted(clevertap: &MockCleverTap) -> BTreeSet<String> {
    clevertap
        .requests()
        .iter()
        .filter(|r| !r.while_down)
        .flat_map(|r| r.records())
        .filter_map(|r| r["identity"].as_str().map(str::to_owned))
        .collect()
}

/// The EMF documents the function wrote, summed per metric name.
fn metric_total(logs: &str, name: &str) -> u64 {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .filter_map(|v| v[name].as_u64())
        .sum()
}

struct Soak {
    _moto: MotoServer,
    clevertap: MockCleverTap,
    api: RuntimeApi,
    process: LambdaProcess,
}

impl Soak {
    async fn start(secrets: &[(&str, Value)]) -> (Soak, Queues) {
        Soak::start_on(secrets, false).await
    }

    /// [`Soak::start`] over FIFO queues (`fifo`) or standard ones.
    async fn start_on(secrets: &[(&str, Value)], fifo: bool) -> (Soak, Queues) {
        let moto = MotoServer::start();
        moto.create_secrets(secrets).await;
        let queues = Queues::create_of_type(&moto, fifo).await;
        let clevertap = MockCleverTap::start();
        let api = RuntimeApi::start().await;
        let mut env = moto.env();
        env.push(("CLEVERTAP_ENDPOINT", clevertap.url().to_owned()));
        env.push(("DEAD_LETTER_QUEUE_URL", queues.dlq_url.clone()));
        env.extend(scaled_env());
        let process = LambdaProcess::start(&api, &env);
        (
            Soak {
                _moto: moto,
                clevertap,
                api,
                process,
            },
            queues,
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_long_outage_dead_letters_nothing_and_everything_is_delivered_after_it() {
    let (soak, queues) = Soak::start(&[
        (
            "dest-a",
            json!({"accountId": "ACC-A", "passcode": "pc-a-1234"}),
        ),
        (
            "dest-b",
            json!({"accountId": "ACC-B", "passcode": "pc-b-5678"}),
        ),
    ])
    .await;
    let max_receives = max_receive_count();
    let f = factor();
    let scaled_hour = Duration::from_millis(HOUR * 1000 / f);
    let outage = scaled_hour * 24;
    soak.clevertap.go_down(Reply::status(503, "{}"));

    // 20 messages per destination wait when the outage begins; 1 more per destination
    // arrives every (scaled) hour of it.
    let mut users = Vec::new();
    for n in 0..40 {
        let (user, destination) = (format!("u-{n}"), ["dest-a", "dest-b"][n % 2]);
        queues.send(&track(&user), destination).await;
        users.push(user);
    }
    let mut poller = Poller::new(&queues, &soak.api);
    let started = Instant::now();
    let mut hours_sent = 0;
    while started.elapsed() < outage {
        let hour = (started.elapsed().as_millis() / scaled_hour.as_millis()) as usize;
        while hours_sent < hour {
            hours_sent += 1;
            for destination in ["dest-a", "dest-b"] {
                let user = format!("u-h{hours_sent}-{destination}");
                queues.send(&track(&user), destination).await;
                users.push(user);
            }
        }
        if poller.poll().await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let requests_during_outage = soak.clevertap.request_count();
    let invocations_during_outage = poller.invocations;
    let receives_during_outage = poller.max_receives();
    assert!(
        accepted(&soak.clevertap).is_empty(),
        "nothing is accepted while CleverTap is down"
    );

    // CleverTap is back: every message comes back within the cap, and is delivered.
    soak.clevertap.come_up();
    let recovery = Instant::now();
    let everyone: BTreeSet<String> = users.iter().cloned().collect();
    while accepted(&soak.clevertap) != everyone || queues.depth(&queues.url).await > 0 {
        assert!(
            recovery.elapsed() < Duration::from_secs(120),
            "not delivered after recovery: {} of {}\n{}",
            accepted(&soak.clevertap).len(),
            everyone.len(),
            soak.process.logs()
        );
        if poller.poll().await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let dead_letters = queues.dead_letters(0).await;
    assert!(
        dead_letters.is_empty(),
        "dead-lettered during the outage: {dead_letters:?}"
    );
    assert_eq!(queues.depth(&queues.dlq_url).await, 0);
    assert!(
        poller.max_receives() < max_receives,
        "a message was received {} times of {max_receives}",
        poller.max_receives()
    );

    // CleverTap saw a trickle. Per account: the first invocation's resends until the circuit
    // opens (failures lasting CIRCUIT_MIN_FAILING: within the 20 s budget, backoff up to 5 s,
    // that is at most 10 requests), then at most one probe per invocation, and never faster
    // than the shortest cooldown once failed probes have doubled it to its cap.
    let before_opening = 10;
    let accounts = 2;
    let per_invocation_bound = accounts * (before_opening + invocations_during_outage);
    let shortest_cooldown =
        config::DEFAULT_CIRCUIT_COOLDOWN * config::CIRCUIT_MAX_COOLDOWN_FACTOR * (100 - 20)
            / 100
            / f as u32;
    let cooldown_bound = accounts
        * (before_opening + (outage.as_millis() / shortest_cooldown.as_millis()) as usize)
        // The first cooldowns are shorter (30 s, 60 s, ... before the cap).
        + accounts * 4;
    let per_scaled_hour = requests_during_outage as f64 / 24.0;
    eprintln!(
        "outage soak: factor {f}, {} messages, {invocations_during_outage} invocations during \
         the outage, {requests_during_outage} CleverTap requests during the outage \
         ({per_scaled_hour:.1} per scaled hour, for 2 accounts), at most {receives_during_outage} \
         receives of a message during the outage and {} in all (MaxReceiveCount \
         {max_receives}), {} dead-lettered",
        users.len(),
        poller.max_receives(),
        dead_letters.len()
    );
    assert!(
        requests_during_outage <= per_invocation_bound,
        "{requests_during_outage} requests > {per_invocation_bound}"
    );
    assert!(
        requests_during_outage <= cooldown_bound,
        "{requests_during_outage} requests > {cooldown_bound}"
    );
    let logs = soak.process.logs();
    assert!(metric_total(&logs, "CircuitOpened") >= 2, "both accounts");
    assert!(metric_total(&logs, "CircuitClosed") >= 2, "both accounts");
    assert!(metric_total(&logs, "VisibilityExtended") > 0);
    assert_eq!(metric_total(&logs, "VisibilityChangeFailed"), 0, "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_dead_letters_its_messages_after_max_receives_while_others_deliver() {
    let (soak, queues) = Soak::start(&[(
        "dest-a",
        json!({"accountId": "ACC-A", "passcode": "pc-a-1234"}),
    )])
    .await;
    let max_receives = max_receive_count();
    let mut missing = BTreeSet::new();
    let mut healthy = BTreeSet::new();
    for n in 0..10 {
        let user = format!("u-ok-{n}");
        queues.send(&track(&user), "dest-a").await;
        healthy.insert(user);
        let body = track(&format!("u-lost-{n}"));
        queues.send(&body, "dest-missing").await;
        missing.insert(body);
    }
    let mut poller = Poller::new(&queues, &soak.api);
    let started = Instant::now();
    while queues.depth(&queues.url).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "still {} messages on the queue after {:?}\n{}",
            queues.depth(&queues.url).await,
            started.elapsed(),
            soak.process.logs()
        );
        if poller.poll().await == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(accepted(&soak.clevertap), healthy);
    let dead_letters = queues.dead_letters(missing.len()).await;
    let bodies: BTreeSet<String> = dead_letters.iter().map(|(b, _, _)| b.clone()).collect();
    assert_eq!(
        bodies, missing,
        "exactly the missing destination's messages"
    );
    for (_, destination, code) in &dead_letters {
        assert_eq!(destination, "dest-missing");
        assert_eq!(*code, None, "moved by SQS's redrive policy, not rejected");
    }
    // Each came back on the short fixed schedule until SQS gave up on it.
    let lost: Vec<u32> = poller
        .receives
        .values()
        .copied()
        .filter(|&n| n > 1)
        .collect();
    assert_eq!(lost.len(), 10);
    assert!(lost.iter().all(|&n| n == max_receives), "{lost:?}");
    eprintln!(
        "missing secret: {} messages dead-lettered after {max_receives} receives each in {:?}, \
         {} healthy delivered, {} invocations",
        dead_letters.len(),
        started.elapsed(),
        healthy.len(),
        poller.invocations
    );
}

/// A regulation far larger than one invocation's deadline can delete, scaled ten times (100 ms
/// per delete call, a 6 s deadline: 30 calls fit, as 27 calls of 1 s fit a 30 s one): the
/// users deleted stay deleted and only the rest comes back, as a message of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regulation_of_5000_users_is_deleted_within_8_receives_each_user_in_at_most_2_calls() {
    regulation_of_5000_users_makes_progress(false).await;
}

/// The same over a FIFO queue: the regulation comes back whole (a message of its own would
/// break the group's order), and the container remembers which users it deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_fifo_queue_a_regulation_of_5000_users_is_deleted_within_8_receives_each_user_in_at_most_2_calls()
 {
    regulation_of_5000_users_makes_progress(true).await;
}

async fn regulation_of_5000_users_makes_progress(fifo: bool) {
    let (soak, queues) = Soak::start_on(
        &[(
            "dest-a",
            json!({"accountId": "ACC-A", "passcode": "pc-a-1234"}),
        )],
        fifo,
    )
    .await;
    soak.clevertap
        .respond_with(|req| Reply::success(req).after(Duration::from_millis(100)));
    let users: Vec<Value> = (0..5000)
        .map(|i| json!({"userId": format!("u-{i}")}))
        .collect();
    let regulation = json!({"regulationType": "suppress_with_delete",
                            "destinationIds": ["dest-a"], "users": users});
    queues.send(&regulation.to_string(), "dest-a").await;
    let mut poller = Poller::new(&queues, &soak.api);
    poller.timeout = Duration::from_secs(6);
    let started = Instant::now();
    let mut receives = 0;
    while receives < 8 && started.elapsed() < Duration::from_secs(120) {
        let got = poller.poll().await;
        receives += got;
        if got == 0 {
            if queues.depth(&queues.url).await == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut calls: HashMap<String, usize> = HashMap::new();
    for r in soak.clevertap.requests() {
        for id in r.identities() {
            *calls.entry(id).or_default() += 1;
        }
    }
    assert_eq!(
        calls.len(),
        5000,
        "{} users deleted after {receives} receives\n{}",
        calls.len(),
        soak.process
            .logs()
            .lines()
            .filter(|l| l.contains("regulation"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(receives <= 8, "{receives} receives");
    let most = calls.values().copied().max().unwrap_or(0);
    assert!(most <= 2, "a user was in {most} delete calls");
    assert_eq!(
        queues.depth(&queues.url).await,
        0,
        "nothing left on the queue"
    );
}
