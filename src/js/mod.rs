//! JavaScript's semantics where the reference (rudder-transformer, in Node.js) depends on them:
//! V8's `Date.parse` forms (`date`), `ts` as the reference reads it (`ts`), and how a raw value
//! counts as present, truthy, or becomes text (`value`).

pub mod date;
pub mod ts;
pub mod value;
