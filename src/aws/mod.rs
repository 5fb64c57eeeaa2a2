//! The AWS adapters behind the ports: SQS (`SendMessageBatch` packing shared by the dead-letter
//! queue and the events queue, `ChangeMessageVisibilityBatch`). Secrets Manager's is
//! `crate::credentials`, whose cache is most of it.

pub mod dead_letter_queue;
pub mod events_queue;
pub mod sqs_batch;
pub mod sqs_visibility;
