//! Moving letters back to the events queue after a fix: only those of the chosen code, each
//! sent before it is deleted, so a failure anywhere leaves it in the dead-letter queue (or, if
//! only the delete failed, in both: delivered at least once, never lost).

use super::scan::{Letter, ScanError, Scanner};
use super::summary::code_of;
use crate::aws::sqs_batch::{self, EntryResult, Target};
use crate::dead_letters::letter::attributes;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Attributes that describe the rejection, not the event: dropped on the way back.
const REJECTION_ATTRIBUTES: [&str; 2] = [attributes::REJECTION_CODE, attributes::REJECTION_MESSAGE];
/// FIFO group of a letter that has neither a group nor a destination.
const DEFAULT_GROUP: &str = "rudder-clevertap";

/// What one redrive did.
#[derive(Debug, Default)]
pub struct Report {
    /// Sent to the events queue and deleted from the dead-letter queue, per code.
    pub moved: BTreeMap<String, u64>,
    /// Not of the chosen code: left where they were.
    pub kept: u64,
    /// Of the chosen code but not sent (SQS refused or failed): left in the dead-letter queue.
    pub not_sent: u64,
    /// Sent, but SQS did not delete them from the dead-letter queue: now in both queues.
    pub not_deleted: u64,
}

impl Report {
    pub fn to_json(&self) -> Value {
        json!({
            "moved": self.moved.values().sum::<u64>(),
            "movedByCode": self.moved,
            "kept": self.kept,
            "notSent": self.not_sent,
            "sentButNotDeleted": self.not_deleted,
        })
    }

    /// Whether every letter of the chosen code was moved cleanly.
    pub fn complete(&self) -> bool {
        self.not_sent == 0 && self.not_deleted == 0
    }
}

/// Moves the letters of `code` (every letter when `None`) from the scanned queue to `to`.
pub async fn redrive(
    scanner: &mut Scanner,
    to: &Target,
    code: Option<&str>,
) -> Result<Report, ScanError> {
    let mut report = Report::default();
    while let Some(page) = scanner.next_page().await? {
        let (chosen, others): (Vec<Letter>, Vec<Letter>) = page
            .into_iter()
            .partition(|l| code.is_none_or(|c| code_of(l) == c));
        report.kept += others.len() as u64;
        let sent = send(to, &chosen).await;
        report.not_sent += (chosen.len() - sent.len()) as u64;
        let ids: Vec<String> = sent.iter().map(|l| l.message_id.clone()).collect();
        let not_deleted = scanner.delete(&ids).await;
        report.not_deleted += not_deleted.len() as u64;
        for letter in sent {
            if !not_deleted.contains(&letter.message_id) {
                *report.moved.entry(code_of(letter).to_owned()).or_default() += 1;
            }
        }
    }
    Ok(report)
}

/// Sends `letters` to `to`; returns those SQS took.
async fn send<'l>(to: &Target, letters: &'l [Letter]) -> Vec<&'l Letter> {
    let mut sent = Vec::new();
    let packed = sqs_batch::pack(letters.iter().map(size));
    for call in packed.calls {
        let entries: Vec<(usize, SendMessageBatchRequestEntry)> = call
            .iter()
            .filter_map(|&i| entry(to, i, &letters[i]).map(|e| (i, e)))
            .collect();
        let Ok(out) = to.call(entries.iter().map(|(_, e)| e)).send().await else {
            continue;
        };
        for (i, _) in &entries {
            if sqs_batch::result_of(&out, *i) == EntryResult::Sent {
                sent.push(&letters[*i]);
            }
        }
    }
    sent
}

/// The letter's size as SQS counts it: body, attribute names and values.
fn size(letter: &Letter) -> usize {
    letter.body.len()
        + letter
            .attributes
            .iter()
            .map(|(name, value)| {
                name.len()
                    + value.data_type().len()
                    + value.string_value().map_or(0, str::len)
                    + value.binary_value().map_or(0, |b| b.as_ref().len())
            })
            .sum::<usize>()
}

/// The events-queue entry of a letter: its body and attributes as they came, without the
/// rejection's; for a FIFO queue, its group (else its destination) and its message id as the
/// deduplication id.
fn entry(to: &Target, slot: usize, letter: &Letter) -> Option<SendMessageBatchRequestEntry> {
    let mut entry = SendMessageBatchRequestEntry::builder()
        .id(slot.to_string())
        .message_body(&letter.body);
    for (name, value) in &letter.attributes {
        if !REJECTION_ATTRIBUTES.contains(&name.as_str()) {
            entry = entry.message_attributes(name, value.clone());
        }
    }
    if to.fifo {
        let group = letter
            .group_id
            .as_deref()
            .or(letter.attribute(attributes::DESTINATION_ID))
            .unwrap_or(DEFAULT_GROUP);
        entry = entry
            .message_group_id(group)
            .message_deduplication_id(&letter.message_id);
    }
    entry.build().ok()
}
