//! Devices as the network server sees them: profile settings, root keys, join state,
//! the current session and the downlink queue.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use lorikeet_lorawan::crypto::SessionKeys;
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::mac::MacState;
use crate::region::{RegParamsRevision, RegionHandle};

/// LoRaWAN MAC layer versions the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MacVersion {
    /// LoRaWAN 1.0.0
    #[serde(rename = "1.0.0")]
    V1_0_0,
    /// LoRaWAN 1.0.1
    #[serde(rename = "1.0.1")]
    V1_0_1,
    /// LoRaWAN 1.0.2
    #[serde(rename = "1.0.2")]
    V1_0_2,
    /// LoRaWAN 1.0.3
    #[serde(rename = "1.0.3")]
    V1_0_3,
    /// LoRaWAN 1.0.4
    #[serde(rename = "1.0.4")]
    V1_0_4,
    /// LoRaWAN 1.1.0
    #[serde(rename = "1.1.0")]
    V1_1_0,
}

impl MacVersion {
    /// Whether this is LoRaWAN 1.1 (separate network keys, split frame counters).
    pub fn is_1_1(self) -> bool {
        self == MacVersion::V1_1_0
    }
    /// Whether DevNonce is a counter that must increase (1.0.4 and 1.1) rather than a
    /// random value that must not repeat (1.0.0–1.0.3).
    pub fn dev_nonce_is_counter(self) -> bool {
        self >= MacVersion::V1_0_4
    }
}

impl fmt::Display for MacVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MacVersion::V1_0_0 => "1.0.0",
            MacVersion::V1_0_1 => "1.0.1",
            MacVersion::V1_0_2 => "1.0.2",
            MacVersion::V1_0_3 => "1.0.3",
            MacVersion::V1_0_4 => "1.0.4",
            MacVersion::V1_1_0 => "1.1.0",
        })
    }
}

/// An unknown MAC version string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown LoRaWAN MAC version {0:?} (expected 1.0.0, 1.0.1, 1.0.2, 1.0.3, 1.0.4 or 1.1.0)")]
pub struct UnknownMacVersion(pub String);

impl FromStr for MacVersion {
    type Err = UnknownMacVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "1.0.0" | "1.0" => MacVersion::V1_0_0,
            "1.0.1" => MacVersion::V1_0_1,
            "1.0.2" => MacVersion::V1_0_2,
            "1.0.3" => MacVersion::V1_0_3,
            "1.0.4" => MacVersion::V1_0_4,
            "1.1.0" | "1.1" => MacVersion::V1_1_0,
            other => return Err(UnknownMacVersion(other.to_owned())),
        })
    }
}

/// The settings a device profile gives its devices.
#[derive(Debug, Clone)]
pub struct DeviceProfile {
    /// Profile id.
    pub id: Uuid,
    /// The band plan (with the server's configured channels).
    pub region: RegionHandle,
    /// MAC version the devices implement.
    pub mac_version: MacVersion,
    /// Regional-parameters revision the devices implement (max payload sizes differ).
    pub reg_params_revision: RegParamsRevision,
    /// Devices join over the air (otherwise they are activated by personalisation).
    pub supports_otaa: bool,
    /// Devices listen continuously (Class C) once they have sent an uplink.
    pub supports_class_c: bool,
    /// Whether the server runs ADR for devices that ask for it.
    pub adr_enabled: bool,
    /// RX1 delay in seconds that joins assign (1..=15).
    pub rx1_delay_s: u8,
    /// RX1 data-rate offset that joins assign.
    pub rx1_dr_offset: u8,
    /// RX2 data rate that joins assign; `None`: the region default.
    pub rx2_dr: Option<u8>,
    /// RX2 frequency the MAC layer configures; `None`: the region default.
    pub rx2_frequency_hz: Option<u32>,
    /// How long a Class C confirmed downlink waits for its acknowledgement, in seconds.
    pub class_c_timeout_s: u32,
    /// MAC and ADR settings (the profile's `macSettings`).
    pub mac_settings: crate::mac::ProfileMacSettings,
}

/// A device's root keys (OTAA). Not serialisable: keys are never written out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootKeys {
    /// AppKey: in 1.0.x the only root key; in 1.1 it derives AppSKey.
    pub app_key: Aes128Key,
    /// NwkKey (1.1 only): derives the network session keys.
    pub nwk_key: Option<Aes128Key>,
}

/// How many random DevNonces of a 1.0.0–1.0.3 device are remembered. A device that
/// repeats one of these is refused; older ones are forgotten, which bounds storage at
/// the cost of accepting a replay of a nonce more than this many joins old.
pub const DEV_NONCE_MEMORY: usize = 64;

/// Join-server state of one device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinState {
    /// The last JoinNonce (AppNonce) sent; the next join uses one more.
    pub last_join_nonce: Option<u32>,
    /// The last DevNonce accepted (1.0.4/1.1: the next must be greater).
    pub last_dev_nonce: Option<u16>,
    /// Recently used DevNonces, newest last (1.0.0–1.0.3), at most [`DEV_NONCE_MEMORY`].
    pub used_dev_nonces: VecDeque<u16>,
}

/// Where and when a device was last heard, for Class C downlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastHeard {
    /// The gateway that heard it best.
    pub gateway_id: Eui64,
    /// When (our clock).
    pub at: SystemTime,
}

/// A confirmed downlink waiting for the device's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAck {
    /// The queue item.
    pub queue_item_id: Uuid,
    /// The frame counter it was sent with.
    pub f_cnt_down: u32,
}

/// An active session (after a join or ABP activation).
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The device address.
    pub dev_addr: DevAddr,
    /// The session keys (1.0: NwkSKey in the three network roles).
    pub keys: SessionKeys,
    /// Last accepted uplink frame counter (32-bit); `None` before the first uplink.
    pub f_cnt_up: Option<u32>,
    /// Next network downlink counter (1.0: the only downlink counter).
    pub n_f_cnt_down: u32,
    /// Next application downlink counter (1.1, FPort > 0).
    pub a_f_cnt_down: u32,
    /// The FCnt of the last confirmed uplink, acknowledged in the next downlink (1.1 MIC).
    pub conf_f_cnt: Option<u32>,
    /// Everything else the network keeps about the session (persisted as JSON).
    pub state: SessionState,
}

/// The part of a session stored as one JSON document (`ns_state`): radio settings,
/// MAC and ADR state, pending acknowledgements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionState {
    /// Whether the next downlink must carry ACK.
    pub ack_due: bool,
    /// RX1 delay in seconds (0 means 1).
    pub rx1_delay_s: u8,
    /// RX1 data-rate offset.
    pub rx1_dr_offset: u8,
    /// RX2 data rate.
    pub rx2_dr: u8,
    /// RX2 frequency in Hz.
    pub rx2_frequency_hz: u32,
    /// Whether an uplink has been received since activation (Class C may start).
    pub uplink_since_activation: bool,
    /// Where the device was last heard.
    pub last_heard: Option<LastHeard>,
    /// A confirmed downlink awaiting acknowledgement.
    pub pending_ack: Option<PendingAck>,
    /// MAC-layer and ADR state.
    pub mac: MacState,
}

impl Default for SessionState {
    fn default() -> Self {
        SessionState {
            ack_due: false,
            rx1_delay_s: 1,
            rx1_dr_offset: 0,
            rx2_dr: 0,
            rx2_frequency_hz: 0,
            uplink_since_activation: false,
            last_heard: None,
            pending_ack: None,
            mac: MacState::default(),
        }
    }
}

impl Session {
    /// A fresh session with the given receive-window settings.
    pub fn new(dev_addr: DevAddr, keys: SessionKeys, rx: RxWindows) -> Self {
        Session {
            dev_addr,
            keys,
            f_cnt_up: None,
            n_f_cnt_down: 0,
            a_f_cnt_down: 0,
            conf_f_cnt: None,
            state: SessionState {
                rx1_delay_s: rx.rx1_delay_s,
                rx1_dr_offset: rx.rx1_dr_offset,
                rx2_dr: rx.rx2_dr,
                rx2_frequency_hz: rx.rx2_frequency_hz,
                ..SessionState::default()
            },
        }
    }

    /// RX1 delay as seconds, with the spec's rule that 0 means 1.
    pub fn rx1_delay_secs(&self) -> u32 {
        u32::from(self.state.rx1_delay_s.max(1))
    }

    /// A session stored without receive windows (ABP activations before they were
    /// filled in) has an RX2 frequency of 0, which no gateway can transmit on: it
    /// gets the profile's windows. Returns whether anything changed.
    pub fn fill_unset_rx_windows(&mut self, profile: &DeviceProfile) -> bool {
        if self.state.rx2_frequency_hz != 0 {
            return false;
        }
        let rx = RxWindows::for_profile(profile);
        self.state.rx1_delay_s = rx.rx1_delay_s;
        self.state.rx1_dr_offset = rx.rx1_dr_offset;
        self.state.rx2_dr = rx.rx2_dr;
        self.state.rx2_frequency_hz = rx.rx2_frequency_hz;
        true
    }
}

impl RxWindows {
    /// What a device configured out of band (ABP) listens with: the profile's
    /// settings, else the region's defaults.
    pub fn for_profile(profile: &DeviceProfile) -> RxWindows {
        let (default_hz, default_dr) = profile.region.rx2_default();
        RxWindows {
            rx1_delay_s: profile.rx1_delay_s.max(1),
            rx1_dr_offset: profile.rx1_dr_offset,
            rx2_dr: profile.rx2_dr.unwrap_or(default_dr),
            rx2_frequency_hz: profile.rx2_frequency_hz.unwrap_or(default_hz),
        }
    }
}

/// Receive-window settings of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxWindows {
    /// RX1 delay in seconds.
    pub rx1_delay_s: u8,
    /// RX1 data-rate offset.
    pub rx1_dr_offset: u8,
    /// RX2 data rate.
    pub rx2_dr: u8,
    /// RX2 frequency in Hz.
    pub rx2_frequency_hz: u32,
}

/// One downlink waiting in a device's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueItem {
    /// Item id (the API returned it when the item was queued).
    pub id: Uuid,
    /// Application port (1..=223).
    pub f_port: u8,
    /// The plaintext application payload.
    pub data: Vec<u8>,
    /// Whether the device must acknowledge it.
    pub confirmed: bool,
    /// Drop the item if it cannot be sent before this time.
    pub expires_at: Option<SystemTime>,
}

/// Everything the core knows about one device.
#[derive(Debug, Clone)]
pub struct Device {
    /// DevEUI.
    pub dev_eui: Eui64,
    /// JoinEUI (AppEUI in 1.0).
    pub join_eui: Eui64,
    /// Its profile.
    pub profile: Arc<DeviceProfile>,
    /// Accept any frame counter (for devices that reset theirs).
    pub skip_f_cnt_check: bool,
    /// Ignore the device entirely.
    pub disabled: bool,
    /// Root keys, for OTAA.
    pub root_keys: Option<RootKeys>,
    /// Join-server state.
    pub join: JoinState,
    /// The current session.
    pub session: Option<Session>,
    /// Pending downlinks, oldest first.
    pub queue: VecDeque<QueueItem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_versions_parse_and_print() {
        for s in ["1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.1.0"] {
            let v: MacVersion = s.parse().unwrap();
            assert_eq!(v.to_string(), s);
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{s}\""));
        }
        assert!("1.2".parse::<MacVersion>().is_err());
        assert!(MacVersion::V1_0_4.dev_nonce_is_counter());
        assert!(!MacVersion::V1_0_3.dev_nonce_is_counter());
        assert!(MacVersion::V1_1_0.is_1_1());
    }
}
