//! In-memory stand-ins for the handler's ports (settings, CleverTap, dead-letter queue), so SQS
//! and HTTP assembly is tested without a network; and the helpers that run a payload through
//! the handler's one entry point, as the Lambda runtime does.

use crate::config::Config;
use crate::credentials::CredentialsError;
use crate::dead_letters::letter::{DeadLetter, DeadLetterError, MAX_BATCH_BYTES};
use crate::delivery::DeliveryReport;
use crate::handler::{Handler, HandlerError};
use crate::outcome::Outcome;
use crate::ports::{CleverTapApi, DeadLetterSink, EventQueue, MessageVisibility, SettingsSource};
use crate::queue::{EnqueueError, QueuedMessage};
use crate::settings::{DestinationId, DestinationSettings};
use crate::transform::Record;
use crate::visibility::{VisibilityChange, VisibilityError};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

thread_local! {
    /// What the test hooks saw, in order, while a test on this thread traces ([`start_trace`]).
    /// The handler runs on the test's thread (a current-thread runtime), so one thread's trace
    /// is one test's.
    static TRACE: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// Starts an empty trace on this thread.
pub fn start_trace() {
    TRACE.with(|t| *t.borrow_mut() = Some(Vec::new()));
}

/// Adds `line()` to this thread's trace, if one was started: the test hook of the code under
/// test (a message made a unit) and of the fakes (a request sent).
pub fn trace(line: impl FnOnce() -> String) {
    TRACE.with(|t| {
        if let Some(trace) = t.borrow_mut().as_mut() {
            trace.push(line());
        }
    });
}

/// The trace so far, and no more tracing on this thread.
pub fn take_trace() -> Vec<String> {
    TRACE.with(|t| t.borrow_mut().take().unwrap_or_default())
}

pub const TOKEN: &str = "tok-secret-7";
pub const PASSCODE: &str = "pc-secret-9";

pub fn settings_json(account: &str, token: bool) -> String {
    if token {
        format!(r#"{{"accountId":"{account}","passcode":"{PASSCODE}","webhookToken":"{TOKEN}"}}"#)
    } else {
        format!(r#"{{"accountId":"{account}","passcode":"{PASSCODE}"}}"#)
    }
}

/// Settings from a map; destinations not in it are `NotFound`; `down` ones `Unavailable`.
/// `rotated` settings replace a destination's once its entry is invalidated, as a secret updated
/// in Secrets Manager is seen once the cache lets go of it.
#[derive(Default)]
pub struct FakeSettings {
    pub known: HashMap<String, Arc<DestinationSettings>>,
    pub down: Vec<String>,
    /// Destinations whose secret is not usable settings (`secret_malformed`).
    pub malformed: Vec<String>,
    pub fetched: Mutex<Vec<String>>,
    pub invalidated: Mutex<Vec<String>>,
    pub rotated: Mutex<HashMap<String, Arc<DestinationSettings>>>,
    current: Mutex<HashMap<String, Arc<DestinationSettings>>>,
}

impl FakeSettings {
    pub fn with(destinations: &[(&str, &str)]) -> Self {
        FakeSettings {
            known: destinations
                .iter()
                .map(|(id, json)| {
                    (
                        (*id).to_owned(),
                        Arc::new(DestinationSettings::from_json(json).unwrap()),
                    )
                })
                .collect(),
            ..FakeSettings::default()
        }
    }
}

impl SettingsSource for FakeSettings {
    async fn settings(
        &self,
        destination: &DestinationId,
    ) -> Result<Arc<DestinationSettings>, CredentialsError> {
        self.fetched
            .lock()
            .unwrap()
            .push(destination.as_str().to_owned());
        if self.down.iter().any(|d| d == destination.as_str()) {
            return Err(CredentialsError::Unavailable {
                destination: destination.clone(),
                detail: "connection refused".into(),
            });
        }
        if self.malformed.iter().any(|d| d == destination.as_str()) {
            return Err(CredentialsError::Invalid {
                destination: destination.clone(),
                source: crate::settings::SettingsError::Malformed {
                    detail: "syntax error at line 1 column 2".into(),
                },
            });
        }
        let current = self
            .current
            .lock()
            .unwrap()
            .get(destination.as_str())
            .cloned();
        current
            .or_else(|| self.known.get(destination.as_str()).cloned())
            .ok_or_else(|| CredentialsError::NotFound(destination.clone()))
    }

    /// A re-read is recorded as an invalidation, then read as any lookup: the rotated
    /// settings, if any, are seen.
    async fn reread(
        &self,
        destination: &DestinationId,
        _since: tokio::time::Instant,
    ) -> Result<Arc<DestinationSettings>, CredentialsError> {
        self.invalidate(destination);
        self.settings(destination).await
    }

    fn invalidate(&self, destination: &DestinationId) {
        self.invalidated
            .lock()
            .unwrap()
            .push(destination.as_str().to_owned());
        if let Some(next) = self.rotated.lock().unwrap().remove(destination.as_str()) {
            self.current
                .lock()
                .unwrap()
                .insert(destination.as_str().to_owned(), next);
        }
    }
}

/// One recorded upload call: the account and each event's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub account: String,
    pub events: Vec<Vec<String>>,
}

/// How the fake delivery answers one event: from the account and the event's record texts.
pub type Answer = Box<dyn Fn(&str, &[String]) -> Outcome + Send + Sync>;

/// One recorded delete call: the account and the identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteCall {
    pub account: String,
    pub identities: Vec<String>,
}

/// How the fake delivery answers the delete of one identity: from the account and the identity.
pub type DeleteAnswer = Box<dyn Fn(&str, &str) -> Outcome + Send + Sync>;

/// CleverTap that records calls and answers with `answer(account, record texts)` per event, and
/// `delete_answer(account, identity)` per deleted identity.
pub struct FakeCleverTap {
    pub calls: Mutex<Vec<Call>>,
    pub answer: Answer,
    pub credentials_rejected: bool,
    pub deletes: Mutex<Vec<DeleteCall>>,
    pub delete_answer: DeleteAnswer,
}

impl FakeCleverTap {
    pub fn delivering() -> Self {
        FakeCleverTap::answering(|_, _| Outcome::Delivered)
    }

    pub fn answering(answer: impl Fn(&str, &[String]) -> Outcome + Send + Sync + 'static) -> Self {
        FakeCleverTap {
            calls: Mutex::new(Vec::new()),
            answer: Box::new(answer),
            credentials_rejected: false,
            deletes: Mutex::new(Vec::new()),
            delete_answer: Box::new(|_, _| Outcome::Delivered),
        }
    }

    /// Delivers every upload and answers deletes with `answer(account, identity)`.
    pub fn deleting(answer: impl Fn(&str, &str) -> Outcome + Send + Sync + 'static) -> Self {
        FakeCleverTap {
            delete_answer: Box::new(answer),
            ..FakeCleverTap::delivering()
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn deletes(&self) -> Vec<DeleteCall> {
        self.deletes.lock().unwrap().clone()
    }
}

impl CleverTapApi for FakeCleverTap {
    async fn upload(
        &self,
        settings: &DestinationSettings,
        events: &[&[Record]],
        _deadline: Instant,
    ) -> DeliveryReport {
        let events: Vec<Vec<String>> = events
            .iter()
            .map(|e| e.iter().map(|r| r.as_str().to_owned()).collect())
            .collect();
        let outcomes = events
            .iter()
            .map(|e| (self.answer)(&settings.account_id, e))
            .collect();
        self.calls.lock().unwrap().push(Call {
            account: settings.account_id.clone(),
            events,
        });
        DeliveryReport {
            outcomes,
            credentials_rejected: self.credentials_rejected,
            ..DeliveryReport::default()
        }
    }

    async fn delete(
        &self,
        settings: &DestinationSettings,
        identities: &[&str],
        _deadline: Instant,
    ) -> DeliveryReport {
        let outcomes = identities
            .iter()
            .map(|id| (self.delete_answer)(&settings.account_id, id))
            .collect();
        self.deletes.lock().unwrap().push(DeleteCall {
            account: settings.account_id.clone(),
            identities: identities.iter().map(|id| (*id).to_owned()).collect(),
        });
        DeliveryReport {
            outcomes,
            credentials_rejected: self.credentials_rejected,
            ..DeliveryReport::default()
        }
    }
}

/// Which letters a [`FakeDeadLetters`] refuses.
pub type Refuse = Box<dyn Fn(&DeadLetter) -> bool + Send + Sync>;

/// A dead-letter queue that keeps what it is sent. Like SQS, it refuses a letter over
/// [`MAX_BATCH_BYTES`] on its own; it also refuses everything when `broken`, and the letters
/// `refuse` picks.
#[derive(Default)]
pub struct FakeDeadLetters {
    pub sent: Mutex<Vec<DeadLetter>>,
    pub broken: bool,
    pub refuse: Option<Refuse>,
}

impl FakeDeadLetters {
    /// A queue that refuses the letters for which `refuse` holds, and keeps the others.
    pub fn refusing(refuse: impl Fn(&DeadLetter) -> bool + Send + Sync + 'static) -> Self {
        FakeDeadLetters {
            refuse: Some(Box::new(refuse)),
            ..FakeDeadLetters::default()
        }
    }

    pub fn sent(&self) -> Vec<DeadLetter> {
        self.sent.lock().unwrap().clone()
    }
}

impl DeadLetterSink for FakeDeadLetters {
    async fn send(
        &self,
        letters: &[DeadLetter],
        _stop: tokio::time::Instant,
    ) -> Vec<Result<(), DeadLetterError>> {
        letters
            .iter()
            .map(|letter| {
                let refused = self.broken || self.refuse.as_ref().is_some_and(|r| r(letter));
                if refused {
                    return Err(DeadLetterError::Refused {
                        code: "AWS.SimpleQueueService.NonExistentQueue".into(),
                        message: "gone".into(),
                    });
                }
                if letter.size() > MAX_BATCH_BYTES {
                    return Err(DeadLetterError::TooLarge {
                        size: letter.size(),
                    });
                }
                self.sent.lock().unwrap().push(letter.clone());
                Ok(())
            })
            .collect()
    }
}

/// An events queue that keeps what it is sent; it refuses the messages whose body contains
/// `refuse_containing`, and every message when `broken`.
#[derive(Default)]
pub struct FakeQueue {
    pub sent: Mutex<Vec<QueuedMessage>>,
    pub refuse_containing: Option<String>,
    pub broken: bool,
}

impl FakeQueue {
    pub fn sent(&self) -> Vec<QueuedMessage> {
        self.sent.lock().unwrap().clone()
    }
}

impl EventQueue for FakeQueue {
    async fn send(
        &self,
        messages: &[QueuedMessage],
        _stop: Instant,
    ) -> Vec<Result<(), EnqueueError>> {
        messages
            .iter()
            .map(|m| {
                let refused = self.broken
                    || self
                        .refuse_containing
                        .as_deref()
                        .is_some_and(|marker| m.body.contains(marker));
                if refused {
                    Err(EnqueueError::Refused {
                        code: "AWS.SimpleQueueService.Refused".into(),
                    })
                } else {
                    self.sent.lock().unwrap().push(m.clone());
                    Ok(())
                }
            })
            .collect()
    }
}

/// A visibility port that records each change (queue URL, change), or refuses every one when
/// `broken`. Clones share what they record, so a test keeps one while the handler owns another.
#[derive(Default, Clone)]
pub struct FakeVisibility {
    changes: Arc<Mutex<Vec<(String, VisibilityChange)>>>,
    attempts: Arc<Mutex<usize>>,
    requeued: Arc<Mutex<Vec<(String, crate::queue::QueuedMessage)>>>,
    broken: bool,
}

impl FakeVisibility {
    pub fn broken() -> Self {
        FakeVisibility {
            broken: true,
            ..FakeVisibility::default()
        }
    }

    /// The changes made, in order.
    pub fn changes(&self) -> Vec<(String, VisibilityChange)> {
        self.changes.lock().unwrap().clone()
    }

    /// The calls made, failed ones included.
    pub fn attempts(&self) -> usize {
        *self.attempts.lock().unwrap()
    }

    /// The messages put back on a queue (queue URL, message), in order.
    pub fn requeued(&self) -> Vec<(String, crate::queue::QueuedMessage)> {
        self.requeued.lock().unwrap().clone()
    }
}

impl MessageVisibility for FakeVisibility {
    async fn change(
        &self,
        queue_url: &str,
        changes: &[VisibilityChange],
    ) -> Vec<Result<(), VisibilityError>> {
        *self.attempts.lock().unwrap() += 1;
        if self.broken {
            return changes
                .iter()
                .map(|_| {
                    Err(VisibilityError::Refused {
                        code: "AWS.SimpleQueueService.NonExistentQueue".into(),
                        message: "gone".into(),
                    })
                })
                .collect();
        }
        let mut recorded = self.changes.lock().unwrap();
        recorded.extend(changes.iter().map(|c| (queue_url.to_owned(), c.clone())));
        changes.iter().map(|_| Ok(())).collect()
    }

    async fn requeue(
        &self,
        queue_url: &str,
        message: &crate::queue::QueuedMessage,
        _stop: Instant,
    ) -> Result<(), crate::queue::EnqueueError> {
        if self.broken {
            return Err(crate::queue::EnqueueError::Send);
        }
        self.requeued
            .lock()
            .unwrap()
            .push((queue_url.to_owned(), message.clone()));
        Ok(())
    }
}

pub type FakeHandler = Handler<FakeSettings, FakeCleverTap, FakeDeadLetters>;

/// [`handler`] in queue mode, putting webhook events on `queue`.
pub fn queue_handler(queue: FakeQueue) -> (FakeHandler, Arc<FakeQueue>) {
    let queue = Arc::new(queue);
    let h = queue_handler_without_a_queue().with_events_queue(queue.clone());
    (h, queue)
}

/// [`handler`] in queue mode with no events queue at all.
pub fn queue_handler_without_a_queue() -> FakeHandler {
    let mut config = Config::default();
    config.webhook_mode = crate::config::WebhookMode::Queue;
    config.events_queue_url = Some("https://sqs.us-east-1.amazonaws.com/1/events".into());
    handler_with(config)
}

/// A handler with two destinations (`dest-a` with a webhook token, `dest-b` without), a
/// delivering upload and a working dead-letter queue.
pub fn handler() -> FakeHandler {
    handler_with(Config::default())
}

/// [`handler`] with `config`.
pub fn handler_with(config: Config) -> FakeHandler {
    Handler::new(
        config,
        FakeSettings::with(&[
            ("dest-a", &settings_json("ACC-A", true)),
            ("dest-b", &settings_json("ACC-B", false)),
        ]),
        FakeCleverTap::delivering(),
        FakeDeadLetters::default(),
    )
}

/// [`handler`] whose deletes answer `answer(account, identity)`.
pub fn handler_deleting(
    answer: impl Fn(&str, &str) -> Outcome + Send + Sync + 'static,
) -> FakeHandler {
    let mut h = handler();
    h.clevertap = FakeCleverTap::deleting(answer);
    h
}

pub fn deadline() -> Instant {
    Instant::now() + std::time::Duration::from_secs(30)
}

/// The payload bytes the Lambda runtime would hand over for `value`.
pub fn payload(value: &Value) -> bytes::Bytes {
    bytes::Bytes::from(value.to_string())
}

/// Runs an SQS batch of `records` through the handler; the ids reported in
/// `batchItemFailures`, or the handler's error.
pub async fn run_sqs<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    records: Vec<Value>,
) -> Result<Vec<String>, HandlerError> {
    let batch = crate::lambda_events::sqs_batch(records);
    let answer = handler.handle(payload(&batch), deadline()).await.answer?;
    Ok(crate::lambda_events::batch_item_failures(&answer))
}

/// [`run_sqs`] for a batch the handler answers: the ids reported in `batchItemFailures`.
pub async fn sqs_failures(handler: &FakeHandler, records: Vec<Value>) -> Vec<String> {
    match run_sqs(handler, records).await {
        Ok(failures) => failures,
        Err(e) => panic!("the handler failed the batch: {e}"),
    }
}

/// Runs an HTTP request through the handler: the status, the body parsed, the whole response.
pub async fn call_http<S: SettingsSource, C: CleverTapApi, D: DeadLetterSink>(
    handler: &Handler<S, C, D>,
    request: Value,
) -> (u16, Value, Value) {
    let response = handler
        .handle(payload(&request), deadline())
        .await
        .answer
        .expect("an HTTP request is always answered");
    let status = response["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = response["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body, response)
}
