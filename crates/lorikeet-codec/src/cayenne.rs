//! Cayenne Low Power Payload (LPP): decode uplinks, encode downlinks.
//!
//! The wire format is a sequence of `channel, type, value` records, values
//! big-endian and scaled per type. The decoded object has ChirpStack v4's shape:
//! one key per type (`"temperatureSensor"`), under it one key per channel
//! (`"3"`), under that the value (a number, or an object for the multi-axis,
//! GPS and colour types), e.g.
//! `{"temperatureSensor":{"3":27.2},"gpsLocation":{"1":{"latitude":42.3519,"longitude":-87.9094,"altitude":10}}}`.
//!
//! The twelve IPSO types of the original Cayenne spec use ChirpStack's key names;
//! the extension types of the widely used Arduino `CayenneLPP` library (voltage,
//! current, unix time, …) use names in the same style. [`LppType::ALL`] is the
//! full table; `docs/codecs.md` shows it with sizes and resolutions.
//!
//! Pure code: no I/O, no clock. Every malformed input is a [`CayenneError`].

use serde_json::{Map, Number, Value};

/// One Cayenne LPP data type: its wire id, JSON key and value layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LppType {
    /// 0: digital input, 1 byte.
    DigitalInput,
    /// 1: digital output, 1 byte.
    DigitalOutput,
    /// 2: analog input, 2 bytes signed, 0.01.
    AnalogInput,
    /// 3: analog output, 2 bytes signed, 0.01.
    AnalogOutput,
    /// 100: generic sensor, 4 bytes unsigned.
    GenericSensor,
    /// 101: illuminance in lux, 2 bytes unsigned.
    IlluminanceSensor,
    /// 102: presence, 1 byte.
    PresenceSensor,
    /// 103: temperature in °C, 2 bytes signed, 0.1.
    TemperatureSensor,
    /// 104: relative humidity in %, 1 byte unsigned, 0.5.
    HumiditySensor,
    /// 113: accelerometer in G, 3 × 2 bytes signed, 0.001.
    Accelerometer,
    /// 115: barometric pressure in hPa, 2 bytes unsigned, 0.1.
    Barometer,
    /// 116: voltage in V, 2 bytes unsigned, 0.01.
    Voltage,
    /// 117: current in A, 2 bytes unsigned, 0.001.
    Current,
    /// 118: frequency in Hz, 4 bytes unsigned.
    Frequency,
    /// 120: percentage, 1 byte unsigned.
    Percentage,
    /// 121: altitude in m, 2 bytes signed.
    Altitude,
    /// 125: concentration in ppm, 2 bytes unsigned.
    Concentration,
    /// 128: power in W, 2 bytes unsigned.
    Power,
    /// 130: distance in m, 4 bytes unsigned, 0.001.
    Distance,
    /// 131: energy in kWh, 4 bytes unsigned, 0.001.
    Energy,
    /// 132: direction in degrees, 2 bytes unsigned.
    Direction,
    /// 133: unix time in seconds, 4 bytes unsigned.
    UnixTime,
    /// 134: gyrometer in °/s, 3 × 2 bytes signed, 0.01.
    Gyrometer,
    /// 135: colour, 3 bytes (r, g, b).
    Colour,
    /// 136: GPS location: latitude and longitude 3 bytes signed 0.0001°, altitude 3 bytes signed 0.01 m.
    GpsLocation,
    /// 142: switch, 1 byte (0/1).
    Switch,
}

/// How a type's value sits on the wire.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// One big-endian integer of `bytes` bytes, divided by `divisor`.
    Scalar {
        bytes: usize,
        signed: bool,
        divisor: f64,
    },
    /// Three big-endian i16 named x, y, z, each divided by `divisor`.
    Xyz { divisor: f64 },
    /// Three big-endian i24: latitude, longitude (0.0001°), altitude (0.01 m).
    Gps,
    /// Three bytes named r, g, b.
    Rgb,
}

const fn scalar(bytes: usize, signed: bool, divisor: f64) -> Layout {
    Layout::Scalar {
        bytes,
        signed,
        divisor,
    }
}

const GPS_FIELDS: [(&str, f64); 3] = [
    ("latitude", 10_000.0),
    ("longitude", 10_000.0),
    ("altitude", 100.0),
];
const XYZ_FIELDS: [&str; 3] = ["x", "y", "z"];
const RGB_FIELDS: [&str; 3] = ["r", "g", "b"];

impl LppType {
    /// Every supported type, in wire-id order (also the order `encode` writes them).
    pub const ALL: [LppType; 26] = [
        LppType::DigitalInput,
        LppType::DigitalOutput,
        LppType::AnalogInput,
        LppType::AnalogOutput,
        LppType::GenericSensor,
        LppType::IlluminanceSensor,
        LppType::PresenceSensor,
        LppType::TemperatureSensor,
        LppType::HumiditySensor,
        LppType::Accelerometer,
        LppType::Barometer,
        LppType::Voltage,
        LppType::Current,
        LppType::Frequency,
        LppType::Percentage,
        LppType::Altitude,
        LppType::Concentration,
        LppType::Power,
        LppType::Distance,
        LppType::Energy,
        LppType::Direction,
        LppType::UnixTime,
        LppType::Gyrometer,
        LppType::Colour,
        LppType::GpsLocation,
        LppType::Switch,
    ];

    /// The type byte on the wire.
    pub const fn id(self) -> u8 {
        match self {
            LppType::DigitalInput => 0,
            LppType::DigitalOutput => 1,
            LppType::AnalogInput => 2,
            LppType::AnalogOutput => 3,
            LppType::GenericSensor => 100,
            LppType::IlluminanceSensor => 101,
            LppType::PresenceSensor => 102,
            LppType::TemperatureSensor => 103,
            LppType::HumiditySensor => 104,
            LppType::Accelerometer => 113,
            LppType::Barometer => 115,
            LppType::Voltage => 116,
            LppType::Current => 117,
            LppType::Frequency => 118,
            LppType::Percentage => 120,
            LppType::Altitude => 121,
            LppType::Concentration => 125,
            LppType::Power => 128,
            LppType::Distance => 130,
            LppType::Energy => 131,
            LppType::Direction => 132,
            LppType::UnixTime => 133,
            LppType::Gyrometer => 134,
            LppType::Colour => 135,
            LppType::GpsLocation => 136,
            LppType::Switch => 142,
        }
    }

    /// The key of this type in the decoded object (ChirpStack's names for the IPSO twelve).
    pub const fn key(self) -> &'static str {
        match self {
            LppType::DigitalInput => "digitalInput",
            LppType::DigitalOutput => "digitalOutput",
            LppType::AnalogInput => "analogInput",
            LppType::AnalogOutput => "analogOutput",
            LppType::GenericSensor => "genericSensor",
            LppType::IlluminanceSensor => "illuminanceSensor",
            LppType::PresenceSensor => "presenceSensor",
            LppType::TemperatureSensor => "temperatureSensor",
            LppType::HumiditySensor => "humiditySensor",
            LppType::Accelerometer => "accelerometer",
            LppType::Barometer => "barometer",
            LppType::Voltage => "voltage",
            LppType::Current => "current",
            LppType::Frequency => "frequency",
            LppType::Percentage => "percentage",
            LppType::Altitude => "altitude",
            LppType::Concentration => "concentration",
            LppType::Power => "power",
            LppType::Distance => "distance",
            LppType::Energy => "energy",
            LppType::Direction => "direction",
            LppType::UnixTime => "unixTime",
            LppType::Gyrometer => "gyrometer",
            LppType::Colour => "colour",
            LppType::GpsLocation => "gpsLocation",
            LppType::Switch => "switch",
        }
    }

    /// The type with this wire id, if we know it.
    pub fn from_id(id: u8) -> Option<LppType> {
        LppType::ALL.into_iter().find(|t| t.id() == id)
    }

    /// The type with this JSON key, if we know it.
    pub fn from_key(key: &str) -> Option<LppType> {
        LppType::ALL.into_iter().find(|t| t.key() == key)
    }

    /// Size of the value on the wire, without the channel and type bytes.
    pub const fn size(self) -> usize {
        match self.layout() {
            Layout::Scalar { bytes, .. } => bytes,
            Layout::Xyz { .. } => 6,
            Layout::Gps => 9,
            Layout::Rgb => 3,
        }
    }

    const fn layout(self) -> Layout {
        match self {
            LppType::DigitalInput
            | LppType::DigitalOutput
            | LppType::PresenceSensor
            | LppType::Percentage
            | LppType::Switch => scalar(1, false, 1.0),
            LppType::HumiditySensor => scalar(1, false, 2.0),
            LppType::AnalogInput | LppType::AnalogOutput => scalar(2, true, 100.0),
            LppType::TemperatureSensor => scalar(2, true, 10.0),
            LppType::Altitude => scalar(2, true, 1.0),
            LppType::IlluminanceSensor
            | LppType::Concentration
            | LppType::Power
            | LppType::Direction => scalar(2, false, 1.0),
            LppType::Barometer => scalar(2, false, 10.0),
            LppType::Voltage => scalar(2, false, 100.0),
            LppType::Current => scalar(2, false, 1000.0),
            LppType::GenericSensor | LppType::Frequency | LppType::UnixTime => {
                scalar(4, false, 1.0)
            }
            LppType::Distance | LppType::Energy => scalar(4, false, 1000.0),
            LppType::Accelerometer => Layout::Xyz { divisor: 1000.0 },
            LppType::Gyrometer => Layout::Xyz { divisor: 100.0 },
            LppType::Colour => Layout::Rgb,
            LppType::GpsLocation => Layout::Gps,
        }
    }
}

/// Why a Cayenne LPP payload could not be decoded, or an object not encoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CayenneError {
    /// A record starts at `offset` but only its channel byte is left.
    #[error("truncated record header at offset {offset}: only the channel byte is left")]
    TruncatedHeader {
        /// Offset of the record's channel byte.
        offset: usize,
    },
    /// A record's value is shorter than its type requires.
    #[error("truncated value at offset {offset}: type {type_id} on channel {channel} needs {needed} bytes, {available} left")]
    Truncated {
        /// Offset of the record's channel byte.
        offset: usize,
        /// Channel of the record.
        channel: u8,
        /// Type byte of the record.
        type_id: u8,
        /// Value size of that type.
        needed: usize,
        /// Bytes left after the header.
        available: usize,
    },
    /// A record has a type byte we do not know; the rest of the payload cannot be framed.
    #[error("unknown data type {type_id} at offset {offset} (channel {channel})")]
    UnknownType {
        /// Offset of the record's channel byte.
        offset: usize,
        /// Channel of the record.
        channel: u8,
        /// The unknown type byte.
        type_id: u8,
    },
    /// The object to encode is not a JSON object (or one of its type entries is not).
    #[error("expected a JSON object at {path}")]
    NotAnObject {
        /// Where in the input (`"$"` for the top level, else the type key).
        path: String,
    },
    /// The object to encode has a key that is not a known type.
    #[error("unknown Cayenne LPP key {key:?}")]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// A channel key is not a decimal number 0..=255.
    #[error("invalid channel {channel:?} under {key}")]
    InvalidChannel {
        /// The type key.
        key: &'static str,
        /// The channel key as given.
        channel: String,
    },
    /// A value (or one of its fields) is missing, not a number, or not finite.
    #[error("invalid value for {key}.{channel}{}: {reason}", field.map(|f| format!(".{f}")).unwrap_or_default())]
    InvalidValue {
        /// The type key.
        key: &'static str,
        /// The channel.
        channel: u8,
        /// The field of a multi-field value (`x`, `latitude`, `r`…).
        field: Option<&'static str>,
        /// What is wrong.
        reason: &'static str,
    },
    /// A value does not fit the type's wire range at the type's resolution.
    #[error("value {value} for {key}.{channel}{} is out of range [{min}, {max}]", field.map(|f| format!(".{f}")).unwrap_or_default())]
    OutOfRange {
        /// The type key.
        key: &'static str,
        /// The channel.
        channel: u8,
        /// The field of a multi-field value.
        field: Option<&'static str>,
        /// The value given.
        value: f64,
        /// Smallest encodable value.
        min: f64,
        /// Largest encodable value.
        max: f64,
    },
}

/// Read a big-endian integer of 1..=4 bytes, sign-extended when `signed`.
fn read_int(bytes: &[u8], signed: bool) -> i64 {
    let raw = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let bits = 8 * bytes.len() as u32;
    if signed && bits > 0 && raw & (1 << (bits - 1)) != 0 {
        raw as i64 - (1i64 << bits)
    } else {
        raw as i64
    }
}

/// A JSON number that prints like ChirpStack's: integral values without a fraction.
pub(crate) fn json_number(v: f64) -> Value {
    // 2^53: every integer up to here is exact in an f64.
    const MAX_SAFE: f64 = 9_007_199_254_740_992.0;
    if v.fract() == 0.0 && v.abs() <= MAX_SAFE {
        Value::Number(Number::from(v as i64))
    } else {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

fn decode_value(t: LppType, data: &[u8]) -> Value {
    match t.layout() {
        Layout::Scalar {
            signed, divisor, ..
        } => json_number(read_int(data, signed) as f64 / divisor),
        Layout::Xyz { divisor } => {
            let mut obj = Map::new();
            for (field, chunk) in XYZ_FIELDS.iter().zip(data.chunks_exact(2)) {
                let v = read_int(chunk, true) as f64 / divisor;
                obj.insert((*field).to_owned(), json_number(v));
            }
            Value::Object(obj)
        }
        Layout::Gps => {
            let mut obj = Map::new();
            for ((field, divisor), chunk) in GPS_FIELDS.iter().zip(data.chunks_exact(3)) {
                let v = read_int(chunk, true) as f64 / divisor;
                obj.insert((*field).to_owned(), json_number(v));
            }
            Value::Object(obj)
        }
        Layout::Rgb => {
            let mut obj = Map::new();
            for (field, b) in RGB_FIELDS.iter().zip(data) {
                obj.insert((*field).to_owned(), Value::from(*b));
            }
            Value::Object(obj)
        }
    }
}

/// Decode a Cayenne LPP payload into ChirpStack's object shape.
///
/// Records with the same type and channel overwrite each other (the last wins),
/// as in ChirpStack. An empty payload decodes to `{}`.
pub fn decode(payload: &[u8]) -> Result<Value, CayenneError> {
    let mut out = Map::new();
    let mut offset = 0;
    while offset < payload.len() {
        let rest = &payload[offset..];
        let [channel, type_id, value @ ..] = rest else {
            return Err(CayenneError::TruncatedHeader { offset });
        };
        let Some(t) = LppType::from_id(*type_id) else {
            return Err(CayenneError::UnknownType {
                offset,
                channel: *channel,
                type_id: *type_id,
            });
        };
        let Some(data) = value.get(..t.size()) else {
            return Err(CayenneError::Truncated {
                offset,
                channel: *channel,
                type_id: *type_id,
                needed: t.size(),
                available: value.len(),
            });
        };
        let entry = out
            .entry(t.key())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(channels) = entry {
            channels.insert(channel.to_string(), decode_value(t, data));
        }
        offset += 2 + t.size();
    }
    Ok(Value::Object(out))
}

/// Scale `v` to the wire integer, rounding to the nearest step, and check its range.
fn to_wire_int(
    t: LppType,
    channel: u8,
    field: Option<&'static str>,
    v: f64,
    bytes: usize,
    signed: bool,
    divisor: f64,
) -> Result<i64, CayenneError> {
    let bits = 8 * bytes as u32;
    let (lo, hi) = if signed {
        (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
    } else {
        (0, (1i64 << bits) - 1)
    };
    let scaled = (v * divisor).round();
    if !(lo as f64..=hi as f64).contains(&scaled) {
        return Err(CayenneError::OutOfRange {
            key: t.key(),
            channel,
            field,
            value: v,
            min: lo as f64 / divisor,
            max: hi as f64 / divisor,
        });
    }
    Ok(scaled as i64)
}

fn write_int(out: &mut Vec<u8>, v: i64, bytes: usize) {
    out.extend_from_slice(&v.to_be_bytes()[8 - bytes..]);
}

/// A number (or a boolean, as 0/1) from a JSON value.
fn number(
    t: LppType,
    channel: u8,
    field: Option<&'static str>,
    v: Option<&Value>,
) -> Result<f64, CayenneError> {
    let invalid = |reason| CayenneError::InvalidValue {
        key: t.key(),
        channel,
        field,
        reason,
    };
    match v {
        None => Err(invalid("missing")),
        Some(Value::Bool(b)) => Ok(f64::from(u8::from(*b))),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or_else(|| invalid("not a finite number")),
        Some(_) => Err(invalid("not a number")),
    }
}

fn encode_value(out: &mut Vec<u8>, t: LppType, channel: u8, v: &Value) -> Result<(), CayenneError> {
    let fields =
        |names: &'static [&'static str]| -> Result<Vec<(&'static str, f64)>, CayenneError> {
            let Value::Object(obj) = v else {
                return Err(CayenneError::InvalidValue {
                    key: t.key(),
                    channel,
                    field: None,
                    reason: "expected an object",
                });
            };
            names
                .iter()
                .map(|name| Ok((*name, number(t, channel, Some(name), obj.get(*name))?)))
                .collect()
        };
    match t.layout() {
        Layout::Scalar {
            bytes,
            signed,
            divisor,
        } => {
            let n = number(t, channel, None, Some(v))?;
            let raw = to_wire_int(t, channel, None, n, bytes, signed, divisor)?;
            write_int(out, raw, bytes);
        }
        Layout::Xyz { divisor } => {
            for (name, n) in fields(&XYZ_FIELDS)? {
                let raw = to_wire_int(t, channel, Some(name), n, 2, true, divisor)?;
                write_int(out, raw, 2);
            }
        }
        Layout::Gps => {
            const NAMES: [&str; 3] = [GPS_FIELDS[0].0, GPS_FIELDS[1].0, GPS_FIELDS[2].0];
            for ((name, n), (_, divisor)) in fields(&NAMES)?.into_iter().zip(GPS_FIELDS) {
                let raw = to_wire_int(t, channel, Some(name), n, 3, true, divisor)?;
                write_int(out, raw, 3);
            }
        }
        Layout::Rgb => {
            for (name, n) in fields(&RGB_FIELDS)? {
                let raw = to_wire_int(t, channel, Some(name), n, 1, false, 1.0)?;
                write_int(out, raw, 1);
            }
        }
    }
    Ok(())
}

/// Encode an object of ChirpStack's shape into a Cayenne LPP payload.
///
/// Records are written by type (in [`LppType::ALL`] order), then by channel.
/// Values are rounded to the type's resolution (ChirpStack truncates; rounding
/// keeps `1.15` V as `115` and not `114`); values outside the wire range are an
/// error rather than silently wrapped. Booleans are accepted as 0/1.
pub fn encode(object: &Value) -> Result<Vec<u8>, CayenneError> {
    let Value::Object(obj) = object else {
        return Err(CayenneError::NotAnObject { path: "$".into() });
    };
    if let Some(key) = obj.keys().find(|k| LppType::from_key(k).is_none()) {
        return Err(CayenneError::UnknownKey { key: key.clone() });
    }
    let mut out = Vec::new();
    for t in LppType::ALL {
        let Some(entry) = obj.get(t.key()) else {
            continue;
        };
        let Value::Object(channels) = entry else {
            return Err(CayenneError::NotAnObject {
                path: t.key().into(),
            });
        };
        let mut sorted = channels
            .iter()
            .map(|(k, v)| {
                k.parse::<u8>()
                    .ok()
                    .filter(|c| c.to_string() == *k)
                    .map(|c| (c, v))
                    .ok_or_else(|| CayenneError::InvalidChannel {
                        key: t.key(),
                        channel: k.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        sorted.sort_by_key(|(c, _)| *c);
        for (channel, v) in sorted {
            out.push(channel);
            out.push(t.id());
            encode_value(&mut out, t, channel, v)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
