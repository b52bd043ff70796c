//! The one error type of the crate.

use std::fmt;
use std::time::Duration;

use crate::cayenne::CayenneError;

/// Which part of a JavaScript codec was running when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The script's top-level code, run once when the script is loaded.
    Load,
    /// `decodeUplink(input)`.
    DecodeUplink,
    /// `encodeDownlink(input)`.
    EncodeDownlink,
}

impl Stage {
    /// The JavaScript name of the entry point (`"decodeUplink"`), or `"script"` for [`Stage::Load`].
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Load => "script",
            Stage::DecodeUplink => "decodeUplink",
            Stage::EncodeDownlink => "encodeDownlink",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a payload could not be decoded or encoded.
///
/// Every variant is a per-payload outcome: the application server logs it (an
/// `UPLINK_CODEC` log event) and carries on; none of them means the codec
/// service itself is broken, except [`CodecError::Unavailable`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// `encode_downlink` was given an object but the device profile has no codec.
    #[error("the device profile has no payload codec to encode the object with")]
    NoCodec,
    /// The Cayenne LPP payload or object is malformed.
    #[error("Cayenne LPP: {0}")]
    Cayenne(#[from] CayenneError),
    /// The script does not parse.
    #[error("script syntax error{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Syntax {
        /// QuickJS's message, e.g. `unexpected token in expression: ';'`.
        message: String,
        /// 1-based line of the error, when QuickJS reports it.
        line: Option<u32>,
        /// 1-based column of the error, when QuickJS reports it.
        column: Option<u32>,
    },
    /// The script does not define the function this call needs.
    #[error("script does not define a {function} function")]
    MissingFunction {
        /// The entry point that is missing.
        function: Stage,
    },
    /// The script threw (a runtime error or an explicit `throw`).
    #[error("{stage} threw: {message}")]
    Exception {
        /// Where it was thrown.
        stage: Stage,
        /// `Name: message` of an Error, or the thrown value as a string.
        message: String,
        /// The JavaScript stack trace, when the thrown value has one.
        stack: Option<String>,
    },
    /// The script ran longer than the time limit and was interrupted.
    #[error("{stage} exceeded the time limit of {limit:?}")]
    Timeout {
        /// Where it was interrupted.
        stage: Stage,
        /// The configured limit.
        limit: Duration,
    },
    /// The script's runtime hit its memory limit.
    #[error("{stage} exceeded the memory limit of {limit_bytes} bytes")]
    OutOfMemory {
        /// Where the allocation failed.
        stage: Stage,
        /// The configured limit.
        limit_bytes: usize,
    },
    /// The script reported failure through a non-empty `errors` array.
    #[error("{stage} returned errors: {}", errors.join("; "))]
    ScriptErrors {
        /// Which function returned them.
        stage: Stage,
        /// The strings of the `errors` array.
        errors: Vec<String>,
    },
    /// The script's return value does not follow the payload-formatter API.
    #[error("{stage} returned an invalid result: {reason}")]
    InvalidReturn {
        /// Which function returned it.
        stage: Stage,
        /// What is wrong, e.g. `` `data` is missing ``.
        reason: String,
    },
    /// `encodeDownlink` returned a `bytes` element that is not an integer 0..=255.
    #[error("encodeDownlink returned bytes[{index}] = {value}, not an integer 0..=255")]
    InvalidByte {
        /// Index in the `bytes` array.
        index: usize,
        /// The offending element, as JSON or a type name.
        value: String,
    },
    /// `encodeDownlink` returned an `fPort` that is not an integer 1..=223.
    #[error("encodeDownlink returned fPort {value}, not an integer 1..=223")]
    InvalidFPort {
        /// The offending value, as JSON or a type name.
        value: String,
    },
    /// A value crossing between Rust and JavaScript is too big or too deeply nested.
    #[error("{what} is too large: {reason}")]
    TooLarge {
        /// `"input"` (going into the script) or `"output"` (coming out of it).
        what: &'static str,
        /// Which bound was crossed.
        reason: String,
    },
    /// QuickJS failed in a way that is not the script's fault (e.g. it could not create a runtime).
    #[error("JavaScript engine error: {reason}")]
    Engine {
        /// What failed.
        reason: String,
    },
    /// The codec worker threads are gone (the service is shutting down).
    #[error("the codec workers are not running")]
    Unavailable,
}

/// Why [`crate::Codecs::new`] refused to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A limit is zero or too small to run any script.
    #[error("invalid codec limit: {0}")]
    InvalidLimits(&'static str),
    /// A worker thread could not be spawned.
    #[error("cannot spawn a codec worker thread: {0}")]
    Spawn(#[from] std::io::Error),
}
