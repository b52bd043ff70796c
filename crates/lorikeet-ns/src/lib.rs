//! The pure network-server core of Lorikeet.
//!
//! No sockets, no database, no clock: callers pass frames, `now` and randomness in, and
//! get decisions, new state, events and frames to send back (see [`NetworkServer`]).

pub mod dedup;
pub mod device;
pub mod downlink;
mod frames;
mod join;
mod log_limit;
pub mod mac;
pub mod output;
pub mod radio;
pub mod region;
pub mod rx;
pub mod schedule;
pub mod server;
mod uplink;

pub use dedup::{Deduplicator, Inserted, RxFrame, Uplink};
pub use device::{
    Device, DeviceProfile, JoinState, MacVersion, QueueItem, RootKeys, Session, SessionState,
};
pub use lorikeet_lorawan::crypto::SessionKeys;
pub use output::{
    DownlinkId, DownlinkRequest, DropReason, Event, Output, StoreChange, Timing, TxResult, Window,
};
pub use radio::{DownlinkStats, DutyUse, TxAckError};
pub use rx::{Location, Modulation, RxInfo, TxInfo};
pub use server::{NetworkServer, NsConfig, RxWindowPolicy};
