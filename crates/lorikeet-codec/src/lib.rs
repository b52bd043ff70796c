//! Payload codecs per device profile: Cayenne LPP and sandboxed JavaScript.
//!
//! The application server turns an uplink's FRMPayload into a JSON `object`
//! (and a queued downlink's `object` into bytes) with the codec of the device
//! profile, a [`CodecConfig`]. [`Codecs`] is the one handle it needs: built once
//! in `main` from [`CodecLimits`], cloned into every task, called from async code.
//!
//! - [`cayenne`] is pure Rust and runs inline on the caller's task.
//! - JavaScript runs in QuickJS on a few dedicated worker threads that keep
//!   compiled scripts warm (see [`Codecs`] for the design and [`JsEngine`] for
//!   the single-threaded engine they run), under hard time, memory and stack
//!   limits, with no I/O reachable from the script.
//!
//! `docs/codecs.md` documents the JSON shapes, the JavaScript API and the limits.

pub mod cayenne;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod js;
mod pool;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use error::{CodecError, SetupError, Stage};
pub use js::{JsEngine, ScriptInfo, MAX_DEPTH, MAX_OUTPUT_BYTES};
pub use pool::Codecs;

/// The codec of a device profile, as stored with the profile.
///
/// Serialised as `{"type":"none"}`, `{"type":"cayenne_lpp"}` or
/// `{"type":"javascript","script":"function decodeUplink(input) {…}"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CodecConfig {
    /// No codec: uplinks carry only `data`, downlinks must be given as bytes.
    #[default]
    None,
    /// Cayenne Low Power Payload.
    CayenneLpp,
    /// A payload-formatter script with `decodeUplink` and/or `encodeDownlink`.
    #[serde(rename = "javascript")]
    JavaScript {
        /// The script source.
        script: String,
        /// Whose script it is (the device profile's id as a number): scripts run in
        /// a runtime of their own per scope, so two profiles with the same source
        /// never share globals. Not stored: the owner sets it when loading.
        #[serde(skip)]
        scope: u128,
    },
}

/// Hard limits of the JavaScript sandbox and the size of the worker pool.
///
/// Proposed server configuration keys are given per field (section `[codec]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecLimits {
    /// Wall-clock budget of one call (`time_limit_ms`, default 100 ms). Loading a
    /// script (compiling and running its top level) gets its own budget of the same size.
    pub time: Duration,
    /// Heap limit of one script's QuickJS runtime (`memory_limit_bytes`, default 16 MiB).
    pub memory_bytes: usize,
    /// JavaScript stack limit (`stack_limit_bytes`, default 256 KiB); deep recursion
    /// past it throws a `RangeError`.
    pub stack_bytes: usize,
    /// Compiled scripts kept per worker thread, least recently used evicted
    /// (`max_cached_scripts`, default 64).
    pub max_cached_scripts: usize,
    /// JavaScript worker threads (`workers`, default 2).
    pub workers: usize,
}

impl Default for CodecLimits {
    fn default() -> Self {
        CodecLimits {
            time: Duration::from_millis(100),
            memory_bytes: 16 << 20,
            stack_bytes: 256 << 10,
            max_cached_scripts: 64,
            workers: 2,
        }
    }
}

impl CodecLimits {
    /// Smallest heap a QuickJS context with all intrinsics starts in, with headroom.
    pub const MIN_MEMORY_BYTES: usize = 1 << 20;
    /// Smallest stack that lets ordinary codecs run.
    pub const MIN_STACK_BYTES: usize = 64 << 10;

    /// Check the limits before any thread is started.
    pub fn validate(&self) -> Result<(), SetupError> {
        if self.time.is_zero() {
            return Err(SetupError::InvalidLimits("time limit must be above zero"));
        }
        if self.memory_bytes < Self::MIN_MEMORY_BYTES {
            return Err(SetupError::InvalidLimits(
                "memory limit must be at least 1 MiB",
            ));
        }
        if self.stack_bytes < Self::MIN_STACK_BYTES {
            return Err(SetupError::InvalidLimits(
                "stack limit must be at least 64 KiB",
            ));
        }
        if self.max_cached_scripts == 0 {
            return Err(SetupError::InvalidLimits(
                "max_cached_scripts must be at least 1",
            ));
        }
        if self.workers == 0 {
            return Err(SetupError::InvalidLimits("workers must be at least 1"));
        }
        Ok(())
    }
}

/// What `decodeUplink` is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkInput {
    /// The decrypted FRMPayload.
    pub bytes: Vec<u8>,
    /// The uplink's FPort (1..=223 for application data).
    pub f_port: u8,
    /// When the uplink was received; a JavaScript `Date` in the script.
    pub recv_time: SystemTime,
    /// The device's variables, e.g. calibration constants.
    pub variables: BTreeMap<String, String>,
}

/// What `encodeDownlink` is given.
#[derive(Debug, Clone, PartialEq)]
pub struct DownlinkInput {
    /// The downlink queued as an object.
    pub object: serde_json::Value,
    /// The FPort it was queued with, if any; passed to the script as `fPort` and
    /// used when the script returns none.
    pub f_port: Option<u8>,
    /// The device's variables.
    pub variables: BTreeMap<String, String>,
}

/// A decoded uplink.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The `object` of the up event: always a JSON object.
    pub object: serde_json::Value,
    /// The script's `warnings`, if any.
    pub warnings: Vec<String>,
}

/// An encoded downlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The FRMPayload to encrypt and send.
    pub bytes: Vec<u8>,
    /// The FPort the script chose, else the one the downlink was queued with.
    pub f_port: Option<u8>,
    /// The script's `warnings`, if any.
    pub warnings: Vec<String>,
}
