//! A simulated end device: OTAA or ABP, LoRaWAN 1.0.x or 1.1, building signed
//! uplinks and opening downlinks exactly as a device's stack would.

use lorikeet_lorawan::crypto::{
    self, JoinContext, JoinType, SessionKeys, UplinkMicContext, Version,
};
use lorikeet_lorawan::mac::{self as lmac, MacCommand};
use lorikeet_lorawan::phy::{FCtrl, PhyPayload};
use lorikeet_lorawan::{Aes128Key, DevAddr, DevNonce, Eui64};

/// Why the device refused a frame.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Not a frame for us, or it failed its MIC.
    #[error("frame refused: {0}")]
    Refused(String),
    /// The device has no session yet.
    #[error("the device has not joined")]
    NotJoined,
    /// A JoinAccept (MIC valid) whose JoinNonce is not greater than the last one this
    /// 1.1 device accepted: a server that reuses JoinNonces (e.g. one that lost its
    /// join state in a crash) is refused, as LoRaMac-node does.
    #[error("JoinNonce {got} is not greater than the last accepted {last}")]
    JoinNonceNotGreater {
        /// The JoinNonce in the frame.
        got: u32,
        /// The last one accepted.
        last: u32,
    },
    /// A data downlink whose counter is not greater than the last one accepted on
    /// that counter (a reused FCntDown: the frame is dropped, as a device does).
    #[error("downlink counter replayed: FCnt {wire} (16 bits) after {last}")]
    DownlinkCounterReplayed {
        /// The application counter (1.1, FPort > 0) rather than the network one.
        app: bool,
        /// The last counter accepted.
        last: u32,
        /// The 16 low bits in the frame.
        wire: u16,
    },
}

/// The session a device holds.
#[derive(Debug, Clone)]
pub struct SimSession {
    /// Its address.
    pub dev_addr: DevAddr,
    /// Its keys.
    pub keys: SessionKeys,
    /// Next uplink counter.
    pub f_cnt_up: u32,
    /// Last network downlink counter seen.
    pub n_f_cnt_down: Option<u32>,
    /// Last application downlink counter seen (1.1).
    pub a_f_cnt_down: Option<u32>,
    /// RX1 delay in seconds.
    pub rx1_delay_s: u8,
    /// RX1 data-rate offset.
    pub rx1_dr_offset: u8,
    /// RX2 data rate.
    pub rx2_dr: u8,
    /// The counter of the last confirmed downlink (to acknowledge).
    pub pending_ack_of: Option<u32>,
    /// The FCnt of our last confirmed uplink (for a 1.1 downlink MIC with ACK).
    pub last_confirmed_up: Option<u32>,
}

/// A simulated device.
#[derive(Debug, Clone)]
pub struct SimDevice {
    /// DevEUI.
    pub dev_eui: Eui64,
    /// JoinEUI.
    pub join_eui: Eui64,
    /// LoRaWAN 1.1 (otherwise 1.0.x).
    pub v11: bool,
    /// AppKey.
    pub app_key: Aes128Key,
    /// NwkKey (1.1).
    pub nwk_key: Option<Aes128Key>,
    /// Next DevNonce.
    pub dev_nonce: u16,
    /// The last JoinNonce accepted: 0 on a factory-fresh device. A 1.1 device accepts
    /// only a greater one (as LoRaMac-node does), so a server that reuses or restarts
    /// JoinNonces is caught.
    pub last_join_nonce: u32,
    /// The session, once joined or activated.
    pub session: Option<SimSession>,
    /// Sets the ADR bit in uplinks (the network then drives data rate and power).
    pub adr: bool,
    /// MAC state the network told us to use (LinkADRReq, RX settings...).
    pub mac: SimMac,
}

/// What a device learned and owes through MAC commands.
#[derive(Debug, Clone, Default)]
pub struct SimMac {
    /// Commands to send in the next uplink's FOpts (answers, then our own requests).
    pub out: Vec<MacCommand>,
    /// Data rate set by the last accepted LinkADRReq.
    pub data_rate: Option<u8>,
    /// TX power index set by the last accepted LinkADRReq.
    pub tx_power: Option<u8>,
    /// NbTrans set by the last accepted LinkADRReq.
    pub nb_trans: Option<u8>,
    /// The last LinkCheckAns received.
    pub link_check: Option<lmac::LinkCheckAns>,
    /// The last DeviceTimeAns received.
    pub device_time: Option<lmac::DeviceTimeAns>,
    /// Every downlink command received, in order, by CID (for tests and reports).
    pub received: Vec<u8>,
}

impl SimDevice {
    /// An OTAA device.
    pub fn otaa(
        dev_eui: Eui64,
        join_eui: Eui64,
        app_key: Aes128Key,
        nwk_key: Option<Aes128Key>,
    ) -> Self {
        SimDevice {
            dev_eui,
            join_eui,
            v11: nwk_key.is_some(),
            app_key,
            nwk_key,
            dev_nonce: 0,
            last_join_nonce: 0,
            session: None,
            adr: false,
            mac: SimMac::default(),
        }
    }

    /// An ABP device with a session made up by the caller (and provisioned on the
    /// server with the same keys).
    pub fn abp(
        dev_eui: Eui64,
        dev_addr: DevAddr,
        keys: SessionKeys,
        v11: bool,
        rx2_dr: u8,
    ) -> Self {
        SimDevice {
            dev_eui,
            join_eui: Eui64::default(),
            v11,
            app_key: Aes128Key::default(),
            nwk_key: None,
            dev_nonce: 0,
            last_join_nonce: 0,
            session: Some(SimSession {
                dev_addr,
                keys,
                f_cnt_up: 0,
                n_f_cnt_down: None,
                a_f_cnt_down: None,
                rx1_delay_s: 1,
                rx1_dr_offset: 0,
                rx2_dr,
                pending_ack_of: None,
                last_confirmed_up: None,
            }),
            adr: false,
            mac: SimMac::default(),
        }
    }

    fn version(&self) -> Version {
        if self.v11 {
            Version::V1_1
        } else {
            Version::V1_0
        }
    }

    fn join_key(&self) -> Aes128Key {
        self.nwk_key.clone().unwrap_or_else(|| self.app_key.clone())
    }

    /// A JoinRequest with the current DevNonce.
    pub fn join_request(&self) -> Vec<u8> {
        // Building a JoinRequest from valid fields cannot fail.
        crypto::build_join_request(
            self.join_eui,
            self.dev_eui,
            DevNonce(self.dev_nonce),
            &self.join_key(),
        )
        .unwrap_or_default()
    }

    /// Opens the JoinAccept answering the last JoinRequest and takes its session.
    pub fn handle_join_accept(&mut self, phy: &[u8]) -> Result<(), SimError> {
        let parsed = PhyPayload::decode(phy).map_err(|e| SimError::Refused(e.to_string()))?;
        let ctx = JoinContext {
            join_type: JoinType::Join,
            join_eui: self.join_eui,
            dev_eui: self.dev_eui,
            dev_nonce: DevNonce(self.dev_nonce),
        };
        let key = self.join_key();
        let ja = crypto::open_join_accept(&parsed, &ctx, &key)
            .map_err(|e| SimError::Refused(e.to_string()))?;
        let join_nonce = ja.join_nonce.get();
        if self.v11 && join_nonce <= self.last_join_nonce {
            return Err(SimError::JoinNonceNotGreater {
                got: join_nonce,
                last: self.last_join_nonce,
            });
        }
        self.last_join_nonce = join_nonce;
        let keys = crypto::derive_session_keys(&ja, &ctx, &key, &self.app_key);
        self.session = Some(SimSession {
            dev_addr: ja.dev_addr,
            keys,
            f_cnt_up: 0,
            n_f_cnt_down: None,
            a_f_cnt_down: None,
            rx1_delay_s: ja.rx1_delay_seconds(),
            rx1_dr_offset: ja.dl_settings.rx1_dr_offset,
            rx2_dr: ja.dl_settings.rx2_dr,
            pending_ack_of: None,
            last_confirmed_up: None,
        });
        self.dev_nonce = self.dev_nonce.wrapping_add(1);
        Ok(())
    }

    /// Builds the next uplink (and counts it). The ACK bit is set when a confirmed
    /// downlink is waiting for it.
    pub fn uplink(
        &mut self,
        f_port: u8,
        payload: &[u8],
        confirmed: bool,
        tx_dr: u8,
        tx_ch: u8,
    ) -> Result<Vec<u8>, SimError> {
        let version = self.version();
        let s = self.session.as_mut().ok_or(SimError::NotJoined)?;
        let ack_of = s.pending_ack_of.take();
        let f_opts = take_f_opts(&mut self.mac.out);
        let frame = crypto::DataFrame {
            confirmed,
            dev_addr: s.dev_addr,
            f_ctrl: FCtrl {
                adr: self.adr,
                adr_ack_req: false,
                ack: ack_of.is_some(),
                f_pending_or_class_b: false,
            },
            f_cnt: s.f_cnt_up,
            f_opts,
            f_port: Some(f_port),
            frm_payload: payload.to_vec(),
        };
        let ctx = UplinkMicContext {
            conf_f_cnt: ack_of.unwrap_or(0),
            tx_dr,
            tx_ch,
        };
        let out = crypto::build_data_uplink(&frame, version, &s.keys, &ctx)
            .map_err(|e| SimError::Refused(e.to_string()))?;
        if confirmed {
            s.last_confirmed_up = Some(s.f_cnt_up);
        }
        s.f_cnt_up = s.f_cnt_up.wrapping_add(1);
        Ok(out)
    }

    /// Opens a data downlink (MIC, counter, decryption), remembering to ACK it when confirmed.
    pub fn handle_downlink(&mut self, phy: &[u8]) -> Result<crypto::DataFrame, SimError> {
        let version = self.version();
        let v11 = self.v11;
        let s = self.session.as_mut().ok_or(SimError::NotJoined)?;
        let parsed = PhyPayload::decode(phy).map_err(|e| SimError::Refused(e.to_string()))?;
        let data = parsed
            .data()
            .ok_or_else(|| SimError::Refused("not a data frame".into()))?;
        if data.fhdr.dev_addr != s.dev_addr {
            return Err(SimError::Refused("another device's address".into()));
        }
        let app = v11 && data.f_port.is_some_and(|p| p > 0);
        let last = if app { s.a_f_cnt_down } else { s.n_f_cnt_down };
        let f_cnt = lorikeet_lorawan::fcnt::reconstruct_f_cnt(last, data.fhdr.f_cnt, 16_384)
            .ok_or(SimError::DownlinkCounterReplayed {
                app,
                last: last.unwrap_or(0),
                wire: data.fhdr.f_cnt,
            })?;
        let frame = crypto::open_data_downlink(
            &parsed,
            f_cnt,
            version,
            &s.keys,
            s.last_confirmed_up.unwrap_or(0),
        )
        .map_err(|e| SimError::Refused(e.to_string()))?;
        if app {
            s.a_f_cnt_down = Some(f_cnt);
        } else {
            s.n_f_cnt_down = Some(f_cnt);
        }
        if frame.confirmed {
            s.pending_ack_of = Some(f_cnt);
        }
        let mac_bytes = if frame.f_port == Some(0) {
            &frame.frm_payload
        } else {
            &frame.f_opts
        };
        if !mac_bytes.is_empty() {
            let cmds = lmac::decode_downlink(mac_bytes)
                .map_err(|e| SimError::Refused(format!("MAC commands: {e}")))?;
            for c in cmds {
                self.answer(c);
            }
        }
        Ok(frame)
    }

    /// Queues a LinkCheckReq for the next uplink.
    pub fn request_link_check(&mut self) {
        self.mac.out.push(MacCommand::LinkCheckReq);
    }

    /// Queues a DeviceTimeReq for the next uplink.
    pub fn request_device_time(&mut self) {
        self.mac.out.push(MacCommand::DeviceTimeReq);
    }

    /// Acts on one downlink MAC command as a cooperative device does: accepts every
    /// setting, applies it, and queues the answer.
    fn answer(&mut self, c: MacCommand) {
        self.mac.received.push(c.cid());
        let answer = match c {
            MacCommand::LinkCheckAns(a) => {
                self.mac.link_check = Some(a);
                None
            }
            MacCommand::DeviceTimeAns(a) => {
                self.mac.device_time = Some(a);
                None
            }
            MacCommand::LinkAdrReq(r) => {
                // 0xF in DR / TX power means "keep the current value" (1.0.4, 1.1).
                if r.data_rate != 0x0f {
                    self.mac.data_rate = Some(r.data_rate);
                }
                if r.tx_power != 0x0f {
                    self.mac.tx_power = Some(r.tx_power);
                }
                if r.nb_trans != 0 {
                    self.mac.nb_trans = Some(r.nb_trans);
                }
                Some(MacCommand::LinkAdrAns(lmac::LinkAdrAns {
                    power_ack: true,
                    data_rate_ack: true,
                    channel_mask_ack: true,
                }))
            }
            MacCommand::DutyCycleReq(_) => Some(MacCommand::DutyCycleAns),
            MacCommand::RxParamSetupReq(r) => {
                if let Some(s) = self.session.as_mut() {
                    s.rx1_dr_offset = r.rx1_dr_offset;
                    s.rx2_dr = r.rx2_data_rate;
                }
                Some(MacCommand::RxParamSetupAns(lmac::RxParamSetupAns {
                    rx1_dr_offset_ack: true,
                    rx2_data_rate_ack: true,
                    channel_ack: true,
                }))
            }
            MacCommand::DevStatusReq => Some(MacCommand::DevStatusAns(lmac::DevStatusAns {
                battery: 200,
                margin_db: 10,
            })),
            MacCommand::NewChannelReq(_) => Some(MacCommand::NewChannelAns(lmac::NewChannelAns {
                data_rate_range_ok: true,
                channel_frequency_ok: true,
            })),
            MacCommand::RxTimingSetupReq(r) => {
                if let Some(s) = self.session.as_mut() {
                    s.rx1_delay_s = r.delay_seconds.max(1);
                }
                Some(MacCommand::RxTimingSetupAns)
            }
            MacCommand::TxParamSetupReq(_) => Some(MacCommand::TxParamSetupAns),
            MacCommand::DlChannelReq(_) => Some(MacCommand::DlChannelAns(lmac::DlChannelAns {
                uplink_frequency_exists: true,
                channel_frequency_ok: true,
            })),
            MacCommand::AdrParamSetupReq(_) => Some(MacCommand::AdrParamSetupAns),
            MacCommand::RejoinParamSetupReq(_) => {
                Some(MacCommand::RejoinParamSetupAns(lmac::RejoinParamSetupAns {
                    time_ok: true,
                }))
            }
            // Confirmations end the device's own indications; nothing to answer.
            MacCommand::ResetConf(_) | MacCommand::RekeyConf(_) => {
                self.mac
                    .out
                    .retain(|o| !matches!(o, MacCommand::ResetInd(_) | MacCommand::RekeyInd(_)));
                None
            }
            _ => None,
        };
        if let Some(a) = answer {
            self.mac.out.push(a);
        }
    }

    /// Decrypts nothing: a helper for tests to read the plaintext of our own uplink.
    pub fn dev_addr(&self) -> Option<DevAddr> {
        self.session.as_ref().map(|s| s.dev_addr)
    }
}

/// Encodes as many queued commands as fit the 15 bytes of FOpts, in order; the rest
/// wait for the next uplink.
fn take_f_opts(out: &mut Vec<MacCommand>) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut taken = 0;
    for c in out.iter() {
        if bytes.len() + c.encoded_len() > 15 {
            break;
        }
        if c.encode_into(&mut bytes).is_err() {
            break;
        }
        taken += 1;
    }
    out.drain(..taken);
    bytes
}
