//! A proxy in front of moto's SQS that refuses some entries of `SendMessageBatch`, as SQS itself
//! may (each entry succeeds or fails alone): entries whose `MessageBody` contains a marker are
//! taken out of the call and answered in `Failed`; everything else is forwarded as it came.
//! Point the binary's `AWS_ENDPOINT_URL_SQS` at [`SqsProxy::endpoint`].

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;

pub struct SqsProxy {
    pub endpoint: String,
    refused: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    upstream: String,
    marker: String,
    client: reqwest::Client,
    refused: Arc<AtomicUsize>,
}

impl SqsProxy {
    /// A proxy to `upstream` (moto) refusing entries whose body contains `marker`.
    pub async fn start(upstream: &str, marker: &str) -> SqsProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let refused = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            marker: marker.to_owned(),
            client: reqwest::Client::new(),
            refused: Arc::clone(&refused),
        });
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req| forward(Arc::clone(&shared), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        SqsProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            refused,
            server,
        }
    }

    /// How many entries the proxy refused so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

impl Drop for SqsProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn forward(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let mut body = body.collect().await?.to_bytes();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut failed = Vec::new();
    if target == "AmazonSQS.SendMessageBatch"
        && let Ok(mut request) = serde_json::from_slice::<Value>(&body)
        && let Some(entries) = request["Entries"].as_array_mut()
    {
        entries.retain(|entry| {
            let refuse = entry["MessageBody"]
                .as_str()
                .is_some_and(|b| b.contains(&shared.marker));
            if refuse {
                failed.push(json!({"Id": entry["Id"], "SenderFault": false,
                    "Code": "InternalError", "Message": "refused by the test proxy"}));
            }
            !refuse
        });
        shared.refused.fetch_add(failed.len(), Ordering::SeqCst);
        if !failed.is_empty() && entries.is_empty() {
            let answer = json!({"Successful": [], "Failed": failed});
            return Ok(json_response(200, answer.to_string()));
        }
        body = Bytes::from(request.to_string());
    }
    let uri = format!(
        "{}{}",
        shared.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut upstream = shared.client.request(parts.method.clone(), uri);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let reply = match upstream.body(body).send().await {
        Ok(reply) => reply,
        Err(e) => return Ok(json_response(502, format!("{{\"proxy\":\"{e}\"}}"))),
    };
    let status = reply.status().as_u16();
    let text = reply.text().await.unwrap_or_default();
    if failed.is_empty() {
        return Ok(json_response(status, text));
    }
    let mut answer: Value = serde_json::from_str(&text).unwrap_or(json!({"Successful": []}));
    let all_failed = answer["Failed"].as_array().cloned().unwrap_or_default();
    answer["Failed"] = Value::Array(all_failed.into_iter().chain(failed).collect());
    Ok(json_response(status, answer.to_string()))
}

fn json_response(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    r
}
