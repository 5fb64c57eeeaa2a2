//! Lambda event payloads the integration tests feed the binary: SQS records and API Gateway
//! HTTP API (v2) requests, in the shapes AWS sends.

use serde_json::{Value, json};

/// The standard queue the SQS records come from.
pub const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:events";
/// A FIFO queue.
pub const FIFO_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:events.fifo";

/// One SQS record from the standard queue, routed to `destination`.
pub fn sqs_message(id: &str, body: &str, destination: &str) -> Value {
    sqs_message_on(QUEUE_ARN, id, body, destination)
}

/// One SQS record from the queue `arn`, routed to `destination`.
pub fn sqs_message_on(arn: &str, id: &str, body: &str, destination: &str) -> Value {
    json!({
        "messageId": id, "receiptHandle": format!("rh-{id}"), "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1709634030000",
                       "MessageGroupId": "user-1"},
        "messageAttributes": {"destinationId": {"stringValue": destination, "dataType": "String",
                              "stringListValues": [], "binaryListValues": []}},
        "md5OfBody": "x", "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1"
    })
}

/// A `POST /events?destinationId=<destination>` HTTP API v2 request with `body`.
pub fn webhook_request(destination: &str, authorization: Option<&str>, body: &str) -> Value {
    let mut headers = json!({"content-type": "application/json"});
    if let Some(a) = authorization {
        headers["authorization"] = json!(a);
    }
    json!({
        "version": "2.0", "routeKey": "POST /events", "rawPath": "/events",
        "rawQueryString": format!("destinationId={destination}"),
        "headers": headers, "queryStringParameters": {"destinationId": destination},
        "requestContext": {"accountId": "123456789012", "apiId": "api", "requestId": "req-1",
            "domainName": "api.execute-api.us-east-1.amazonaws.com", "stage": "$default",
            "time": "05/Mar/2024:10:20:30 +0000", "timeEpoch": 1709634030000u64,
            "http": {"method": "POST", "path": "/events", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "RudderLabs"}},
        "body": body, "isBase64Encoded": false
    })
}
