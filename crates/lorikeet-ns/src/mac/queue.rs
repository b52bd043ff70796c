//! MAC commands waiting for a downlink: requests the network makes (resent until
//! answered, a bounded number of times) and answers to the device's own requests (sent
//! once, in the downlink that answers the uplink that asked). Both persist in the
//! session as plain data; the wire encoding comes from `lorikeet_lorawan::mac`.

use lorikeet_lorawan::mac::{
    self as codec, cid, AdrParamSetupReq, DeviceTimeAns, DlChannelReq, DutyCycleReq,
    ForceRejoinReq, LinkAdrReq, LinkCheckAns, MacCommand, NewChannelReq, RejoinParamSetupReq,
    RekeyConf, ResetConf, RxParamSetupReq, RxTimingSetupReq, TxParamSetupReq,
};
use lorikeet_region::LinkAdrChMask;
use serde::{Deserialize, Serialize};

/// Most MAC bytes FOpts can carry; more travel as an FPort-0 payload.
pub const FOPTS_MAX_LEN: usize = 15;

/// One (ChMaskCntl, ChMask) pair of a LinkADRReq block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChMask {
    /// ChMaskCntl (3 bits).
    pub cntl: u8,
    /// ChMask (16 bits).
    pub mask: u16,
}

impl From<LinkAdrChMask> for ChMask {
    fn from(m: LinkAdrChMask) -> Self {
        ChMask {
            cntl: m.ch_mask_cntl,
            mask: m.ch_mask,
        }
    }
}

impl From<ChMask> for LinkAdrChMask {
    fn from(m: ChMask) -> Self {
        LinkAdrChMask {
            ch_mask_cntl: m.cntl,
            ch_mask: m.mask,
        }
    }
}

/// A LinkADRReq block: one command per channel mask, all with the same data rate, power
/// and NbTrans (the device takes those from the last one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAdrRequest {
    /// Data rate; 15 = keep the current one (LoRaWAN 1.0.4 and 1.1).
    pub dr: u8,
    /// TXPower index; 15 = keep the current one (LoRaWAN 1.0.4 and 1.1).
    pub tx_power_index: u8,
    /// Transmissions per frame.
    pub nb_trans: u8,
    /// The masks, applied by the device in order as one atomic block.
    pub ch_masks: Vec<ChMask>,
    /// The device's enabled channels once it applies the block.
    pub enabled_channels: Vec<u8>,
}

/// A request the network sends to the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum MacRequest {
    /// LinkADRReq block: data rate, power, NbTrans and channel mask.
    LinkAdr(LinkAdrRequest),
    /// DutyCycleReq: aggregated duty cycle 1/2^n.
    DutyCycle {
        /// n.
        max_duty_cycle: u8,
    },
    /// RXParamSetupReq.
    RxParamSetup {
        /// RX1 data-rate offset.
        rx1_dr_offset: u8,
        /// RX2 data rate.
        rx2_dr: u8,
        /// RX2 frequency.
        rx2_frequency_hz: u32,
    },
    /// DevStatusReq.
    DevStatus,
    /// NewChannelReq (frequency 0 deletes the channel).
    NewChannel {
        /// Channel index.
        ch_index: u8,
        /// Frequency.
        frequency_hz: u32,
        /// Lowest DR.
        min_dr: u8,
        /// Highest DR.
        max_dr: u8,
    },
    /// DlChannelReq: the RX1 frequency of an uplink channel.
    DlChannel {
        /// Channel index.
        ch_index: u8,
        /// RX1 frequency.
        frequency_hz: u32,
    },
    /// RXTimingSetupReq.
    RxTimingSetup {
        /// RX1 delay in seconds (1..=15).
        rx1_delay_s: u8,
    },
    /// TxParamSetupReq (dwell time and maximum EIRP, AS923/AU915).
    TxParamSetup {
        /// Uplinks limited to 400 ms.
        uplink_dwell_time_400ms: bool,
        /// Downlinks limited to 400 ms.
        downlink_dwell_time_400ms: bool,
        /// Index into the MaxEIRP table.
        max_eirp_index: u8,
    },
    /// ADRParamSetupReq (1.1): ADR_ACK_LIMIT/DELAY exponents.
    AdrParamSetup {
        /// ADR_ACK_LIMIT = 2^limit_exp.
        limit_exp: u8,
        /// ADR_ACK_DELAY = 2^delay_exp.
        delay_exp: u8,
    },
    /// RejoinParamSetupReq (1.1).
    RejoinParamSetup {
        /// Rejoin after 2^(n+10) s.
        max_time_n: u8,
        /// Rejoin after 2^(n+4) uplinks.
        max_count_n: u8,
    },
    /// ForceRejoinReq (1.1): no answer; sent once.
    ForceRejoin {
        /// Retransmission period exponent.
        period: u8,
        /// Retries.
        max_retries: u8,
        /// RejoinRequest type (0 or 2).
        rejoin_type: u8,
        /// Data rate of the RejoinRequest.
        dr: u8,
    },
}

impl MacRequest {
    /// The command identifier (what the device's answer carries).
    pub fn cid(&self) -> u8 {
        match self {
            MacRequest::LinkAdr(_) => cid::LINK_ADR,
            MacRequest::DutyCycle { .. } => cid::DUTY_CYCLE,
            MacRequest::RxParamSetup { .. } => cid::RX_PARAM_SETUP,
            MacRequest::DevStatus => cid::DEV_STATUS,
            MacRequest::NewChannel { .. } => cid::NEW_CHANNEL,
            MacRequest::DlChannel { .. } => cid::DL_CHANNEL,
            MacRequest::RxTimingSetup { .. } => cid::RX_TIMING_SETUP,
            MacRequest::TxParamSetup { .. } => cid::TX_PARAM_SETUP,
            MacRequest::AdrParamSetup { .. } => cid::ADR_PARAM_SETUP,
            MacRequest::RejoinParamSetup { .. } => cid::REJOIN_PARAM_SETUP,
            MacRequest::ForceRejoin { .. } => cid::FORCE_REJOIN,
        }
    }

    /// The command's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            MacRequest::LinkAdr(_) => "LinkADRReq",
            MacRequest::DutyCycle { .. } => "DutyCycleReq",
            MacRequest::RxParamSetup { .. } => "RXParamSetupReq",
            MacRequest::DevStatus => "DevStatusReq",
            MacRequest::NewChannel { .. } => "NewChannelReq",
            MacRequest::DlChannel { .. } => "DlChannelReq",
            MacRequest::RxTimingSetup { .. } => "RXTimingSetupReq",
            MacRequest::TxParamSetup { .. } => "TxParamSetupReq",
            MacRequest::AdrParamSetup { .. } => "ADRParamSetupReq",
            MacRequest::RejoinParamSetup { .. } => "RejoinParamSetupReq",
            MacRequest::ForceRejoin { .. } => "ForceRejoinReq",
        }
    }

    /// Whether the device answers it (ForceRejoinReq is answered by a RejoinRequest,
    /// not a MAC command).
    pub fn expects_answer(&self) -> bool {
        !matches!(self, MacRequest::ForceRejoin { .. })
    }

    /// The commands on the wire (several for a LinkADRReq block).
    pub fn commands(&self) -> Vec<MacCommand> {
        use MacCommand as M;
        match self {
            MacRequest::LinkAdr(r) => r
                .ch_masks
                .iter()
                .map(|m| {
                    M::LinkAdrReq(LinkAdrReq {
                        data_rate: r.dr,
                        tx_power: r.tx_power_index,
                        ch_mask: m.mask,
                        ch_mask_cntl: m.cntl,
                        nb_trans: r.nb_trans,
                    })
                })
                .collect(),
            MacRequest::DutyCycle { max_duty_cycle } => vec![M::DutyCycleReq(DutyCycleReq {
                max_duty_cycle: *max_duty_cycle,
            })],
            MacRequest::RxParamSetup {
                rx1_dr_offset,
                rx2_dr,
                rx2_frequency_hz,
            } => vec![M::RxParamSetupReq(RxParamSetupReq {
                rx1_dr_offset: *rx1_dr_offset,
                rx2_data_rate: *rx2_dr,
                frequency_hz: *rx2_frequency_hz,
            })],
            MacRequest::DevStatus => vec![M::DevStatusReq],
            MacRequest::NewChannel {
                ch_index,
                frequency_hz,
                min_dr,
                max_dr,
            } => vec![M::NewChannelReq(NewChannelReq {
                ch_index: *ch_index,
                frequency_hz: *frequency_hz,
                min_dr: *min_dr,
                max_dr: *max_dr,
            })],
            MacRequest::DlChannel {
                ch_index,
                frequency_hz,
            } => vec![M::DlChannelReq(DlChannelReq {
                ch_index: *ch_index,
                frequency_hz: *frequency_hz,
            })],
            MacRequest::RxTimingSetup { rx1_delay_s } => {
                vec![M::RxTimingSetupReq(RxTimingSetupReq {
                    delay_seconds: *rx1_delay_s,
                })]
            }
            MacRequest::TxParamSetup {
                uplink_dwell_time_400ms,
                downlink_dwell_time_400ms,
                max_eirp_index,
            } => vec![M::TxParamSetupReq(TxParamSetupReq {
                downlink_dwell_time_400ms: *downlink_dwell_time_400ms,
                uplink_dwell_time_400ms: *uplink_dwell_time_400ms,
                max_eirp_index: *max_eirp_index,
            })],
            MacRequest::AdrParamSetup {
                limit_exp,
                delay_exp,
            } => vec![M::AdrParamSetupReq(AdrParamSetupReq {
                limit_exp: *limit_exp,
                delay_exp: *delay_exp,
            })],
            MacRequest::RejoinParamSetup {
                max_time_n,
                max_count_n,
            } => vec![M::RejoinParamSetupReq(RejoinParamSetupReq {
                max_time_n: *max_time_n,
                max_count_n: *max_count_n,
            })],
            MacRequest::ForceRejoin {
                period,
                max_retries,
                rejoin_type,
                dr,
            } => vec![M::ForceRejoinReq(ForceRejoinReq {
                period: *period,
                max_retries: *max_retries,
                rejoin_type: *rejoin_type,
                data_rate: *dr,
            })],
        }
    }

    /// The encoded bytes, or why they cannot be encoded (a field out of range, a
    /// frequency that is not a multiple of 100 Hz).
    pub fn encode(&self) -> Result<Vec<u8>, codec::MacError> {
        codec::encode(&self.commands())
    }
}

/// An answer to a request of the device, for the next downlink only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum MacAnswer {
    /// LinkCheckAns.
    LinkCheck {
        /// Link margin in dB above the demodulation floor (0..=254).
        margin_db: u8,
        /// Gateways that heard the request.
        gw_cnt: u8,
    },
    /// DeviceTimeAns: GPS time at the end of the uplink.
    DeviceTime {
        /// Whole seconds since the GPS epoch (mod 2^32).
        gps_time_seconds: u32,
        /// Fraction of a second in 1/256 s.
        fraction_256ths: u8,
    },
    /// ResetConf (1.1).
    ResetConf {
        /// The LoRaWAN 1.x minor version the network speaks with the device.
        serv_lorawan_minor: u8,
    },
    /// RekeyConf (1.1).
    RekeyConf {
        /// The LoRaWAN 1.x minor version the network speaks with the device.
        serv_lorawan_minor: u8,
    },
}

impl MacAnswer {
    /// The command on the wire.
    pub fn command(&self) -> MacCommand {
        match *self {
            MacAnswer::LinkCheck { margin_db, gw_cnt } => {
                MacCommand::LinkCheckAns(LinkCheckAns { margin_db, gw_cnt })
            }
            MacAnswer::DeviceTime {
                gps_time_seconds,
                fraction_256ths,
            } => MacCommand::DeviceTimeAns(DeviceTimeAns {
                gps_time_seconds,
                fraction_256ths,
            }),
            MacAnswer::ResetConf { serv_lorawan_minor } => {
                MacCommand::ResetConf(ResetConf { serv_lorawan_minor })
            }
            MacAnswer::RekeyConf { serv_lorawan_minor } => {
                MacCommand::RekeyConf(RekeyConf { serv_lorawan_minor })
            }
        }
    }

    /// Encoded length, CID included.
    pub fn encoded_len(&self) -> usize {
        self.command().encoded_len()
    }
}

/// A request in the session: queued, in flight, or waiting to be sent again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// Identifies the request among the session's (for the downlink that carries it).
    pub id: u32,
    /// What is asked.
    pub request: MacRequest,
    /// How many downlinks carried it so far.
    pub sent: u8,
    /// Sent, and the device's next uplink has not been seen yet.
    pub awaiting_answer: bool,
}

/// The order LoRaWAN introduced commands in: a downlink lists older commands first, so
/// that a device that stops at the first command it does not know (1.0.4 §5) still
/// applies the ones it does.
pub(crate) fn introduction_rank(cid: u8) -> u8 {
    match cid {
        cid::LINK_CHECK..=cid::RX_TIMING_SETUP => 0,
        cid::TX_PARAM_SETUP | cid::DL_CHANNEL => 1,
        cid::DEVICE_TIME => 2,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_requests() -> Vec<MacRequest> {
        vec![
            MacRequest::LinkAdr(LinkAdrRequest {
                dr: 5,
                tx_power_index: 1,
                nb_trans: 1,
                ch_masks: vec![
                    ChMask { cntl: 7, mask: 2 },
                    ChMask {
                        cntl: 0,
                        mask: 0xff00,
                    },
                ],
                enabled_channels: vec![8, 9, 10, 11, 12, 13, 14, 15, 65],
            }),
            MacRequest::DutyCycle { max_duty_cycle: 7 },
            MacRequest::RxParamSetup {
                rx1_dr_offset: 1,
                rx2_dr: 3,
                rx2_frequency_hz: 869_525_000,
            },
            MacRequest::DevStatus,
            MacRequest::NewChannel {
                ch_index: 3,
                frequency_hz: 867_100_000,
                min_dr: 0,
                max_dr: 5,
            },
            MacRequest::DlChannel {
                ch_index: 3,
                frequency_hz: 869_100_000,
            },
            MacRequest::RxTimingSetup { rx1_delay_s: 3 },
            MacRequest::TxParamSetup {
                uplink_dwell_time_400ms: false,
                downlink_dwell_time_400ms: true,
                max_eirp_index: 5,
            },
            MacRequest::AdrParamSetup {
                limit_exp: 7,
                delay_exp: 6,
            },
            MacRequest::RejoinParamSetup {
                max_time_n: 4,
                max_count_n: 10,
            },
            MacRequest::ForceRejoin {
                period: 1,
                max_retries: 2,
                rejoin_type: 2,
                dr: 3,
            },
        ]
    }

    #[test]
    fn every_request_round_trips_through_the_codec_and_serde() {
        for r in all_requests() {
            let bytes = r.encode().unwrap();
            let decoded = codec::decode_downlink(&bytes).unwrap();
            assert_eq!(decoded, r.commands(), "{r:?}");
            assert!(decoded.iter().all(|c| c.cid() == r.cid()));
            let len: usize = decoded.iter().map(MacCommand::encoded_len).sum();
            assert_eq!(len, bytes.len());
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<MacRequest>(&json).unwrap(), r);
        }
    }

    #[test]
    fn every_answer_round_trips_through_the_codec_and_serde() {
        let answers = [
            MacAnswer::LinkCheck {
                margin_db: 20,
                gw_cnt: 3,
            },
            MacAnswer::DeviceTime {
                gps_time_seconds: 1_400_000_000,
                fraction_256ths: 128,
            },
            MacAnswer::ResetConf {
                serv_lorawan_minor: 1,
            },
            MacAnswer::RekeyConf {
                serv_lorawan_minor: 1,
            },
        ];
        for a in answers {
            let bytes = codec::encode(&[a.command()]).unwrap();
            assert_eq!(bytes.len(), a.encoded_len());
            assert_eq!(codec::decode_downlink(&bytes).unwrap(), vec![a.command()]);
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<MacAnswer>(&json).unwrap(), a);
        }
    }

    #[test]
    fn unencodable_requests_are_errors_not_panics() {
        let r = MacRequest::RxParamSetup {
            rx1_dr_offset: 9,
            rx2_dr: 0,
            rx2_frequency_hz: 869_525_000,
        };
        assert!(r.encode().is_err());
        let r = MacRequest::NewChannel {
            ch_index: 3,
            frequency_hz: 867_100_050,
            min_dr: 0,
            max_dr: 5,
        };
        assert!(r.encode().is_err());
    }

    #[test]
    fn older_commands_rank_first() {
        assert!(introduction_rank(cid::LINK_ADR) < introduction_rank(cid::DL_CHANNEL));
        assert!(introduction_rank(cid::DL_CHANNEL) < introduction_rank(cid::DEVICE_TIME));
        assert!(introduction_rank(cid::DEVICE_TIME) < introduction_rank(cid::RESET));
        assert_eq!(introduction_rank(cid::DEV_STATUS), 0);
    }
}
