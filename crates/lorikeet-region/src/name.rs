//! Region names as used in configuration, device profiles and the API.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::RegionError;

/// The band plans Lorikeet implements. `Display` gives the canonical name
/// (`"EU868"`, `"AS923-2"`, …) and `FromStr` also accepts common aliases, so
/// names written for ChirpStack or The Things Stack load unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegionName {
    /// EU 863–870 MHz.
    Eu868,
    /// US 902–928 MHz.
    Us915,
    /// Australia 915–928 MHz.
    Au915,
    /// AS923 group 1 (AS923_FREQ_OFFSET 0 MHz).
    As923Group1,
    /// AS923 group 2 (offset −1.8 MHz).
    As923Group2,
    /// AS923 group 3 (offset −6.6 MHz).
    As923Group3,
    /// AS923 group 4 (offset −5.9 MHz).
    As923Group4,
    /// China 470–510 MHz (RP001 96+48 channel plan).
    Cn470,
    /// India 865–867 MHz.
    In865,
    /// Korea 920–923 MHz.
    Kr920,
    /// Russia 864–870 MHz.
    Ru864,
    /// EU 433 MHz.
    Eu433,
}

impl RegionName {
    /// Every implemented region, in a stable order.
    pub const ALL: [RegionName; 12] = [
        RegionName::Eu868,
        RegionName::Us915,
        RegionName::Au915,
        RegionName::As923Group1,
        RegionName::As923Group2,
        RegionName::As923Group3,
        RegionName::As923Group4,
        RegionName::Cn470,
        RegionName::In865,
        RegionName::Kr920,
        RegionName::Ru864,
        RegionName::Eu433,
    ];

    /// The canonical name, e.g. `"AS923-2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RegionName::Eu868 => "EU868",
            RegionName::Us915 => "US915",
            RegionName::Au915 => "AU915",
            RegionName::As923Group1 => "AS923",
            RegionName::As923Group2 => "AS923-2",
            RegionName::As923Group3 => "AS923-3",
            RegionName::As923Group4 => "AS923-4",
            RegionName::Cn470 => "CN470",
            RegionName::In865 => "IN865",
            RegionName::Kr920 => "KR920",
            RegionName::Ru864 => "RU864",
            RegionName::Eu433 => "EU433",
        }
    }
}

impl fmt::Display for RegionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RegionName {
    type Err = RegionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase().replace('_', "-");
        let name = match upper.as_str() {
            "EU868" | "EU-863-870" => RegionName::Eu868,
            "US915" | "US-902-928" => RegionName::Us915,
            "AU915" | "AU-915-928" => RegionName::Au915,
            "AS923" | "AS923-1" | "AS-923" | "AS-923-1" => RegionName::As923Group1,
            "AS923-2" | "AS-923-2" => RegionName::As923Group2,
            "AS923-3" | "AS-923-3" => RegionName::As923Group3,
            "AS923-4" | "AS-923-4" => RegionName::As923Group4,
            "CN470" | "CN-470-510" => RegionName::Cn470,
            "IN865" | "IN-865-867" => RegionName::In865,
            "KR920" | "KR-920-923" => RegionName::Kr920,
            "RU864" | "RU-864-870" => RegionName::Ru864,
            "EU433" | "EU-433" => RegionName::Eu433,
            _ => {
                return Err(RegionError::UnknownRegion {
                    name: s.to_string(),
                })
            }
        };
        Ok(name)
    }
}

impl Serialize for RegionName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RegionName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip_for_every_region() {
        for name in RegionName::ALL {
            assert_eq!(name.to_string().parse::<RegionName>(), Ok(name));
        }
    }

    #[test]
    fn aliases_from_other_servers_parse() {
        assert_eq!("AS923-1".parse(), Ok(RegionName::As923Group1));
        assert_eq!("AS923_2".parse(), Ok(RegionName::As923Group2));
        assert_eq!("as923-3".parse(), Ok(RegionName::As923Group3));
        assert_eq!("EU_863_870".parse(), Ok(RegionName::Eu868));
        assert_eq!("US_902_928".parse(), Ok(RegionName::Us915));
        assert_eq!("AS_923_4".parse(), Ok(RegionName::As923Group4));
    }

    #[test]
    fn unknown_name_is_a_typed_error() {
        assert_eq!(
            "XX123".parse::<RegionName>(),
            Err(RegionError::UnknownRegion {
                name: "XX123".into()
            })
        );
    }
}
