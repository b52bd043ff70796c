//! Typed errors for region construction, configuration and channel-mask handling.

use crate::RegionName;

/// Everything that can go wrong when building a region or interpreting a
/// region-dependent field (CFList, ChMask). Each variant names the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RegionError {
    /// The region name is not one we implement.
    #[error("unknown region name {name:?}")]
    UnknownRegion {
        /// The name as given.
        name: String,
    },
    /// The regional-parameters revision string is not recognised.
    #[error("unknown regional parameters revision {value:?}")]
    UnknownRevision {
        /// The revision as given.
        value: String,
    },
    /// A configured frequency lies outside the region's band.
    #[error("frequency {frequency_hz} Hz is outside the {region} band ({min_hz}..={max_hz} Hz)")]
    FrequencyOutOfBand {
        /// Region being configured.
        region: RegionName,
        /// The offending frequency.
        frequency_hz: u32,
        /// Lowest allowed frequency.
        min_hz: u32,
        /// Highest allowed frequency.
        max_hz: u32,
    },
    /// LoRaWAN encodes channel frequencies in steps of 100 Hz.
    #[error("frequency {frequency_hz} Hz is not a multiple of 100 Hz")]
    FrequencyNotMultipleOf100Hz {
        /// The offending frequency.
        frequency_hz: u32,
    },
    /// A data rate index is not defined as an uplink data rate in this region.
    #[error("data rate DR{dr} is not an uplink data rate of {region}")]
    InvalidDataRate {
        /// Region being configured.
        region: RegionName,
        /// The offending data rate index.
        dr: u8,
    },
    /// `min_dr` is larger than `max_dr`.
    #[error("channel {frequency_hz} Hz: min_dr {min_dr} is greater than max_dr {max_dr}")]
    InvalidDataRateRange {
        /// Channel frequency.
        frequency_hz: u32,
        /// Configured minimum data rate.
        min_dr: u8,
        /// Configured maximum data rate.
        max_dr: u8,
    },
    /// More channels than the region allows (16 for dynamic plans).
    #[error("{region} allows at most {max} uplink channels, {count} configured")]
    TooManyChannels {
        /// Region being configured.
        region: RegionName,
        /// Number of channels after adding the extra channels.
        count: usize,
        /// The maximum.
        max: usize,
    },
    /// The same channel (frequency and data-rate range) is configured twice.
    #[error("channel {frequency_hz} Hz DR{min_dr}-DR{max_dr} is defined twice")]
    DuplicateChannel {
        /// Channel frequency.
        frequency_hz: u32,
        /// Minimum data rate.
        min_dr: u8,
        /// Maximum data rate.
        max_dr: u8,
    },
    /// Fixed channel plans (US915, AU915, CN470) have no user-defined channels.
    #[error("{region} has a fixed channel plan: extra channels are not supported")]
    ExtraChannelsNotSupported {
        /// Region being configured.
        region: RegionName,
    },
    /// Sub-bands exist only in fixed channel plans.
    #[error("{region} has no sub-bands (use enabled_uplink_channels instead)")]
    SubBandsNotSupported {
        /// Region being configured.
        region: RegionName,
    },
    /// A sub-band number is out of range (sub-bands are numbered from 1).
    #[error("sub-band {sub_band} does not exist in {region} (valid: 1..={max})")]
    InvalidSubBand {
        /// Region being configured.
        region: RegionName,
        /// The offending sub-band number.
        sub_band: u8,
        /// The highest sub-band number.
        max: u8,
    },
    /// A channel index that is not defined in the channel plan.
    #[error("uplink channel {index} is not defined (the plan has {count} channels)")]
    ChannelNotDefined {
        /// The offending channel index.
        index: u8,
        /// Number of defined channels.
        count: usize,
    },
    /// A channel set that would leave no uplink channel enabled.
    #[error("no uplink channel would be enabled")]
    NoChannelsEnabled,
    /// Dwell-time settings were given for a region that has no dwell-time rules.
    #[error("{region} has no configurable dwell-time limits")]
    DwellTimeNotApplicable {
        /// Region being configured.
        region: RegionName,
    },
    /// ChMaskCntl value that is RFU (or unsupported) in this region.
    #[error("ChMaskCntl {ch_mask_cntl} is not valid in {region}")]
    InvalidChMaskCntl {
        /// Region the mask was applied in.
        region: RegionName,
        /// The offending ChMaskCntl.
        ch_mask_cntl: u8,
    },
    /// RFU bits of a ChMask were set.
    #[error("ChMask {ch_mask:#06x} sets RFU bits for ChMaskCntl {ch_mask_cntl}")]
    RfuChMaskBits {
        /// The ChMaskCntl.
        ch_mask_cntl: u8,
        /// The mask.
        ch_mask: u16,
    },
    /// A CFList whose length is not 16 bytes.
    #[error("CFList must be 16 bytes, got {len}")]
    InvalidCfListLength {
        /// The length given.
        len: usize,
    },
    /// A CFList with a CFListType we do not know.
    #[error("unknown CFListType {cf_list_type}")]
    UnknownCfListType {
        /// The type byte.
        cf_list_type: u8,
    },
}
