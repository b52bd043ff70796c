//! PHYPayload framing for every message type: `MHDR | MACPayload | MIC`.
//!
//! Decoding is strict so that a decoded frame always re-encodes to exactly the
//! bytes that were received: MICs are computed over the re-encoded bytes, so any
//! information a decoder dropped would silently break them. That is why RFU bits of
//! the MHDR, a major version other than LoRaWAN R1, and payloads of the wrong
//! length are rejected, and why FCtrl keeps every bit (including the downlink RFU
//! bit) and FOpts / FRMPayload stay raw bytes (possibly encrypted).
//!
//! Byte layouts follow LoRaWAN 1.0.4 §4 and LoRaWAN 1.1 §4 and §6.2. All
//! multi-byte fields are little-endian on the wire.

use crate::reader::Reader;
use crate::types::{DevAddr, DevNonce, Eui64, JoinNonce, NetId};

#[cfg(test)]
mod tests;

/// Largest PHYPayload a LoRa radio carries (the B0 block's length byte is one octet too).
pub const MAX_PHY_PAYLOAD_LEN: usize = 255;
/// Length of the message integrity code at the end of every frame.
pub const MIC_LEN: usize = 4;
/// FOptsLen is four bits: at most 15 bytes of MAC commands ride in the header.
pub const MAX_F_OPTS_LEN: usize = 15;
/// MHDR + DevAddr + FCtrl + FCnt + MIC: the shortest possible data frame.
pub const MIN_DATA_FRAME_LEN: usize = 1 + 7 + MIC_LEN;
/// A JoinRequest is always 23 bytes.
pub const JOIN_REQUEST_LEN: usize = 23;
/// A JoinAccept is 17 bytes, or 33 with a CFList.
pub const JOIN_ACCEPT_LENS: [usize; 2] = [17, 33];
/// Rejoin types 0 and 2 are 19 bytes.
pub const REJOIN_REQUEST_02_LEN: usize = 19;
/// Rejoin type 1 is 24 bytes.
pub const REJOIN_REQUEST_1_LEN: usize = 24;

/// Why bytes are not a valid PHYPayload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the smallest frame of this type (or than any frame, 5 bytes).
    #[error("frame of {got} bytes is too short (a {m_type:?} frame needs at least {min})")]
    TooShort {
        /// The message type, when the MHDR could be read.
        m_type: Option<MType>,
        /// The minimum length in bytes.
        min: usize,
        /// The received length in bytes.
        got: usize,
    },
    /// More bytes than a LoRa PHYPayload can have.
    #[error("frame of {got} bytes is longer than the maximum {max}")]
    TooLong {
        /// The maximum length in bytes.
        max: usize,
        /// The received length in bytes.
        got: usize,
    },
    /// The MHDR's reserved bits 4..2 are not zero.
    #[error("MHDR {mhdr:#04x} has reserved bits set")]
    MHdrRfu {
        /// The MHDR byte.
        mhdr: u8,
    },
    /// The major version is not LoRaWAN R1 (0).
    #[error("unsupported major version {major}")]
    UnsupportedMajor {
        /// The major version bits.
        major: u8,
    },
    /// A fixed-size message type with the wrong length.
    #[error("{m_type:?} frame of {got} bytes (expected {expected:?})")]
    WrongLength {
        /// The message type.
        m_type: MType,
        /// The allowed total lengths in bytes, MHDR and MIC included.
        expected: &'static [usize],
        /// The received length in bytes.
        got: usize,
    },
    /// FOptsLen points past the end of the frame.
    #[error("FOptsLen {f_opts_len} but only {available} bytes before the MIC")]
    FOptsBeyondFrame {
        /// The FOptsLen field.
        f_opts_len: usize,
        /// Bytes available between FCnt and the MIC.
        available: usize,
    },
    /// FPort 0 (MAC commands in FRMPayload) together with MAC commands in FOpts.
    #[error("FPort 0 with {f_opts_len} bytes of FOpts")]
    FOptsWithFPortZero {
        /// The FOptsLen field.
        f_opts_len: usize,
    },
    /// A RejoinRequest of an undefined type.
    #[error("unknown rejoin type {rejoin_type}")]
    UnknownRejoinType {
        /// The rejoin type byte.
        rejoin_type: u8,
    },
}

/// Why a frame (or part of one) cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The MHDR's message type does not match the payload variant.
    #[error("MHDR message type {m_type:?} does not fit a {payload} payload")]
    MTypeMismatch {
        /// The MHDR's message type.
        m_type: MType,
        /// The payload variant.
        payload: &'static str,
    },
    /// Only major version 0 (LoRaWAN R1) exists.
    #[error("unsupported major version {major}")]
    UnsupportedMajor {
        /// The major version.
        major: u8,
    },
    /// More FOpts than FOptsLen's four bits can describe.
    #[error("{len} bytes of FOpts (at most 15)")]
    FOptsTooLong {
        /// The FOpts length in bytes.
        len: usize,
    },
    /// FRMPayload bytes without an FPort cannot be told apart on the wire.
    #[error("{len} bytes of FRMPayload without an FPort")]
    FrmPayloadWithoutFPort {
        /// The FRMPayload length in bytes.
        len: usize,
    },
    /// FPort 0 carries MAC commands in FRMPayload, so FOpts must be empty.
    #[error("FPort 0 with {f_opts_len} bytes of FOpts")]
    FOptsWithFPortZero {
        /// The FOpts length in bytes.
        f_opts_len: usize,
    },
    /// The whole frame would exceed the PHYPayload maximum.
    #[error("frame of {got} bytes is longer than the maximum {max}")]
    TooLong {
        /// The maximum length in bytes.
        max: usize,
        /// The length the frame would have.
        got: usize,
    },
    /// A numeric field does not fit its bits on the wire.
    #[error("{field} = {value} does not fit (max {max})")]
    FieldOutOfRange {
        /// The field name.
        field: &'static str,
        /// The given value.
        value: u32,
        /// The largest value that fits.
        max: u32,
    },
}

/// Direction of a frame, as it enters the crypto blocks (Dir = 0 up, 1 down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Device to network.
    Uplink,
    /// Network to device.
    Downlink,
}

impl Direction {
    /// The Dir byte of the B0 and A_i blocks.
    pub fn dir_byte(self) -> u8 {
        match self {
            Direction::Uplink => 0,
            Direction::Downlink => 1,
        }
    }
}

/// The message type: MHDR bits 7..5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MType {
    /// 000: JoinRequest.
    JoinRequest,
    /// 001: JoinAccept.
    JoinAccept,
    /// 010: Unconfirmed Data Up.
    UnconfirmedDataUp,
    /// 011: Unconfirmed Data Down.
    UnconfirmedDataDown,
    /// 100: Confirmed Data Up.
    ConfirmedDataUp,
    /// 101: Confirmed Data Down.
    ConfirmedDataDown,
    /// 110: RejoinRequest (LoRaWAN 1.1; RFU in 1.0).
    RejoinRequest,
    /// 111: Proprietary.
    Proprietary,
}

impl MType {
    /// Decodes the three MType bits (only the low three bits of `bits` are used).
    pub fn from_bits(bits: u8) -> Self {
        match bits & 0x07 {
            0 => MType::JoinRequest,
            1 => MType::JoinAccept,
            2 => MType::UnconfirmedDataUp,
            3 => MType::UnconfirmedDataDown,
            4 => MType::ConfirmedDataUp,
            5 => MType::ConfirmedDataDown,
            6 => MType::RejoinRequest,
            _ => MType::Proprietary,
        }
    }

    /// The three MType bits.
    pub fn bits(self) -> u8 {
        match self {
            MType::JoinRequest => 0,
            MType::JoinAccept => 1,
            MType::UnconfirmedDataUp => 2,
            MType::UnconfirmedDataDown => 3,
            MType::ConfirmedDataUp => 4,
            MType::ConfirmedDataDown => 5,
            MType::RejoinRequest => 6,
            MType::Proprietary => 7,
        }
    }

    /// Which way the frame travels; `None` for proprietary frames, which can go either way.
    pub fn direction(self) -> Option<Direction> {
        match self {
            MType::JoinRequest
            | MType::RejoinRequest
            | MType::UnconfirmedDataUp
            | MType::ConfirmedDataUp => Some(Direction::Uplink),
            MType::JoinAccept | MType::UnconfirmedDataDown | MType::ConfirmedDataDown => {
                Some(Direction::Downlink)
            }
            MType::Proprietary => None,
        }
    }

    /// Whether this is one of the four data message types.
    pub fn is_data(self) -> bool {
        matches!(
            self,
            MType::UnconfirmedDataUp
                | MType::UnconfirmedDataDown
                | MType::ConfirmedDataUp
                | MType::ConfirmedDataDown
        )
    }

    /// Whether this is a confirmed data frame (the receiver must acknowledge it).
    pub fn is_confirmed(self) -> bool {
        matches!(self, MType::ConfirmedDataUp | MType::ConfirmedDataDown)
    }

    /// The data message type for a direction and confirmation.
    pub fn data(direction: Direction, confirmed: bool) -> Self {
        match (direction, confirmed) {
            (Direction::Uplink, false) => MType::UnconfirmedDataUp,
            (Direction::Uplink, true) => MType::ConfirmedDataUp,
            (Direction::Downlink, false) => MType::UnconfirmedDataDown,
            (Direction::Downlink, true) => MType::ConfirmedDataDown,
        }
    }
}

/// The MAC header: message type and major version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MHdr {
    /// The message type.
    pub m_type: MType,
    /// The major version; only 0 (LoRaWAN R1) is defined.
    pub major: u8,
}

impl MHdr {
    /// An MHDR for LoRaWAN R1.
    pub fn new(m_type: MType) -> Self {
        MHdr { m_type, major: 0 }
    }

    /// Decodes the MHDR byte, rejecting RFU bits and unknown major versions.
    pub fn from_byte(b: u8) -> Result<Self, DecodeError> {
        if b & 0x1c != 0 {
            return Err(DecodeError::MHdrRfu { mhdr: b });
        }
        let major = b & 0x03;
        if major != 0 {
            return Err(DecodeError::UnsupportedMajor { major });
        }
        Ok(MHdr {
            m_type: MType::from_bits(b >> 5),
            major,
        })
    }

    /// The MHDR byte.
    pub fn to_byte(self) -> Result<u8, EncodeError> {
        if self.major != 0 {
            return Err(EncodeError::UnsupportedMajor { major: self.major });
        }
        Ok(self.m_type.bits() << 5)
    }
}

/// Frame control bits (FOptsLen is derived from the FOpts length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FCtrl {
    /// Bit 7: adaptive data rate.
    pub adr: bool,
    /// Bit 6: ADRACKReq on uplinks; RFU on downlinks (kept so frames round-trip).
    pub adr_ack_req: bool,
    /// Bit 5: acknowledges the last confirmed frame.
    pub ack: bool,
    /// Bit 4: ClassB on uplinks, FPending on downlinks.
    pub f_pending_or_class_b: bool,
}

impl FCtrl {
    /// Decodes the upper four bits of the FCtrl byte.
    pub fn from_byte(b: u8) -> Self {
        FCtrl {
            adr: b & 0x80 != 0,
            adr_ack_req: b & 0x40 != 0,
            ack: b & 0x20 != 0,
            f_pending_or_class_b: b & 0x10 != 0,
        }
    }

    /// The FCtrl byte with the given FOptsLen (low four bits).
    pub fn to_byte(self, f_opts_len: u8) -> u8 {
        u8::from(self.adr) << 7
            | u8::from(self.adr_ack_req) << 6
            | u8::from(self.ack) << 5
            | u8::from(self.f_pending_or_class_b) << 4
            | (f_opts_len & 0x0f)
    }
}

/// The frame header of a data frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FHdr {
    /// The device address.
    pub dev_addr: DevAddr,
    /// Frame control bits.
    pub f_ctrl: FCtrl,
    /// The low 16 bits of the frame counter (see `fcnt` for the full value).
    pub f_cnt: u16,
    /// MAC commands piggybacked in the header, as on the wire (encrypted in 1.1).
    pub f_opts: Vec<u8>,
}

/// A data frame's MACPayload: `FHDR | FPort | FRMPayload`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataPayload {
    /// The frame header.
    pub fhdr: FHdr,
    /// The port; absent when the frame carries no FRMPayload. 0 means MAC commands.
    pub f_port: Option<u8>,
    /// The payload as on the wire (encrypted). Must be empty when `f_port` is `None`.
    pub frm_payload: Vec<u8>,
}

/// A JoinRequest's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JoinRequestPayload {
    /// JoinEUI (AppEUI in LoRaWAN 1.0).
    pub join_eui: Eui64,
    /// The device's EUI.
    pub dev_eui: Eui64,
    /// The device nonce.
    pub dev_nonce: DevNonce,
}

/// A RejoinRequest's fields (LoRaWAN 1.1 §6.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejoinRequestPayload {
    /// Type 0: keep the DevAddr, reset the session context (MIC with SNwkSIntKey).
    Type0 {
        /// The network the device is in.
        net_id: NetId,
        /// The device's EUI.
        dev_eui: Eui64,
        /// Rejoin type 0/2 counter.
        rj_count0: u16,
    },
    /// Type 1: restore a lost session, like a JoinRequest (MIC with JSIntKey).
    Type1 {
        /// The join server.
        join_eui: Eui64,
        /// The device's EUI.
        dev_eui: Eui64,
        /// Rejoin type 1 counter.
        rj_count1: u16,
    },
    /// Type 2: rekey and renegotiate radio parameters (MIC with SNwkSIntKey).
    Type2 {
        /// The network the device is in.
        net_id: NetId,
        /// The device's EUI.
        dev_eui: Eui64,
        /// Rejoin type 0/2 counter.
        rj_count0: u16,
    },
}

impl RejoinRequestPayload {
    /// The rejoin type byte (0, 1 or 2).
    pub fn rejoin_type(&self) -> u8 {
        match self {
            RejoinRequestPayload::Type0 { .. } => 0,
            RejoinRequestPayload::Type1 { .. } => 1,
            RejoinRequestPayload::Type2 { .. } => 2,
        }
    }

    /// The device's EUI.
    pub fn dev_eui(&self) -> Eui64 {
        match *self {
            RejoinRequestPayload::Type0 { dev_eui, .. }
            | RejoinRequestPayload::Type1 { dev_eui, .. }
            | RejoinRequestPayload::Type2 { dev_eui, .. } => dev_eui,
        }
    }

    /// The counter (RJcount0 or RJcount1), which stands in for DevNonce in key derivation.
    pub fn rj_count(&self) -> u16 {
        match *self {
            RejoinRequestPayload::Type0 { rj_count0, .. }
            | RejoinRequestPayload::Type2 { rj_count0, .. } => rj_count0,
            RejoinRequestPayload::Type1 { rj_count1, .. } => rj_count1,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.rejoin_type());
        match *self {
            RejoinRequestPayload::Type0 {
                net_id,
                dev_eui,
                rj_count0,
            }
            | RejoinRequestPayload::Type2 {
                net_id,
                dev_eui,
                rj_count0,
            } => {
                out.extend_from_slice(&net_id.to_le_bytes());
                out.extend_from_slice(&dev_eui.to_le_bytes());
                out.extend_from_slice(&rj_count0.to_le_bytes());
            }
            RejoinRequestPayload::Type1 {
                join_eui,
                dev_eui,
                rj_count1,
            } => {
                out.extend_from_slice(&join_eui.to_le_bytes());
                out.extend_from_slice(&dev_eui.to_le_bytes());
                out.extend_from_slice(&rj_count1.to_le_bytes());
            }
        }
    }
}

/// A JoinAccept as it travels: encrypted. `crypto::decrypt_join_accept` turns it
/// into a [`JoinAcceptPayload`].
///
/// It holds the encrypted bytes between the MHDR and the last four bytes of the
/// frame: 12 bytes, or 28 with a CFList. The last four encrypted bytes sit in
/// [`PhyPayload::mic`] (the MIC is encrypted together with the payload), so the
/// frame is `MHDR | bytes | mic` exactly as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncryptedJoinAccept(Vec<u8>);

impl EncryptedJoinAccept {
    /// Length without a CFList.
    pub const LEN: usize = 12;
    /// Length with a CFList.
    pub const LEN_WITH_CF_LIST: usize = 28;

    /// Wraps encrypted bytes; only 12 or 28 bytes are valid.
    pub fn new(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        if bytes.len() != Self::LEN && bytes.len() != Self::LEN_WITH_CF_LIST {
            return Err(DecodeError::WrongLength {
                m_type: MType::JoinAccept,
                expected: &JOIN_ACCEPT_LENS,
                got: bytes.len() + 1 + MIC_LEN,
            });
        }
        Ok(EncryptedJoinAccept(bytes))
    }

    /// The encrypted bytes (without the four that sit in the MIC position).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the JoinAccept carries a CFList.
    pub fn has_cf_list(&self) -> bool {
        self.0.len() == Self::LEN_WITH_CF_LIST
    }
}

/// DLSettings of a JoinAccept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DlSettings {
    /// Bit 7: set by a LoRaWAN 1.1 network; selects the 1.1 MIC and key derivation.
    pub opt_neg: bool,
    /// Bits 6..4: RX1 data rate offset (0..=7).
    pub rx1_dr_offset: u8,
    /// Bits 3..0: RX2 data rate (0..=15).
    pub rx2_dr: u8,
}

impl DlSettings {
    /// Decodes the DLSettings byte.
    pub fn from_byte(b: u8) -> Self {
        DlSettings {
            opt_neg: b & 0x80 != 0,
            rx1_dr_offset: (b >> 4) & 0x07,
            rx2_dr: b & 0x0f,
        }
    }

    /// The DLSettings byte.
    pub fn to_byte(self) -> Result<u8, EncodeError> {
        check_range("rx1_dr_offset", self.rx1_dr_offset.into(), 7)?;
        check_range("rx2_dr", self.rx2_dr.into(), 15)?;
        Ok(u8::from(self.opt_neg) << 7 | self.rx1_dr_offset << 4 | self.rx2_dr)
    }
}

pub(crate) fn check_range(field: &'static str, value: u32, max: u32) -> Result<(), EncodeError> {
    if value > max {
        return Err(EncodeError::FieldOutOfRange { field, value, max });
    }
    Ok(())
}

/// A decrypted JoinAccept's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JoinAcceptPayload {
    /// JoinNonce (AppNonce in LoRaWAN 1.0).
    pub join_nonce: JoinNonce,
    /// The network the device joined.
    pub home_net_id: NetId,
    /// The device's new address.
    pub dev_addr: DevAddr,
    /// Downlink settings.
    pub dl_settings: DlSettings,
    /// The RxDelay byte: bits 3..0 are the RX1 delay in seconds (0 means 1 s), bits 7..4 RFU.
    pub rx_delay: u8,
    /// The 16-byte CFList, if any (its meaning depends on the region).
    pub cf_list: Option<[u8; 16]>,
}

impl JoinAcceptPayload {
    /// Plaintext length without a CFList.
    pub const LEN: usize = 12;

    /// The RX1 delay in seconds (RxDelay 0 means 1 s).
    pub fn rx1_delay_seconds(&self) -> u8 {
        (self.rx_delay & 0x0f).max(1)
    }

    /// Decodes the 12 or 28 plaintext bytes (`JoinNonce | NetID | DevAddr | DLSettings | RxDelay | CFList`).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let wrong = || DecodeError::WrongLength {
            m_type: MType::JoinAccept,
            expected: &JOIN_ACCEPT_LENS,
            got: bytes.len() + 1 + MIC_LEN,
        };
        if bytes.len() != Self::LEN && bytes.len() != Self::LEN + 16 {
            return Err(wrong());
        }
        let mut r = Reader::new(bytes);
        let join_nonce = JoinNonce::from_le_bytes(r.array().ok_or_else(wrong)?);
        let home_net_id = NetId::from_le_bytes(r.array().ok_or_else(wrong)?);
        let dev_addr = DevAddr::from_le_bytes(r.array().ok_or_else(wrong)?);
        let dl_settings = DlSettings::from_byte(r.u8().ok_or_else(wrong)?);
        let rx_delay = r.u8().ok_or_else(wrong)?;
        let cf_list = match r.remaining() {
            0 => None,
            _ => Some(r.array::<16>().ok_or_else(wrong)?),
        };
        Ok(JoinAcceptPayload {
            join_nonce,
            home_net_id,
            dev_addr,
            dl_settings,
            rx_delay,
            cf_list,
        })
    }

    /// The 12 or 28 plaintext bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(Self::LEN + 16);
        out.extend_from_slice(&self.join_nonce.to_le_bytes());
        out.extend_from_slice(&self.home_net_id.to_le_bytes());
        out.extend_from_slice(&self.dev_addr.to_le_bytes());
        out.push(self.dl_settings.to_byte()?);
        out.push(self.rx_delay);
        if let Some(cf) = &self.cf_list {
            out.extend_from_slice(cf);
        }
        Ok(out)
    }
}

/// The MACPayload of a frame, by message type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MacPayload {
    /// A JoinRequest.
    JoinRequest(JoinRequestPayload),
    /// A JoinAccept, still encrypted.
    JoinAccept(EncryptedJoinAccept),
    /// A RejoinRequest of type 0, 1 or 2.
    RejoinRequest(RejoinRequestPayload),
    /// Any of the four data message types.
    Data(DataPayload),
    /// Proprietary bytes between the MHDR and the last four bytes. LoRaWAN defines no
    /// MIC for proprietary frames; the last four bytes go to [`PhyPayload::mic`] only
    /// so that every frame has the same shape and re-encodes exactly.
    Proprietary(Vec<u8>),
}

impl MacPayload {
    fn name(&self) -> &'static str {
        match self {
            MacPayload::JoinRequest(_) => "JoinRequest",
            MacPayload::JoinAccept(_) => "JoinAccept",
            MacPayload::RejoinRequest(_) => "RejoinRequest",
            MacPayload::Data(_) => "data",
            MacPayload::Proprietary(_) => "Proprietary",
        }
    }

    fn fits(&self, m_type: MType) -> bool {
        match self {
            MacPayload::JoinRequest(_) => m_type == MType::JoinRequest,
            MacPayload::JoinAccept(_) => m_type == MType::JoinAccept,
            MacPayload::RejoinRequest(_) => m_type == MType::RejoinRequest,
            MacPayload::Data(_) => m_type.is_data(),
            MacPayload::Proprietary(_) => m_type == MType::Proprietary,
        }
    }
}

/// A whole LoRaWAN frame: `MHDR | MACPayload | MIC`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhyPayload {
    /// The MAC header.
    pub mhdr: MHdr,
    /// The payload; its variant must match `mhdr.m_type`.
    pub payload: MacPayload,
    /// The last four bytes of the frame (encrypted for a JoinAccept).
    pub mic: [u8; 4],
}

impl PhyPayload {
    /// Decodes a frame from the air. Rejects malformed input with a [`DecodeError`];
    /// never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let got = bytes.len();
        if got > MAX_PHY_PAYLOAD_LEN {
            return Err(DecodeError::TooLong {
                max: MAX_PHY_PAYLOAD_LEN,
                got,
            });
        }
        let m_type = bytes.first().map(|b| MType::from_bits(b >> 5));
        let too_short = |min: usize| DecodeError::TooShort { m_type, min, got };
        let (head, mic) = bytes
            .split_last_chunk::<MIC_LEN>()
            .ok_or_else(|| too_short(1 + MIC_LEN))?;
        let (&mhdr_byte, body) = head.split_first().ok_or_else(|| too_short(1 + MIC_LEN))?;
        let mhdr = MHdr::from_byte(mhdr_byte)?;
        let wrong_length = |expected: &'static [usize]| DecodeError::WrongLength {
            m_type: mhdr.m_type,
            expected,
            got,
        };

        let payload = match mhdr.m_type {
            MType::JoinRequest => {
                const EXPECTED: [usize; 1] = [JOIN_REQUEST_LEN];
                if got != JOIN_REQUEST_LEN {
                    return Err(wrong_length(&EXPECTED));
                }
                let mut r = Reader::new(body);
                let fields = (|| {
                    Some(JoinRequestPayload {
                        join_eui: Eui64::from_le_bytes(r.array()?),
                        dev_eui: Eui64::from_le_bytes(r.array()?),
                        dev_nonce: DevNonce::from_le_bytes(r.array()?),
                    })
                })();
                MacPayload::JoinRequest(fields.ok_or_else(|| wrong_length(&EXPECTED))?)
            }
            MType::JoinAccept => {
                if !JOIN_ACCEPT_LENS.contains(&got) {
                    return Err(wrong_length(&JOIN_ACCEPT_LENS));
                }
                MacPayload::JoinAccept(EncryptedJoinAccept::new(body.to_vec())?)
            }
            MType::RejoinRequest => MacPayload::RejoinRequest(decode_rejoin(body, got)?),
            MType::UnconfirmedDataUp
            | MType::UnconfirmedDataDown
            | MType::ConfirmedDataUp
            | MType::ConfirmedDataDown => {
                if got < MIN_DATA_FRAME_LEN {
                    return Err(too_short(MIN_DATA_FRAME_LEN));
                }
                MacPayload::Data(decode_data(body, got)?)
            }
            MType::Proprietary => MacPayload::Proprietary(body.to_vec()),
        };
        Ok(PhyPayload {
            mhdr,
            payload,
            mic: *mic,
        })
    }

    /// Encodes the frame. Fails when the fields cannot be put on the wire (see [`EncodeError`]).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = self.encode_without_mic()?;
        out.extend_from_slice(&self.mic);
        if out.len() > MAX_PHY_PAYLOAD_LEN {
            return Err(EncodeError::TooLong {
                max: MAX_PHY_PAYLOAD_LEN,
                got: out.len(),
            });
        }
        Ok(out)
    }

    /// `MHDR | MACPayload`: the bytes most MICs are computed over.
    pub fn encode_without_mic(&self) -> Result<Vec<u8>, EncodeError> {
        if !self.payload.fits(self.mhdr.m_type) {
            return Err(EncodeError::MTypeMismatch {
                m_type: self.mhdr.m_type,
                payload: self.payload.name(),
            });
        }
        let mut out = Vec::with_capacity(64);
        out.push(self.mhdr.to_byte()?);
        match &self.payload {
            MacPayload::JoinRequest(jr) => {
                out.extend_from_slice(&jr.join_eui.to_le_bytes());
                out.extend_from_slice(&jr.dev_eui.to_le_bytes());
                out.extend_from_slice(&jr.dev_nonce.to_le_bytes());
            }
            MacPayload::JoinAccept(ja) => out.extend_from_slice(ja.as_bytes()),
            MacPayload::RejoinRequest(rj) => rj.write(&mut out),
            MacPayload::Data(data) => data.write(&mut out)?,
            MacPayload::Proprietary(bytes) => out.extend_from_slice(bytes),
        }
        if out.len() + MIC_LEN > MAX_PHY_PAYLOAD_LEN {
            return Err(EncodeError::TooLong {
                max: MAX_PHY_PAYLOAD_LEN,
                got: out.len() + MIC_LEN,
            });
        }
        Ok(out)
    }

    /// The data payload, if this is a data frame.
    pub fn data(&self) -> Option<&DataPayload> {
        match &self.payload {
            MacPayload::Data(d) => Some(d),
            _ => None,
        }
    }
}

impl DataPayload {
    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let f_opts_len = self.fhdr.f_opts.len();
        if f_opts_len > MAX_F_OPTS_LEN {
            return Err(EncodeError::FOptsTooLong { len: f_opts_len });
        }
        match self.f_port {
            None if !self.frm_payload.is_empty() => {
                return Err(EncodeError::FrmPayloadWithoutFPort {
                    len: self.frm_payload.len(),
                })
            }
            Some(0) if f_opts_len > 0 => {
                return Err(EncodeError::FOptsWithFPortZero { f_opts_len });
            }
            _ => {}
        }
        out.extend_from_slice(&self.fhdr.dev_addr.to_le_bytes());
        // f_opts_len <= 15 was checked above.
        out.push(self.fhdr.f_ctrl.to_byte(f_opts_len as u8));
        out.extend_from_slice(&self.fhdr.f_cnt.to_le_bytes());
        out.extend_from_slice(&self.fhdr.f_opts);
        if let Some(port) = self.f_port {
            out.push(port);
            out.extend_from_slice(&self.frm_payload);
        }
        Ok(())
    }
}

fn decode_data(body: &[u8], got: usize) -> Result<DataPayload, DecodeError> {
    let mut r = Reader::new(body);
    let short = DecodeError::TooShort {
        m_type: None,
        min: MIN_DATA_FRAME_LEN,
        got,
    };
    let dev_addr = DevAddr::from_le_bytes(r.array().ok_or_else(|| short.clone())?);
    let f_ctrl_byte = r.u8().ok_or_else(|| short.clone())?;
    let f_cnt = r.u16_le().ok_or(short)?;
    let f_opts_len = usize::from(f_ctrl_byte & 0x0f);
    let available = r.remaining();
    let f_opts = r
        .bytes(f_opts_len)
        .ok_or(DecodeError::FOptsBeyondFrame {
            f_opts_len,
            available,
        })?
        .to_vec();
    let f_port = r.u8();
    let frm_payload = r.rest().to_vec();
    if f_port == Some(0) && f_opts_len > 0 {
        return Err(DecodeError::FOptsWithFPortZero { f_opts_len });
    }
    Ok(DataPayload {
        fhdr: FHdr {
            dev_addr,
            f_ctrl: FCtrl::from_byte(f_ctrl_byte),
            f_cnt,
            f_opts,
        },
        f_port,
        frm_payload,
    })
}

fn decode_rejoin(body: &[u8], got: usize) -> Result<RejoinRequestPayload, DecodeError> {
    let mut r = Reader::new(body);
    let rejoin_type = r.u8().ok_or(DecodeError::TooShort {
        m_type: Some(MType::RejoinRequest),
        min: REJOIN_REQUEST_02_LEN,
        got,
    })?;
    const LEN_02: [usize; 1] = [REJOIN_REQUEST_02_LEN];
    const LEN_1: [usize; 1] = [REJOIN_REQUEST_1_LEN];
    let wrong = |expected: &'static [usize]| DecodeError::WrongLength {
        m_type: MType::RejoinRequest,
        expected,
        got,
    };
    match rejoin_type {
        0 | 2 => {
            if got != REJOIN_REQUEST_02_LEN {
                return Err(wrong(&LEN_02));
            }
            let net_id = NetId::from_le_bytes(r.array().ok_or_else(|| wrong(&LEN_02))?);
            let dev_eui = Eui64::from_le_bytes(r.array().ok_or_else(|| wrong(&LEN_02))?);
            let rj_count0 = r.u16_le().ok_or_else(|| wrong(&LEN_02))?;
            Ok(if rejoin_type == 0 {
                RejoinRequestPayload::Type0 {
                    net_id,
                    dev_eui,
                    rj_count0,
                }
            } else {
                RejoinRequestPayload::Type2 {
                    net_id,
                    dev_eui,
                    rj_count0,
                }
            })
        }
        1 => {
            if got != REJOIN_REQUEST_1_LEN {
                return Err(wrong(&LEN_1));
            }
            Ok(RejoinRequestPayload::Type1 {
                join_eui: Eui64::from_le_bytes(r.array().ok_or_else(|| wrong(&LEN_1))?),
                dev_eui: Eui64::from_le_bytes(r.array().ok_or_else(|| wrong(&LEN_1))?),
                rj_count1: r.u16_le().ok_or_else(|| wrong(&LEN_1))?,
            })
        }
        other => Err(DecodeError::UnknownRejoinType { rejoin_type: other }),
    }
}
