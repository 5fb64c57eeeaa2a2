//! Lambda event payloads the tests feed the handler: SQS records and HTTP requests (API Gateway
//! HTTP API v2, Function URL, REST API v1), in the shapes AWS sends. One file for the unit tests
//! (the library includes it under `#[cfg(test)]`) and the integration tests, so both build
//! payloads the same way. It uses serde_json only.

#![allow(dead_code)]

use serde_json::{Value, json};

/// The standard queue the SQS records come from.
pub const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:events";
/// A FIFO queue.
pub const FIFO_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:events.fifo";
/// The `MessageGroupId` every SQS record carries (FIFO queues use it).
pub const MESSAGE_GROUP_ID: &str = "user-1";
/// The request id of every HTTP request built here.
pub const REQUEST_ID: &str = "req-1";

/// One SQS record from the standard queue, routed to `destination`.
pub fn sqs_message(id: &str, body: &str, destination: &str) -> Value {
    sqs_record(QUEUE_ARN, id, body, Some(destination))
}

/// One SQS record from the queue `arn`, routed to `destination`.
pub fn sqs_message_on(arn: &str, id: &str, body: &str, destination: &str) -> Value {
    sqs_record(arn, id, body, Some(destination))
}

/// One SQS record from the queue `arn`, with a `destinationId` attribute when `destination` is
/// given.
pub fn sqs_record(arn: &str, id: &str, body: &str, destination: Option<&str>) -> Value {
    sqs_record_in_group(arn, id, body, destination, Some(MESSAGE_GROUP_ID))
}

/// One SQS message attribute as Lambda hands it over.
pub fn message_attribute(value: &str, data_type: &str) -> Value {
    json!({"stringValue": value, "dataType": data_type,
           "stringListValues": [], "binaryListValues": []})
}

/// `record` with these String message attributes added (or replaced).
pub fn with_string_attributes<N: AsRef<str>, V: AsRef<str>>(
    mut record: Value,
    attributes: impl IntoIterator<Item = (N, V)>,
) -> Value {
    for (name, value) in attributes {
        record["messageAttributes"][name.as_ref()] = message_attribute(value.as_ref(), "String");
    }
    record
}

/// One SQS record from the queue `arn` in the FIFO message group `group` (no `MessageGroupId`
/// attribute when `None`), with a `destinationId` attribute when `destination` is given.
pub fn sqs_record_in_group(
    arn: &str,
    id: &str,
    body: &str,
    destination: Option<&str>,
    group: Option<&str>,
) -> Value {
    let message_attributes = match destination {
        Some(d) => json!({"destinationId": message_attribute(d, "String")}),
        None => json!({}),
    };
    let mut attributes = json!({"ApproximateReceiveCount": "1", "SentTimestamp": "1709634030000"});
    if let Some(group) = group {
        attributes["MessageGroupId"] = json!(group);
    }
    json!({
        "messageId": id, "receiptHandle": format!("rh-{id}"), "body": body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": "x", "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1"
    })
}

/// An SQS event holding `records`.
pub fn sqs_batch(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

/// The ids an SQS batch response lists in `batchItemFailures`, in order. Panics (naming the
/// response) when it is not a batch response: a test that expects one should say so loudly.
pub fn batch_item_failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("not a batch response: {response}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A `POST /events?destinationId=<destination>` HTTP API v2 request with `body`.
pub fn webhook_request(destination: &str, authorization: Option<&str>, body: &str) -> Value {
    http_request("POST", Some(destination), authorization, Some(body))
}

/// An HTTP API v2 request to `/events`, with the `destinationId` query parameter, the
/// `Authorization` header and the body when given.
pub fn http_request(
    method: &str,
    destination: Option<&str>,
    authorization: Option<&str>,
    body: Option<&str>,
) -> Value {
    let mut headers = json!({"content-type": "application/json"});
    if let Some(a) = authorization {
        headers["authorization"] = json!(a);
    }
    let mut request = json!({
        "version": "2.0", "routeKey": "POST /events", "rawPath": "/events",
        "rawQueryString": destination.map(|d| format!("destinationId={d}")).unwrap_or_default(),
        "headers": headers,
        "requestContext": {"accountId": "123456789012", "apiId": "api", "requestId": REQUEST_ID,
            "domainName": "api.execute-api.us-east-1.amazonaws.com", "domainPrefix": "api",
            "routeKey": "POST /events", "stage": "$default",
            "time": "05/Mar/2024:10:20:30 +0000", "timeEpoch": 1709634030000u64,
            "http": {"method": method, "path": "/events", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "RudderLabs"}},
        "isBase64Encoded": false
    });
    if let Some(d) = destination {
        request["queryStringParameters"] = json!({"destinationId": d});
    }
    if let Some(b) = body {
        request["body"] = json!(b);
    }
    request
}

/// The same request as [`http_request`], to a Lambda Function URL.
pub fn function_url_request(destination: &str, authorization: Option<&str>, body: &str) -> Value {
    let mut request = webhook_request(destination, authorization, body);
    request["requestContext"]["domainName"] = json!("abc.lambda-url.us-east-1.on.aws");
    request
}

/// An API Gateway REST API (v1) `POST /events` request; the token in the header `header_name`.
pub fn rest_api_request(header_name: &str, destination: &str, token: &str, body: &str) -> Value {
    json!({
        "resource": "/events", "path": "/events", "httpMethod": "POST",
        "headers": {header_name: format!("Bearer {token}")},
        "multiValueHeaders": {header_name: [format!("Bearer {token}")]},
        "queryStringParameters": {"destinationId": destination},
        "multiValueQueryStringParameters": {"destinationId": [destination]},
        "requestContext": {"requestId": "req-v1", "stage": "prod", "httpMethod": "POST",
            "identity": {"sourceIp": "203.0.113.7"}, "resourcePath": "/events"},
        "body": body, "isBase64Encoded": false
    })
}
