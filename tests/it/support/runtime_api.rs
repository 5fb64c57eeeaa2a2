//! A small Lambda Runtime API (the interface Lambda offers a custom runtime) on a free
//! 127.0.0.1 port, so the integration tests run the real binary exactly as Lambda does: the
//! binary polls `GET .../invocation/next`, and answers with `POST .../{id}/response` or
//! `.../{id}/error`. Several invocations are fed to the same process, which shows it survives
//! each one. Also starts the binary itself ([`LambdaProcess`]) and keeps its logs.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const PREFIX: &str = "/2018-06-01/runtime";

/// How the function answered one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `POST .../response`: the handler's response.
    Response(Value),
    /// `POST .../error`: a function error (`errorType`, `errorMessage`).
    Error(Value),
}

impl Answer {
    pub fn response(self) -> Value {
        match self {
            Answer::Response(v) => v,
            Answer::Error(e) => panic!("expected a response, the function failed: {e}"),
        }
    }

    pub fn error(self) -> Value {
        match self {
            Answer::Error(e) => e,
            Answer::Response(v) => panic!("expected a function error, got a response: {v}"),
        }
    }
}

struct Invocation {
    id: String,
    deadline_ms: u64,
    payload: Bytes,
}

struct State {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init_error: Mutex<Option<String>>,
}

pub struct RuntimeApi {
    port: u16,
    sender: mpsc::UnboundedSender<Invocation>,
    state: Arc<State>,
    counter: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            queue: tokio::sync::Mutex::new(receiver),
            pending: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
        });
        let shared = Arc::clone(&state);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req| serve(Arc::clone(&state), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RuntimeApi {
            port,
            sender,
            state,
            counter: AtomicU64::new(0),
            server,
        }
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Queues one invocation with `timeout` as its deadline and waits for the function's answer
    /// (up to the deadline plus a grace period; a missing answer fails the test).
    pub async fn invoke(&self, payload: impl Into<Bytes>, timeout: Duration) -> Answer {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let id = format!("req-{n:04}");
        let (tx, rx) = oneshot::channel();
        self.state.pending.lock().unwrap().insert(id.clone(), tx);
        self.sender
            .send(Invocation {
                id: id.clone(),
                deadline_ms: now_ms() + timeout.as_millis() as u64,
                payload: payload.into(),
            })
            .unwrap();
        match tokio::time::timeout(timeout + Duration::from_secs(5), rx).await {
            Ok(Ok(answer)) => answer,
            _ => panic!(
                "invocation {id} got no answer within its deadline (init error: {:?})",
                self.init_error()
            ),
        }
    }

    /// What the function reported to `/init/error`, if anything.
    pub fn init_error(&self) -> Option<String> {
        self.state.init_error.lock().unwrap().clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

async fn serve(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let body = req.into_body().collect().await?.to_bytes();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(reply(StatusCode::NOT_FOUND, "unknown path"));
    };
    if method == Method::GET && rest == "/invocation/next" {
        let next = state.queue.lock().await.recv().await;
        let Some(inv) = next else {
            return Ok(reply(StatusCode::INTERNAL_SERVER_ERROR, "shutting down"));
        };
        let mut r = reply(StatusCode::OK, inv.payload);
        let h = r.headers_mut();
        h.insert("lambda-runtime-aws-request-id", inv.id.parse().unwrap());
        h.insert(
            "lambda-runtime-deadline-ms",
            inv.deadline_ms.to_string().parse().unwrap(),
        );
        h.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:rudder-clevertap"
                .parse()
                .unwrap(),
        );
        h.insert(
            "lambda-runtime-trace-id",
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
                .parse()
                .unwrap(),
        );
        return Ok(r);
    }
    if method == Method::POST && rest == "/init/error" {
        *state.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
        return Ok(reply(StatusCode::ACCEPTED, ""));
    }
    if method == Method::POST
        && let Some(tail) = rest.strip_prefix("/invocation/")
        && let Some((id, kind)) = tail.split_once('/')
    {
        let value: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        let answer = match kind {
            "response" => Answer::Response(value),
            "error" => Answer::Error(value),
            _ => return Ok(reply(StatusCode::NOT_FOUND, "unknown path")),
        };
        if let Some(tx) = state.pending.lock().unwrap().remove(id) {
            let _ = tx.send(answer);
        }
        return Ok(reply(StatusCode::ACCEPTED, ""));
    }
    Ok(reply(StatusCode::NOT_FOUND, "unknown path"))
}

/// The real binary, running the Lambda runtime loop against a [`RuntimeApi`]. Killed on drop.
pub struct LambdaProcess {
    child: Child,
    logs: Arc<Mutex<String>>,
}

impl LambdaProcess {
    /// Starts the binary with a clean environment: Lambda's own variables, then `env`.
    pub fn start(api: &RuntimeApi, env: &[(&str, String)]) -> LambdaProcess {
        let mut command = Command::new(super::binary());
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "rudder-clevertap")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/rudder-clevertap")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2024/03/05/[$LATEST]test")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start the rudder-clevertap binary");
        let logs = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = Arc::clone(&logs);
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream);
                let mut line = String::new();
                while std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) > 0 {
                    logs.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        LambdaProcess { child, logs }
    }

    /// Everything the process wrote so far (stdout and stderr), once the reader threads have
    /// caught up: the process writes a line before it answers, but the threads that collect its
    /// output may still be reading it on a loaded machine. Waits until nothing new arrived for
    /// 50 ms (2 s at most).
    pub fn logs(&self) -> String {
        let quiet = std::time::Duration::from_millis(50);
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut seen = self.logs.lock().unwrap().len();
        loop {
            std::thread::sleep(quiet);
            let now = self.logs.lock().unwrap().len();
            if now == seen || std::time::Instant::now() >= give_up {
                break;
            }
            seen = now;
        }
        self.logs.lock().unwrap().clone()
    }

    /// The process's peak resident set size so far, in KiB (`VmHWM` of `/proc/<pid>/status`;
    /// Linux only).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- rudder-clevertap logs ---\n{}", self.logs());
        }
    }
}
