//! Operator configuration applied when a region is built.

use serde::{Deserialize, Serialize};

/// Per-network region settings, read from the binary's TOML configuration.
/// Every field is optional; the empty config gives the plain band plan with
/// every channel enabled. See `docs/regions.md` for examples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegionConfig {
    /// Channels beyond the region's default channels (dynamic plans only:
    /// EU868, AS923, IN865, KR920, RU864, EU433). They get the channel indices
    /// after the default channels, in this order.
    pub extra_channels: Vec<ChannelConfig>,
    /// Sub-bands (numbered from 1) the gateways listen on, for fixed plans:
    /// US915/AU915 sub-band `s` is channels `8(s-1)..=8(s-1)+7` plus the
    /// 500 kHz channel `64+(s-1)`; CN470 sub-band `s` is channels `8(s-1)..=8(s-1)+7`.
    pub enabled_sub_bands: Vec<u8>,
    /// Uplink channel indices to enable, in addition to `enabled_sub_bands`.
    /// When both lists are empty every channel is enabled.
    pub enabled_uplink_channels: Vec<u8>,
    /// Override the region's default uplink dwell-time limit (AS923, AU915).
    pub uplink_dwell_time_400ms: Option<bool>,
    /// Override the region's default downlink dwell-time limit (AS923, AU915).
    pub downlink_dwell_time_400ms: Option<bool>,
    /// Override the EIRP the gateways transmit downlinks with.
    pub downlink_tx_power_eirp_dbm: Option<f32>,
}

/// One extra uplink/downlink channel of a dynamic channel plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Centre frequency, a multiple of 100 Hz.
    pub frequency_hz: u32,
    /// Lowest data rate allowed on the channel (default DR0).
    #[serde(default)]
    pub min_dr: u8,
    /// Highest data rate allowed on the channel (default DR5).
    #[serde(default = "default_max_dr")]
    pub max_dr: u8,
}

fn default_max_dr() -> u8 {
    5
}
