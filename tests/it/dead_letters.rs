//! `rudder-clevertap dead-letters summary|redrive`, the real binary against moto's SQS with
//! letters of several codes: the summary's counts match and consume nothing, no passcode or
//! token shows, and a redrive moves only the chosen code, sending before deleting, so every
//! letter ends in exactly one of the two queues.

use crate::support::binary;
use crate::support::moto::MotoServer;
use aws_sdk_sqs::types::MessageAttributeValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Command;

const PASSCODE: &str = "pc-never-shown-4321";
const TOKEN: &str = "tok-never-shown-8765";

/// (body, rejectionCode, destinationId) of each letter put on the dead-letter queue; `None`
/// code: a message SQS moved after maxReceiveCount.
fn letters() -> Vec<(String, Option<&'static str>, Option<&'static str>)> {
    let event = |user: &str| {
        json!({"type": "track", "event": "Bought", "userId": user,
               "context": {"passcode": PASSCODE, "webhookToken": TOKEN}})
        .to_string()
    };
    let mut all = Vec::new();
    for i in 0..5 {
        all.push((
            format!("{{\"n\":{i},"),
            Some("invalid_json"),
            Some("dest-a"),
        ));
    }
    for i in 0..3 {
        all.push((
            event(&format!("u-{i}")),
            Some("clevertap_rejected"),
            Some("dest-a"),
        ));
    }
    for i in 0..2 {
        all.push((
            event(&format!("b-{i}")),
            Some("clevertap_rejected"),
            Some("dest-b"),
        ));
    }
    all.push((
        format!("Authorization: Bearer {TOKEN}"),
        Some("not_an_object"),
        None,
    ));
    for i in 0..4 {
        all.push((event(&format!("k-{i}")), None, Some("dest-b")));
    }
    all
}

async fn fill(moto: &MotoServer, dlq: &str) {
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let string = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    };
    for (i, (body, code, destination)) in letters().into_iter().enumerate() {
        let mut send = sqs.send_message().queue_url(dlq).message_body(body);
        if let Some(code) = code {
            send = send
                .message_attributes("rejectionCode", string(code))
                .message_attributes("rejectionMessage", string("the reason"))
                .message_attributes("sourceMessageId", string(&format!("src-{i}")));
        }
        if let Some(d) = destination {
            send = send.message_attributes("destinationId", string(d));
        }
        send.send().await.expect("send a letter to moto");
    }
}

/// Runs `dead-letters ARGS` against moto: (exit code, stdout as JSON, stdout and stderr text).
fn run(moto: &MotoServer, args: &[&str]) -> (Option<i32>, Value, String) {
    let out = Command::new(binary())
        .env_clear()
        .envs(moto.env())
        .arg("dead-letters")
        .args(args)
        .output()
        .expect("run the binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), json, text)
}

/// Every message on the queue, each once (received with a long visibility), as
/// (body, attributes).
async fn drain_view(
    moto: &MotoServer,
    url: &str,
    at_most: usize,
) -> Vec<(String, std::collections::HashMap<String, String>)> {
    moto.receive_messages(url, at_most + 1).await
}

#[tokio::test]
async fn the_summary_counts_every_code_and_destination_and_consumes_nothing() {
    let moto = MotoServer::start();
    let dlq = moto.create_queue("summary-dlq").await;
    fill(&moto, &dlq).await;
    let total = letters().len();

    let (code, out, text) = run(&moto, &["summary", "--queue-url", &dlq]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(out["read"], total, "{text}");
    assert_eq!(out["stoppedAtMax"], false);
    assert_eq!(out["visibilityNotRestored"], 0, "{text}");
    assert_eq!(
        out["byCode"],
        json!({"invalid_json": 5, "clevertap_rejected": 5, "not_an_object": 1, "kept_failing": 4}),
        "{text}"
    );
    let groups: BTreeMap<(String, String), u64> = out["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                (
                    g["rejectionCode"].as_str().unwrap().to_owned(),
                    g["destinationId"].as_str().unwrap_or("-").to_owned(),
                ),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: BTreeMap<(String, String), u64> = [
        (("clevertap_rejected", "dest-a"), 3),
        (("clevertap_rejected", "dest-b"), 2),
        (("invalid_json", "dest-a"), 5),
        (("kept_failing", "dest-b"), 4),
        (("not_an_object", "-"), 1),
    ]
    .into_iter()
    .map(|((c, d), n)| ((c.to_owned(), d.to_owned()), n))
    .collect();
    assert_eq!(groups, expected, "{text}");
    for g in out["groups"].as_array().unwrap() {
        assert!(g["example"]["messageId"].is_string(), "{g}");
        assert!(g["example"]["body"].is_string(), "{g}");
    }
    assert!(!text.contains(PASSCODE) && !text.contains(TOKEN), "{text}");

    // A bounded read stops at --max and says so.
    let (code, out, text) = run(&moto, &["summary", "--queue-url", &dlq, "--max", "3"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(out["read"], 3, "{text}");
    assert_eq!(out["stoppedAtMax"], true, "{text}");

    // Nothing consumed: every letter is visible again at once.
    let after = drain_view(&moto, &dlq, total).await;
    assert_eq!(after.len(), total);
}

#[tokio::test]
async fn redrive_moves_only_the_chosen_code_and_loses_nothing() {
    let moto = MotoServer::start();
    let dlq = moto.create_queue("redrive-dlq").await;
    let events = moto.create_queue("redrive-events").await;
    fill(&moto, &dlq).await;
    let total = letters().len();

    let (code, out, text) = run(
        &moto,
        &[
            "redrive",
            "--queue-url",
            &dlq,
            "--to",
            &events,
            "--code",
            "clevertap_rejected",
        ],
    );
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(out["moved"], 5, "{text}");
    assert_eq!(out["movedByCode"], json!({"clevertap_rejected": 5}));
    assert_eq!(out["kept"], total - 5, "{text}");
    assert_eq!(out["notSent"], 0);
    assert_eq!(out["sentButNotDeleted"], 0);
    assert!(!text.contains(PASSCODE) && !text.contains(TOKEN), "{text}");

    let moved = drain_view(&moto, &events, 5).await;
    assert_eq!(moved.len(), 5);
    let mut destinations: Vec<&str> = moved
        .iter()
        .map(|(_, a)| a.get("destinationId").map_or("-", String::as_str))
        .collect();
    destinations.sort_unstable();
    assert_eq!(
        destinations,
        ["dest-a", "dest-a", "dest-a", "dest-b", "dest-b"]
    );
    for (body, attributes) in &moved {
        assert!(body.contains("\"type\":\"track\""), "{body}");
        assert!(!attributes.contains_key("rejectionCode"), "{attributes:?}");
        assert!(
            !attributes.contains_key("rejectionMessage"),
            "{attributes:?}"
        );
    }
    let left = drain_view(&moto, &dlq, total).await;
    assert_eq!(left.len(), total - 5);
    assert!(
        left.iter()
            .all(|(_, a)| a.get("rejectionCode").map(String::as_str) != Some("clevertap_rejected"))
    );
    // Every letter is in exactly one queue.
    let mut all: Vec<String> = moved.into_iter().chain(left).map(|(b, _)| b).collect();
    let mut original: Vec<String> = letters().into_iter().map(|(b, _, _)| b).collect();
    all.sort();
    original.sort();
    assert_eq!(all, original);
}

#[tokio::test]
async fn letters_sqs_moved_are_redriven_with_kept_failing() {
    let moto = MotoServer::start();
    let dlq = moto.create_queue("kept-dlq").await;
    let events = moto.create_queue("kept-events").await;
    fill(&moto, &dlq).await;
    let (code, out, text) = run(
        &moto,
        &[
            "redrive",
            "--queue-url",
            &dlq,
            "--to",
            &events,
            "--code",
            "kept_failing",
        ],
    );
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(out["moved"], 4, "{text}");
    let moved = drain_view(&moto, &events, 4).await;
    assert_eq!(moved.len(), 4);
    assert!(moved.iter().all(|(_, a)| a["destinationId"] == "dest-b"));
}

#[test]
fn bad_arguments_are_named_and_exit_2() {
    for (args, expected) in [
        (vec!["summary", "--queue-url", "not-a-url"], "--queue-url"),
        (
            vec![
                "redrive",
                "--queue-url",
                "https://q/1/a",
                "--to",
                "https://q/1/a",
            ],
            "the dead-letter queue itself",
        ),
        (vec!["redrive", "--queue-url", "https://q/1/a"], "--to"),
        (
            vec!["summary", "--queue-url", "https://q/1/a", "--max", "0"],
            "--max",
        ),
    ] {
        let out = Command::new(binary())
            .env_clear()
            .arg("dead-letters")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn an_unreachable_queue_is_a_clear_error() {
    let moto = MotoServer::start();
    let missing = format!("{}/123456789012/no-such-queue", moto.endpoint);
    let (code, _, text) = run(&moto, &["summary", "--queue-url", &missing]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("GetQueueAttributes") && text.contains("no-such-queue"),
        "{text}"
    );
}

#[tokio::test]
async fn a_fifo_redrive_keeps_each_letters_group() {
    let moto = MotoServer::start();
    let dlq = moto.create_fifo_queue("fifo-dlq.fifo").await;
    let events = moto.create_fifo_queue("fifo-events.fifo").await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let string = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    };
    for (i, (group, code)) in [
        ("g-1", "invalid_json"),
        ("g-2", "clevertap_rejected"),
        ("g-3", "clevertap_rejected"),
    ]
    .into_iter()
    .enumerate()
    {
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(format!("{{\"n\":{i}}}"))
            .message_group_id(group)
            .message_deduplication_id(format!("d-{i}"))
            .message_attributes("rejectionCode", string(code))
            .message_attributes("destinationId", string("dest-a"))
            .send()
            .await
            .expect("send a FIFO letter");
    }
    let (code, out, text) = run(
        &moto,
        &[
            "redrive",
            "--queue-url",
            &dlq,
            "--to",
            &events,
            "--code",
            "clevertap_rejected",
        ],
    );
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(out["moved"], 2, "{text}");
    assert_eq!(out["kept"], 1, "{text}");
    let mut groups: Vec<String> = moto
        .receive_message_groups(&events, 3)
        .await
        .into_iter()
        .map(|(_, group)| group)
        .collect();
    groups.sort();
    assert_eq!(groups, ["g-2", "g-3"], "each letter keeps its group");
    let left = moto.receive_message_groups(&dlq, 2).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].1, "g-1");
}
