//! PULL_RESP: `{"txpk":{…}}`, the packet a gateway is asked to transmit.
//!
//! Semtech's lora_pkt_fwd refuses a txpk without `freq`, `rfch`, `modu`, `datr`,
//! `size`, `data`, (LoRa) `codr` or (FSK) `fdev`, so those are always written;
//! `imme` is always written too, because some parsers require it.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::json::{self, Datr, Text, BASE64};
use super::push_data::{bandwidth_label, parse_lora_datr};
use super::{DatagramError, Header, PacketType, HEADER_LEN};
use crate::types::{CodeRate, DownlinkTiming, Modulation, MAX_PHY_PAYLOAD_BYTES};

/// A txpk as the gateway sees it: the downlink after the listener has turned
/// EIRP into conducted power.
#[derive(Debug, Clone, PartialEq)]
pub struct TxPacket {
    /// When to transmit.
    pub timing: DownlinkTiming,
    /// Centre frequency in Hz.
    pub frequency_hz: u32,
    /// RF chain (`rfch`).
    pub rf_chain: u32,
    /// Power at the antenna connector in dBm (`powe`).
    pub power_dbm: i32,
    /// Modulation and data rate; LoRa without a coding rate is sent as 4/5.
    pub modulation: Modulation,
    /// Inverted polarity (`ipol`).
    pub ipol: bool,
    /// The PHYPayload.
    pub phy_payload: Vec<u8>,
}

/// Why a txpk could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum TxPacketError {
    /// More than a LoRa packet can carry.
    #[error("payload of {len_bytes} bytes exceeds {MAX_PHY_PAYLOAD_BYTES}")]
    PayloadTooLarge {
        /// Payload size.
        len_bytes: usize,
    },
    /// A LoRa bandwidth forwarders have no `BW…` name for.
    #[error("bandwidth {bandwidth_hz} Hz has no data rate name")]
    UnsupportedBandwidth {
        /// The bandwidth asked for.
        bandwidth_hz: u32,
    },
    /// (decoding) The JSON is not a txpk object.
    #[error("malformed txpk: {0}")]
    Json(#[source] serde_json::Error),
    /// (decoding) A required field is missing.
    #[error("txpk has no {field}")]
    Missing {
        /// JSON field name.
        field: &'static str,
    },
    /// (decoding) A field is out of range.
    #[error("txpk field {field} is out of range")]
    OutOfRange {
        /// JSON field name.
        field: &'static str,
    },
    /// (decoding) `modu`, `datr` or `codr` is not known.
    #[error("unknown modulation, data rate or coding rate")]
    UnknownDataRate,
    /// (decoding) `data` is not base64.
    #[error("txpk data is not base64: {0}")]
    BadBase64(#[source] base64::DecodeError),
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutDatr {
    Lora(String),
    Fsk(u32),
}

#[derive(Serialize)]
struct OutTxpk {
    imme: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tmst: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tmms: Option<u64>,
    freq: f64,
    rfch: u32,
    powe: i32,
    modu: &'static str,
    datr: OutDatr,
    #[serde(skip_serializing_if = "Option::is_none")]
    codr: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fdev: Option<u32>,
    ipol: bool,
    size: usize,
    data: String,
}

#[derive(Serialize)]
struct OutPullResp {
    txpk: OutTxpk,
}

/// Builds a PULL_RESP datagram carrying `packet`.
///
/// `token` should be random (protocol v2) and unique among this gateway's pending
/// downlinks: the TX_ACK echoes it.
pub fn encode_pull_resp(
    version: u8,
    token: u16,
    packet: &TxPacket,
) -> Result<Vec<u8>, TxPacketError> {
    if packet.phy_payload.len() > MAX_PHY_PAYLOAD_BYTES {
        return Err(TxPacketError::PayloadTooLarge {
            len_bytes: packet.phy_payload.len(),
        });
    }
    let (modu, datr, codr, fdev) = match packet.modulation {
        Modulation::Lora {
            spreading_factor,
            bandwidth_hz,
            code_rate,
        } => {
            let bw = bandwidth_label(bandwidth_hz)
                .ok_or(TxPacketError::UnsupportedBandwidth { bandwidth_hz })?;
            (
                "LORA",
                OutDatr::Lora(format!("SF{spreading_factor}BW{bw}")),
                Some(code_rate.unwrap_or(CodeRate::Cr45).as_str()),
                None,
            )
        }
        // Frequency deviation of half the bit rate (modulation index 1), as LoRaWAN's
        // 50 kbps FSK uses with 25 kHz.
        Modulation::Fsk { bit_rate_bps } => (
            "FSK",
            OutDatr::Fsk(bit_rate_bps),
            None,
            Some(bit_rate_bps / 2),
        ),
    };
    let (imme, tmst, tmms) = match packet.timing {
        DownlinkTiming::Delay { tmst } => (false, Some(tmst), None),
        DownlinkTiming::Immediately => (true, None, None),
        DownlinkTiming::GpsTime { tmms } => (false, None, Some(tmms)),
    };
    let body = OutPullResp {
        txpk: OutTxpk {
            imme,
            tmst,
            tmms,
            freq: json::hz_to_mhz(packet.frequency_hz),
            rfch: packet.rf_chain,
            powe: packet.power_dbm,
            modu,
            datr,
            codr,
            fdev,
            ipol: packet.ipol,
            size: packet.phy_payload.len(),
            data: BASE64.encode(&packet.phy_payload),
        },
    };
    let json = serde_json::to_vec(&body).map_err(TxPacketError::Json)?;
    let mut out = Vec::with_capacity(HEADER_LEN + json.len());
    out.extend_from_slice(
        &Header {
            version,
            token,
            packet_type: PacketType::PullResp,
        }
        .encode(),
    );
    out.extend_from_slice(&json);
    Ok(out)
}

#[derive(Deserialize)]
struct RawPullResp<'a> {
    #[serde(borrow)]
    txpk: RawTxpk<'a>,
}

#[derive(Deserialize)]
struct RawTxpk<'a> {
    #[serde(default)]
    imme: Option<bool>,
    #[serde(default)]
    tmst: Option<u64>,
    #[serde(default)]
    tmms: Option<u64>,
    #[serde(default)]
    freq: Option<f64>,
    #[serde(default)]
    rfch: Option<u64>,
    #[serde(default)]
    powe: Option<f64>,
    #[serde(borrow, default)]
    modu: Option<Text<'a>>,
    #[serde(borrow, default)]
    datr: Option<Datr<'a>>,
    #[serde(borrow, default)]
    codr: Option<Text<'a>>,
    #[serde(default)]
    ipol: Option<bool>,
    #[serde(borrow, default)]
    data: Option<Text<'a>>,
}

/// Reads the JSON of a PULL_RESP (what a gateway does; for test gateways and tools).
pub fn decode_pull_resp(json: &[u8]) -> Result<TxPacket, TxPacketError> {
    json::require_object(json).map_err(TxPacketError::Json)?;
    let raw: RawPullResp<'_> = serde_json::from_slice(json).map_err(TxPacketError::Json)?;
    let t = raw.txpk;
    let timing = if t.imme == Some(true) {
        DownlinkTiming::Immediately
    } else if let Some(tmst) = t.tmst {
        DownlinkTiming::Delay {
            tmst: u32::try_from(tmst).map_err(|_| TxPacketError::OutOfRange { field: "tmst" })?,
        }
    } else if let Some(tmms) = t.tmms {
        DownlinkTiming::GpsTime { tmms }
    } else {
        return Err(TxPacketError::Missing { field: "tmst" });
    };
    let frequency_hz = json::mhz_to_hz(t.freq.ok_or(TxPacketError::Missing { field: "freq" })?)
        .ok_or(TxPacketError::OutOfRange { field: "freq" })?;
    let modulation = match (t.modu.as_ref().map(Text::as_str), t.datr.as_ref()) {
        (Some("LORA"), Some(Datr::Text(d))) => {
            let (spreading_factor, bandwidth_hz) =
                parse_lora_datr(d.as_str()).ok_or(TxPacketError::UnknownDataRate)?;
            let code_rate = match t.codr.as_ref().map(Text::as_str) {
                None | Some("OFF") => None,
                Some(c) => Some(c.parse().map_err(|_| TxPacketError::UnknownDataRate)?),
            };
            Modulation::Lora {
                spreading_factor,
                bandwidth_hz,
                code_rate,
            }
        }
        (Some("FSK"), Some(Datr::Number(n))) => Modulation::Fsk {
            bit_rate_bps: json::round_in(*n, 1, 1_000_000)
                .and_then(|b| u32::try_from(b).ok())
                .ok_or(TxPacketError::UnknownDataRate)?,
        },
        _ => return Err(TxPacketError::UnknownDataRate),
    };
    let data = t.data.ok_or(TxPacketError::Missing { field: "data" })?;
    let phy_payload = BASE64
        .decode(data.as_str())
        .map_err(TxPacketError::BadBase64)?;
    if phy_payload.len() > MAX_PHY_PAYLOAD_BYTES {
        return Err(TxPacketError::PayloadTooLarge {
            len_bytes: phy_payload.len(),
        });
    }
    Ok(TxPacket {
        timing,
        frequency_hz,
        rf_chain: t
            .rfch
            .map(u32::try_from)
            .transpose()
            .map_err(|_| TxPacketError::OutOfRange { field: "rfch" })?
            .ok_or(TxPacketError::Missing { field: "rfch" })?,
        power_dbm: match t.powe {
            Some(p) => json::round_in(p, -128, 127)
                .and_then(|p| i32::try_from(p).ok())
                .ok_or(TxPacketError::OutOfRange { field: "powe" })?,
            None => return Err(TxPacketError::Missing { field: "powe" }),
        },
        modulation,
        ipol: t.ipol.unwrap_or(false),
        phy_payload,
    })
}

/// Splits a PULL_RESP datagram into header and txpk (for test gateways and tools).
pub fn parse_pull_resp_datagram(datagram: &[u8]) -> Result<(Header, TxPacket), PullRespError> {
    match super::parse_downstream(datagram)? {
        super::Downstream::PullResp { header, json } => Ok((header, decode_pull_resp(json)?)),
        super::Downstream::PushAck(h) | super::Downstream::PullAck(h) => {
            Err(PullRespError::Datagram(DatagramError::UnexpectedType {
                packet_type: h.packet_type,
            }))
        }
    }
}

/// Why a PULL_RESP datagram could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PullRespError {
    /// The header is wrong or the type is not PULL_RESP.
    #[error(transparent)]
    Datagram(#[from] DatagramError),
    /// The txpk is malformed.
    #[error(transparent)]
    TxPacket(#[from] TxPacketError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_a() -> TxPacket {
        TxPacket {
            timing: DownlinkTiming::Delay {
                tmst: 4_294_000_000u32.wrapping_add(1_000_000),
            },
            frequency_hz: 869_525_000,
            rf_chain: 0,
            power_dbm: 14,
            modulation: Modulation::Lora {
                spreading_factor: 12,
                bandwidth_hz: 125_000,
                code_rate: Some(CodeRate::Cr45),
            },
            ipol: true,
            phy_payload: vec![0x60, 1, 2, 3, 4, 0, 0, 0, 1, 2, 3, 4],
        }
    }

    #[test]
    fn round_trips_each_timing_and_modulation() {
        for timing in [
            DownlinkTiming::Delay { tmst: 5 },
            DownlinkTiming::Immediately,
            DownlinkTiming::GpsTime {
                tmms: 1_400_000_000_000,
            },
        ] {
            for modulation in [
                class_a().modulation,
                Modulation::Fsk {
                    bit_rate_bps: 50_000,
                },
                Modulation::Lora {
                    spreading_factor: 8,
                    bandwidth_hz: 500_000,
                    code_rate: Some(CodeRate::Cr46),
                },
            ] {
                let p = TxPacket {
                    timing,
                    modulation,
                    ..class_a()
                };
                let dgram = encode_pull_resp(2, 0x1234, &p).unwrap();
                let (h, back) = parse_pull_resp_datagram(&dgram).unwrap();
                assert_eq!(h.token, 0x1234);
                assert_eq!(back, p);
            }
        }
    }

    #[test]
    fn wire_json_has_the_fields_lora_pkt_fwd_requires() {
        let dgram = encode_pull_resp(2, 1, &class_a()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&dgram[4..]).unwrap();
        let t = &v["txpk"];
        assert_eq!(t["imme"], false);
        assert_eq!(t["tmst"], 4_294_000_000u32.wrapping_add(1_000_000));
        assert_eq!(t["freq"], 869.525);
        assert_eq!(t["powe"], 14);
        assert_eq!(t["datr"], "SF12BW125");
        assert_eq!(t["codr"], "4/5");
        assert_eq!(t["ipol"], true);
        assert_eq!(t["size"], 12);
        assert_eq!(t["rfch"], 0);
        let fsk = encode_pull_resp(
            2,
            1,
            &TxPacket {
                modulation: Modulation::Fsk {
                    bit_rate_bps: 50_000,
                },
                ..class_a()
            },
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&fsk[4..]).unwrap();
        assert_eq!(v["txpk"]["fdev"], 25_000);
        assert_eq!(v["txpk"]["datr"], 50_000);
    }

    #[test]
    fn refuses_what_cannot_be_sent() {
        let p = TxPacket {
            phy_payload: vec![0; 256],
            ..class_a()
        };
        assert!(matches!(
            encode_pull_resp(2, 1, &p),
            Err(TxPacketError::PayloadTooLarge { len_bytes: 256 })
        ));
        let p = TxPacket {
            modulation: Modulation::Lora {
                spreading_factor: 7,
                bandwidth_hz: 100_000,
                code_rate: None,
            },
            ..class_a()
        };
        assert!(matches!(
            encode_pull_resp(2, 1, &p),
            Err(TxPacketError::UnsupportedBandwidth { .. })
        ));
    }
}
