//! Putting a downlink in a device's queue.
//!
//! Limits, defined here only:
//! - [`MAX_QUEUE_ITEMS`] items wait per device;
//! - [`MAX_DOWNLINK_PAYLOAD`] bytes of FRMPayload at most (the largest any data rate carries);
//! - FPort 1..=223 (0 carries MAC commands, 224 is the test port, the rest is reserved).
//!
//! An `object` is encoded with the device profile's codec *when it is queued*: an
//! object the codec cannot encode is refused with the codec's message instead of
//! waiting in the queue to fail later. The stored item keeps the object (for the
//! queue listing) beside the bytes that will be sent.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Utc};
use lorikeet_codec::{CodecConfig, Codecs, DownlinkInput};
use lorikeet_lorawan::Eui64;
use lorikeet_storage::{Device, PayloadCodec, QueueItem, Storage, StoreError};
use serde_json::Value;
use uuid::Uuid;

/// At most this many items wait per device: more is almost always a client bug, and
/// the network server keeps queues in memory.
pub const MAX_QUEUE_ITEMS: usize = 64;
/// Largest FRMPayload of any data rate (the payload actually sendable depends on the
/// data rate the device is on at the time; the core checks that when it sends).
pub const MAX_DOWNLINK_PAYLOAD: usize = 242;

/// A downlink as an entry point received it, before any check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DownlinkRequest {
    /// FPort (1..=223 accepted).
    pub f_port: Option<u64>,
    /// The FRMPayload in base64; exclusive with `object`.
    pub data: Option<String>,
    /// An object for the profile's codec to encode; exclusive with `data`.
    pub object: Option<Value>,
    /// Whether the device must acknowledge it.
    pub confirmed: bool,
    /// When it is dropped if not sent.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Why a downlink was not queued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The request itself is wrong (the message says how to fix it).
    #[error("{0}")]
    Invalid(String),
    /// The profile's codec refused the object.
    #[error("the device profile's codec cannot encode this object: {0}")]
    Codec(String),
    /// The device's queue is at [`MAX_QUEUE_ITEMS`].
    #[error(
        "the queue of device {dev_eui} is full ({max} items); flush it with DELETE \
         /api/v1/devices/{dev_eui}/queue or wait for it to drain"
    )]
    QueueFull {
        /// The device.
        dev_eui: Eui64,
        /// The limit.
        max: usize,
    },
    /// No codec runtime is available to encode objects (the server could not start it).
    #[error("downlinks queued as an object cannot be encoded: the codec runtime is not running")]
    NoCodecRuntime,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EnqueueError {
    /// A short, stable label (metrics, logs).
    pub fn reason(&self) -> &'static str {
        match self {
            EnqueueError::Invalid(_) => "invalid",
            EnqueueError::Codec(_) => "codec",
            EnqueueError::QueueFull { .. } => "queue_full",
            EnqueueError::NoCodecRuntime => "no_codec_runtime",
            EnqueueError::Store(_) => "storage",
        }
    }
}

/// What to send, once the request's form is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Bytes as given.
    Bytes(Vec<u8>),
    /// An object for the codec.
    Object(Value),
}

/// A request whose form is valid (checked without any lookup).
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// FPort, 1..=223.
    pub f_port: u8,
    /// Bytes or an object.
    pub payload: Payload,
    /// Confirmed downlink.
    pub confirmed: bool,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

fn f_port(p: u64) -> Result<u8, EnqueueError> {
    match p {
        1..=223 => Ok(p as u8),
        p => Err(EnqueueError::Invalid(format!(
            "fPort must be from 1 to 223, got {p} (0 is reserved for MAC commands)"
        ))),
    }
}

fn size(len: usize, what: &str) -> Result<(), EnqueueError> {
    if len > MAX_DOWNLINK_PAYLOAD {
        return Err(EnqueueError::Invalid(format!(
            "{what} is {len} bytes; no LoRaWAN data rate carries more than {MAX_DOWNLINK_PAYLOAD}"
        )));
    }
    Ok(())
}

/// Checks the request's form: FPort, exactly one of data and object, base64, size.
pub fn check(req: DownlinkRequest) -> Result<Checked, EnqueueError> {
    let f_port = match req.f_port {
        Some(p) => f_port(p)?,
        None => return Err(EnqueueError::Invalid("fPort is required".into())),
    };
    let payload =
        match (req.data, req.object) {
            (Some(_), Some(_)) => return Err(EnqueueError::Invalid(
                "send either data (base64 bytes) or object (to encode with the codec), not both"
                    .into(),
            )),
            (None, None) => {
                return Err(EnqueueError::Invalid(
                    "data (base64 bytes) or object (to encode with the codec) is required".into(),
                ))
            }
            (Some(data), None) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .map_err(|e| EnqueueError::Invalid(format!("data is not valid base64: {e}")))?;
                size(bytes.len(), "data")?;
                Payload::Bytes(bytes)
            }
            (None, Some(object)) => Payload::Object(object),
        };
    Ok(Checked {
        f_port,
        payload,
        confirmed: req.confirmed,
        expires_at: req.expires_at,
    })
}

/// The codec crate's view of the codec of device profile `profile_id`: a script runs in
/// a runtime of that profile's own.
pub fn codec_config(c: &PayloadCodec, profile_id: uuid::Uuid) -> CodecConfig {
    match c {
        PayloadCodec::None => CodecConfig::None,
        PayloadCodec::CayenneLpp => CodecConfig::CayenneLpp,
        PayloadCodec::JavaScript { script } => CodecConfig::JavaScript {
            script: script.clone(),
            scope: profile_id.as_u128(),
        },
    }
}

/// Checks `req` for `device` (already found and authorised by the caller), encodes an
/// object with the device profile's codec, checks the queue limit and stores the
/// item. `codecs`: the codec runtime (`None` refuses objects).
pub async fn enqueue(
    storage: &dyn Storage,
    codecs: Option<&Codecs>,
    device: &Device,
    req: DownlinkRequest,
) -> Result<QueueItem, EnqueueError> {
    let checked = check(req)?;
    let dev_eui = device.dev_eui;
    let mut f_port = checked.f_port;
    let (data, object) = match checked.payload {
        Payload::Bytes(b) => (b, None),
        Payload::Object(object) => {
            let profile = storage
                .get_device_profile(device.device_profile_id)
                .await?
                .ok_or_else(|| {
                    EnqueueError::Invalid(format!(
                        "device {dev_eui}'s profile {} no longer exists",
                        device.device_profile_id
                    ))
                })?;
            if profile.payload_codec == PayloadCodec::None {
                return Err(EnqueueError::Invalid(format!(
                    "object needs a payload codec, but device profile {} has none; send data \
                     (base64) or set payloadCodec on the profile",
                    profile.id
                )));
            }
            let codecs = codecs.ok_or(EnqueueError::NoCodecRuntime)?;
            let input = DownlinkInput {
                object: object.clone(),
                f_port: Some(f_port),
                variables: BTreeMap::new(),
            };
            let encoded = codecs
                .encode_downlink(&codec_config(&profile.payload_codec, profile.id), input)
                .await
                .map_err(|e| EnqueueError::Codec(e.to_string()))?;
            if let Some(p) = encoded.f_port {
                f_port = self::f_port(u64::from(p)).map_err(|_| {
                    EnqueueError::Codec(format!("the codec chose fPort {p}; it must be 1..=223"))
                })?;
            }
            size(encoded.bytes.len(), "the encoded object")?;
            (encoded.bytes, Some(object))
        }
    };
    if storage.get_queue(dev_eui).await?.len() >= MAX_QUEUE_ITEMS {
        return Err(EnqueueError::QueueFull {
            dev_eui,
            max: MAX_QUEUE_ITEMS,
        });
    }
    let item = QueueItem {
        id: Uuid::new_v4(),
        dev_eui,
        f_port,
        data,
        confirmed: checked.confirmed,
        object,
        f_cnt_down: None,
        pending: false,
        sent_at: None,
        expires_at: checked.expires_at,
        created_at: lorikeet_storage::now(),
    };
    storage.enqueue(&item).await?;
    Ok(item)
}
