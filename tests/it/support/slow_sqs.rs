//! An SQS stand-in that is slow, for the deadline: a `SendMessageBatch` of several entries is
//! refused as a whole (400) after [`SlowSqs::REFUSE_AFTER`], so the sender tries its letters one
//! by one; every other call is answered (500) only after [`SlowSqs::ANSWER_AFTER`], past the
//! SDK's own timeouts. Point the binary's `AWS_ENDPOINT_URL_SQS` at [`SlowSqs::endpoint`].

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpListener;

pub struct SlowSqs {
    pub endpoint: String,
    server: tokio::task::JoinHandle<()>,
}

impl SlowSqs {
    /// Under the SDK's attempt timeout (1 s): the refusal is read.
    pub const REFUSE_AFTER: Duration = Duration::from_millis(900);
    pub const ANSWER_AFTER: Duration = Duration::from_secs(5);

    pub async fn start() -> SlowSqs {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(answer))
                        .await;
                });
            }
        });
        SlowSqs {
            endpoint: format!("http://127.0.0.1:{port}"),
            server,
        }
    }
}

impl Drop for SlowSqs {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let batch = parts
        .headers
        .get("x-amz-target")
        .is_some_and(|v| v == "AmazonSQS.SendMessageBatch");
    let entries = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["Entries"].as_array().map(Vec::len))
        .unwrap_or(0);
    let (status, text) = if batch && entries > 1 {
        tokio::time::sleep(SlowSqs::REFUSE_AFTER).await;
        (
            400,
            r#"{"__type":"com.amazonaws.sqs#InvalidParameterValue","message":"refused"}"#,
        )
    } else {
        tokio::time::sleep(SlowSqs::ANSWER_AFTER).await;
        (500, r#"{"__type":"com.amazonaws.sqs#InternalError"}"#)
    };
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    Ok(r)
}
