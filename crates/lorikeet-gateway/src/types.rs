//! The typed frames, statistics and downlink results the listener hands to the
//! network server, independent of the JSON the forwarders speak.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lorikeet_lorawan::Eui64;

/// The largest LoRa PHYPayload a radio can carry; longer `data` fields are malformed.
pub const MAX_PHY_PAYLOAD_BYTES: usize = 255;

/// How a packet was (or is to be) modulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modulation {
    /// LoRa chirp spread spectrum.
    Lora {
        /// Spreading factor, 5..=12.
        spreading_factor: u8,
        /// Channel bandwidth in Hz (125 000, 250 000, 500 000, …).
        bandwidth_hz: u32,
        /// Forward error correction rate; `None` when the forwarder reports `OFF`
        /// or leaves it out.
        code_rate: Option<CodeRate>,
    },
    /// Frequency shift keying (the EU868 DR7 style).
    Fsk {
        /// Bit rate in bits per second.
        bit_rate_bps: u32,
    },
}

/// A LoRa forward-error-correction rate, as the `codr` field spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeRate {
    /// `4/5`
    Cr45,
    /// `4/6` (also sent as `2/3`)
    Cr46,
    /// `4/7`
    Cr47,
    /// `4/8` (also sent as `2/4` or `1/2`)
    Cr48,
    /// `4/5LI`: long interleaving (SX1280, 2.4 GHz)
    Cr45Li,
    /// `4/6LI`
    Cr46Li,
    /// `4/8LI`
    Cr48Li,
}

impl CodeRate {
    /// The spelling forwarders expect in `codr`.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeRate::Cr45 => "4/5",
            CodeRate::Cr46 => "4/6",
            CodeRate::Cr47 => "4/7",
            CodeRate::Cr48 => "4/8",
            CodeRate::Cr45Li => "4/5LI",
            CodeRate::Cr46Li => "4/6LI",
            CodeRate::Cr48Li => "4/8LI",
        }
    }
}

impl fmt::Display for CodeRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `codr` value that is not a known coding rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown LoRa coding rate")]
pub struct UnknownCodeRate;

impl FromStr for CodeRate {
    type Err = UnknownCodeRate;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "4/5" => CodeRate::Cr45,
            "4/6" | "2/3" => CodeRate::Cr46,
            "4/7" => CodeRate::Cr47,
            "4/8" | "2/4" | "1/2" => CodeRate::Cr48,
            "4/5LI" => CodeRate::Cr45Li,
            "4/6LI" => CodeRate::Cr46Li,
            "4/8LI" => CodeRate::Cr48Li,
            _ => return Err(UnknownCodeRate),
        })
    }
}

/// Reception details from one antenna (the `rsig` entries of `jver: 2` forwarders).
#[derive(Debug, Clone, PartialEq)]
pub struct AntennaSignal {
    /// Antenna number.
    pub antenna: u32,
    /// Concentrator IF channel on this antenna.
    pub chan: Option<u32>,
    /// Channel RSSI in dBm.
    pub rssi_channel_dbm: i32,
    /// Signal RSSI in dBm, when the concentrator measures it.
    pub rssi_signal_dbm: Option<i32>,
    /// LoRa SNR in dB (absent for FSK).
    pub snr_db: Option<f32>,
    /// Encrypted fine timestamp, as the forwarder sent it (base64).
    pub etime: Option<String>,
    /// Frequency offset in Hz.
    pub frequency_offset_hz: Option<i32>,
}

/// One radio packet a gateway heard, with its reception metadata.
///
/// Only packets with a good CRC become `UplinkFrame`s; the rest are counted and dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct UplinkFrame {
    /// The gateway that heard it (from the datagram header).
    pub gateway_id: Eui64,
    /// The LoRaWAN PHYPayload, at most [`MAX_PHY_PAYLOAD_BYTES`].
    pub phy_payload: Vec<u8>,
    /// When our socket received the datagram (the server's clock).
    pub received_at: SystemTime,
    /// The concentrator's microsecond counter at the end of reception. It wraps every
    /// 2^32 µs (~71.6 min): compute downlink times with `wrapping_add`.
    pub tmst: u32,
    /// The gateway's UTC time of reception (`time`), when it has GPS or NTP.
    pub time: Option<DateTime<Utc>>,
    /// GPS time of reception in milliseconds since 1980-01-06 (`tmms`).
    pub tmms: Option<u64>,
    /// Fine timestamp, nanoseconds within the GPS second (`ftime`, SX1302).
    pub fine_time_ns: Option<u32>,
    /// Centre frequency in Hz.
    pub frequency_hz: u32,
    /// Concentrator IF channel (`chan`, or the best antenna's for `jver: 2`).
    pub chan: Option<u32>,
    /// Concentrator RF chain (`rfch`).
    pub rfch: Option<u32>,
    /// Radio board (`brd`) on multi-board gateways.
    pub board: Option<u32>,
    /// Modem that demodulated the packet (`mid`, SX1302).
    pub modem_id: Option<u32>,
    /// Modulation and data rate.
    pub modulation: Modulation,
    /// RSSI in dBm (`rssi`, or the best antenna's `rssic`).
    pub rssi_dbm: i32,
    /// Signal RSSI in dBm (`rssis`, SX1302), when measured.
    pub rssi_signal_dbm: Option<i32>,
    /// LoRa SNR in dB (`lsnr`); `None` for FSK.
    pub snr_db: Option<f32>,
    /// Frequency offset in Hz (`foff`, SX1302).
    pub frequency_offset_hz: Option<i32>,
    /// Per-antenna reception (`rsig`); empty for single-antenna dialects.
    pub antennas: Vec<AntennaSignal>,
}

/// A gateway position from its `stat` report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    /// Latitude in degrees, north positive.
    pub latitude_deg: f64,
    /// Longitude in degrees, east positive.
    pub longitude_deg: f64,
    /// Altitude in metres, when reported.
    pub altitude_m: Option<f64>,
}

/// A gateway's periodic status report (`stat`). Every field is optional because
/// forwarders leave out what they do not know; a stat without `time` is valid.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayStats {
    /// The reporting gateway.
    pub gateway_id: Eui64,
    /// When our socket received the report.
    pub received_at: SystemTime,
    /// The gateway's own clock at the time of the report.
    pub time: Option<DateTime<Utc>>,
    /// GPS position, when the gateway reports one.
    pub location: Option<Location>,
    /// Radio packets received (`rxnb`) in the last interval.
    pub rx_received: Option<u64>,
    /// Radio packets received with a valid CRC (`rxok`).
    pub rx_ok: Option<u64>,
    /// Radio packets forwarded (`rxfw`).
    pub rx_forwarded: Option<u64>,
    /// Percentage of upstream datagrams acknowledged (`ackr`).
    pub ack_ratio_pct: Option<f64>,
    /// Downlink datagrams received (`dwnb`).
    pub downlinks_received: Option<u64>,
    /// Packets emitted (`txnb`).
    pub tx_emitted: Option<u64>,
    /// Board temperature in °C (`temp`), when reported.
    pub temperature_c: Option<f64>,
}

/// When the gateway should transmit a downlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownlinkTiming {
    /// At this value of the concentrator counter (Class A: uplink `tmst` +
    /// RX delay, computed with `wrapping_add`).
    Delay {
        /// Concentrator counter in µs.
        tmst: u32,
    },
    /// As soon as possible (Class C).
    Immediately,
    /// At a GPS time (Class B); the gateway needs a GPS lock.
    GpsTime {
        /// Milliseconds since the GPS epoch (1980-01-06).
        tmms: u64,
    },
}

/// A downlink to send through one gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct DownlinkFrame {
    /// The gateway to send through.
    pub gateway_id: Eui64,
    /// The PHYPayload to transmit.
    pub phy_payload: Vec<u8>,
    /// When to transmit.
    pub timing: DownlinkTiming,
    /// Centre frequency in Hz.
    pub frequency_hz: u32,
    /// Modulation and data rate (for LoRa, with its coding rate; `None` means 4/5).
    pub modulation: Modulation,
    /// Radiated power (EIRP) in dBm, as the regional rules state it. The listener
    /// subtracts the gateway's antenna gain to get the `powe` it sends.
    pub tx_power_eirp_dbm: i32,
    /// Inverted polarity: `true` for LoRaWAN downlinks so other gateways don't hear them.
    pub ipol: bool,
    /// RF chain to transmit on (0 on almost every gateway).
    pub rf_chain: u32,
}

/// What the forwarder said about a downlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxAckOutcome {
    /// Scheduled for transmission. `tx_power_warning_dbm` is set when the gateway
    /// could not use the requested power and used this one instead.
    Sent {
        /// The power the gateway used instead of the requested one (SX1302 `TX_POWER` warning).
        tx_power_warning_dbm: Option<i32>,
    },
    /// The forwarder refused the packet.
    Rejected(TxAckError),
    /// Sent to a forwarder that does not send TX_ACK (protocol v1, or one that has
    /// never answered): the datagram left, but nobody confirms it was scheduled.
    Unacknowledged,
}

/// Why a forwarder refused a downlink (the `error` of a TX_ACK).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxAckError {
    /// Arrived too late to be scheduled (`TOO_LATE`).
    #[error("TOO_LATE")]
    TooLate,
    /// Scheduled too far ahead (`TOO_EARLY`).
    #[error("TOO_EARLY")]
    TooEarly,
    /// Another packet already occupies the slot (`COLLISION_PACKET`).
    #[error("COLLISION_PACKET")]
    CollisionPacket,
    /// A beacon occupies the slot (`COLLISION_BEACON`).
    #[error("COLLISION_BEACON")]
    CollisionBeacon,
    /// The frequency is not supported by the RF chain (`TX_FREQ`).
    #[error("TX_FREQ")]
    TxFreq,
    /// The power is not supported (older forwarders refuse; newer ones warn instead).
    #[error("TX_POWER")]
    TxPower {
        /// The power the gateway would use, when it says.
        power_dbm: Option<i32>,
    },
    /// GPS-timed send without a GPS lock (`GPS_UNLOCKED`).
    #[error("GPS_UNLOCKED")]
    GpsUnlocked,
    /// Any other error string (e.g. `UNKNOWN`), truncated to 64 characters.
    #[error("{0}")]
    Other(String),
}
