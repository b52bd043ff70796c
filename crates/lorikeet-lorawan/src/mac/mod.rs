//! The MAC command codec, both directions, for every command of LoRaWAN 1.0.4 and
//! 1.1 (plus the Class B commands and DeviceModeInd/Conf, so that frames from such
//! devices decode instead of failing).
//!
//! A MAC command is a CID byte followed by a fixed-length payload whose layout
//! depends on the direction: the same CID is a request one way and an answer the
//! other (LoRaWAN 1.0.4 §5, 1.1 §5). Each command lives in its own file with its
//! field layout; this module dispatches on the CID.
//!
//! Decoding never panics and never stops silently:
//! - a command whose payload is cut short is a [`MacError::Truncated`] naming the CID;
//! - a CID that does not exist in that direction is a [`MacError::UnknownCid`];
//! - proprietary CIDs 0x80–0xFF have no defined length, so a proprietary command
//!   takes **every remaining byte** as its payload ([`MacCommand::Proprietary`]).
//!   Anything after it cannot be told apart and is part of that payload; an
//!   encoder should put a proprietary command last.
//!
//! RFU bits are ignored when decoding and written as zero. Frequencies are in Hz;
//! on the wire they are 24-bit multiples of 100 Hz, so encoding a frequency that is
//! not a multiple of 100 Hz (or above 1 677 721 500 Hz) is an error, as is any
//! field that does not fit its bits.

use crate::phy::Direction;
use crate::reader::Reader;

mod adr_param_setup;
mod beacon_freq;
mod beacon_timing;
mod dev_status;
mod device_mode;
mod device_time;
mod dl_channel;
mod duty_cycle;
mod force_rejoin;
mod link_adr;
mod link_check;
mod new_channel;
mod ping_slot_channel;
mod ping_slot_info;
mod rejoin_param_setup;
mod rekey;
mod reset;
mod rx_param_setup;
mod rx_timing_setup;
mod tx_param_setup;

pub use adr_param_setup::AdrParamSetupReq;
pub use beacon_freq::{BeaconFreqAns, BeaconFreqReq};
pub use beacon_timing::BeaconTimingAns;
pub use dev_status::DevStatusAns;
pub use device_mode::{DeviceModeConf, DeviceModeInd, CLASS_A, CLASS_C};
pub use device_time::DeviceTimeAns;
pub use dl_channel::{DlChannelAns, DlChannelReq};
pub use duty_cycle::DutyCycleReq;
pub use force_rejoin::ForceRejoinReq;
pub use link_adr::{LinkAdrAns, LinkAdrReq};
pub use link_check::LinkCheckAns;
pub use new_channel::{NewChannelAns, NewChannelReq};
pub use ping_slot_channel::{PingSlotChannelAns, PingSlotChannelReq};
pub use ping_slot_info::PingSlotInfoReq;
pub use rejoin_param_setup::{RejoinParamSetupAns, RejoinParamSetupReq};
pub use rekey::{RekeyConf, RekeyInd};
pub use reset::{ResetConf, ResetInd};
pub use rx_param_setup::{RxParamSetupAns, RxParamSetupReq};
pub use rx_timing_setup::RxTimingSetupReq;
pub use tx_param_setup::{TxParamSetupReq, MAX_EIRP_DBM};

/// Command identifiers (LoRaWAN 1.0.4 and 1.1, chapter 5).
pub mod cid {
    /// ResetInd / ResetConf (1.1).
    pub const RESET: u8 = 0x01;
    /// LinkCheckReq / LinkCheckAns.
    pub const LINK_CHECK: u8 = 0x02;
    /// LinkADRReq / LinkADRAns.
    pub const LINK_ADR: u8 = 0x03;
    /// DutyCycleReq / DutyCycleAns.
    pub const DUTY_CYCLE: u8 = 0x04;
    /// RXParamSetupReq / RXParamSetupAns.
    pub const RX_PARAM_SETUP: u8 = 0x05;
    /// DevStatusReq / DevStatusAns.
    pub const DEV_STATUS: u8 = 0x06;
    /// NewChannelReq / NewChannelAns.
    pub const NEW_CHANNEL: u8 = 0x07;
    /// RXTimingSetupReq / RXTimingSetupAns.
    pub const RX_TIMING_SETUP: u8 = 0x08;
    /// TxParamSetupReq / TxParamSetupAns.
    pub const TX_PARAM_SETUP: u8 = 0x09;
    /// DlChannelReq / DlChannelAns.
    pub const DL_CHANNEL: u8 = 0x0a;
    /// RekeyInd / RekeyConf (1.1).
    pub const REKEY: u8 = 0x0b;
    /// ADRParamSetupReq / ADRParamSetupAns.
    pub const ADR_PARAM_SETUP: u8 = 0x0c;
    /// DeviceTimeReq / DeviceTimeAns.
    pub const DEVICE_TIME: u8 = 0x0d;
    /// ForceRejoinReq (1.1, downlink only).
    pub const FORCE_REJOIN: u8 = 0x0e;
    /// RejoinParamSetupReq / RejoinParamSetupAns (1.1).
    pub const REJOIN_PARAM_SETUP: u8 = 0x0f;
    /// PingSlotInfoReq / PingSlotInfoAns (Class B).
    pub const PING_SLOT_INFO: u8 = 0x10;
    /// PingSlotChannelReq / PingSlotChannelAns (Class B).
    pub const PING_SLOT_CHANNEL: u8 = 0x11;
    /// BeaconTimingReq / BeaconTimingAns (Class B, deprecated since 1.0.3).
    pub const BEACON_TIMING: u8 = 0x12;
    /// BeaconFreqReq / BeaconFreqAns (Class B).
    pub const BEACON_FREQ: u8 = 0x13;
    /// DeviceModeInd / DeviceModeConf (1.1 Class C).
    pub const DEVICE_MODE: u8 = 0x20;
    /// First proprietary CID.
    pub const PROPRIETARY_FIRST: u8 = 0x80;
}

/// Why MAC command bytes cannot be decoded, or a command cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    /// The buffer ends inside a command's payload.
    #[error(
        "MAC command {cid:#04x} at offset {offset} needs {needed} payload bytes, {available} left"
    )]
    Truncated {
        /// The command identifier.
        cid: u8,
        /// Offset of the CID in the buffer.
        offset: usize,
        /// Payload bytes the command needs.
        needed: usize,
        /// Payload bytes left in the buffer.
        available: usize,
    },
    /// A CID that is not defined in this direction.
    #[error("unknown {direction:?} MAC command {cid:#04x} at offset {offset}")]
    UnknownCid {
        /// The command identifier.
        cid: u8,
        /// Offset of the CID in the buffer.
        offset: usize,
        /// The direction being decoded.
        direction: Direction,
    },
    /// A field does not fit its bits on the wire.
    #[error("MAC command {cid:#04x}: {field} = {value} does not fit (max {max})")]
    FieldOutOfRange {
        /// The command identifier.
        cid: u8,
        /// The field name.
        field: &'static str,
        /// The given value.
        value: i64,
        /// The largest value that fits.
        max: i64,
    },
    /// A frequency that is not a 24-bit multiple of 100 Hz.
    #[error(
        "MAC command {cid:#04x}: {frequency_hz} Hz is not a multiple of 100 Hz below 1677721600 Hz"
    )]
    FrequencyNotRepresentable {
        /// The command identifier.
        cid: u8,
        /// The given frequency.
        frequency_hz: u32,
    },
    /// A proprietary command with a CID below 0x80.
    #[error("CID {cid:#04x} is not in the proprietary range 0x80-0xff")]
    NotProprietary {
        /// The given CID.
        cid: u8,
    },
}

/// One MAC command, typed by direction: `…Req`/`…Ind` and `…Ans`/`…Conf` variants
/// carry the fields of their direction. Commands without payload are unit variants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MacCommand {
    /// 0x01 up (1.1): the device's LoRaWAN minor version after a reset (ABP).
    ResetInd(ResetInd),
    /// 0x01 down (1.1): the network's minor version.
    ResetConf(ResetConf),
    /// 0x02 up: asks for link margin and gateway count.
    LinkCheckReq,
    /// 0x02 down: link margin and gateway count.
    LinkCheckAns(LinkCheckAns),
    /// 0x03 down: data rate, TX power, channel mask and repetitions.
    LinkAdrReq(LinkAdrReq),
    /// 0x03 up: which parts of a LinkADRReq were accepted.
    LinkAdrAns(LinkAdrAns),
    /// 0x04 down: aggregated duty cycle limit.
    DutyCycleReq(DutyCycleReq),
    /// 0x04 up.
    DutyCycleAns,
    /// 0x05 down: RX1 data rate offset, RX2 data rate and frequency.
    RxParamSetupReq(RxParamSetupReq),
    /// 0x05 up: which RX parameters were accepted.
    RxParamSetupAns(RxParamSetupAns),
    /// 0x06 down: asks for battery level and demodulation margin.
    DevStatusReq,
    /// 0x06 up: battery level and margin.
    DevStatusAns(DevStatusAns),
    /// 0x07 down: creates or changes an uplink channel.
    NewChannelReq(NewChannelReq),
    /// 0x07 up: whether the channel was accepted.
    NewChannelAns(NewChannelAns),
    /// 0x08 down: RX1 delay.
    RxTimingSetupReq(RxTimingSetupReq),
    /// 0x08 up.
    RxTimingSetupAns,
    /// 0x09 down: dwell times and maximum EIRP.
    TxParamSetupReq(TxParamSetupReq),
    /// 0x09 up.
    TxParamSetupAns,
    /// 0x0A down: a separate RX1 downlink frequency for a channel.
    DlChannelReq(DlChannelReq),
    /// 0x0A up: whether the downlink frequency was accepted.
    DlChannelAns(DlChannelAns),
    /// 0x0B up (1.1): confirms new session keys after an OTAA join.
    RekeyInd(RekeyInd),
    /// 0x0B down (1.1): the network's minor version.
    RekeyConf(RekeyConf),
    /// 0x0C down: ADR_ACK_LIMIT and ADR_ACK_DELAY exponents.
    AdrParamSetupReq(AdrParamSetupReq),
    /// 0x0C up.
    AdrParamSetupAns,
    /// 0x0D up: asks for the network time.
    DeviceTimeReq,
    /// 0x0D down: GPS time at the end of the uplink.
    DeviceTimeAns(DeviceTimeAns),
    /// 0x0E down (1.1): asks the device to send RejoinRequests.
    ForceRejoinReq(ForceRejoinReq),
    /// 0x0F down (1.1): periodic type 0 RejoinRequest limits.
    RejoinParamSetupReq(RejoinParamSetupReq),
    /// 0x0F up (1.1): whether the time limit was accepted.
    RejoinParamSetupAns(RejoinParamSetupAns),
    /// 0x10 up (Class B): ping slot periodicity.
    PingSlotInfoReq(PingSlotInfoReq),
    /// 0x10 down (Class B).
    PingSlotInfoAns,
    /// 0x11 down (Class B): ping slot frequency and data rate.
    PingSlotChannelReq(PingSlotChannelReq),
    /// 0x11 up (Class B): whether they were accepted.
    PingSlotChannelAns(PingSlotChannelAns),
    /// 0x12 up (Class B, deprecated since 1.0.3): asks for the next beacon's timing.
    BeaconTimingReq,
    /// 0x12 down (Class B, deprecated since 1.0.3).
    BeaconTimingAns(BeaconTimingAns),
    /// 0x13 down (Class B): beacon frequency.
    BeaconFreqReq(BeaconFreqReq),
    /// 0x13 up (Class B): whether it was accepted.
    BeaconFreqAns(BeaconFreqAns),
    /// 0x20 up (1.1): the device switches between Class A and C.
    DeviceModeInd(DeviceModeInd),
    /// 0x20 down (1.1): confirms the class.
    DeviceModeConf(DeviceModeConf),
    /// 0x80–0xFF: a proprietary command; its payload is every byte after the CID to
    /// the end of the buffer.
    Proprietary {
        /// The CID (0x80–0xFF).
        cid: u8,
        /// The payload bytes.
        payload: Vec<u8>,
    },
}

/// Takes a command's fixed-size payload or reports it truncated.
fn take<const N: usize>(r: &mut Reader<'_>, cid: u8, offset: usize) -> Result<[u8; N], MacError> {
    let available = r.remaining();
    r.array::<N>().ok_or(MacError::Truncated {
        cid,
        offset,
        needed: N,
        available,
    })
}

/// Decodes device-to-network MAC commands (FOpts or FRMPayload on FPort 0 of an uplink).
pub fn decode_uplink(bytes: &[u8]) -> Result<Vec<MacCommand>, MacError> {
    decode(bytes, Direction::Uplink)
}

/// Decodes network-to-device MAC commands (FOpts or FRMPayload on FPort 0 of a downlink).
pub fn decode_downlink(bytes: &[u8]) -> Result<Vec<MacCommand>, MacError> {
    decode(bytes, Direction::Downlink)
}

/// Decodes a sequence of MAC commands travelling in `direction`.
pub fn decode(bytes: &[u8], direction: Direction) -> Result<Vec<MacCommand>, MacError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while let Some(cid) = r.u8() {
        let offset = bytes.len().saturating_sub(r.remaining() + 1);
        let cmd = match direction {
            Direction::Uplink => decode_one_uplink(cid, offset, &mut r)?,
            Direction::Downlink => decode_one_downlink(cid, offset, &mut r)?,
        };
        out.push(cmd);
    }
    Ok(out)
}

fn proprietary(cid: u8, r: &mut Reader<'_>) -> MacCommand {
    MacCommand::Proprietary {
        cid,
        payload: r.rest().to_vec(),
    }
}

fn decode_one_uplink(cid: u8, offset: usize, r: &mut Reader<'_>) -> Result<MacCommand, MacError> {
    use MacCommand as M;
    Ok(match cid {
        cid::RESET => M::ResetInd(ResetInd::from_bytes(take(r, cid, offset)?)),
        cid::LINK_CHECK => M::LinkCheckReq,
        cid::LINK_ADR => M::LinkAdrAns(LinkAdrAns::from_bytes(take(r, cid, offset)?)),
        cid::DUTY_CYCLE => M::DutyCycleAns,
        cid::RX_PARAM_SETUP => {
            M::RxParamSetupAns(RxParamSetupAns::from_bytes(take(r, cid, offset)?))
        }
        cid::DEV_STATUS => M::DevStatusAns(DevStatusAns::from_bytes(take(r, cid, offset)?)),
        cid::NEW_CHANNEL => M::NewChannelAns(NewChannelAns::from_bytes(take(r, cid, offset)?)),
        cid::RX_TIMING_SETUP => M::RxTimingSetupAns,
        cid::TX_PARAM_SETUP => M::TxParamSetupAns,
        cid::DL_CHANNEL => M::DlChannelAns(DlChannelAns::from_bytes(take(r, cid, offset)?)),
        cid::REKEY => M::RekeyInd(RekeyInd::from_bytes(take(r, cid, offset)?)),
        cid::ADR_PARAM_SETUP => M::AdrParamSetupAns,
        cid::DEVICE_TIME => M::DeviceTimeReq,
        cid::REJOIN_PARAM_SETUP => {
            M::RejoinParamSetupAns(RejoinParamSetupAns::from_bytes(take(r, cid, offset)?))
        }
        cid::PING_SLOT_INFO => {
            M::PingSlotInfoReq(PingSlotInfoReq::from_bytes(take(r, cid, offset)?))
        }
        cid::PING_SLOT_CHANNEL => {
            M::PingSlotChannelAns(PingSlotChannelAns::from_bytes(take(r, cid, offset)?))
        }
        cid::BEACON_TIMING => M::BeaconTimingReq,
        cid::BEACON_FREQ => M::BeaconFreqAns(BeaconFreqAns::from_bytes(take(r, cid, offset)?)),
        cid::DEVICE_MODE => M::DeviceModeInd(DeviceModeInd::from_bytes(take(r, cid, offset)?)),
        0x80..=0xff => proprietary(cid, r),
        _ => {
            return Err(MacError::UnknownCid {
                cid,
                offset,
                direction: Direction::Uplink,
            })
        }
    })
}

fn decode_one_downlink(cid: u8, offset: usize, r: &mut Reader<'_>) -> Result<MacCommand, MacError> {
    use MacCommand as M;
    Ok(match cid {
        cid::RESET => M::ResetConf(ResetConf::from_bytes(take(r, cid, offset)?)),
        cid::LINK_CHECK => M::LinkCheckAns(LinkCheckAns::from_bytes(take(r, cid, offset)?)),
        cid::LINK_ADR => M::LinkAdrReq(LinkAdrReq::from_bytes(take(r, cid, offset)?)),
        cid::DUTY_CYCLE => M::DutyCycleReq(DutyCycleReq::from_bytes(take(r, cid, offset)?)),
        cid::RX_PARAM_SETUP => {
            M::RxParamSetupReq(RxParamSetupReq::from_bytes(take(r, cid, offset)?))
        }
        cid::DEV_STATUS => M::DevStatusReq,
        cid::NEW_CHANNEL => M::NewChannelReq(NewChannelReq::from_bytes(take(r, cid, offset)?)),
        cid::RX_TIMING_SETUP => {
            M::RxTimingSetupReq(RxTimingSetupReq::from_bytes(take(r, cid, offset)?))
        }
        cid::TX_PARAM_SETUP => {
            M::TxParamSetupReq(TxParamSetupReq::from_bytes(take(r, cid, offset)?))
        }
        cid::DL_CHANNEL => M::DlChannelReq(DlChannelReq::from_bytes(take(r, cid, offset)?)),
        cid::REKEY => M::RekeyConf(RekeyConf::from_bytes(take(r, cid, offset)?)),
        cid::ADR_PARAM_SETUP => {
            M::AdrParamSetupReq(AdrParamSetupReq::from_bytes(take(r, cid, offset)?))
        }
        cid::DEVICE_TIME => M::DeviceTimeAns(DeviceTimeAns::from_bytes(take(r, cid, offset)?)),
        cid::FORCE_REJOIN => M::ForceRejoinReq(ForceRejoinReq::from_bytes(take(r, cid, offset)?)),
        cid::REJOIN_PARAM_SETUP => {
            M::RejoinParamSetupReq(RejoinParamSetupReq::from_bytes(take(r, cid, offset)?))
        }
        cid::PING_SLOT_INFO => M::PingSlotInfoAns,
        cid::PING_SLOT_CHANNEL => {
            M::PingSlotChannelReq(PingSlotChannelReq::from_bytes(take(r, cid, offset)?))
        }
        cid::BEACON_TIMING => {
            M::BeaconTimingAns(BeaconTimingAns::from_bytes(take(r, cid, offset)?))
        }
        cid::BEACON_FREQ => M::BeaconFreqReq(BeaconFreqReq::from_bytes(take(r, cid, offset)?)),
        cid::DEVICE_MODE => M::DeviceModeConf(DeviceModeConf::from_bytes(take(r, cid, offset)?)),
        0x80..=0xff => proprietary(cid, r),
        _ => {
            return Err(MacError::UnknownCid {
                cid,
                offset,
                direction: Direction::Downlink,
            })
        }
    })
}

/// Encodes MAC commands back to back. Directions are not mixed up by the caller's
/// choice of variants, so no direction is needed here.
pub fn encode(cmds: &[MacCommand]) -> Result<Vec<u8>, MacError> {
    let mut out = Vec::with_capacity(cmds.iter().map(MacCommand::encoded_len).sum());
    for cmd in cmds {
        cmd.encode_into(&mut out)?;
    }
    Ok(out)
}

impl MacCommand {
    /// The command identifier.
    pub fn cid(&self) -> u8 {
        use MacCommand as M;
        match self {
            M::ResetInd(_) | M::ResetConf(_) => cid::RESET,
            M::LinkCheckReq | M::LinkCheckAns(_) => cid::LINK_CHECK,
            M::LinkAdrReq(_) | M::LinkAdrAns(_) => cid::LINK_ADR,
            M::DutyCycleReq(_) | M::DutyCycleAns => cid::DUTY_CYCLE,
            M::RxParamSetupReq(_) | M::RxParamSetupAns(_) => cid::RX_PARAM_SETUP,
            M::DevStatusReq | M::DevStatusAns(_) => cid::DEV_STATUS,
            M::NewChannelReq(_) | M::NewChannelAns(_) => cid::NEW_CHANNEL,
            M::RxTimingSetupReq(_) | M::RxTimingSetupAns => cid::RX_TIMING_SETUP,
            M::TxParamSetupReq(_) | M::TxParamSetupAns => cid::TX_PARAM_SETUP,
            M::DlChannelReq(_) | M::DlChannelAns(_) => cid::DL_CHANNEL,
            M::RekeyInd(_) | M::RekeyConf(_) => cid::REKEY,
            M::AdrParamSetupReq(_) | M::AdrParamSetupAns => cid::ADR_PARAM_SETUP,
            M::DeviceTimeReq | M::DeviceTimeAns(_) => cid::DEVICE_TIME,
            M::ForceRejoinReq(_) => cid::FORCE_REJOIN,
            M::RejoinParamSetupReq(_) | M::RejoinParamSetupAns(_) => cid::REJOIN_PARAM_SETUP,
            M::PingSlotInfoReq(_) | M::PingSlotInfoAns => cid::PING_SLOT_INFO,
            M::PingSlotChannelReq(_) | M::PingSlotChannelAns(_) => cid::PING_SLOT_CHANNEL,
            M::BeaconTimingReq | M::BeaconTimingAns(_) => cid::BEACON_TIMING,
            M::BeaconFreqReq(_) | M::BeaconFreqAns(_) => cid::BEACON_FREQ,
            M::DeviceModeInd(_) | M::DeviceModeConf(_) => cid::DEVICE_MODE,
            M::Proprietary { cid, .. } => *cid,
        }
    }

    /// The direction the command travels; proprietary commands go either way (`None`).
    pub fn direction(&self) -> Option<Direction> {
        use MacCommand as M;
        match self {
            M::ResetInd(_)
            | M::LinkCheckReq
            | M::LinkAdrAns(_)
            | M::DutyCycleAns
            | M::RxParamSetupAns(_)
            | M::DevStatusAns(_)
            | M::NewChannelAns(_)
            | M::RxTimingSetupAns
            | M::TxParamSetupAns
            | M::DlChannelAns(_)
            | M::RekeyInd(_)
            | M::AdrParamSetupAns
            | M::DeviceTimeReq
            | M::RejoinParamSetupAns(_)
            | M::PingSlotInfoReq(_)
            | M::PingSlotChannelAns(_)
            | M::BeaconTimingReq
            | M::BeaconFreqAns(_)
            | M::DeviceModeInd(_) => Some(Direction::Uplink),
            M::ResetConf(_)
            | M::LinkCheckAns(_)
            | M::LinkAdrReq(_)
            | M::DutyCycleReq(_)
            | M::RxParamSetupReq(_)
            | M::DevStatusReq
            | M::NewChannelReq(_)
            | M::RxTimingSetupReq(_)
            | M::TxParamSetupReq(_)
            | M::DlChannelReq(_)
            | M::RekeyConf(_)
            | M::AdrParamSetupReq(_)
            | M::DeviceTimeAns(_)
            | M::ForceRejoinReq(_)
            | M::RejoinParamSetupReq(_)
            | M::PingSlotInfoAns
            | M::PingSlotChannelReq(_)
            | M::BeaconTimingAns(_)
            | M::BeaconFreqReq(_)
            | M::DeviceModeConf(_) => Some(Direction::Downlink),
            M::Proprietary { .. } => None,
        }
    }

    /// Encoded length in bytes, CID included (for fitting commands into FOpts' 15 bytes).
    pub fn encoded_len(&self) -> usize {
        use MacCommand as M;
        1 + match self {
            M::ResetInd(_) => ResetInd::LEN,
            M::ResetConf(_) => ResetConf::LEN,
            M::LinkCheckAns(_) => LinkCheckAns::LEN,
            M::LinkAdrReq(_) => LinkAdrReq::LEN,
            M::LinkAdrAns(_) => LinkAdrAns::LEN,
            M::DutyCycleReq(_) => DutyCycleReq::LEN,
            M::RxParamSetupReq(_) => RxParamSetupReq::LEN,
            M::RxParamSetupAns(_) => RxParamSetupAns::LEN,
            M::DevStatusAns(_) => DevStatusAns::LEN,
            M::NewChannelReq(_) => NewChannelReq::LEN,
            M::NewChannelAns(_) => NewChannelAns::LEN,
            M::RxTimingSetupReq(_) => RxTimingSetupReq::LEN,
            M::TxParamSetupReq(_) => TxParamSetupReq::LEN,
            M::DlChannelReq(_) => DlChannelReq::LEN,
            M::DlChannelAns(_) => DlChannelAns::LEN,
            M::RekeyInd(_) => RekeyInd::LEN,
            M::RekeyConf(_) => RekeyConf::LEN,
            M::AdrParamSetupReq(_) => AdrParamSetupReq::LEN,
            M::DeviceTimeAns(_) => DeviceTimeAns::LEN,
            M::ForceRejoinReq(_) => ForceRejoinReq::LEN,
            M::RejoinParamSetupReq(_) => RejoinParamSetupReq::LEN,
            M::RejoinParamSetupAns(_) => RejoinParamSetupAns::LEN,
            M::PingSlotInfoReq(_) => PingSlotInfoReq::LEN,
            M::PingSlotChannelReq(_) => PingSlotChannelReq::LEN,
            M::PingSlotChannelAns(_) => PingSlotChannelAns::LEN,
            M::BeaconTimingAns(_) => BeaconTimingAns::LEN,
            M::BeaconFreqReq(_) => BeaconFreqReq::LEN,
            M::BeaconFreqAns(_) => BeaconFreqAns::LEN,
            M::DeviceModeInd(_) => DeviceModeInd::LEN,
            M::DeviceModeConf(_) => DeviceModeConf::LEN,
            M::Proprietary { payload, .. } => payload.len(),
            M::LinkCheckReq
            | M::DutyCycleAns
            | M::DevStatusReq
            | M::RxTimingSetupAns
            | M::TxParamSetupAns
            | M::AdrParamSetupAns
            | M::DeviceTimeReq
            | M::PingSlotInfoAns
            | M::BeaconTimingReq => 0,
        }
    }

    /// Appends the encoded command (CID and payload) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), MacError> {
        use MacCommand as M;
        if let M::Proprietary { cid, payload } = self {
            if *cid < cid::PROPRIETARY_FIRST {
                return Err(MacError::NotProprietary { cid: *cid });
            }
            out.push(*cid);
            out.extend_from_slice(payload);
            return Ok(());
        }
        out.push(self.cid());
        match self {
            M::ResetInd(c) => out.extend_from_slice(&c.encode()?),
            M::ResetConf(c) => out.extend_from_slice(&c.encode()?),
            M::LinkCheckAns(c) => out.extend_from_slice(&c.encode()),
            M::LinkAdrReq(c) => out.extend_from_slice(&c.encode()?),
            M::LinkAdrAns(c) => out.extend_from_slice(&c.encode()),
            M::DutyCycleReq(c) => out.extend_from_slice(&c.encode()?),
            M::RxParamSetupReq(c) => out.extend_from_slice(&c.encode()?),
            M::RxParamSetupAns(c) => out.extend_from_slice(&c.encode()),
            M::DevStatusAns(c) => out.extend_from_slice(&c.encode()?),
            M::NewChannelReq(c) => out.extend_from_slice(&c.encode()?),
            M::NewChannelAns(c) => out.extend_from_slice(&c.encode()),
            M::RxTimingSetupReq(c) => out.extend_from_slice(&c.encode()?),
            M::TxParamSetupReq(c) => out.extend_from_slice(&c.encode()?),
            M::DlChannelReq(c) => out.extend_from_slice(&c.encode()?),
            M::DlChannelAns(c) => out.extend_from_slice(&c.encode()),
            M::RekeyInd(c) => out.extend_from_slice(&c.encode()?),
            M::RekeyConf(c) => out.extend_from_slice(&c.encode()?),
            M::AdrParamSetupReq(c) => out.extend_from_slice(&c.encode()?),
            M::DeviceTimeAns(c) => out.extend_from_slice(&c.encode()),
            M::ForceRejoinReq(c) => out.extend_from_slice(&c.encode()?),
            M::RejoinParamSetupReq(c) => out.extend_from_slice(&c.encode()?),
            M::RejoinParamSetupAns(c) => out.extend_from_slice(&c.encode()),
            M::PingSlotInfoReq(c) => out.extend_from_slice(&c.encode()?),
            M::PingSlotChannelReq(c) => out.extend_from_slice(&c.encode()?),
            M::PingSlotChannelAns(c) => out.extend_from_slice(&c.encode()),
            M::BeaconTimingAns(c) => out.extend_from_slice(&c.encode()),
            M::BeaconFreqReq(c) => out.extend_from_slice(&c.encode()?),
            M::BeaconFreqAns(c) => out.extend_from_slice(&c.encode()),
            M::DeviceModeInd(c) => out.extend_from_slice(&c.encode()),
            M::DeviceModeConf(c) => out.extend_from_slice(&c.encode()),
            M::LinkCheckReq
            | M::DutyCycleAns
            | M::DevStatusReq
            | M::RxTimingSetupAns
            | M::TxParamSetupAns
            | M::AdrParamSetupAns
            | M::DeviceTimeReq
            | M::PingSlotInfoAns
            | M::BeaconTimingReq
            | M::Proprietary { .. } => {}
        }
        Ok(())
    }
}

/// Checks that `value` fits in `max` for `field` of command `cid`.
pub(crate) fn check(
    cid: u8,
    field: &'static str,
    value: impl Into<i64>,
    max: i64,
) -> Result<(), MacError> {
    let value = value.into();
    if !(0..=max).contains(&value) {
        return Err(MacError::FieldOutOfRange {
            cid,
            field,
            value,
            max,
        });
    }
    Ok(())
}

/// A frequency in Hz from its 24-bit wire form (units of 100 Hz).
pub(crate) fn frequency_from_wire(b: [u8; 3]) -> u32 {
    let [b0, b1, b2] = b;
    // At most 0xffffff * 100 = 1_677_721_500, which fits a u32.
    u32::from_le_bytes([b0, b1, b2, 0]) * 100
}

/// The 24-bit wire form of a frequency in Hz.
pub(crate) fn frequency_to_wire(cid: u8, frequency_hz: u32) -> Result<[u8; 3], MacError> {
    if frequency_hz % 100 != 0 || frequency_hz / 100 > 0x00ff_ffff {
        return Err(MacError::FrequencyNotRepresentable { cid, frequency_hz });
    }
    let [b0, b1, b2, _] = (frequency_hz / 100).to_le_bytes();
    Ok([b0, b1, b2])
}

/// Bit `n` of `b`.
pub(crate) fn bit(b: u8, n: u8) -> bool {
    b & (1 << n) != 0
}

#[cfg(test)]
mod tests;
