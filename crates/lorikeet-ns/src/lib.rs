//! The pure network-server core of Lorikeet.
//!
//! No sockets, no database, no clock: callers pass frames, `now` and randomness in, and
//! get decisions, new state, events and frames to send back.

pub mod dedup;
pub mod rx;

pub use dedup::{Deduplicator, Inserted, RxFrame, Uplink};
pub use rx::{Location, Modulation, RxInfo, TxInfo};
