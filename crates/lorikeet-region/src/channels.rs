//! Uplink channel plans: channel lists, enabled sets, LinkADRReq channel masks
//! and the JoinAccept CFList.

use crate::{CfList, ChannelConfig, RegionConfig, RegionError, RegionName};

/// How LinkADRReq's ChMaskCntl/ChMask address the channels of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChMaskScheme {
    /// Up to 16 channels: ChMaskCntl 0 = the mask, 6 = all defined channels on
    /// (EU868, AS923, IN865, KR920, RU864, EU433).
    Dynamic16,
    /// 64 × 125 kHz + 8 × 500 kHz: ChMaskCntl 0–3 blocks of 16, 4 = channels 64–71,
    /// 5 = sub-band bits, 6/7 = all 125 kHz on/off plus channels 64–71 (US915, AU915).
    Fixed72,
    /// 96 channels: ChMaskCntl 0–5 blocks of 16, 6 = all on (CN470, RP001 plan).
    Fixed96,
}

/// One uplink channel. Its index is its position in [`ChannelPlan::channels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    /// Centre frequency.
    pub frequency_hz: u32,
    /// Lowest data rate allowed.
    pub min_dr: u8,
    /// Highest data rate allowed.
    pub max_dr: u8,
    /// True for operator-configured extra channels; the device only knows them
    /// after a CFList or NewChannelReq.
    pub user_defined: bool,
}

impl Channel {
    pub(crate) const fn new(frequency_hz: u32, min_dr: u8, max_dr: u8) -> Self {
        Channel {
            frequency_hz,
            min_dr,
            max_dr,
            user_defined: false,
        }
    }
}

/// One (ChMaskCntl, ChMask) pair of a LinkADRReq. Bit `i` of `ch_mask` is the
/// `i`-th channel of the block ChMaskCntl selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkAdrChMask {
    /// ChMaskCntl (3 bits).
    pub ch_mask_cntl: u8,
    /// ChMask (16 bits).
    pub ch_mask: u16,
}

impl LinkAdrChMask {
    const fn new(ch_mask_cntl: u8, ch_mask: u16) -> Self {
        LinkAdrChMask {
            ch_mask_cntl,
            ch_mask,
        }
    }
}

/// The channels of a region after configuration, and which of them the network
/// listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPlan {
    region: RegionName,
    scheme: ChMaskScheme,
    channels: Vec<Channel>,
    default_count: usize,
    enabled: u128,
}

fn bits_of(indices: &[u8], count: usize) -> u128 {
    indices
        .iter()
        .filter(|&&i| usize::from(i) < count)
        .fold(0u128, |acc, &i| acc | (1u128 << i))
}

fn indices_of(bits: u128) -> Vec<u8> {
    (0u8..128).filter(|&i| bits & (1u128 << i) != 0).collect()
}

fn block16(bits: u128, block: u8) -> u16 {
    // Truncation keeps exactly the 16 bits of the block.
    ((bits >> (u32::from(block) * 16)) & 0xFFFF) as u16
}

fn all_bits(count: usize) -> u128 {
    if count >= 128 {
        u128::MAX
    } else {
        (1u128 << count) - 1
    }
}

impl ChannelPlan {
    /// A dynamic plan: the default channels, then `config.extra_channels`.
    pub(crate) fn dynamic(
        region: RegionName,
        defaults: &[Channel],
        config: &RegionConfig,
        band_hz: (u32, u32),
        is_uplink_dr: impl Fn(u8) -> bool,
    ) -> Result<Self, RegionError> {
        if !config.enabled_sub_bands.is_empty() {
            return Err(RegionError::SubBandsNotSupported { region });
        }
        let count = defaults.len() + config.extra_channels.len();
        if count > 16 {
            return Err(RegionError::TooManyChannels {
                region,
                count,
                max: 16,
            });
        }
        let mut channels = defaults.to_vec();
        for extra in &config.extra_channels {
            let channel = validate_extra(region, extra, band_hz, &is_uplink_dr)?;
            if channels.iter().any(|c| {
                c.frequency_hz == channel.frequency_hz
                    && c.min_dr == channel.min_dr
                    && c.max_dr == channel.max_dr
            }) {
                return Err(RegionError::DuplicateChannel {
                    frequency_hz: channel.frequency_hz,
                    min_dr: channel.min_dr,
                    max_dr: channel.max_dr,
                });
            }
            channels.push(channel);
        }
        Self::finish(
            region,
            ChMaskScheme::Dynamic16,
            channels,
            defaults.len(),
            config,
            &[],
        )
    }

    /// A fixed plan; `sub_bands[s-1]` lists the channels of sub-band `s`.
    pub(crate) fn fixed(
        region: RegionName,
        scheme: ChMaskScheme,
        channels: Vec<Channel>,
        config: &RegionConfig,
        sub_bands: &[Vec<u8>],
    ) -> Result<Self, RegionError> {
        if !config.extra_channels.is_empty() {
            return Err(RegionError::ExtraChannelsNotSupported { region });
        }
        let default_count = channels.len();
        Self::finish(region, scheme, channels, default_count, config, sub_bands)
    }

    fn finish(
        region: RegionName,
        scheme: ChMaskScheme,
        channels: Vec<Channel>,
        default_count: usize,
        config: &RegionConfig,
        sub_bands: &[Vec<u8>],
    ) -> Result<Self, RegionError> {
        let count = channels.len();
        let mut enabled = 0u128;
        for &sb in &config.enabled_sub_bands {
            let members = usize::from(sb)
                .checked_sub(1)
                .and_then(|i| sub_bands.get(i))
                .ok_or(RegionError::InvalidSubBand {
                    region,
                    sub_band: sb,
                    // Sub-band tables have at most 12 entries.
                    max: u8::try_from(sub_bands.len()).unwrap_or(u8::MAX),
                })?;
            enabled |= bits_of(members, count);
        }
        for &index in &config.enabled_uplink_channels {
            if usize::from(index) >= count {
                return Err(RegionError::ChannelNotDefined { index, count });
            }
            enabled |= 1u128 << index;
        }
        if config.enabled_sub_bands.is_empty() && config.enabled_uplink_channels.is_empty() {
            enabled = all_bits(count);
        }
        if enabled == 0 {
            return Err(RegionError::NoChannelsEnabled);
        }
        Ok(ChannelPlan {
            region,
            scheme,
            channels,
            default_count,
            enabled,
        })
    }

    /// How ChMask addresses this plan.
    pub fn scheme(&self) -> ChMaskScheme {
        self.scheme
    }

    /// Every defined uplink channel, indexed by LoRaWAN channel index.
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// Number of channels the device knows without any configuration.
    pub fn default_channel_count(&self) -> usize {
        self.default_count
    }

    /// Channel indices the network listens on, ascending.
    pub fn enabled(&self) -> Vec<u8> {
        indices_of(self.enabled)
    }

    /// The enabled channels as a bit set (bit `i` = channel `i`), for comparisons that
    /// should not allocate.
    pub fn enabled_bits(&self) -> u128 {
        self.enabled
    }

    /// The channel index of an uplink frequency (the first match: a default
    /// channel wins over an extra channel on the same frequency).
    pub fn channel_index(&self, frequency_hz: u32) -> Option<u8> {
        self.channels
            .iter()
            .position(|c| c.frequency_hz == frequency_hz)
            .and_then(|i| u8::try_from(i).ok())
    }

    /// The channel index of an uplink frequency whose DR range contains `dr`
    /// (tells EU868 868.3 MHz DR0–5 from an extra 868.3 MHz DR6 channel).
    pub fn channel_index_for_dr(&self, frequency_hz: u32, dr: u8) -> Option<u8> {
        self.channels
            .iter()
            .position(|c| c.frequency_hz == frequency_hz && (c.min_dr..=c.max_dr).contains(&dr))
            .and_then(|i| u8::try_from(i).ok())
    }

    fn checked_bits(&self, indices: &[u8]) -> Result<u128, RegionError> {
        let count = self.channels.len();
        if let Some(&index) = indices.iter().find(|&&i| usize::from(i) >= count) {
            return Err(RegionError::ChannelNotDefined { index, count });
        }
        let bits = bits_of(indices, count);
        if bits == 0 {
            return Err(RegionError::NoChannelsEnabled);
        }
        Ok(bits)
    }

    /// LinkADRReq masks that set a device to exactly `target` from any state.
    pub fn ch_masks_for(&self, target: &[u8]) -> Result<Vec<LinkAdrChMask>, RegionError> {
        let bits = self.checked_bits(target)?;
        Ok(self.full_encoding(bits))
    }

    fn full_encoding(&self, bits: u128) -> Vec<LinkAdrChMask> {
        match self.scheme {
            ChMaskScheme::Dynamic16 => vec![LinkAdrChMask::new(0, block16(bits, 0))],
            ChMaskScheme::Fixed72 => {
                let wide = block16(bits, 4) & 0x00FF;
                let mut all_off = vec![LinkAdrChMask::new(7, wide)];
                let mut all_on = vec![LinkAdrChMask::new(6, wide)];
                for b in 0..4 {
                    let m = block16(bits, b);
                    if m != 0 {
                        all_off.push(LinkAdrChMask::new(b, m));
                    }
                    if m != 0xFFFF {
                        all_on.push(LinkAdrChMask::new(b, m));
                    }
                }
                if all_on.len() < all_off.len() {
                    all_on
                } else {
                    all_off
                }
            }
            ChMaskScheme::Fixed96 => {
                let explicit: Vec<_> = (0..6)
                    .map(|b| LinkAdrChMask::new(b, block16(bits, b)))
                    .collect();
                let mut all_on = vec![LinkAdrChMask::new(6, 0)];
                all_on.extend(explicit.iter().copied().filter(|m| m.ch_mask != 0xFFFF));
                if all_on.len() < explicit.len() {
                    all_on
                } else {
                    explicit
                }
            }
        }
    }

    /// The masks that move a device from `device_enabled` to the network's
    /// enabled channels; empty when nothing changes. Extra channels the device
    /// does not have yet are left out (they need a NewChannelReq first).
    pub fn link_adr_ch_masks(&self, device_enabled: &[u8]) -> Vec<LinkAdrChMask> {
        let count = self.channels.len();
        let device = bits_of(device_enabled, count);
        let unknown_extra = self
            .channels
            .iter()
            .enumerate()
            .filter(|(i, c)| c.user_defined && device & (1u128 << i) == 0)
            .fold(0u128, |acc, (i, _)| acc | (1u128 << i));
        let target = self.enabled & !unknown_extra;
        if target == device || target == 0 {
            return Vec::new();
        }
        let full = self.full_encoding(target);
        let blocks: u8 = match self.scheme {
            ChMaskScheme::Dynamic16 => return full,
            ChMaskScheme::Fixed72 => 5,
            ChMaskScheme::Fixed96 => 6,
        };
        let diff: Vec<_> = (0..blocks)
            .filter(|&b| block16(device, b) != block16(target, b))
            .map(|b| LinkAdrChMask::new(b, block16(target, b)))
            .collect();
        if diff.len() <= full.len() {
            diff
        } else {
            full
        }
    }

    /// Applies one (ChMaskCntl, ChMask) pair to the device's enabled channels.
    /// An empty result is allowed here (the next pair of the same LinkADRReq
    /// block may enable channels); [`ChannelPlan::apply_ch_masks`] checks the end state.
    pub fn apply_ch_mask(
        &self,
        current: &[u8],
        ch_mask_cntl: u8,
        ch_mask: u16,
    ) -> Result<Vec<u8>, RegionError> {
        let count = self.channels.len();
        let bits = bits_of(current, count);
        let mask = u128::from(ch_mask);
        let invalid = RegionError::InvalidChMaskCntl {
            region: self.region,
            ch_mask_cntl,
        };
        let rfu = RegionError::RfuChMaskBits {
            ch_mask_cntl,
            ch_mask,
        };
        let new = match (self.scheme, ch_mask_cntl) {
            (ChMaskScheme::Dynamic16, 0) => {
                if let Some(i) =
                    (0..16u8).find(|&i| ch_mask & (1 << i) != 0 && usize::from(i) >= count)
                {
                    return Err(RegionError::ChannelNotDefined { index: i, count });
                }
                mask
            }
            (ChMaskScheme::Dynamic16, 6) => all_bits(count),
            (ChMaskScheme::Fixed72, 0..=3) | (ChMaskScheme::Fixed96, 0..=5) => {
                let shift = u32::from(ch_mask_cntl) * 16;
                (bits & !(0xFFFFu128 << shift)) | (mask << shift)
            }
            (ChMaskScheme::Fixed72, 4) => {
                if ch_mask > 0xFF {
                    return Err(rfu);
                }
                (bits & !(0xFFu128 << 64)) | (mask << 64)
            }
            (ChMaskScheme::Fixed72, 5) => {
                if ch_mask > 0xFF {
                    return Err(rfu);
                }
                // Bit k switches the 125 kHz bank 8k..8k+7 and the 500 kHz channel 64+k.
                (0..8u32).fold(0u128, |acc, k| {
                    if ch_mask & (1 << k) != 0 {
                        acc | (0xFFu128 << (8 * k)) | (1u128 << (64 + k))
                    } else {
                        acc
                    }
                })
            }
            (ChMaskScheme::Fixed72, 6 | 7) => {
                if ch_mask > 0xFF {
                    return Err(rfu);
                }
                let narrow = if ch_mask_cntl == 6 { all_bits(64) } else { 0 };
                narrow | (mask << 64)
            }
            (ChMaskScheme::Fixed96, 6) => all_bits(96),
            _ => return Err(invalid),
        };
        Ok(indices_of(new & all_bits(count)))
    }

    /// Applies every pair of one LinkADRReq block in order, as the device does,
    /// and rejects a result with no channel enabled.
    pub fn apply_ch_masks(
        &self,
        current: &[u8],
        masks: &[LinkAdrChMask],
    ) -> Result<Vec<u8>, RegionError> {
        let mut enabled = current.to_vec();
        for m in masks {
            enabled = self.apply_ch_mask(&enabled, m.ch_mask_cntl, m.ch_mask)?;
        }
        if enabled.is_empty() {
            return Err(RegionError::NoChannelsEnabled);
        }
        Ok(enabled)
    }

    /// The CFList for a JoinAccept: type 0 with the extra channels that have the
    /// CFList data-rate range (`cf_list_drs`), or type 1 with the enabled mask.
    pub fn cf_list(&self, cf_list_drs: (u8, u8)) -> Option<CfList> {
        match self.scheme {
            ChMaskScheme::Dynamic16 => {
                let mut freqs = [0u32; 5];
                for (slot, f) in freqs.iter_mut().enumerate() {
                    if let Some(c) = self.channels.get(self.default_count + slot) {
                        if (c.min_dr, c.max_dr) == cf_list_drs {
                            *f = c.frequency_hz;
                        }
                    }
                }
                freqs
                    .iter()
                    .any(|&f| f != 0)
                    .then_some(CfList::Frequencies(freqs))
            }
            ChMaskScheme::Fixed72 | ChMaskScheme::Fixed96 => {
                let mut masks = [0u16; 6];
                for (b, m) in (0u8..).zip(masks.iter_mut()) {
                    *m = block16(self.enabled, b);
                }
                Some(CfList::ChannelMasks(masks))
            }
        }
    }
}

fn validate_extra(
    region: RegionName,
    extra: &ChannelConfig,
    (min_hz, max_hz): (u32, u32),
    is_uplink_dr: &impl Fn(u8) -> bool,
) -> Result<Channel, RegionError> {
    let frequency_hz = extra.frequency_hz;
    if !(min_hz..=max_hz).contains(&frequency_hz) {
        return Err(RegionError::FrequencyOutOfBand {
            region,
            frequency_hz,
            min_hz,
            max_hz,
        });
    }
    if frequency_hz % 100 != 0 {
        return Err(RegionError::FrequencyNotMultipleOf100Hz { frequency_hz });
    }
    for dr in [extra.min_dr, extra.max_dr] {
        if !is_uplink_dr(dr) {
            return Err(RegionError::InvalidDataRate { region, dr });
        }
    }
    if extra.min_dr > extra.max_dr {
        return Err(RegionError::InvalidDataRateRange {
            frequency_hz,
            min_dr: extra.min_dr,
            max_dr: extra.max_dr,
        });
    }
    Ok(Channel {
        frequency_hz,
        min_dr: extra.min_dr,
        max_dr: extra.max_dr,
        user_defined: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic generator so the round-trip tests need no RNG crate.
    struct Lcg(u64);

    impl Lcg {
        fn next_bits(&mut self) -> u128 {
            let mut out = 0u128;
            for _ in 0..2 {
                self.0 = self
                    .0
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                out = (out << 64) | u128::from(self.0);
            }
            out
        }

        /// A random subset, biased towards sparse, dense and block-shaped sets.
        fn subset(&mut self, count: usize) -> Vec<u8> {
            let a = self.next_bits();
            let b = self.next_bits();
            let bits = match a % 4 {
                0 => a & b,
                1 => a | b,
                2 => (0xFFu128 << (8 * (b % 12))) | (1u128 << (64 + (a % 8))),
                _ => a,
            };
            indices_of(bits & all_bits(count))
        }
    }

    fn plan(scheme: ChMaskScheme, count: usize, enabled: Vec<u8>) -> ChannelPlan {
        let channels = (0..count as u32)
            .map(|i| Channel::new(900_000_000 + i * 200_000, 0, 3))
            .collect();
        let config = RegionConfig {
            enabled_uplink_channels: enabled,
            ..RegionConfig::default()
        };
        ChannelPlan::fixed(RegionName::Us915, scheme, channels, &config, &[]).unwrap()
    }

    #[test]
    fn link_adr_masks_reach_the_network_set_from_any_device_state() {
        let mut rng = Lcg(7);
        for (scheme, count) in [
            (ChMaskScheme::Fixed72, 72),
            (ChMaskScheme::Fixed96, 96),
            (ChMaskScheme::Dynamic16, 16),
            (ChMaskScheme::Dynamic16, 5),
        ] {
            for _ in 0..300 {
                let target = rng.subset(count);
                if target.is_empty() {
                    continue;
                }
                let p = plan(scheme, count, target.clone());
                let start = rng.subset(count);
                let masks = p.link_adr_ch_masks(&start);
                assert_eq!(
                    p.apply_ch_masks(&start, &masks),
                    Ok(target.clone()),
                    "{scheme:?} {start:?} {masks:?}"
                );
                // The full encoding does not depend on the device's state.
                let full = p.ch_masks_for(&target).unwrap();
                assert_eq!(
                    p.apply_ch_masks(&start, &full),
                    Ok(target.clone()),
                    "{scheme:?} {full:?}"
                );
                // Each LinkADRReq block stays within the limits of the scheme.
                let max = match scheme {
                    ChMaskScheme::Fixed72 => 5,
                    ChMaskScheme::Fixed96 => 6,
                    ChMaskScheme::Dynamic16 => 1,
                };
                assert!(masks.len() <= max && full.len() <= max);
            }
        }
    }

    #[test]
    fn ch_masks_for_rejects_empty_and_undefined_targets() {
        let p = plan(ChMaskScheme::Fixed72, 72, vec![]);
        assert_eq!(p.ch_masks_for(&[]), Err(RegionError::NoChannelsEnabled));
        assert_eq!(
            p.ch_masks_for(&[72]),
            Err(RegionError::ChannelNotDefined {
                index: 72,
                count: 72
            })
        );
    }

    #[test]
    fn fixed_plan_with_nothing_enabled_is_an_error() {
        let channels = vec![Channel::new(902_300_000, 0, 3)];
        let config = RegionConfig {
            enabled_sub_bands: vec![1],
            ..RegionConfig::default()
        };
        // Sub-band 1 lists only channels that do not exist in this one-channel plan.
        let r = ChannelPlan::fixed(
            RegionName::Us915,
            ChMaskScheme::Fixed72,
            channels,
            &config,
            &[vec![5]],
        );
        assert_eq!(r, Err(RegionError::NoChannelsEnabled));
    }
}
