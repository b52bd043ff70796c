//! The MAC layer: state the network keeps per session about the device's radio
//! settings, and the MAC commands in flight.

use lorikeet_lorawan::Eui64;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::dedup::Uplink;
use crate::device::Session;
use crate::frames::DataFrame;
use crate::server::NetworkServer;

/// MAC-layer state of one session, persisted with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MacState {
    /// The data rate the device currently uses for uplinks, as last observed.
    pub uplink_dr: Option<u8>,
}

/// Handles the MAC commands of an accepted uplink.
pub(crate) fn on_uplink(
    _ns: &mut NetworkServer,
    _dev_eui: Eui64,
    _mac_bytes: &[u8],
    _frame: &DataFrame,
    _up: &Uplink,
    _dr: u8,
    _deduplication_id: Uuid,
) {
}

/// MAC commands to put in the next downlink (FOpts), at most `max_len` bytes.
pub(crate) fn downlink_commands(_session: &Session, _max_len: usize) -> Vec<u8> {
    Vec::new()
}

/// The commands returned by [`downlink_commands`] went out.
pub(crate) fn on_downlink_sent(_session: &mut Session) {}
