//! LoRaWAN regional parameters: each band plan is a data table ([`BandTable`],
//! one module per region) read by one generic implementation of the
//! object-safe [`Region`] trait ([`Band`]).
//!
//! Pure: no I/O, no clock. Build a region from its name and the operator's
//! [`RegionConfig`] with [`build_region`], then ask it for RX1/RX2 parameters,
//! max payloads, CFLists, LinkADRReq channel masks and TX powers. Frequencies are
//! integers in Hz everywhere. Values follow LoRaWAN Regional Parameters
//! RP002-1.0.3/1.0.4, with the older revisions' differences where devices still
//! depend on them (see [`RegParamsRevision`] and `docs/regions.md`).

mod band;
mod cflist;
mod channels;
mod config;
mod datarate;
mod error;
mod name;
mod region;
mod revision;
mod table;

pub mod as923;
pub mod au915;
pub mod cn470;
pub mod eu433;
pub mod eu868;
pub mod in865;
pub mod kr920;
pub mod ru864;
pub mod us915;

use std::sync::Arc;

pub use band::{Band, BandPlan};
pub use cflist::CfList;
pub use channels::{ChMaskScheme, Channel, ChannelPlan, LinkAdrChMask};
pub use config::{ChannelConfig, RegionConfig};
pub use datarate::{
    lora_required_snr_db, DataRate, DataRateEntry, Direction, LrFhssCodingRate, MaxPayload,
    Modulation,
};
pub use error::RegionError;
pub use name::RegionName;
pub use region::{
    ClassBDefaults, DwellTimeLimits, Region, SubBand, ADR_ACK_DELAY, ADR_ACK_LIMIT, BEACON_PERIOD_S,
};
pub use revision::RegParamsRevision;
pub use table::BandTable;

/// Builds a region from its name (`"EU868"`, `"US915"`, `"AS923-2"`, …) and the
/// operator's configuration. Unknown names and invalid configuration are typed errors.
pub fn build_region(name: &str, config: &RegionConfig) -> Result<Arc<dyn Region>, RegionError> {
    let name: RegionName = name.parse()?;
    name.build(config)
}

impl RegionName {
    /// Builds this region with `config` applied.
    pub fn build(self, config: &RegionConfig) -> Result<Arc<dyn Region>, RegionError> {
        Ok(Arc::new(Band::with_plan(self, config)?))
    }
}

impl BandPlan for RegionName {
    fn table(self) -> &'static BandTable {
        match self {
            RegionName::Eu868 => &eu868::TABLE,
            RegionName::Us915 => &us915::TABLE,
            RegionName::Au915 => &au915::TABLE,
            RegionName::As923Group1 => as923::As923Group::Group1.table(),
            RegionName::As923Group2 => as923::As923Group::Group2.table(),
            RegionName::As923Group3 => as923::As923Group::Group3.table(),
            RegionName::As923Group4 => as923::As923Group::Group4.table(),
            RegionName::Cn470 => &cn470::TABLE,
            RegionName::In865 => &in865::TABLE,
            RegionName::Kr920 => &kr920::TABLE,
            RegionName::Ru864 => &ru864::TABLE,
            RegionName::Eu433 => &eu433::TABLE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_region_builds_with_the_empty_config() {
        for name in RegionName::ALL {
            let region = name.build(&RegionConfig::default()).unwrap();
            assert_eq!(region.name(), name);
            assert!(!region.enabled_uplink_channels().is_empty());
            let (rx2_hz, rx2_dr) = region.rx2_default();
            let (lo, hi) = region.frequency_range_hz();
            assert!((lo..=hi).contains(&rx2_hz), "{name}: RX2 outside band");
            assert!(
                region.data_rate(rx2_dr).is_some(),
                "{name}: RX2 DR undefined"
            );
        }
    }

    #[test]
    fn build_by_name_string() {
        let r = build_region("AS923-1", &RegionConfig::default()).unwrap();
        assert_eq!(r.name(), RegionName::As923Group1);
        assert!(matches!(
            build_region("EU999", &RegionConfig::default()),
            Err(RegionError::UnknownRegion { .. })
        ));
    }

    #[test]
    fn every_default_channel_lies_in_the_band_and_has_valid_drs() {
        for name in RegionName::ALL {
            let r = name.build(&RegionConfig::default()).unwrap();
            let (lo, hi) = r.frequency_range_hz();
            for c in r.channel_plan().channels() {
                assert!((lo..=hi).contains(&c.frequency_hz), "{name}: {c:?}");
                for dr in [c.min_dr, c.max_dr] {
                    let e = r.data_rates().iter().find(|e| e.dr == dr);
                    assert!(
                        e.is_some_and(|e| e.direction.allows(true)),
                        "{name}: DR{dr}"
                    );
                }
            }
        }
    }

    #[test]
    fn rx1_data_rate_is_always_a_downlink_data_rate() {
        for name in RegionName::ALL {
            let r = name.build(&RegionConfig::default()).unwrap();
            for e in r.data_rates().iter().filter(|e| e.direction.allows(true)) {
                for offset in 0..=7 {
                    for dwell in [false, true] {
                        for rev in RegParamsRevision::ALL {
                            let Some(dl) = r.rx1_data_rate_for_revision(e.dr, offset, dwell, rev)
                            else {
                                continue;
                            };
                            let known = r.data_rates().iter().find(|d| d.dr == dl);
                            assert!(
                                known.is_some_and(|d| d.direction.allows(false)),
                                "{name} {rev}: DR{} offset {offset} -> DR{dl}",
                                e.dr
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn tx_power_steps_down_two_db_per_index() {
        let r = RegionName::Eu868.build(&RegionConfig::default()).unwrap();
        assert_eq!(r.tx_power_eirp_dbm(0), Some(16.0));
        assert_eq!(r.tx_power_eirp_dbm(7), Some(2.0));
        assert_eq!(r.tx_power_eirp_dbm(8), None);
    }

    #[test]
    fn region_config_reads_from_toml_and_rejects_unknown_keys() {
        let c: RegionConfig = toml::from_str(
            r#"
            enabled_sub_bands = [2]
            uplink_dwell_time_400ms = false
            extra_channels = [
              { frequency_hz = 867100000 },
              { frequency_hz = 868800000, min_dr = 7, max_dr = 7 },
            ]
            "#,
        )
        .unwrap();
        assert_eq!(c.enabled_sub_bands, vec![2]);
        assert_eq!(c.uplink_dwell_time_400ms, Some(false));
        assert_eq!(
            c.extra_channels,
            vec![
                ChannelConfig {
                    frequency_hz: 867_100_000,
                    min_dr: 0,
                    max_dr: 5
                },
                ChannelConfig {
                    frequency_hz: 868_800_000,
                    min_dr: 7,
                    max_dr: 7
                },
            ]
        );
        assert!(toml::from_str::<RegionConfig>("enabled_subbands = [2]").is_err());
        assert!(toml::from_str::<RegionConfig>(
            "extra_channels = [{ frequency_hz = 1, max_drr = 5 }]"
        )
        .is_err());
    }
}
