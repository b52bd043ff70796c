//! Settings of the MAC engine and ADR: network-wide ([`MacConfig`], the binary's `[mac]`
//! section) and per device profile ([`ProfileMacSettings`], the profile's `macSettings`).

use lorikeet_region::RegionName;
use serde::{Deserialize, Serialize};

use super::adr::DEFAULT_ALGORITHM;

/// Network-wide MAC and ADR settings. Every key has a default, unknown keys are refused
/// (a typo must not silently fall back to a default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MacConfig {
    /// ADR keeps this much SNR in reserve above the demodulation floor, in dB: fading,
    /// interference and a gateway going away must not cut the device off.
    pub adr_installation_margin_db: f32,
    /// ADR never assigns a data rate below this (default 0). Raising it forces slow
    /// devices up, trading coverage for airtime.
    pub adr_min_dr: u8,
    /// ADR never assigns a data rate above this; 15 (the default) means the region's
    /// ADR maximum.
    pub adr_max_dr: u8,
    /// The ADR algorithm of profiles that do not name one (see `docs/network-server.md`).
    pub default_adr_algorithm: String,
    /// How many times an unanswered MAC request is sent again before the engine gives up
    /// on it (a `log` event `MAC_COMMAND` says so).
    pub max_mac_retries: u8,
    /// Ask for battery and link margin (DevStatusReq) this often, in seconds; 0: never.
    pub dev_status_interval_s: u64,
    /// Ask for battery and link margin every this many uplinks as well; 0: not by count.
    pub dev_status_interval_uplinks: u32,
    /// Aggregated duty-cycle limit sent with DutyCycleReq: the device may transmit
    /// 1/2^n of the time. 0 (the default) is no limit and sends nothing.
    pub max_duty_cycle: u8,
    /// RX1 downlink frequencies that differ from the uplink channel's (DlChannelReq), for
    /// dynamic channel plans.
    pub dl_channels: Vec<DlChannelConfig>,
}

impl Default for MacConfig {
    fn default() -> Self {
        MacConfig {
            adr_installation_margin_db: 10.0,
            adr_min_dr: 0,
            adr_max_dr: 15,
            default_adr_algorithm: DEFAULT_ALGORITHM.to_owned(),
            max_mac_retries: 3,
            dev_status_interval_s: 86_400,
            dev_status_interval_uplinks: 0,
            max_duty_cycle: 0,
            dl_channels: Vec::new(),
        }
    }
}

/// One asymmetric RX1 channel: the device answers uplinks on `uplink_frequency_hz` in
/// RX1 on `downlink_frequency_hz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlChannelConfig {
    /// The band plan the channel belongs to.
    pub region: RegionName,
    /// The uplink channel's frequency (it must be a channel of that plan).
    pub uplink_frequency_hz: u32,
    /// The RX1 frequency devices should listen on after an uplink on that channel.
    pub downlink_frequency_hz: u32,
}

/// A `[mac]` value that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MacConfigError {
    /// The installation margin is not a finite number between 0 and 30 dB.
    #[error("adr_installation_margin_db = {0} is not between 0 and 30 dB")]
    InstallationMargin(f32),
    /// A data-rate cap above 15 (the 4-bit field of LinkADRReq).
    #[error("{key} = {value} is not a data rate (0..=15)")]
    DataRate {
        /// Which key.
        key: &'static str,
        /// Its value.
        value: u8,
    },
    /// The minimum is above the maximum.
    #[error("adr_min_dr = {min} is above adr_max_dr = {max}")]
    DataRateRange {
        /// `adr_min_dr`.
        min: u8,
        /// `adr_max_dr`.
        max: u8,
    },
    /// No ADR algorithm of that name is built in.
    #[error("default_adr_algorithm = {name:?} is not a known algorithm (known: {known})")]
    UnknownAlgorithm {
        /// The name given.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
    /// `max_mac_retries` above 15.
    #[error("max_mac_retries = {0} is above 15")]
    Retries(u8),
    /// `max_duty_cycle` above 15.
    #[error("max_duty_cycle = {0} does not fit DutyCycleReq (0..=15)")]
    DutyCycle(u8),
    /// A DlChannelReq frequency that cannot be sent (not a multiple of 100 Hz) or that
    /// lies outside the region's band.
    #[error("dl_channels: {frequency_hz} Hz cannot be used in {region} (outside the band or not a multiple of 100 Hz)")]
    DlFrequency {
        /// The region.
        region: RegionName,
        /// The frequency.
        frequency_hz: u32,
    },
}

impl MacConfig {
    /// Checks what the types cannot. `algorithms` are the ADR algorithm names available.
    pub fn validate<'a>(
        &self,
        algorithms: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), MacConfigError> {
        let m = self.adr_installation_margin_db;
        if !m.is_finite() || !(0.0..=30.0).contains(&m) {
            return Err(MacConfigError::InstallationMargin(m));
        }
        for (key, v) in [
            ("adr_min_dr", self.adr_min_dr),
            ("adr_max_dr", self.adr_max_dr),
        ] {
            if v > 15 {
                return Err(MacConfigError::DataRate { key, value: v });
            }
        }
        let (min, max) = (self.adr_min_dr, self.adr_max_dr);
        if min > max {
            return Err(MacConfigError::DataRateRange { min, max });
        }
        if self.max_mac_retries > 15 {
            return Err(MacConfigError::Retries(self.max_mac_retries));
        }
        if !algorithms
            .clone()
            .into_iter()
            .any(|a| a == self.default_adr_algorithm)
        {
            return Err(MacConfigError::UnknownAlgorithm {
                name: self.default_adr_algorithm.clone(),
                known: algorithms.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        if self.max_duty_cycle > 15 {
            return Err(MacConfigError::DutyCycle(self.max_duty_cycle));
        }
        for c in &self.dl_channels {
            for f in [c.uplink_frequency_hz, c.downlink_frequency_hz] {
                if f % 100 != 0 || f / 100 > 0x00ff_ffff {
                    return Err(MacConfigError::DlFrequency {
                        region: c.region,
                        frequency_hz: f,
                    });
                }
            }
        }
        Ok(())
    }
}

/// MAC and ADR settings of one device profile: the profile's `macSettings` JSON object
/// (camelCase keys). Every key is optional; an absent key takes the network's value.
/// Unknown keys are ignored so that a profile written for a newer version still loads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProfileMacSettings {
    /// ADR algorithm by name (see [`super::adr::AdrRegistry`]).
    pub adr_algorithm: Option<String>,
    /// Overrides `adr_installation_margin_db`.
    pub installation_margin_db: Option<f32>,
    /// Overrides `adr_min_dr`.
    pub adr_min_dr: Option<u8>,
    /// Overrides `adr_max_dr`.
    pub adr_max_dr: Option<u8>,
    /// LoRaWAN 1.1: ADR_ACK_LIMIT = 2^n to set with ADRParamSetupReq.
    pub adr_ack_limit_exp: Option<u8>,
    /// LoRaWAN 1.1: ADR_ACK_DELAY = 2^n to set with ADRParamSetupReq.
    pub adr_ack_delay_exp: Option<u8>,
    /// LoRaWAN 1.1: periodic rejoin after 2^(n+10) seconds (RejoinParamSetupReq).
    pub rejoin_max_time_n: Option<u8>,
    /// LoRaWAN 1.1: periodic rejoin after 2^(n+4) uplinks (RejoinParamSetupReq).
    pub rejoin_max_count_n: Option<u8>,
}

impl ProfileMacSettings {
    /// Checks the ranges the LoRaWAN fields allow; the error names the camelCase key
    /// as the API shows it. `algorithms` are the ADR algorithm names available.
    pub fn validate<'a>(
        &self,
        algorithms: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), String> {
        if let Some(name) = &self.adr_algorithm {
            if !algorithms.clone().into_iter().any(|a| a == name) {
                let known = algorithms.into_iter().collect::<Vec<_>>().join(", ");
                return Err(format!(
                    "macSettings.adrAlgorithm {name:?} is not a known algorithm (known: {known})"
                ));
            }
        }
        if let Some(m) = self.installation_margin_db {
            if !m.is_finite() || !(0.0..=30.0).contains(&m) {
                return Err(format!(
                    "macSettings.installationMarginDb = {m} is not between 0 and 30 dB"
                ));
            }
        }
        for (key, v) in [
            ("adrMinDr", self.adr_min_dr),
            ("adrMaxDr", self.adr_max_dr),
            ("adrAckLimitExp", self.adr_ack_limit_exp),
            ("adrAckDelayExp", self.adr_ack_delay_exp),
            ("rejoinMaxTimeN", self.rejoin_max_time_n),
            ("rejoinMaxCountN", self.rejoin_max_count_n),
        ] {
            if let Some(v) = v {
                if v > 15 {
                    return Err(format!("macSettings.{key} = {v} is above 15"));
                }
            }
        }
        if let (Some(min), Some(max)) = (self.adr_min_dr, self.adr_max_dr) {
            if min > max {
                return Err(format!(
                    "macSettings.adrMinDr = {min} is above macSettings.adrMaxDr = {max}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: [&str; 1] = ["default"];

    #[test]
    fn defaults_validate_and_round_trip() {
        let c = MacConfig::default();
        c.validate(KNOWN).unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<MacConfig>(&json).unwrap(), c);
        assert_eq!(c.adr_installation_margin_db, 10.0);
        assert_eq!(c.default_adr_algorithm, "default");
    }

    #[test]
    fn profile_settings_are_range_checked() {
        let ok: ProfileMacSettings =
            serde_json::from_str(r#"{"adrAlgorithm":"default","adrMinDr":1,"adrMaxDr":5}"#)
                .unwrap();
        ok.validate(KNOWN).unwrap();
        for (json, key) in [
            (r#"{"adrAlgorithm":"fast"}"#, "adrAlgorithm"),
            (r#"{"installationMarginDb":31}"#, "installationMarginDb"),
            (r#"{"adrMaxDr":16}"#, "adrMaxDr"),
            (r#"{"rejoinMaxCountN":16}"#, "rejoinMaxCountN"),
            (r#"{"adrMinDr":5,"adrMaxDr":3}"#, "adrMinDr"),
        ] {
            let s: ProfileMacSettings = serde_json::from_str(json).unwrap();
            let e = s.validate(KNOWN).unwrap_err();
            assert!(e.contains(key), "{json}: {e}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = serde_json::from_str::<MacConfig>(r#"{"adr_margin_db": 5}"#).unwrap_err();
        assert!(e.to_string().contains("adr_margin_db"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let bad = |f: &dyn Fn(&mut MacConfig)| {
            let mut c = MacConfig::default();
            f(&mut c);
            c.validate(KNOWN).unwrap_err().to_string()
        };
        assert!(bad(&|c| c.adr_installation_margin_db = f32::NAN).contains("margin"));
        assert!(bad(&|c| c.adr_installation_margin_db = -1.0).contains("margin"));
        assert!(bad(&|c| c.adr_max_dr = 16).contains("adr_max_dr"));
        assert!(bad(&|c| c.max_mac_retries = 16).contains("max_mac_retries"));
        assert!(bad(&|c| {
            c.adr_min_dr = 4;
            c.adr_max_dr = 2;
        })
        .contains("adr_min_dr = 4"));
        assert!(bad(&|c| c.default_adr_algorithm = "fancy".into()).contains("known: default"));
        assert!(bad(&|c| c.max_duty_cycle = 16).contains("max_duty_cycle"));
        assert!(bad(&|c| c.dl_channels = vec![DlChannelConfig {
            region: RegionName::Eu868,
            uplink_frequency_hz: 867_100_000,
            downlink_frequency_hz: 869_525_050,
        }])
        .contains("869525050"));
    }

    #[test]
    fn profile_settings_read_camel_case_and_ignore_unknown_keys() {
        let v = serde_json::json!({
            "adrAlgorithm": "custom",
            "installationMarginDb": 5,
            "adrMaxDr": 3,
            "somethingNewer": true
        });
        let s: ProfileMacSettings = serde_json::from_value(v).unwrap();
        assert_eq!(s.adr_algorithm.as_deref(), Some("custom"));
        assert_eq!(s.installation_margin_db, Some(5.0));
        assert_eq!(s.adr_max_dr, Some(3));
        assert_eq!(
            serde_json::from_value::<ProfileMacSettings>(serde_json::json!({})).unwrap(),
            ProfileMacSettings::default()
        );
        assert!(serde_json::from_value::<ProfileMacSettings>(
            serde_json::json!({"adrMaxDr": "fast"})
        )
        .is_err());
    }
}
