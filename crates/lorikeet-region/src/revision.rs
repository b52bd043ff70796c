//! The LoRaWAN Regional Parameters document revision a device implements.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::RegionError;

/// Regional-parameters revision. Devices keep the tables of the document they
/// were certified against (max payload sizes, TX power range, LR-FHSS data
/// rates), so the server must answer per revision. Ordered oldest first, so
/// `rev >= RegParamsRevision::Rp002V1_0_2` reads naturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegParamsRevision {
    /// LoRaWAN Regional Parameters v1.0.2 (revision A).
    Rp001V1_0_2,
    /// RP001 v1.0.2 revision B (LoRaWAN 1.0.2 devices).
    Rp001V1_0_2RevB,
    /// RP001 v1.0.3 revision A (LoRaWAN 1.0.3 devices).
    Rp001V1_0_3RevA,
    /// RP001 v1.1 revision A.
    Rp001V1_1RevA,
    /// RP001 v1.1 revision B (LoRaWAN 1.1 devices).
    Rp001V1_1RevB,
    /// RP002-1.0.0.
    Rp002V1_0_0,
    /// RP002-1.0.1.
    Rp002V1_0_1,
    /// RP002-1.0.2 (adds LR-FHSS data rates).
    Rp002V1_0_2,
    /// RP002-1.0.3.
    Rp002V1_0_3,
    /// RP002-1.0.4.
    Rp002V1_0_4,
}

impl RegParamsRevision {
    /// Every revision, oldest first.
    pub const ALL: [RegParamsRevision; 10] = [
        RegParamsRevision::Rp001V1_0_2,
        RegParamsRevision::Rp001V1_0_2RevB,
        RegParamsRevision::Rp001V1_0_3RevA,
        RegParamsRevision::Rp001V1_1RevA,
        RegParamsRevision::Rp001V1_1RevB,
        RegParamsRevision::Rp002V1_0_0,
        RegParamsRevision::Rp002V1_0_1,
        RegParamsRevision::Rp002V1_0_2,
        RegParamsRevision::Rp002V1_0_3,
        RegParamsRevision::Rp002V1_0_4,
    ];

    /// The newest revision we implement.
    pub const LATEST: RegParamsRevision = RegParamsRevision::Rp002V1_0_4;

    /// The canonical spelling used by the provisioning API (`regParamsRevision`).
    pub fn as_str(self) -> &'static str {
        match self {
            RegParamsRevision::Rp001V1_0_2 => "RP001-1.0.2",
            RegParamsRevision::Rp001V1_0_2RevB => "RP001-1.0.2revB",
            RegParamsRevision::Rp001V1_0_3RevA => "RP001-1.0.3revA",
            RegParamsRevision::Rp001V1_1RevA => "RP001-1.1revA",
            RegParamsRevision::Rp001V1_1RevB => "RP001-1.1revB",
            RegParamsRevision::Rp002V1_0_0 => "RP002-1.0.0",
            RegParamsRevision::Rp002V1_0_1 => "RP002-1.0.1",
            RegParamsRevision::Rp002V1_0_2 => "RP002-1.0.2",
            RegParamsRevision::Rp002V1_0_3 => "RP002-1.0.3",
            RegParamsRevision::Rp002V1_0_4 => "RP002-1.0.4",
        }
    }

    /// True for the RP002 family.
    pub fn is_rp002(self) -> bool {
        self >= RegParamsRevision::Rp002V1_0_0
    }
}

impl Default for RegParamsRevision {
    fn default() -> Self {
        RegParamsRevision::LATEST
    }
}

impl fmt::Display for RegParamsRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RegParamsRevision {
    type Err = RegionError;

    /// Accepts the canonical form case-insensitively, with `_` for `-` and an
    /// optional `rev` before the letter (`"RP001-1.0.2-revB"`, `"rp002_1.0.3"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .trim()
            .to_ascii_lowercase()
            .replace('_', "-")
            .replace("-rev", "rev");
        RegParamsRevision::ALL
            .into_iter()
            .find(|r| r.as_str().to_ascii_lowercase() == norm)
            .ok_or_else(|| RegionError::UnknownRevision {
                value: s.to_string(),
            })
    }
}

impl Serialize for RegParamsRevision {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RegParamsRevision {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_revision_round_trips_through_its_string() {
        for rev in RegParamsRevision::ALL {
            assert_eq!(rev.to_string().parse::<RegParamsRevision>(), Ok(rev));
        }
    }

    #[test]
    fn api_spellings_parse() {
        assert_eq!("RP002-1.0.3".parse(), Ok(RegParamsRevision::Rp002V1_0_3));
        assert_eq!(
            "RP001-1.0.2revB".parse(),
            Ok(RegParamsRevision::Rp001V1_0_2RevB)
        );
        assert_eq!(
            "rp001_1.1-revb".parse(),
            Ok(RegParamsRevision::Rp001V1_1RevB)
        );
    }

    #[test]
    fn unknown_revision_is_rejected() {
        assert!(matches!(
            "RP003-1.0.0".parse::<RegParamsRevision>(),
            Err(RegionError::UnknownRevision { .. })
        ));
    }

    #[test]
    fn revisions_are_ordered_oldest_first() {
        assert!(RegParamsRevision::Rp001V1_1RevB < RegParamsRevision::Rp002V1_0_0);
        assert!(RegParamsRevision::Rp002V1_0_2.is_rp002());
        assert!(!RegParamsRevision::Rp001V1_0_3RevA.is_rp002());
    }
}
