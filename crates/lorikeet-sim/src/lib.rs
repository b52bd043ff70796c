//! Simulated gateways and devices over the real Semtech UDP protocol, and the load
//! generator built from them: used by the end-to-end tests of `lorikeet` and by the
//! `lorikeet-sim` binary (which `lorikeet sim` runs).
//!
//! A crate of its own so the server does not carry the simulator or what only it
//! needs; it depends on the protocol crates, never on the `lorikeet` server crate.

pub mod cli;
pub mod device;
pub mod gateway;
pub mod jit;
pub mod load;
pub mod provision;
pub mod report;
pub mod webhook;

pub use device::{SimDevice, SimError, SimMac, SimSession};
pub use gateway::{ReceivedDownlink, RxMeta, SimGateway};
pub use load::{LoadConfig, PayloadKind};
pub use provision::{Activation, ProvisionConfig, Provisioned};
pub use report::Report;
pub use webhook::Tracker;
