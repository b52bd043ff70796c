//! PUSH_DATA bodies: `{"rxpk":[…],"stat":{…}}` to [`UplinkFrame`]s and [`GatewayStats`].
//!
//! Each `rxpk` and the `stat` are parsed on their own (via `RawValue`), so one odd
//! packet costs only itself. Every field is read leniently (optional, numbers as
//! floats where forwarders disagree) and then checked, so that the dialects in use
//! parse: Semtech lora_pkt_fwd (with or without `time`), SX1302 (`tmms`, `rssis`,
//! `foff`, `mid`, `ftime`), Kerlink-style `jver: 2` with per-antenna `rsig`, FSK
//! packets without `lsnr`/`codr`, and `stat` without `time`.

use std::time::SystemTime;

use base64::Engine;
use chrono::SecondsFormat;
use lorikeet_lorawan::Eui64;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::json::{self, Datr, Text, BASE64};
use super::{upstream_prefix, DatagramError, PacketType};
use crate::types::{
    AntennaSignal, CodeRate, GatewayStats, Location, Modulation, UplinkFrame, MAX_PHY_PAYLOAD_BYTES,
};

/// The contents of one PUSH_DATA: each packet and the status, each parsed or refused
/// on its own.
#[derive(Debug)]
pub struct PushData {
    /// One entry per `rxpk`, in datagram order.
    pub uplinks: Vec<Result<UplinkFrame, RxpkError>>,
    /// The `stat` object, when present.
    pub stats: Option<Result<GatewayStats, StatError>>,
}

/// Why one `rxpk` was dropped.
#[derive(Debug, thiserror::Error)]
pub enum RxpkError {
    /// `stat: -1`: the radio received it with a bad CRC.
    #[error("CRC check failed")]
    CrcFailed,
    /// `stat: 0`: no CRC; LoRaWAN uplinks always carry one.
    #[error("packet has no CRC")]
    CrcMissing,
    /// A field has the wrong JSON type, or the object is not an object.
    #[error("malformed rxpk: {0}")]
    Json(#[source] serde_json::Error),
    /// A required field is missing.
    #[error("rxpk has no {field}")]
    Missing {
        /// JSON field name.
        field: &'static str,
    },
    /// A field is outside its possible range (e.g. `tmst` above 2^32, negative `freq`).
    #[error("rxpk field {field} is out of range")]
    OutOfRange {
        /// JSON field name.
        field: &'static str,
    },
    /// `data` is not base64.
    #[error("rxpk data is not base64: {0}")]
    BadBase64(#[source] base64::DecodeError),
    /// `data` is longer than any LoRa packet.
    #[error("rxpk payload of {len_bytes} bytes exceeds {MAX_PHY_PAYLOAD_BYTES}")]
    PayloadTooLarge {
        /// Decoded (or estimated from the base64 length) size.
        len_bytes: usize,
    },
    /// `modu` is neither `LORA` nor `FSK` (e.g. `LR-FHSS`).
    #[error("unknown modulation")]
    UnknownModulation,
    /// `datr` does not name a data rate of its modulation.
    #[error("unknown data rate")]
    UnknownDataRate,
    /// `codr` is not a coding rate.
    #[error("unknown coding rate")]
    UnknownCodeRate,
}

/// Why a `stat` object was dropped (its datagram's packets are still used).
#[derive(Debug, thiserror::Error)]
pub enum StatError {
    /// A field has the wrong JSON type (e.g. a negative counter).
    #[error("malformed stat: {0}")]
    Json(#[source] serde_json::Error),
}

#[derive(Deserialize)]
struct RawPushData<'a> {
    #[serde(borrow, default)]
    rxpk: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    stat: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawRxpk<'a> {
    #[serde(borrow, default)]
    time: Option<Text<'a>>,
    #[serde(default)]
    tmms: Option<u64>,
    #[serde(default)]
    tmst: Option<u64>,
    #[serde(default)]
    ftime: Option<u64>,
    #[serde(default)]
    freq: Option<f64>,
    #[serde(default)]
    chan: Option<u64>,
    #[serde(default)]
    rfch: Option<u64>,
    #[serde(default)]
    brd: Option<u64>,
    #[serde(default)]
    mid: Option<u64>,
    #[serde(default)]
    stat: Option<i64>,
    #[serde(borrow, default)]
    modu: Option<Text<'a>>,
    #[serde(borrow, default)]
    datr: Option<Datr<'a>>,
    #[serde(borrow, default)]
    codr: Option<Text<'a>>,
    #[serde(default)]
    rssi: Option<f64>,
    #[serde(default)]
    rssis: Option<f64>,
    #[serde(default)]
    lsnr: Option<f64>,
    #[serde(default)]
    foff: Option<f64>,
    #[serde(borrow, default)]
    data: Option<Text<'a>>,
    #[serde(borrow, default)]
    rsig: Option<Vec<RawRsig<'a>>>,
}

#[derive(Deserialize)]
struct RawRsig<'a> {
    #[serde(default)]
    ant: Option<u64>,
    #[serde(default)]
    chan: Option<u64>,
    #[serde(default)]
    rssic: Option<f64>,
    #[serde(default)]
    rssis: Option<f64>,
    #[serde(default)]
    lsnr: Option<f64>,
    #[serde(borrow, default)]
    etime: Option<Text<'a>>,
    #[serde(default)]
    foff: Option<f64>,
}

#[derive(Deserialize)]
struct RawStat<'a> {
    #[serde(borrow, default)]
    time: Option<Text<'a>>,
    #[serde(default)]
    lati: Option<f64>,
    #[serde(default)]
    long: Option<f64>,
    #[serde(default)]
    alti: Option<f64>,
    #[serde(default)]
    rxnb: Option<u64>,
    #[serde(default)]
    rxok: Option<u64>,
    #[serde(default)]
    rxfw: Option<u64>,
    #[serde(default)]
    ackr: Option<f64>,
    #[serde(default)]
    dwnb: Option<u64>,
    #[serde(default)]
    txnb: Option<u64>,
    #[serde(default)]
    temp: Option<f64>,
}

/// Decodes the JSON body of a PUSH_DATA from `gateway_id`, received at `received_at`.
///
/// Fails as a whole only when the body is not a JSON object with optional `rxpk`
/// (array) and `stat` members; everything inside is judged per packet.
pub fn decode_push_data(
    gateway_id: Eui64,
    json: &[u8],
    received_at: SystemTime,
) -> Result<PushData, DatagramError> {
    json::require_object(json).map_err(DatagramError::InvalidJson)?;
    let raw: RawPushData<'_> = serde_json::from_slice(json).map_err(DatagramError::InvalidJson)?;
    let uplinks = raw
        .rxpk
        .unwrap_or_default()
        .into_iter()
        .map(|r| decode_rxpk(gateway_id, r.get(), received_at))
        .collect();
    let stats = raw
        .stat
        .map(|s| decode_stat(gateway_id, s.get(), received_at));
    Ok(PushData { uplinks, stats })
}

fn opt_u32(v: Option<u64>, field: &'static str) -> Result<Option<u32>, RxpkError> {
    v.map(|v| u32::try_from(v).map_err(|_| RxpkError::OutOfRange { field }))
        .transpose()
}

fn opt_i32(v: Option<f64>, field: &'static str, limit: i64) -> Result<Option<i32>, RxpkError> {
    v.map(|v| {
        json::round_in(v, -limit, limit)
            .and_then(|r| i32::try_from(r).ok())
            .ok_or(RxpkError::OutOfRange { field })
    })
    .transpose()
}

fn opt_snr(v: Option<f64>, field: &'static str) -> Result<Option<f32>, RxpkError> {
    v.map(|v| {
        if v.is_finite() && v.abs() <= 1000.0 {
            Ok(v as f32)
        } else {
            Err(RxpkError::OutOfRange { field })
        }
    })
    .transpose()
}

/// RSSI and offsets in dB/Hz never get near these; anything beyond is garbage.
const RSSI_LIMIT_DBM: i64 = 1_000;
const FOFF_LIMIT_HZ: i64 = 10_000_000;

fn decode_rsig(raw: RawRsig<'_>) -> Result<AntennaSignal, RxpkError> {
    Ok(AntennaSignal {
        antenna: opt_u32(raw.ant, "rsig.ant")?.unwrap_or(0),
        chan: opt_u32(raw.chan, "rsig.chan")?,
        rssi_channel_dbm: opt_i32(raw.rssic, "rsig.rssic", RSSI_LIMIT_DBM)?.ok_or(
            RxpkError::Missing {
                field: "rsig.rssic",
            },
        )?,
        rssi_signal_dbm: opt_i32(raw.rssis, "rsig.rssis", RSSI_LIMIT_DBM)?,
        snr_db: opt_snr(raw.lsnr, "rsig.lsnr")?,
        etime: raw.etime.map(|t| t.0.into_owned()),
        frequency_offset_hz: opt_i32(raw.foff, "rsig.foff", FOFF_LIMIT_HZ)?,
    })
}

/// Parses `SF7BW125` into (spreading factor, bandwidth in Hz).
pub(crate) fn parse_lora_datr(s: &str) -> Option<(u8, u32)> {
    let (sf, bw) = s.strip_prefix("SF")?.split_once("BW")?;
    if sf.is_empty() || sf.len() > 2 || !sf.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sf: u8 = sf.parse().ok()?;
    if !(5..=12).contains(&sf) {
        return None;
    }
    let bw_hz = match bw {
        "7" => 7_800,
        "10" => 10_400,
        "15" => 15_600,
        "20" => 20_800,
        "31" => 31_250,
        "41" => 41_700,
        "62" => 62_500,
        "125" => 125_000,
        "250" => 250_000,
        "500" => 500_000,
        "203" => 203_125,
        "406" => 406_250,
        "812" => 812_500,
        "1625" => 1_625_000,
        _ => return None,
    };
    Some((sf, bw_hz))
}

/// The `BW…` spelling of a bandwidth, for the bandwidths forwarders know.
pub(crate) fn bandwidth_label(bandwidth_hz: u32) -> Option<&'static str> {
    Some(match bandwidth_hz {
        7_800 => "7",
        10_400 => "10",
        15_600 => "15",
        20_800 => "20",
        31_250 => "31",
        41_700 => "41",
        62_500 => "62",
        125_000 => "125",
        250_000 => "250",
        500_000 => "500",
        203_125 => "203",
        406_250 => "406",
        812_500 => "812",
        1_625_000 => "1625",
        _ => return None,
    })
}

fn decode_modulation(raw: &RawRxpk<'_>) -> Result<Modulation, RxpkError> {
    let datr = raw
        .datr
        .as_ref()
        .ok_or(RxpkError::Missing { field: "datr" })?;
    // Without `modu`, the type of `datr` tells: a string is LoRa, a number FSK.
    let lora = match raw.modu.as_ref().map(Text::as_str) {
        Some("LORA") => true,
        Some("FSK") => false,
        Some(_) => return Err(RxpkError::UnknownModulation),
        None => matches!(datr, Datr::Text(_)),
    };
    if lora {
        let Datr::Text(text) = datr else {
            return Err(RxpkError::UnknownDataRate);
        };
        let (spreading_factor, bandwidth_hz) =
            parse_lora_datr(text.as_str()).ok_or(RxpkError::UnknownDataRate)?;
        let code_rate = match raw.codr.as_ref().map(Text::as_str) {
            None | Some("OFF") => None,
            Some(c) => Some(
                c.parse::<CodeRate>()
                    .map_err(|_| RxpkError::UnknownCodeRate)?,
            ),
        };
        Ok(Modulation::Lora {
            spreading_factor,
            bandwidth_hz,
            code_rate,
        })
    } else {
        let bps = match datr {
            Datr::Number(n) => *n,
            // A few forwarders quote the FSK rate.
            Datr::Text(t) => t
                .as_str()
                .parse::<f64>()
                .map_err(|_| RxpkError::UnknownDataRate)?,
        };
        let bit_rate_bps = json::round_in(bps, 1, 1_000_000)
            .and_then(|b| u32::try_from(b).ok())
            .ok_or(RxpkError::UnknownDataRate)?;
        Ok(Modulation::Fsk { bit_rate_bps })
    }
}

fn decode_payload(data: Option<&Text<'_>>) -> Result<Vec<u8>, RxpkError> {
    let data = data.ok_or(RxpkError::Missing { field: "data" })?.as_str();
    // Refuse before decoding: 255 bytes are at most 340 base64 characters (+ padding).
    let max_encoded = MAX_PHY_PAYLOAD_BYTES.div_ceil(3) * 4;
    if data.len() > max_encoded {
        return Err(RxpkError::PayloadTooLarge {
            len_bytes: data.len() / 4 * 3,
        });
    }
    let mut buf = [0u8; MAX_PHY_PAYLOAD_BYTES + 3];
    let n = BASE64.decode_slice(data, &mut buf).map_err(|e| match e {
        base64::DecodeSliceError::DecodeError(e) => RxpkError::BadBase64(e),
        base64::DecodeSliceError::OutputSliceTooSmall => RxpkError::PayloadTooLarge {
            len_bytes: data.len() / 4 * 3,
        },
    })?;
    if n > MAX_PHY_PAYLOAD_BYTES {
        return Err(RxpkError::PayloadTooLarge { len_bytes: n });
    }
    Ok(buf.get(..n).unwrap_or_default().to_vec())
}

fn decode_rxpk(
    gateway_id: Eui64,
    json: &str,
    received_at: SystemTime,
) -> Result<UplinkFrame, RxpkError> {
    json::require_object(json.as_bytes()).map_err(RxpkError::Json)?;
    let raw: RawRxpk<'_> = serde_json::from_str(json).map_err(RxpkError::Json)?;
    match raw.stat {
        Some(1) => {}
        Some(-1) => return Err(RxpkError::CrcFailed),
        Some(0) => return Err(RxpkError::CrcMissing),
        Some(_) => return Err(RxpkError::OutOfRange { field: "stat" }),
        None => return Err(RxpkError::Missing { field: "stat" }),
    }
    let phy_payload = decode_payload(raw.data.as_ref())?;
    let tmst = opt_u32(raw.tmst, "tmst")?.ok_or(RxpkError::Missing { field: "tmst" })?;
    let frequency_hz = match raw.freq {
        Some(mhz) => json::mhz_to_hz(mhz).ok_or(RxpkError::OutOfRange { field: "freq" })?,
        None => return Err(RxpkError::Missing { field: "freq" }),
    };
    let modulation = decode_modulation(&raw)?;

    let antennas = raw
        .rsig
        .unwrap_or_default()
        .into_iter()
        .map(decode_rsig)
        .collect::<Result<Vec<_>, _>>()?;
    // Best antenna: highest SNR, then highest RSSI. Its values stand in for missing
    // top-level ones, all from the same antenna so they stay consistent.
    let best = antennas.iter().max_by(|a, b| {
        let snr = |x: &AntennaSignal| x.snr_db.unwrap_or(f32::NEG_INFINITY);
        snr(a)
            .total_cmp(&snr(b))
            .then(a.rssi_channel_dbm.cmp(&b.rssi_channel_dbm))
    });

    let rssi_dbm = match opt_i32(raw.rssi, "rssi", RSSI_LIMIT_DBM)? {
        Some(r) => r,
        None => best
            .map(|a| a.rssi_channel_dbm)
            .ok_or(RxpkError::Missing { field: "rssi" })?,
    };
    let snr_db = opt_snr(raw.lsnr, "lsnr")?.or_else(|| best.and_then(|a| a.snr_db));
    let rssi_signal_dbm = opt_i32(raw.rssis, "rssis", RSSI_LIMIT_DBM)?
        .or_else(|| best.and_then(|a| a.rssi_signal_dbm));
    let frequency_offset_hz = opt_i32(raw.foff, "foff", FOFF_LIMIT_HZ)?
        .or_else(|| best.and_then(|a| a.frequency_offset_hz));
    let chan = opt_u32(raw.chan, "chan")?.or_else(|| best.and_then(|a| a.chan));

    Ok(UplinkFrame {
        gateway_id,
        phy_payload,
        received_at,
        tmst,
        time: raw
            .time
            .as_ref()
            .and_then(|t| json::parse_rx_time(t.as_str())),
        tmms: raw.tmms,
        fine_time_ns: opt_u32(raw.ftime, "ftime")?,
        frequency_hz,
        chan,
        rfch: opt_u32(raw.rfch, "rfch")?,
        board: opt_u32(raw.brd, "brd")?,
        modem_id: opt_u32(raw.mid, "mid")?,
        modulation,
        rssi_dbm,
        rssi_signal_dbm,
        snr_db,
        frequency_offset_hz,
        antennas,
    })
}

fn decode_stat(
    gateway_id: Eui64,
    json: &str,
    received_at: SystemTime,
) -> Result<GatewayStats, StatError> {
    json::require_object(json.as_bytes()).map_err(StatError::Json)?;
    let raw: RawStat<'_> = serde_json::from_str(json).map_err(StatError::Json)?;
    let location = match (raw.lati, raw.long) {
        (Some(lat), Some(lon)) if lat.abs() <= 90.0 && lon.abs() <= 180.0 => Some(Location {
            latitude_deg: lat,
            longitude_deg: lon,
            altitude_m: raw.alti,
        }),
        _ => None,
    };
    Ok(GatewayStats {
        gateway_id,
        received_at,
        time: raw
            .time
            .as_ref()
            .and_then(|t| json::parse_stat_time(t.as_str())),
        location,
        rx_received: raw.rxnb,
        rx_ok: raw.rxok,
        rx_forwarded: raw.rxfw,
        ack_ratio_pct: raw.ackr,
        downlinks_received: raw.dwnb,
        tx_emitted: raw.txnb,
        temperature_c: raw.temp,
    })
}

// ---- encoding (what a gateway sends; for test gateways, tools and benchmarks) ----

#[derive(Serialize)]
#[serde(untagged)]
enum OutDatr {
    Lora(String),
    Fsk(u32),
}

#[derive(Serialize)]
struct OutRsig<'a> {
    ant: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    chan: Option<u32>,
    rssic: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    rssis: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lsnr: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etime: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    foff: Option<i32>,
}

#[derive(Serialize)]
struct OutRxpk<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    jver: Option<u8>,
    tmst: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tmms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ftime: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chan: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rfch: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    brd: Option<u32>,
    freq: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    mid: Option<u32>,
    stat: i8,
    modu: &'static str,
    datr: OutDatr,
    #[serde(skip_serializing_if = "Option::is_none")]
    codr: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rssis: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lsnr: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    foff: Option<i32>,
    rssi: i32,
    size: usize,
    data: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rsig: Vec<OutRsig<'a>>,
}

#[derive(Serialize)]
struct OutStat {
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lati: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    long: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alti: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rxnb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rxok: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rxfw: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ackr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dwnb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    txnb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temp: Option<f64>,
}

#[derive(Serialize)]
struct OutPushData<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rxpk: Vec<OutRxpk<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stat: Option<OutStat>,
}

fn out_rxpk(f: &UplinkFrame) -> OutRxpk<'_> {
    let (modu, datr, codr) = match f.modulation {
        Modulation::Lora {
            spreading_factor,
            bandwidth_hz,
            code_rate,
        } => (
            "LORA",
            OutDatr::Lora(format!(
                "SF{spreading_factor}BW{}",
                bandwidth_label(bandwidth_hz).unwrap_or("125")
            )),
            Some(code_rate.map_or("OFF", CodeRate::as_str)),
        ),
        Modulation::Fsk { bit_rate_bps } => ("FSK", OutDatr::Fsk(bit_rate_bps), None),
    };
    OutRxpk {
        jver: (!f.antennas.is_empty()).then_some(2),
        tmst: f.tmst,
        time: f
            .time
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true)),
        tmms: f.tmms,
        ftime: f.fine_time_ns,
        chan: f.chan,
        rfch: f.rfch,
        brd: f.board,
        freq: json::hz_to_mhz(f.frequency_hz),
        mid: f.modem_id,
        stat: 1,
        modu,
        datr,
        codr,
        rssis: f.rssi_signal_dbm,
        lsnr: f.snr_db,
        foff: f.frequency_offset_hz,
        rssi: f.rssi_dbm,
        size: f.phy_payload.len(),
        data: BASE64.encode(&f.phy_payload),
        rsig: f
            .antennas
            .iter()
            .map(|a| OutRsig {
                ant: a.antenna,
                chan: a.chan,
                rssic: a.rssi_channel_dbm,
                rssis: a.rssi_signal_dbm,
                lsnr: a.snr_db,
                etime: a.etime.as_deref(),
                foff: a.frequency_offset_hz,
            })
            .collect(),
    }
}

/// Builds a PUSH_DATA datagram the way a forwarder would (Semtech field names;
/// antennas become a `jver: 2` `rsig` array). The inverse of [`decode_push_data`].
pub fn encode_push_data(
    version: u8,
    token: u16,
    gateway_id: Eui64,
    uplinks: &[UplinkFrame],
    stats: Option<&GatewayStats>,
) -> Vec<u8> {
    let body = OutPushData {
        rxpk: uplinks.iter().map(out_rxpk).collect(),
        stat: stats.map(|s| OutStat {
            time: s
                .time
                .map(|t| t.format("%Y-%m-%d %H:%M:%S GMT").to_string()),
            lati: s.location.map(|l| l.latitude_deg),
            long: s.location.map(|l| l.longitude_deg),
            alti: s.location.and_then(|l| l.altitude_m),
            rxnb: s.rx_received,
            rxok: s.rx_ok,
            rxfw: s.rx_forwarded,
            ackr: s.ack_ratio_pct,
            dwnb: s.downlinks_received,
            txnb: s.tx_emitted,
            temp: s.temperature_c,
        }),
    };
    // Serializing plain structs of numbers and strings to a Vec cannot fail.
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut out = upstream_prefix(version, token, PacketType::PushData, gateway_id, json.len());
    out.extend_from_slice(&json);
    out
}

#[cfg(test)]
mod tests;
