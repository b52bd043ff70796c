//! A test harness for the pure core, in the style of quinn's `Pair`: virtual gateways
//! and devices exchange frames with a [`NetworkServer`] while time is stepped by hand.
//! No sockets, no sleeping.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lorikeet_lorawan::crypto::{
    self, JoinContext, JoinType, SessionKeys, UplinkMicContext, Version,
};
use lorikeet_lorawan::phy::{FCtrl, PhyPayload};
use lorikeet_lorawan::{Aes128Key, DevAddr, DevNonce, Eui64};
use lorikeet_ns::device::{DeviceProfile, RxWindows};
use lorikeet_ns::region::{Modulation, RegParamsRevision, RegionHandle};
use lorikeet_ns::{
    Device, DownlinkRequest, Event, JoinState, MacVersion, NetworkServer, NsConfig, Output,
    QueueItem, RootKeys, RxFrame, RxInfo, Session, StoreChange, TxInfo, TxResult,
};
use lorikeet_region::{build_region, RegionConfig};
use rand::rngs::StdRng;
use rand::SeedableRng;
use uuid::Uuid;

pub fn region(name: &str) -> RegionHandle {
    region_with(name, &RegionConfig::default())
}

pub fn region_with(name: &str, cfg: &RegionConfig) -> RegionHandle {
    build_region(name, cfg).expect("region")
}

pub fn profile(region: RegionHandle, mac_version: MacVersion) -> Arc<DeviceProfile> {
    Arc::new(DeviceProfile {
        id: Uuid::from_u128(1),
        region,
        mac_version,
        reg_params_revision: RegParamsRevision::Rp002V1_0_3,
        supports_otaa: true,
        supports_class_c: false,
        adr_enabled: true,
        rx1_delay_s: 1,
        rx1_dr_offset: 0,
        rx2_dr: None,
        rx2_frequency_hz: None,
        class_c_timeout_s: 5,
        mac_settings: Default::default(),
    })
}

pub fn key(b: u8) -> Aes128Key {
    Aes128Key::from_bytes([b; 16])
}

pub fn eui(n: u64) -> Eui64 {
    Eui64::from_u64(n)
}

/// A gateway: its id and its concentrator clock (µs, wrapping), offset from ours.
#[derive(Debug, Clone, Copy)]
pub struct VirtualGateway {
    pub id: Eui64,
    pub tmst_offset_us: u32,
}

/// One gateway hearing one transmission.
#[derive(Debug, Clone, Copy)]
pub struct Heard {
    pub gateway: usize,
    pub snr_db: f32,
    pub rssi_dbm: i32,
    /// Backhaul delay of this copy.
    pub delay: Duration,
}

impl Heard {
    pub fn by(gateway: usize) -> Self {
        Heard {
            gateway,
            snr_db: 5.0,
            rssi_dbm: -80,
            delay: Duration::from_millis(20),
        }
    }
    pub fn snr(mut self, snr: f32) -> Self {
        self.snr_db = snr;
        self
    }
    pub fn after(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// The core plus its environment.
pub struct Harness {
    pub ns: NetworkServer,
    pub t0: Instant,
    pub now: Instant,
    pub wall0: SystemTime,
    pub rng: StdRng,
    pub gateways: Vec<VirtualGateway>,
    /// Every output, in order.
    pub log: Vec<Output>,
    /// Transmits not yet answered with a TX_ACK.
    pub pending_tx: VecDeque<DownlinkRequest>,
    /// When each frame was handed out.
    pub handed_at: std::collections::HashMap<lorikeet_ns::DownlinkId, Instant>,
    /// Copies in flight: (arrival, frame).
    in_transit: Vec<(Instant, RxFrame)>,
    next_uplink_id: u32,
    /// Whether gateways stamp receptions with a synchronised clock (`time`).
    pub gateway_clock: bool,
}

impl Harness {
    pub fn new(config: NsConfig, gateways: usize) -> Self {
        let t0 = Instant::now();
        Harness {
            ns: NetworkServer::new(config),
            t0,
            now: t0,
            wall0: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            rng: StdRng::seed_from_u64(7),
            gateways: (0..gateways)
                .map(|i| VirtualGateway {
                    id: eui(0xaa00 + i as u64),
                    tmst_offset_us: 1_000_000u32.wrapping_mul(i as u32 + 1).wrapping_add(12_345),
                })
                .collect(),
            log: Vec::new(),
            pending_tx: VecDeque::new(),
            handed_at: std::collections::HashMap::new(),
            in_transit: Vec::new(),
            next_uplink_id: 1,
            gateway_clock: true,
        }
    }

    pub fn eu868() -> Self {
        Harness::new(NsConfig::default(), 3)
    }

    pub fn wall(&self) -> SystemTime {
        self.wall0 + (self.now - self.t0)
    }

    /// The gateway's concentrator counter at `at` (wrapping µs).
    pub fn tmst(&self, gateway: usize, at: Instant) -> u32 {
        let us = (at - self.t0).as_micros() as u64;
        (us as u32).wrapping_add(self.gateways[gateway].tmst_offset_us)
    }

    /// A device transmits `phy` now; each gateway in `heard` delivers a copy after its delay.
    pub fn transmit(&mut self, phy: &[u8], tx: TxInfo, heard: &[Heard]) {
        let payload: Arc<[u8]> = Arc::from(phy);
        for h in heard {
            let arrival = self.now + h.delay;
            let rx = RxInfo {
                gateway_id: self.gateways[h.gateway].id,
                uplink_id: self.next_uplink_id,
                tmst: self.tmst(h.gateway, self.now),
                // The gateway stamps the end of reception with its (synchronised) clock.
                gw_time: self.gateway_clock.then(|| self.wall()),
                time_since_gps_epoch_ms: None,
                ns_time: self.wall0 + (arrival - self.t0),
                rssi_dbm: h.rssi_dbm,
                snr_db: Some(h.snr_db),
                channel: 0,
                rf_chain: 0,
                antenna: 0,
                board: 0,
                location: None,
            };
            self.next_uplink_id += 1;
            self.in_transit.push((
                arrival,
                RxFrame {
                    phy_payload: payload.clone(),
                    tx_info: tx,
                    rx_info: rx,
                },
            ));
        }
        self.in_transit.sort_by_key(|(t, _)| *t);
    }

    /// Moves time forward by `d`, delivering copies and running timers on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next_copy = self
                .in_transit
                .first()
                .map(|(t, _)| *t)
                .filter(|t| *t <= end);
            let next_timer = self.ns.poll_timeout().filter(|t| *t <= end);
            let step = match (next_copy, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if step > self.now {
                self.now = step;
            }
            if next_copy == Some(step) {
                let (_, frame) = self.in_transit.remove(0);
                self.ns.handle_rx(frame, self.now);
            } else {
                self.ns.handle_timeout(self.now, &mut self.rng);
            }
            self.collect();
        }
        self.now = end;
        self.ns.handle_timeout(self.now, &mut self.rng);
        self.collect();
    }

    fn collect(&mut self) {
        while let Some(o) = self.ns.poll_output() {
            if let Output::Transmit(r) = &o {
                self.pending_tx.push_back(r.clone());
                self.handed_at.insert(r.id, self.now);
            }
            self.log.push(o);
        }
    }

    /// The next frame handed to a gateway (panics when there is none).
    pub fn next_tx(&mut self) -> DownlinkRequest {
        self.pending_tx
            .pop_front()
            .expect("a downlink was expected")
    }

    /// The gateway answers a TX_ACK for `req`.
    pub fn tx_ack(&mut self, req: &DownlinkRequest, result: TxResult) {
        self.ns.handle_tx_result(req.id, result, self.now);
        self.collect();
    }

    pub fn events(&self) -> Vec<&Event> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    pub fn ups(&self) -> Vec<&lorikeet_ns::output::UpEvent> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Up(u) => Some(&**u),
                _ => None,
            })
            .collect()
    }

    pub fn log_codes(&self) -> Vec<&'static str> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Log { code, .. } => Some(code.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn drops(&self) -> Vec<&'static str> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Dropped { reason, .. } => Some(reason.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn stored_sessions(&self, dev_eui: Eui64) -> usize {
        self.log
            .iter()
            .filter(|o| matches!(o, Output::Store(StoreChange::Session { dev_eui: d, .. }) if *d == dev_eui))
            .count()
    }

    pub fn clear(&mut self) {
        self.log.clear();
    }

    /// The microseconds between the uplink's tmst and a downlink's tmst.
    pub fn tmst_delta(up_tmst: u32, req: &DownlinkRequest) -> u32 {
        match req.timing {
            lorikeet_ns::Timing::Delay { tmst } => tmst.wrapping_sub(up_tmst),
            lorikeet_ns::Timing::Immediately => panic!("expected a timed downlink"),
        }
    }
}

/// A device in the field: keys, counters and what it learned from the network.
#[derive(Debug, Clone)]
pub struct VirtualDevice {
    pub dev_eui: Eui64,
    pub join_eui: Eui64,
    pub version: MacVersion,
    pub app_key: Aes128Key,
    pub nwk_key: Option<Aes128Key>,
    pub dev_nonce: u16,
    /// The last JoinNonce accepted; 0 on a factory-fresh device (as LoRaMac-node keeps it).
    pub last_join_nonce: u32,
    pub dev_addr: Option<DevAddr>,
    pub keys: Option<SessionKeys>,
    pub f_cnt_up: u32,
    /// Last downlink counter seen (for reconstructing the next).
    pub last_f_cnt_down: Option<u32>,
    pub last_a_f_cnt_down: Option<u32>,
    pub rx1_delay_s: u8,
    pub rx1_dr_offset: u8,
    pub rx2_dr: u8,
    /// The FCnt of the last confirmed downlink received (to ACK).
    pub conf_f_cnt: Option<u32>,
    /// The ADR bit of its uplinks.
    pub adr: bool,
    /// The ADRACKReq bit of its uplinks.
    pub adr_ack_req: bool,
}

impl VirtualDevice {
    pub fn otaa(n: u64, version: MacVersion) -> Self {
        VirtualDevice {
            dev_eui: eui(0x0100_0000_0000_0000 | n),
            join_eui: eui(0x7000_0000_0000_0000),
            version,
            app_key: key(0x2b),
            nwk_key: version.is_1_1().then(|| key(0x3c)),
            dev_nonce: 0,
            last_join_nonce: 0,
            dev_addr: None,
            keys: None,
            f_cnt_up: 0,
            last_f_cnt_down: None,
            last_a_f_cnt_down: None,
            rx1_delay_s: 1,
            rx1_dr_offset: 0,
            rx2_dr: 0,
            conf_f_cnt: None,
            adr: true,
            adr_ack_req: false,
        }
    }

    fn crypto_version(&self) -> Version {
        if self.version.is_1_1() {
            Version::V1_1
        } else {
            Version::V1_0
        }
    }

    /// The device as provisioned on the server (no session).
    pub fn provisioned(&self, profile: Arc<DeviceProfile>) -> Device {
        Device {
            dev_eui: self.dev_eui,
            join_eui: self.join_eui,
            profile,
            skip_f_cnt_check: false,
            disabled: false,
            root_keys: Some(RootKeys {
                app_key: self.app_key.clone(),
                nwk_key: self.nwk_key.clone(),
            }),
            join: JoinState::default(),
            session: None,
            queue: VecDeque::new(),
        }
    }

    /// ABP: the device and the server share a session made up here.
    pub fn abp(&mut self, dev_addr: DevAddr, profile: Arc<DeviceProfile>) -> Device {
        let keys = if self.version.is_1_1() {
            SessionKeys {
                f_nwk_s_int_key: key(0x51),
                s_nwk_s_int_key: key(0x52),
                nwk_s_enc_key: key(0x53),
                app_s_key: key(0x54),
            }
        } else {
            SessionKeys::from_1_0(key(0x61), key(0x62))
        };
        self.dev_addr = Some(dev_addr);
        self.keys = Some(keys.clone());
        let (f, dr) = profile.region.rx2_default();
        self.rx2_dr = dr;
        let mut d = self.provisioned(profile);
        d.root_keys = None;
        d.session = Some(Session::new(
            dev_addr,
            keys,
            RxWindows {
                rx1_delay_s: 1,
                rx1_dr_offset: 0,
                rx2_dr: dr,
                rx2_frequency_hz: f,
            },
        ));
        d
    }

    pub fn join_request(&mut self) -> Vec<u8> {
        let key = self.nwk_key.clone().unwrap_or_else(|| self.app_key.clone());
        crypto::build_join_request(self.join_eui, self.dev_eui, DevNonce(self.dev_nonce), &key)
            .expect("join request")
    }

    /// Opens a JoinAccept answering the last JoinRequest and takes the session.
    pub fn accept(&mut self, phy: &[u8]) -> Result<(), String> {
        let phy = PhyPayload::decode(phy).map_err(|e| e.to_string())?;
        let ctx = JoinContext {
            join_type: JoinType::Join,
            join_eui: self.join_eui,
            dev_eui: self.dev_eui,
            dev_nonce: DevNonce(self.dev_nonce),
        };
        let nwk_key = self.nwk_key.clone().unwrap_or_else(|| self.app_key.clone());
        let ja = crypto::open_join_accept(&phy, &ctx, &nwk_key).map_err(|e| e.to_string())?;
        if ja.dl_settings.opt_neg != self.version.is_1_1() {
            return Err("OptNeg does not match the device's version".into());
        }
        // LoRaWAN 1.1 devices accept only a JoinNonce greater than the last one.
        if self.version.is_1_1() && ja.join_nonce.get() <= self.last_join_nonce {
            return Err(format!(
                "JoinNonce {} is not greater than the last accepted {}",
                ja.join_nonce.get(),
                self.last_join_nonce
            ));
        }
        self.last_join_nonce = ja.join_nonce.get();
        let keys = crypto::derive_session_keys(&ja, &ctx, &nwk_key, &self.app_key);
        self.keys = Some(keys);
        self.dev_addr = Some(ja.dev_addr);
        self.f_cnt_up = 0;
        self.last_f_cnt_down = None;
        self.last_a_f_cnt_down = None;
        self.rx1_delay_s = ja.rx1_delay_seconds();
        self.rx1_dr_offset = ja.dl_settings.rx1_dr_offset;
        self.rx2_dr = ja.dl_settings.rx2_dr;
        self.dev_nonce += 1;
        Ok(())
    }

    /// Builds the next data uplink (and counts it).
    pub fn uplink(
        &mut self,
        f_port: Option<u8>,
        payload: &[u8],
        confirmed: bool,
        ack: bool,
        tx_dr: u8,
        tx_ch: u8,
    ) -> Vec<u8> {
        let frame = self.uplink_with(self.f_cnt_up, f_port, payload, confirmed, ack, tx_dr, tx_ch);
        self.f_cnt_up += 1;
        frame
    }

    /// Builds a data uplink with a chosen counter (does not count).
    #[allow(clippy::too_many_arguments)]
    pub fn uplink_with(
        &self,
        f_cnt: u32,
        f_port: Option<u8>,
        payload: &[u8],
        confirmed: bool,
        ack: bool,
        tx_dr: u8,
        tx_ch: u8,
    ) -> Vec<u8> {
        self.uplink_opts(f_cnt, f_port, payload, &[], confirmed, ack, tx_dr, tx_ch)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn uplink_opts(
        &self,
        f_cnt: u32,
        f_port: Option<u8>,
        payload: &[u8],
        f_opts: &[u8],
        confirmed: bool,
        ack: bool,
        tx_dr: u8,
        tx_ch: u8,
    ) -> Vec<u8> {
        let keys = self.keys.as_ref().expect("session");
        let frame = crypto::DataFrame {
            confirmed,
            dev_addr: self.dev_addr.expect("session"),
            f_ctrl: FCtrl {
                adr: self.adr,
                adr_ack_req: self.adr_ack_req,
                ack,
                f_pending_or_class_b: false,
            },
            f_cnt,
            f_opts: f_opts.to_vec(),
            f_port,
            frm_payload: payload.to_vec(),
        };
        let ctx = UplinkMicContext {
            conf_f_cnt: if ack { self.conf_f_cnt.unwrap_or(0) } else { 0 },
            tx_dr,
            tx_ch,
        };
        crypto::build_data_uplink(&frame, self.crypto_version(), keys, &ctx).expect("uplink")
    }

    /// Opens a data downlink as the device would (MIC, counter, decryption).
    pub fn receive(
        &mut self,
        phy: &[u8],
        acked_up: Option<u32>,
    ) -> Result<crypto::DataFrame, String> {
        let parsed = PhyPayload::decode(phy).map_err(|e| e.to_string())?;
        let data = parsed.data().ok_or("not a data frame")?;
        let app = self.version.is_1_1() && data.f_port.is_some_and(|p| p > 0);
        let last = if app {
            self.last_a_f_cnt_down
        } else {
            self.last_f_cnt_down
        };
        let f_cnt = lorikeet_lorawan::fcnt::reconstruct_f_cnt(last, data.fhdr.f_cnt, 16384)
            .ok_or("downlink counter replayed")?;
        let keys = self.keys.as_ref().ok_or("no session")?;
        let frame = crypto::open_data_downlink(
            &parsed,
            f_cnt,
            self.crypto_version(),
            keys,
            acked_up.unwrap_or(0),
        )
        .map_err(|e| e.to_string())?;
        if app {
            self.last_a_f_cnt_down = Some(f_cnt);
        } else {
            self.last_f_cnt_down = Some(f_cnt);
        }
        if frame.confirmed {
            self.conf_f_cnt = Some(f_cnt);
        }
        Ok(frame)
    }
}

/// The MAC commands of an opened downlink (FOpts, or the FPort-0 payload).
pub fn mac_commands(frame: &crypto::DataFrame) -> Vec<lorikeet_lorawan::mac::MacCommand> {
    let bytes = if frame.f_port == Some(0) {
        &frame.frm_payload
    } else {
        &frame.f_opts
    };
    lorikeet_lorawan::mac::decode_downlink(bytes).expect("downlink MAC commands decode")
}

/// LoRa uplink metadata for a region's DR on a frequency.
pub fn tx(region: &RegionHandle, frequency_hz: u32, dr: u8) -> TxInfo {
    let modulation: Modulation = region.data_rate(dr).expect("dr").modulation;
    TxInfo {
        frequency_hz,
        modulation,
        code_rate: Some(5),
    }
}

/// A queue item.
pub fn item(n: u128, f_port: u8, data: &[u8], confirmed: bool) -> QueueItem {
    QueueItem {
        id: Uuid::from_u128(n),
        f_port,
        data: data.to_vec(),
        confirmed,
        expires_at: None,
    }
}

pub fn ctx() -> BTreeMap<String, String> {
    BTreeMap::new()
}
