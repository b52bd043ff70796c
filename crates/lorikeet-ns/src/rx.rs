//! Reception and transmission metadata as the core sees it (independent of the gateway
//! protocol that delivered it).

use std::cmp::Ordering;
use std::time::SystemTime;

use lorikeet_lorawan::Eui64;
use serde::{Deserialize, Serialize};

pub use lorikeet_region::Modulation;

/// How an uplink was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxInfo {
    /// Centre frequency in Hz.
    pub frequency_hz: u32,
    /// Modulation and data rate.
    pub modulation: Modulation,
    /// LoRa coding rate denominator N of 4/N, when the gateway reported it.
    pub code_rate: Option<u8>,
}

/// A gateway's configured location.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Location {
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
    /// Metres above sea level.
    pub altitude_m: f64,
}

/// How one gateway received an uplink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RxInfo {
    /// The gateway.
    pub gateway_id: Eui64,
    /// An id for this reception, unique enough to correlate logs.
    pub uplink_id: u32,
    /// The concentrator counter (µs, wrapping u32) at the end of reception: the anchor
    /// for Class A downlink timing on that gateway.
    pub tmst: u32,
    /// The gateway's UTC time of reception, when it has GPS or NTP.
    pub gw_time: Option<SystemTime>,
    /// Milliseconds since the GPS epoch, when the gateway has GPS.
    pub time_since_gps_epoch_ms: Option<u64>,
    /// When our server received it.
    pub ns_time: SystemTime,
    /// Received signal strength in dBm.
    pub rssi_dbm: i32,
    /// Signal-to-noise ratio in dB (absent for FSK).
    pub snr_db: Option<f32>,
    /// Concentrator IF channel (not the LoRaWAN channel index).
    pub channel: u8,
    /// Radio chain.
    pub rf_chain: u8,
    /// Antenna, for multi-antenna gateways.
    pub antenna: u8,
    /// Board, for multi-board gateways.
    pub board: u8,
    /// The gateway's location, when known.
    pub location: Option<Location>,
}

impl RxInfo {
    /// Orders receptions by SNR (missing SNR is worst), then RSSI.
    pub fn signal_cmp(&self, other: &RxInfo) -> Ordering {
        let snr = |r: &RxInfo| r.snr_db.unwrap_or(f32::NEG_INFINITY);
        snr(self)
            .partial_cmp(&snr(other))
            .unwrap_or(Ordering::Equal)
            .then(self.rssi_dbm.cmp(&other.rssi_dbm))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A reception by gateway `..0n` with the given signal.
    pub(crate) fn rx(gw: u8, snr: f32, rssi: f32) -> RxInfo {
        RxInfo {
            gateway_id: Eui64([0, 0, 0, 0, 0, 0, 0, gw]),
            uplink_id: gw as u32,
            tmst: 1_000_000,
            gw_time: None,
            time_since_gps_epoch_ms: None,
            ns_time: SystemTime::UNIX_EPOCH,
            rssi_dbm: rssi as i32,
            snr_db: Some(snr),
            channel: 0,
            rf_chain: 0,
            antenna: 0,
            board: 0,
            location: None,
        }
    }

    /// LoRa SF12BW125 at `freq`.
    pub(crate) fn tx(freq: u32) -> TxInfo {
        TxInfo {
            frequency_hz: freq,
            modulation: Modulation::Lora {
                spreading_factor: 12,
                bandwidth_hz: 125_000,
            },
            code_rate: Some(5),
        }
    }

    #[test]
    fn best_signal_prefers_snr_then_rssi() {
        let a = rx(1, 5.0, -100.0);
        let b = rx(2, 5.0, -90.0);
        let c = rx(3, 6.0, -120.0);
        assert!(b.signal_cmp(&a).is_gt());
        assert!(c.signal_cmp(&b).is_gt());
        let mut none = rx(4, 0.0, -30.0);
        none.snr_db = None;
        assert!(a.signal_cmp(&none).is_gt());
    }
}
