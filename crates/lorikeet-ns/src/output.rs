//! What the core asks its shell to do: transmit frames, store changes, emit events.

use std::collections::BTreeMap;

use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use uuid::Uuid;

use crate::device::{JoinState, Session};
use crate::rx::{Modulation, RxInfo, TxInfo};

/// Identifies one downlink transmission attempt (the shell reports its TX_ACK with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DownlinkId(pub u32);

/// When the gateway must transmit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// At this value of the gateway's concentrator counter (µs, wrapping).
    Delay {
        /// Concentrator counter value.
        tmst: u32,
    },
    /// As soon as possible (Class C).
    Immediately,
}

/// Which receive window a downlink targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// First Class A window.
    Rx1,
    /// Second Class A window.
    Rx2,
    /// Class C continuous reception (RX2 parameters).
    ClassC,
}

/// A frame for a gateway to transmit.
#[derive(Debug, Clone, PartialEq)]
pub struct DownlinkRequest {
    /// Attempt id.
    pub id: DownlinkId,
    /// The device it is for.
    pub dev_eui: Eui64,
    /// The gateway that should send it.
    pub gateway_id: Eui64,
    /// The PHYPayload.
    pub phy_payload: Vec<u8>,
    /// When.
    pub timing: Timing,
    /// Which window this is.
    pub window: Window,
    /// Frequency in Hz.
    pub frequency_hz: u32,
    /// Modulation and data rate.
    pub modulation: Modulation,
    /// Data-rate index in the device's region.
    pub dr: u8,
    /// Radiated power (EIRP) in dBm; the gateway layer subtracts its antenna gain.
    pub tx_power_eirp_dbm: i32,
}

/// The TX_ACK outcome, as the shell reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxResult {
    /// Accepted for transmission.
    Sent,
    /// The gateway refused; the reason as it named it (TOO_LATE, COLLISION_PACKET, …).
    Rejected(String),
    /// No answer in time: the frame may or may not have gone out.
    NoAnswer,
}

/// A change the shell must persist.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreChange {
    /// The device's session is now this (`None`: removed).
    Session {
        /// Device.
        dev_eui: Eui64,
        /// New session.
        session: Option<Box<Session>>,
    },
    /// The device's join state is now this (written before its JoinAccept is sent).
    Join {
        /// Device.
        dev_eui: Eui64,
        /// New join state.
        join: JoinState,
    },
    /// A queue item left the queue (sent, acknowledged, refused or expired).
    QueueItemDone {
        /// Device.
        dev_eui: Eui64,
        /// The item.
        queue_item_id: Uuid,
    },
}

/// Severity of a log event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Informational.
    Info,
    /// Something was dropped or went wrong on the device's side.
    Warning,
    /// Something went wrong on ours.
    Error,
}

/// Machine-readable log codes (ChirpStack's names, for receivers written for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogCode {
    /// A retransmission of an already received frame.
    UplinkFCntRetransmission,
    /// A frame counter lower than expected: a device reset or a replay.
    UplinkFCntReset,
    /// No session's MIC matched.
    UplinkMic,
    /// A join was refused.
    Otaa,
    /// A queued item does not fit the data rate.
    DownlinkPayloadSize,
    /// The gateway refused or never confirmed a downlink.
    DownlinkGateway,
    /// The downlink frame counter cannot advance.
    FCntDown,
    /// A queue item expired.
    Expired,
    /// A downlink queued as an object could not be encoded by the profile's codec.
    DownlinkCodec,
    /// A MAC command could not be read, was refused, or was given up.
    MacCommand,
}

impl LogCode {
    /// The code as it appears in the event JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            LogCode::UplinkFCntRetransmission => "UPLINK_F_CNT_RETRANSMISSION",
            LogCode::UplinkFCntReset => "UPLINK_F_CNT_RESET",
            LogCode::UplinkMic => "UPLINK_MIC",
            LogCode::Otaa => "OTAA",
            LogCode::DownlinkPayloadSize => "DOWNLINK_PAYLOAD_SIZE",
            LogCode::DownlinkGateway => "DOWNLINK_GATEWAY",
            LogCode::FCntDown => "F_CNT_DOWN",
            LogCode::Expired => "EXPIRED",
            LogCode::DownlinkCodec => "DOWNLINK_CODEC",
            LogCode::MacCommand => "MAC_COMMAND",
        }
    }
}

/// Something that happened to a device, for the application side.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A device joined.
    Join {
        /// Device.
        dev_eui: Eui64,
        /// Its new address.
        dev_addr: DevAddr,
        /// Id shared by every copy of the JoinRequest.
        deduplication_id: Uuid,
        /// Gateways that heard the JoinRequest.
        rx_info: Vec<RxInfo>,
        /// How it was sent.
        tx_info: TxInfo,
    },
    /// A data uplink was accepted.
    Up(Box<UpEvent>),
    /// A confirmed downlink was acknowledged or not.
    Ack {
        /// Device.
        dev_eui: Eui64,
        /// The uplink that carried (or lacked) the ACK.
        deduplication_id: Uuid,
        /// The queue item.
        queue_item_id: Uuid,
        /// Whether the ACK bit was set.
        acknowledged: bool,
        /// The counter the downlink used.
        f_cnt_down: u32,
    },
    /// A gateway confirmed it will transmit a downlink.
    TxAck {
        /// Device.
        dev_eui: Eui64,
        /// The attempt.
        downlink_id: DownlinkId,
        /// The queue item, when the downlink carried one.
        queue_item_id: Option<Uuid>,
        /// Frame counter used.
        f_cnt_down: u32,
        /// The gateway.
        gateway_id: Eui64,
        /// Frequency in Hz.
        frequency_hz: u32,
        /// Modulation.
        modulation: Modulation,
        /// Radiated power in dBm.
        tx_power_eirp_dbm: i32,
    },
    /// The device reported its battery and link margin.
    Status {
        /// Device.
        dev_eui: Eui64,
        /// The uplink that carried the answer.
        deduplication_id: Uuid,
        /// Demodulation margin in dB of the last DevStatusReq.
        margin_db: i8,
        /// Powered externally.
        external_power_source: bool,
        /// The device cannot measure its battery.
        battery_level_unavailable: bool,
        /// Battery in percent (0–100), when known.
        battery_level_percent: Option<f32>,
    },
    /// Something worth telling the integrator about.
    Log {
        /// Device.
        dev_eui: Eui64,
        /// Severity.
        level: LogLevel,
        /// Machine-readable code.
        code: LogCode,
        /// For a person.
        description: String,
        /// Extra key/values (e.g. the refused frame counter).
        context: BTreeMap<String, String>,
    },
}

/// An accepted data uplink.
#[derive(Debug, Clone, PartialEq)]
pub struct UpEvent {
    /// Device.
    pub dev_eui: Eui64,
    /// Its address.
    pub dev_addr: DevAddr,
    /// Id shared by every copy of the frame.
    pub deduplication_id: Uuid,
    /// The 32-bit uplink frame counter.
    pub f_cnt: u32,
    /// Application port, when the frame has one.
    pub f_port: Option<u8>,
    /// FRMPayload as received: encrypted with AppSKey when `f_port > 0`.
    pub frm_payload: Vec<u8>,
    /// AppSKey of the session, for the application side to decrypt with.
    pub app_s_key: Aes128Key,
    /// Whether it was a confirmed uplink.
    pub confirmed: bool,
    /// The ADR bit.
    pub adr: bool,
    /// Data-rate index.
    pub dr: u8,
    /// How it was sent.
    pub tx_info: TxInfo,
    /// Every gateway that heard it.
    pub rx_info: Vec<RxInfo>,
}

/// One thing for the shell to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Hand this frame to its gateway now and report the TX_ACK.
    Transmit(DownlinkRequest),
    /// Persist this.
    Store(StoreChange),
    /// Deliver this to the application side.
    Event(Event),
    /// An uplink (or a copy) was dropped: count and log it.
    Dropped {
        /// Why.
        reason: DropReason,
        /// The device, when known.
        dev_eui: Option<Eui64>,
    },
}

/// Why an uplink was dropped (each has a counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not a valid PHYPayload.
    Malformed,
    /// A frame type the network does not accept uplink (downlink types, proprietary).
    UnexpectedType,
    /// No device has this DevAddr or DevEUI.
    UnknownDevice,
    /// The device is disabled.
    DeviceDisabled,
    /// No candidate session's MIC matched.
    MicMismatch,
    /// Frame counter replayed or too far ahead.
    FCntInvalid,
    /// A retransmission of an accepted frame.
    Retransmission,
    /// A JoinRequest was refused (keys, nonces, profile).
    JoinRejected,
    /// The dedup table was full.
    Overloaded,
    /// The data rate is not one of the region's.
    UnknownDataRate,
}

impl DropReason {
    /// Label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnexpectedType => "unexpected_type",
            DropReason::UnknownDevice => "unknown_device",
            DropReason::DeviceDisabled => "device_disabled",
            DropReason::MicMismatch => "mic_mismatch",
            DropReason::FCntInvalid => "f_cnt_invalid",
            DropReason::Retransmission => "retransmission",
            DropReason::JoinRejected => "join_rejected",
            DropReason::Overloaded => "overloaded",
            DropReason::UnknownDataRate => "unknown_data_rate",
        }
    }
}
