//! The pure LoRaWAN core of Lorikeet: identifiers and keys, PHYPayload framing,
//! MIC and payload crypto for LoRaWAN 1.0.x and 1.1, key derivation and the MAC
//! command codec.
//!
//! Nothing in this crate performs I/O, reads a clock or draws randomness: bytes
//! and state go in, bytes and decisions come out.

pub mod types;

pub use types::{Aes128Key, DevAddr, DevNonce, Eui64, JoinNonce, NetId, ParseError};
