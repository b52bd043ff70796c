//! The pure LoRaWAN core of Lorikeet: identifiers and keys, PHYPayload framing,
//! MIC and payload crypto for LoRaWAN 1.0.x and 1.1, key derivation, frame
//! counters and the MAC command codec.
//!
//! Nothing in this crate performs I/O, reads a clock or draws randomness: bytes
//! and state go in, bytes and decisions come out. Every decoder takes untrusted
//! bytes and answers with a typed error instead of panicking.
//!
//! - [`types`]: `Eui64`, `DevAddr`, `NetId`, `DevNonce`, `JoinNonce`, `Aes128Key`.
//! - [`phy`]: `PhyPayload::decode` / `encode` for every message type.
//! - [`crypto`]: MICs, encryption, key derivation, and whole-frame builders/openers.
//! - [`fcnt`]: 32-bit frame counter reconstruction.
//! - [`mac`]: MAC commands, both directions.

pub mod crypto;
pub mod fcnt;
#[doc(hidden)]
pub mod fuzzing;
pub mod mac;
pub mod phy;
mod reader;
pub mod types;

pub use phy::{DecodeError, EncodeError, MType, PhyPayload};
pub use types::{Aes128Key, DevAddr, DevNonce, Eui64, ExposedKey, JoinNonce, NetId, ParseError};
