//! The sources a payload comes from. Each decodes its payload into the engine's units of work
//! (`crate::engine::Unit`: id, destination, body, ordering key) and turns the settled units into
//! its own answer; `shape` tells them apart, in one place. A new source is a folder here and one
//! arm of the shape detector (docs/architecture.md, "Adding a source").

pub mod error;
pub mod http;
pub mod shape;
pub mod sqs;

pub use shape::Shape;
