//! Identifiers and keys: `Eui64`, `DevAddr`, `NetId`, `DevNonce`, `JoinNonce`, `Aes128Key`.
//!
//! Textual forms are hex, most significant byte first (the way EUIs and keys are
//! printed on labels and in consoles); any case is accepted on input and lower
//! case is produced on output. Wire forms are little-endian, as LoRaWAN sends them;
//! use the `*_le` helpers when reading or writing frames.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Why a textual identifier or key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text has the wrong number of hex digits.
    #[error("{what} must be {expected} hex digits, got {got}")]
    Length {
        /// Which kind of value was being parsed.
        what: &'static str,
        /// Expected number of hex digits.
        expected: usize,
        /// Number of characters received.
        got: usize,
    },
    /// A character that is not a hex digit.
    #[error("{what} has a non-hex character {found:?} at position {position}")]
    NotHex {
        /// Which kind of value was being parsed.
        what: &'static str,
        /// Zero-based character position.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// The value parsed but does not fit the type's range.
    #[error("{what} {value:#x} is out of range (max {max:#x})")]
    OutOfRange {
        /// Which kind of value was being parsed.
        what: &'static str,
        /// The parsed value.
        value: u64,
        /// The largest allowed value.
        max: u64,
    },
}

/// Parses exactly `N` bytes of hex (2·N digits), naming `what` in errors.
pub(crate) fn parse_hex<const N: usize>(
    what: &'static str,
    s: &str,
) -> Result<[u8; N], ParseError> {
    let s = s.trim();
    let digits_len = s.chars().count();
    if digits_len != 2 * N {
        return Err(ParseError::Length {
            what,
            expected: 2 * N,
            got: digits_len,
        });
    }
    let mut out = [0u8; N];
    // Positions and characters in errors are counted in characters, so multi-byte
    // input is reported as typed.
    let mut digits = s.chars().enumerate().map(|(position, found)| {
        found
            .to_digit(16)
            // A hex digit is below 16, so the narrowing is exact.
            .map(|d| d as u8)
            .ok_or(ParseError::NotHex {
                what,
                position,
                found,
            })
    });
    // The length was checked above; running out still gives an error, not a panic.
    let short = ParseError::Length {
        what,
        expected: 2 * N,
        got: digits_len,
    };
    for slot in out.iter_mut() {
        let hi = digits.next().unwrap_or(Err(short.clone()))?;
        let lo = digits.next().unwrap_or(Err(short.clone()))?;
        *slot = (hi << 4) | lo;
    }
    Ok(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Implements Display/FromStr/serde-as-hex-string for a byte-array newtype.
macro_rules! hex_newtype {
    ($ty:ident, $n:expr, $what:expr) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($ty))?;
                write_hex(f, &self.0)?;
                write!(f, ")")
            }
        }
        impl FromStr for $ty {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex::<$n>($what, s).map($ty)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A 64-bit extended unique identifier (DevEUI, JoinEUI, gateway ID), MSB first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Eui64(pub [u8; 8]);
hex_newtype!(Eui64, 8, "EUI-64");

impl Eui64 {
    /// Builds from the little-endian byte order used inside LoRaWAN frames.
    pub fn from_le_bytes(mut b: [u8; 8]) -> Self {
        b.reverse();
        Eui64(b)
    }
    /// The little-endian byte order used inside LoRaWAN frames.
    pub fn to_le_bytes(self) -> [u8; 8] {
        let mut b = self.0;
        b.reverse();
        b
    }
    /// The EUI as a number (MSB first), e.g. for the Semtech UDP gateway header.
    pub fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }
    /// Builds from a number (MSB first).
    pub fn from_u64(v: u64) -> Self {
        Eui64(v.to_be_bytes())
    }
}

/// A 24-bit LoRa Alliance network identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NetId(pub [u8; 3]);
hex_newtype!(NetId, 3, "NetID");

/// Per NetID type (0..=7): (DevAddr prefix length, NwkID bits, NwkAddr bits).
/// From the LoRaWAN Backend Interfaces specification, section "DevAddr Assignment".
const NET_TYPE_LAYOUT: [(u32, u32, u32); 8] = [
    (1, 6, 25),
    (2, 6, 24),
    (3, 9, 20),
    (4, 11, 17),
    (5, 12, 15),
    (6, 13, 13),
    (7, 15, 10),
    (8, 17, 7),
];

impl NetId {
    /// The NetID as a 24-bit number.
    pub fn to_u32(self) -> u32 {
        u32::from_be_bytes([0, self.0[0], self.0[1], self.0[2]])
    }
    /// Builds from a number; values above 24 bits are rejected.
    pub fn from_u32(v: u32) -> Result<Self, ParseError> {
        if v > 0x00ff_ffff {
            return Err(ParseError::OutOfRange {
                what: "NetID",
                value: v.into(),
                max: 0x00ff_ffff,
            });
        }
        let b = v.to_be_bytes();
        Ok(NetId([b[1], b[2], b[3]]))
    }
    /// Builds from the 3-byte little-endian order used in JoinAccepts and RejoinRequests.
    pub fn from_le_bytes(mut b: [u8; 3]) -> Self {
        b.reverse();
        NetId(b)
    }
    /// The 3-byte little-endian order used in JoinAccepts and RejoinRequests.
    pub fn to_le_bytes(self) -> [u8; 3] {
        let mut b = self.0;
        b.reverse();
        b
    }
    /// The NetID type: its three most significant bits.
    pub fn net_type(self) -> u8 {
        (self.0[0] >> 5) & 0x07
    }
    /// The NwkID carried in DevAddrs of this network: the NetID's low bits.
    pub fn nwk_id(self) -> u32 {
        let (_, nwk_bits, _) = NET_TYPE_LAYOUT[self.net_type() as usize];
        self.to_u32() & ((1u32 << nwk_bits) - 1)
    }
    /// Number of NwkAddr bits a DevAddr of this network has free.
    pub fn nwk_addr_bits(self) -> u32 {
        NET_TYPE_LAYOUT[self.net_type() as usize].2
    }
    /// The fixed high part of every DevAddr of this network, and the mask that selects it.
    pub fn dev_addr_prefix(self) -> (u32, u32) {
        let t = self.net_type() as u32;
        let (prefix_len, nwk_bits, addr_bits) = NET_TYPE_LAYOUT[t as usize];
        // Type prefix: `t` ones followed by a zero, in `prefix_len` bits.
        let type_prefix = ((1u32 << prefix_len) - 2) & ((1u32 << prefix_len) - 1);
        let value = (type_prefix << (nwk_bits + addr_bits)) | (self.nwk_id() << addr_bits);
        let mask = !((1u64 << addr_bits) - 1) as u32;
        (value, mask)
    }
}

/// A 32-bit device address, MSB first (its textual and numeric form).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DevAddr(pub [u8; 4]);
hex_newtype!(DevAddr, 4, "DevAddr");

impl DevAddr {
    /// The address as a number.
    pub fn to_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }
    /// Builds from a number.
    pub fn from_u32(v: u32) -> Self {
        DevAddr(v.to_be_bytes())
    }
    /// Builds from the little-endian order used in frames.
    pub fn from_le_bytes(b: [u8; 4]) -> Self {
        DevAddr::from_u32(u32::from_le_bytes(b))
    }
    /// The little-endian order used in frames.
    pub fn to_le_bytes(self) -> [u8; 4] {
        self.to_u32().to_le_bytes()
    }
    /// Whether this address lies in `net_id`'s address block.
    pub fn is_net_id(self, net_id: NetId) -> bool {
        let (prefix, mask) = net_id.dev_addr_prefix();
        self.to_u32() & mask == prefix
    }
    /// The address in `net_id`'s block whose NwkAddr part is `nwk_addr` (extra high bits are dropped).
    pub fn from_net_id(net_id: NetId, nwk_addr: u32) -> Self {
        let (prefix, mask) = net_id.dev_addr_prefix();
        DevAddr::from_u32(prefix | (nwk_addr & !mask))
    }
    /// The NwkAddr part of this address, assuming it belongs to `net_id`.
    pub fn nwk_addr(self, net_id: NetId) -> u32 {
        let (_, mask) = net_id.dev_addr_prefix();
        self.to_u32() & !mask
    }
}

/// The 16-bit nonce a device sends in a JoinRequest.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug, Serialize, Deserialize,
)]
pub struct DevNonce(pub u16);

impl DevNonce {
    /// Builds from the little-endian wire order.
    pub fn from_le_bytes(b: [u8; 2]) -> Self {
        DevNonce(u16::from_le_bytes(b))
    }
    /// The little-endian wire order.
    pub fn to_le_bytes(self) -> [u8; 2] {
        self.0.to_le_bytes()
    }
}

/// The 24-bit nonce (AppNonce in 1.0) a join server puts in a JoinAccept.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug, Serialize, Deserialize,
)]
pub struct JoinNonce(u32);

impl JoinNonce {
    /// Largest JoinNonce (24 bits).
    pub const MAX: u32 = 0x00ff_ffff;
    /// Builds a JoinNonce; values above 24 bits are rejected.
    pub fn new(v: u32) -> Result<Self, ParseError> {
        if v > Self::MAX {
            return Err(ParseError::OutOfRange {
                what: "JoinNonce",
                value: v.into(),
                max: Self::MAX.into(),
            });
        }
        Ok(JoinNonce(v))
    }
    /// The value.
    pub fn get(self) -> u32 {
        self.0
    }
    /// Builds from the 3-byte little-endian wire order.
    pub fn from_le_bytes(b: [u8; 3]) -> Self {
        JoinNonce(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }
    /// The 3-byte little-endian wire order.
    pub fn to_le_bytes(self) -> [u8; 3] {
        let b = self.0.to_le_bytes();
        [b[0], b[1], b[2]]
    }
}

/// An AES-128 key. Never printed (redacted `Debug`, no `Display`), never serialised
/// (no `Serialize`: a key reaches JSON only through [`ExposedKey`], at the few places
/// that must write one), wiped on drop, compared in constant time. It deserialises
/// from hex (API bodies, configuration).
#[derive(Clone, Zeroize, ZeroizeOnDrop, Default)]
pub struct Aes128Key([u8; 16]);

impl Aes128Key {
    /// Wraps raw key bytes (MSB first, as printed).
    pub fn from_bytes(b: [u8; 16]) -> Self {
        Aes128Key(b)
    }
    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
    /// Lower-case hex of the key, for the few places that must reveal it (a client
    /// sending a key to the API, test vectors).
    pub fn expose_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Parses 32 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, ParseError> {
        parse_hex::<16>("AES-128 key", s).map(Aes128Key)
    }
}

impl fmt::Debug for Aes128Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Aes128Key(<redacted>)")
    }
}

impl PartialEq for Aes128Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for Aes128Key {}

impl FromStr for Aes128Key {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Aes128Key::from_hex(s)
    }
}

/// A key that is to be written out, in hex: `Aes128Key` has no `Serialize`, so
/// serialising key material is always spelled out at the call site
/// (`ExposedKey(&key)`, or `#[serde(serialize_with = "ExposedKey::serialize_key")]`).
#[derive(Debug, Clone, Copy)]
pub struct ExposedKey<'a>(pub &'a Aes128Key);

impl ExposedKey<'_> {
    /// For `#[serde(serialize_with = ...)]` on an `Aes128Key` field.
    pub fn serialize_key<S: Serializer>(key: &Aes128Key, s: S) -> Result<S::Ok, S::Error> {
        ExposedKey(key).serialize(s)
    }
}

impl Serialize for ExposedKey<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.expose_hex())
    }
}

impl<'de> Deserialize<'de> for Aes128Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Aes128Key::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eui_parses_any_case_and_prints_lower() {
        let e: Eui64 = "0102030405ABcdef".parse().unwrap();
        assert_eq!(e.to_string(), "0102030405abcdef");
        assert_eq!(e.to_le_bytes(), [0xef, 0xcd, 0xab, 5, 4, 3, 2, 1]);
        assert_eq!(Eui64::from_le_bytes(e.to_le_bytes()), e);
        assert_eq!(Eui64::from_u64(e.to_u64()), e);
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        assert_eq!(
            "0102".parse::<Eui64>().unwrap_err(),
            ParseError::Length {
                what: "EUI-64",
                expected: 16,
                got: 4
            }
        );
        let e = "01020304050607zz".parse::<Eui64>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "EUI-64 has a non-hex character 'z' at position 14"
        );
        // Multi-byte characters must not panic on slicing, and are reported as typed.
        assert!("ééééééééé".parse::<DevAddr>().is_err());
        assert_eq!(
            "0102030é".parse::<DevAddr>().unwrap_err(),
            ParseError::NotHex {
                what: "DevAddr",
                position: 7,
                found: 'é'
            }
        );
        assert!("éééé".parse::<DevAddr>().is_err());
        assert!("éééééééé".parse::<DevAddr>().is_err());
        assert!(NetId::from_u32(0x0100_0000).is_err());
        assert!(JoinNonce::new(0x0100_0000).is_err());
    }

    #[test]
    fn serde_as_hex_strings() {
        let d: DevAddr = serde_json::from_str("\"26011BDA\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"26011bda\"");
        assert_eq!(d.to_le_bytes(), [0xda, 0x1b, 0x01, 0x26]);
        let k: Aes128Key = serde_json::from_str("\"2B7E151628AED2A6ABF7158809CF4F3C\"").unwrap();
        assert_eq!(k.expose_hex(), "2b7e151628aed2a6abf7158809cf4f3c");
        assert!(serde_json::from_str::<Aes128Key>("\"2b7e\"").is_err());
    }

    #[test]
    fn keys_do_not_print_themselves() {
        let k = Aes128Key::from_bytes([0xab; 16]);
        let shown = format!("{k:?}");
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
    }

    /// `Probe<T>` says whether `T: Serialize` by method resolution: the inherent-like
    /// impl for `Probe<T>` wins when it applies, else the one for `&Probe<T>`.
    struct Probe<T>(std::marker::PhantomData<T>);
    trait Serializes {
        fn serializes(&self) -> bool {
            true
        }
    }
    impl<T: Serialize> Serializes for Probe<T> {}
    trait DoesNotSerialize {
        fn serializes(&self) -> bool {
            false
        }
    }
    impl<T> DoesNotSerialize for &Probe<T> {}

    #[test]
    // The probe is always called on `&Probe<T>`: that borrow is the trick.
    #[allow(clippy::needless_borrow)]
    fn keys_are_not_serialised_unless_exposed_on_purpose() {
        assert!(!(&Probe::<Aes128Key>(std::marker::PhantomData)).serializes());
        assert!(!(&Probe::<Option<Aes128Key>>(std::marker::PhantomData)).serializes());
        // The probe does tell a serialisable type.
        assert!((&Probe::<DevAddr>(std::marker::PhantomData)).serializes());
        let k = Aes128Key::from_bytes([0xab; 16]);
        assert_eq!(
            serde_json::to_string(&ExposedKey(&k)).unwrap(),
            format!("\"{}\"", "ab".repeat(16))
        );
        #[derive(Serialize)]
        struct Explicit {
            #[serde(serialize_with = "ExposedKey::serialize_key")]
            key: Aes128Key,
        }
        assert_eq!(
            serde_json::to_value(Explicit { key: k }).unwrap()["key"],
            "ab".repeat(16)
        );
    }

    #[test]
    fn net_id_type_0_dev_addr_block() {
        // NetID 000013 (type 0, NwkID 0x13): DevAddr = 0 | 010011 | 25-bit NwkAddr -> 0x26000000 block.
        let n: NetId = "000013".parse().unwrap();
        assert_eq!(n.net_type(), 0);
        assert_eq!(n.nwk_id(), 0x13);
        assert_eq!(n.dev_addr_prefix(), (0x2600_0000, 0xfe00_0000));
        let a = DevAddr::from_net_id(n, 0x11bda);
        assert_eq!(a.to_string(), "26011bda");
        assert!(a.is_net_id(n));
        assert_eq!(a.nwk_addr(n), 0x11bda);
        assert!(!DevAddr::from_u32(0x2400_0000).is_net_id(n));
    }

    #[test]
    fn net_id_types_1_to_7_prefixes() {
        // Type 1, NwkID 6 LSBs, prefix '10'.
        let n = NetId::from_u32(0x20_0003).unwrap();
        assert_eq!(n.net_type(), 1);
        assert_eq!(n.dev_addr_prefix(), (0b10 << 30 | 3 << 24, 0xff00_0000));
        // Type 3, NwkID 11 bits, prefix '1110'.
        let n = NetId::from_u32(0x60_00ff).unwrap();
        assert_eq!(n.net_type(), 3);
        assert_eq!(n.nwk_id(), 0xff);
        assert_eq!(n.dev_addr_prefix().0, 0b1110 << 28 | 0xff << 17);
        // Type 7: prefix '11111110', NwkID 17 bits, 7 address bits.
        let n = NetId::from_u32(0xe0_0001).unwrap();
        assert_eq!(n.net_type(), 7);
        assert_eq!(n.nwk_addr_bits(), 7);
        let (p, m) = n.dev_addr_prefix();
        assert_eq!(p, 0xfe00_0000 | 1 << 7);
        assert_eq!(m, 0xffff_ff80);
        for t in 0..8u32 {
            let n = NetId::from_u32(t << 21 | 0x5).unwrap();
            let a = DevAddr::from_net_id(n, u32::MAX);
            assert!(a.is_net_id(n), "type {t}");
        }
    }

    #[test]
    fn nonces_wire_order() {
        assert_eq!(DevNonce::from_le_bytes([0x34, 0x12]).0, 0x1234);
        let j = JoinNonce::new(0x123456).unwrap();
        assert_eq!(j.to_le_bytes(), [0x56, 0x34, 0x12]);
        assert_eq!(JoinNonce::from_le_bytes(j.to_le_bytes()), j);
    }
}
