//! The Lambda handler. [`Handler::handle`] takes the payload text, tells its [`Shape`]
//! (`shape`), and hands it to `sqs` or `http`, which turn it into events, deliver them through
//! the shared `pipeline`, and answer in their own form. Anything unknown gets an error
//! response, never a panic, and the container goes on to the next invocation.

mod dead_letters;
mod handler;
pub mod http;
mod pipeline;
mod regulation;
mod shape;
pub mod sqs;

pub use handler::{CleverTapApi, Handler, HandlerError, Invocation};
pub use shape::Shape;

#[cfg(test)]
pub(crate) mod fakes;
#[cfg(test)]
mod prop_tests;
