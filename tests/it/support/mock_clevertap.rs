//! A local mock of CleverTap's upload and delete API, for integration tests that run the real
//! HTTP client or the real binary (`CLEVERTAP_ENDPOINT=<mock.url()>`).
//!
//! It runs on its own thread and runtime, so it serves sync tests (that block on a child
//! process) and async tests alike, and keeps answering while a test's runtime is busy. It
//! records every request, measures requests in flight per account (and per account and path),
//! and answers from a script of one-shot replies, then from a default responder (by default:
//! every record accepted).
//!
//! ```ignore
//! let mock = MockCleverTap::start();
//! mock.script([Reply::status(429, ""), Reply::status(429, "")]); // then the default
//! mock.then(|req| Reply::unprocessed(req, &[(0, 555, Echo::Record)]));
//! mock.respond_with(|req| if req.body.contains("bad") { Reply::status(400, "") } else { Reply::success(req) });
//! let sent = mock.requests_for("ACC-1");
//! assert!(mock.max_in_flight("ACC-1") <= 5);
//! mock.go_down(Reply::status(503, "")); // every request, until come_up()
//! mock.come_up();
//! ```

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// 0-based arrival number, over all accounts.
    pub seq: usize,
    pub method: String,
    pub path: String,
    pub account_id: String,
    pub passcode: String,
    pub content_type: String,
    pub body: String,
    /// It arrived while the mock was down ([`MockCleverTap::go_down`]).
    pub while_down: bool,
}

impl RecordedRequest {
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The records of an upload (`d`), as JSON values.
    pub fn records(&self) -> Vec<Value> {
        match self.json().get("d") {
            Some(Value::Array(records)) => records.clone(),
            _ => Vec::new(),
        }
    }

    /// The identities of a delete call.
    pub fn identities(&self) -> Vec<String> {
        match self.json().get("identity") {
            Some(Value::Array(ids)) => ids
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The number of items sent: records of an upload, identities of a delete.
    pub fn item_count(&self) -> usize {
        self.records().len().max(self.identities().len())
    }
}

/// How a failed item is pointed at in `unprocessed[]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// The record is echoed in `record` (CleverTap's usual way).
    Record,
    /// Only the 1-based "record number" in the error text.
    Number,
}

/// The mock's answer to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// Waited before answering (a slow or hanging CleverTap).
    pub delay: Duration,
    /// A `Location` header (a redirect).
    pub location: Option<String>,
}

impl Reply {
    /// HTTP 200, `status` success, every item processed.
    pub fn success(req: &RecordedRequest) -> Reply {
        Reply::json(
            200,
            json!({"status": "success", "processed": req.item_count(), "unprocessed": []}),
        )
    }

    /// Any status and raw body.
    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            delay: Duration::ZERO,
            location: None,
        }
    }

    /// A redirect: `status` (3xx) with `Location: location`.
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply {
            location: Some(location.to_owned()),
            ..Reply::status(status, "")
        }
    }

    pub fn json(status: u16, body: Value) -> Reply {
        Reply::status(status, &body.to_string())
    }

    /// HTTP 200 with the given items (0-based positions in the request) in `unprocessed[]`
    /// with their codes: `partial`, or `fail` when every item failed.
    pub fn unprocessed(req: &RecordedRequest, failed: &[(usize, i64, Echo)]) -> Reply {
        let records = req.records();
        let identities = req.identities();
        let entries: Vec<Value> = failed
            .iter()
            .map(|&(index, code, echo)| {
                let error = format!("Mock failure {code}. Skipped record number : {}", index + 1);
                let echoed = records
                    .get(index)
                    .cloned()
                    .or_else(|| identities.get(index).map(|id| Value::from(id.as_str())));
                match (echo, echoed) {
                    (Echo::Record, Some(record)) => {
                        json!({"status": "fail", "code": code, "error": error, "record": record})
                    }
                    _ => json!({"status": "fail", "code": code, "error": error}),
                }
            })
            .collect();
        let total = req.item_count();
        let status = if failed.len() >= total {
            "fail"
        } else {
            "partial"
        };
        Reply::json(
            200,
            json!({"status": status, "processed": total - failed.len().min(total), "unprocessed": entries}),
        )
    }

    /// Waits `delay` before answering.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Responder = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;
type OneShot = Box<dyn FnOnce(&RecordedRequest) -> Reply + Send>;

#[derive(Default)]
struct Flight {
    now: usize,
    max: usize,
}

struct State {
    requests: Mutex<Vec<RecordedRequest>>,
    script: Mutex<VecDeque<OneShot>>,
    responder: Mutex<Responder>,
    /// Keyed by account, and by `account path`.
    flights: Mutex<HashMap<String, Flight>>,
    /// While set, every request gets this reply (a CleverTap outage), script and responder
    /// untouched.
    down: Mutex<Option<Reply>>,
}

impl State {
    fn enter(&self, keys: &[String]) {
        let mut flights = self.flights.lock().unwrap();
        for key in keys {
            let f = flights.entry(key.clone()).or_default();
            f.now += 1;
            f.max = f.max.max(f.now);
        }
    }

    fn leave(&self, keys: &[String]) {
        let mut flights = self.flights.lock().unwrap();
        for key in keys {
            if let Some(f) = flights.get_mut(key) {
                f.now = f.now.saturating_sub(1);
            }
        }
    }
}

/// Leaves the in-flight count when the request is answered or abandoned.
struct InFlight {
    state: Arc<State>,
    keys: Vec<String>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state.leave(&self.keys);
    }
}

/// The running mock; stops when dropped.
pub struct MockCleverTap {
    url: String,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl MockCleverTap {
    /// Starts the mock on a free 127.0.0.1 port; every record is accepted until told otherwise.
    pub fn start() -> MockCleverTap {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let state = Arc::new(State {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            responder: Mutex::new(Arc::new(Reply::success)),
            flights: Mutex::new(HashMap::new()),
            down: Mutex::new(None),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let served = state.clone();
        std::thread::Builder::new()
            .name("mock-clevertap".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("mock runtime");
                rt.block_on(serve(listener, served, rx));
                rt.shutdown_background();
            })
            .expect("mock thread");
        MockCleverTap {
            url,
            state,
            shutdown: Some(tx),
        }
    }

    /// The base URL (`http://127.0.0.1:PORT`), for `CLEVERTAP_ENDPOINT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers the next requests with these replies, in order, then with the responder.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        let mut script = self.state.script.lock().unwrap();
        for reply in replies {
            script.push_back(Box::new(move |_: &RecordedRequest| reply));
        }
    }

    /// Answers the next request not yet covered by the script with `reply(request)`.
    pub fn then(&self, reply: impl FnOnce(&RecordedRequest) -> Reply + Send + 'static) {
        self.state.script.lock().unwrap().push_back(Box::new(reply));
    }

    /// Answers every request not covered by the script.
    pub fn respond_with(
        &self,
        responder: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    ) {
        *self.state.responder.lock().unwrap() = Arc::new(responder);
    }

    /// From now on, answers every request with `reply`: CleverTap is down.
    pub fn go_down(&self, reply: Reply) {
        *self.state.down.lock().unwrap() = Some(reply);
    }

    /// CleverTap is back: the script and the responder answer again.
    pub fn come_up(&self) {
        *self.state.down.lock().unwrap() = None;
    }

    /// How many requests arrived so far.
    pub fn request_count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The requests of one account, in arrival order.
    pub fn requests_for(&self, account_id: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.account_id == account_id)
            .collect()
    }

    /// The most requests of the account that were ever in flight at once.
    pub fn max_in_flight(&self, account_id: &str) -> usize {
        self.max_of(account_id)
    }

    /// The most requests of the account to `path` that were ever in flight at once.
    pub fn max_in_flight_on(&self, account_id: &str, path: &str) -> usize {
        self.max_of(&format!("{account_id} {path}"))
    }

    fn max_of(&self, key: &str) -> usize {
        self.state
            .flights
            .lock()
            .unwrap()
            .get(key)
            .map_or(0, |f| f.max)
    }
}

impl Drop for MockCleverTap {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<State>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(state.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let account_id = header("x-clevertap-account-id");
    let passcode = header("x-clevertap-passcode");
    let content_type = header("content-type");
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let keys = vec![account_id.clone(), format!("{account_id} {path}")];
    state.enter(&keys);
    let _in_flight = InFlight {
        state: state.clone(),
        keys,
    };
    let body = match req.into_body().collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let down = state.down.lock().unwrap().clone();
    let recorded = {
        let mut requests = state.requests.lock().unwrap();
        let recorded = RecordedRequest {
            seq: requests.len(),
            method,
            path,
            account_id,
            passcode,
            content_type,
            body,
            while_down: down.is_some(),
        };
        requests.push(recorded.clone());
        recorded
    };
    let scripted = match down {
        Some(_) => None,
        None => state.script.lock().unwrap().pop_front(),
    };
    let reply = match (down, scripted) {
        (Some(reply), _) => reply,
        (None, Some(reply)) => reply(&recorded),
        (None, None) => {
            let responder = state.responder.lock().unwrap().clone();
            responder(&recorded)
        }
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder()
        .status(reply.status)
        .header("content-type", "application/json");
    if let Some(location) = &reply.location {
        response = response.header("location", location.as_str());
    }
    let response = response
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
    Ok(response)
}
