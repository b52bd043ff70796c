//! The `Region` trait: everything the network server asks of a band plan.

use std::fmt::Debug;

use crate::channels::{ChannelPlan, LinkAdrChMask};
use crate::datarate::{lora_required_snr_db, DataRate, DataRateEntry, MaxPayload, Modulation};
use crate::{RegParamsRevision, RegionError, RegionName};

/// Default ADR_ACK_LIMIT (RP002-1.0.3 §2.x.8, every region).
pub const ADR_ACK_LIMIT: u16 = 64;
/// Default ADR_ACK_DELAY (RP002-1.0.3 §2.x.8, every region).
pub const ADR_ACK_DELAY: u16 = 32;
/// Length of a Class B beacon period in seconds.
pub const BEACON_PERIOD_S: u32 = 128;

/// A regulatory sub-band with its duty-cycle limit (EU868-style regulation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubBand {
    /// Lowest frequency of the sub-band.
    pub min_frequency_hz: u32,
    /// Highest frequency of the sub-band.
    pub max_frequency_hz: u32,
    /// Maximum duty cycle in percent (0.1 = 0.1 %).
    pub duty_cycle_percent: f32,
    /// Maximum radiated power.
    pub max_eirp_dbm: f32,
}

/// Whether the 400 ms dwell-time limit applies (AS923, AU915; set by
/// TxParamSetupReq). It changes the max payloads and the lowest RX1 data rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DwellTimeLimits {
    /// Uplinks limited to 400 ms on air.
    pub uplink_400ms: bool,
    /// Downlinks limited to 400 ms on air.
    pub downlink_400ms: bool,
}

/// Class B defaults: beacon and ping-slot data rates and frequencies. With more
/// than one frequency the channel hops with the beacon period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassBDefaults {
    /// Data rate of the beacon.
    pub beacon_dr: u8,
    /// Default ping-slot data rate.
    pub ping_slot_dr: u8,
    /// Beacon frequencies (one, or the hopping list).
    pub beacon_frequencies_hz: Vec<u32>,
    /// Default ping-slot frequencies (one, or the hopping list).
    pub ping_slot_frequencies_hz: Vec<u32>,
}

/// A band plan. Object safe: the server keeps an `Arc<dyn Region>` per device
/// profile. Required methods read the region's table; provided methods derive
/// the rest from them. [`Band`](crate::Band) is the implementation, for every region.
pub trait Region: Send + Sync + Debug {
    /// The region's name.
    fn name(&self) -> RegionName;

    /// The data-rate table, ascending by DR.
    fn data_rates(&self) -> &[DataRateEntry];

    /// Max payload for `dr` as the device of `revision` expects it. `dwell_time_400ms`
    /// is the dwell setting of the direction the frame travels in. `None` when the
    /// DR is not defined, or not allowed under the dwell limit (AS923 DR0/DR1).
    fn max_payload(
        &self,
        dr: u8,
        revision: RegParamsRevision,
        dwell_time_400ms: bool,
    ) -> Option<MaxPayload>;

    /// RX1 data rate for an uplink DR and RX1DROffset, as RP002 defines it;
    /// `downlink_dwell_time_400ms` matters in AS923 (minimum RX1 DR2). `None` for
    /// an invalid DR or offset. See [`Region::rx1_data_rate_for_revision`].
    fn rx1_data_rate(
        &self,
        uplink_dr: u8,
        rx1_dr_offset: u8,
        downlink_dwell_time_400ms: bool,
    ) -> Option<u8>;

    /// RX1 data rate as a device of `revision` computes it. Differs from
    /// [`Region::rx1_data_rate`] (which follows RP002) only in AS923 and IN865,
    /// where RP001 capped the RX1 data rate at DR5. Prefer this when the device
    /// profile names its revision.
    fn rx1_data_rate_for_revision(
        &self,
        uplink_dr: u8,
        rx1_dr_offset: u8,
        downlink_dwell_time_400ms: bool,
        _revision: RegParamsRevision,
    ) -> Option<u8> {
        self.rx1_data_rate(uplink_dr, rx1_dr_offset, downlink_dwell_time_400ms)
    }

    /// RX1 frequency for an uplink on a channel (same frequency in dynamic plans,
    /// the downlink grid in US915/AU915/CN470).
    fn rx1_frequency_hz(&self, uplink_channel_index: u8, uplink_frequency_hz: u32) -> Option<u32>;

    /// Default RX2 `(frequency_hz, dr)`.
    fn rx2_default(&self) -> (u32, u8);

    /// The configured channel plan.
    fn channel_plan(&self) -> &ChannelPlan;

    /// Default maximum EIRP of a device (TXPower 0).
    fn max_eirp_dbm(&self) -> f32;

    /// Highest TXPower index defined by the latest revision.
    fn max_tx_power_index(&self) -> u8;

    /// Highest data rate ADR may assign.
    fn max_adr_data_rate(&self) -> u8;

    /// Band edges (extra channels must lie inside).
    fn frequency_range_hz(&self) -> (u32, u32);

    /// Duty-cycle sub-bands; empty where the regulation has none.
    fn duty_cycle_sub_bands(&self) -> &[SubBand];

    /// Dwell-time limits in force (region default or configured).
    fn dwell_time(&self) -> DwellTimeLimits;

    /// Whether devices implement TxParamSetupReq (AS923, AU915).
    fn implements_tx_param_setup(&self) -> bool;

    /// Class B defaults.
    fn class_b(&self) -> &ClassBDefaults;

    /// EIRP the gateway should transmit a downlink with on `frequency_hz`.
    fn downlink_tx_power_eirp_dbm(&self, frequency_hz: u32) -> f32;

    /// Data-rate range of channels announced in a type-0 CFList.
    fn cf_list_data_rates(&self) -> (u8, u8) {
        (0, 5)
    }

    /// The parameters of a DR index.
    fn data_rate(&self, dr: u8) -> Option<DataRate> {
        self.data_rates()
            .iter()
            .find(|e| e.dr == dr)
            .map(|e| e.data_rate)
    }

    /// The DR index of what a gateway reports (e.g. SF7BW125). `uplink` picks
    /// between the uplink and downlink tables (US915 SF8BW500 is DR4 up, DR12 down).
    fn data_rate_index(&self, modulation: &Modulation, uplink: bool) -> Option<u8> {
        self.data_rates()
            .iter()
            .find(|e| e.direction.allows(uplink) && &e.data_rate.modulation == modulation)
            .map(|e| e.dr)
    }

    /// Demodulation floor of a LoRa DR in dB; `None` for FSK and LR-FHSS.
    fn required_snr_db(&self, dr: u8) -> Option<f32> {
        match self.data_rate(dr)?.modulation {
            Modulation::Lora {
                spreading_factor, ..
            } => lora_required_snr_db(spreading_factor),
            _ => None,
        }
    }

    /// LoRaWAN channel index of an uplink frequency (default or extra channel).
    fn uplink_channel_index(&self, frequency_hz: u32) -> Option<u8> {
        self.channel_plan().channel_index(frequency_hz)
    }

    /// Channel indices the network listens on.
    fn enabled_uplink_channels(&self) -> Vec<u8> {
        self.channel_plan().enabled()
    }

    /// Data rates usable on at least one enabled channel, ascending.
    fn enabled_uplink_data_rates(&self) -> Vec<u8> {
        let plan = self.channel_plan();
        let mut drs: Vec<u8> = plan
            .enabled()
            .into_iter()
            .filter_map(|i| plan.channels().get(usize::from(i)))
            .flat_map(|c| c.min_dr..=c.max_dr)
            .collect();
        drs.sort_unstable();
        drs.dedup();
        drs
    }

    /// The 16-byte CFList for a JoinAccept, if there is anything to announce.
    fn join_accept_cf_list(&self) -> Option<[u8; 16]> {
        self.channel_plan()
            .cf_list(self.cf_list_data_rates())
            .and_then(|cf| cf.encode().ok())
    }

    /// LinkADRReq masks that bring a device from `device_enabled` to the
    /// network's enabled channels; empty when they already match.
    fn link_adr_ch_masks(&self, device_enabled: &[u8]) -> Vec<LinkAdrChMask> {
        self.channel_plan().link_adr_ch_masks(device_enabled)
    }

    /// The device's enabled channels after one (ChMaskCntl, ChMask) pair.
    fn apply_ch_mask(
        &self,
        current_enabled: &[u8],
        ch_mask_cntl: u8,
        ch_mask: u16,
    ) -> Result<Vec<u8>, RegionError> {
        self.channel_plan()
            .apply_ch_mask(current_enabled, ch_mask_cntl, ch_mask)
    }

    /// EIRP of a TXPower index: MaxEIRP − 2·index dB (RP002-1.0.3, every region).
    fn tx_power_eirp_dbm(&self, tx_power_index: u8) -> Option<f32> {
        (tx_power_index <= self.max_tx_power_index())
            .then(|| self.max_eirp_dbm() - 2.0 * f32::from(tx_power_index))
    }

    /// Highest TXPower index a device of `revision` accepts.
    fn max_tx_power_index_for_revision(&self, _revision: RegParamsRevision) -> u8 {
        self.max_tx_power_index()
    }

    /// Default ADR_ACK_LIMIT.
    fn default_adr_ack_limit(&self) -> u16 {
        ADR_ACK_LIMIT
    }

    /// Default ADR_ACK_DELAY.
    fn default_adr_ack_delay(&self) -> u16 {
        ADR_ACK_DELAY
    }

    /// Beacon frequency for a beacon sent at `beacon_time_s` (seconds since the
    /// GPS epoch): `freqs[floor(t / 128) mod n]`.
    fn beacon_frequency_hz(&self, beacon_time_s: u32) -> u32 {
        let freqs = &self.class_b().beacon_frequencies_hz;
        hop(freqs, u64::from(beacon_time_s / BEACON_PERIOD_S))
    }

    /// Default ping-slot frequency: `freqs[(DevAddr + floor(t / 128)) mod n]`.
    fn ping_slot_frequency_hz(&self, dev_addr: u32, beacon_time_s: u32) -> u32 {
        let freqs = &self.class_b().ping_slot_frequencies_hz;
        hop(
            freqs,
            u64::from(dev_addr) + u64::from(beacon_time_s / BEACON_PERIOD_S),
        )
    }
}

fn hop(freqs: &[u32], n: u64) -> u32 {
    if freqs.is_empty() {
        return 0;
    }
    let len = freqs.len() as u64;
    usize::try_from(n % len)
        .ok()
        .and_then(|i| freqs.get(i))
        .copied()
        .unwrap_or(0)
}
