//! Scenario tests of the MAC engine and ADR: virtual devices answer (or ignore) the
//! network's MAC commands; time is stepped by hand (see `support`).

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use lorikeet_lorawan::crypto::DataFrame;
use lorikeet_lorawan::mac::{
    self as codec, DevStatusAns, DlChannelAns, LinkAdrAns, MacCommand, NewChannelAns,
    RejoinParamSetupAns, RekeyInd, ResetInd, RxParamSetupAns,
};
use lorikeet_lorawan::DevAddr;
use lorikeet_ns::device::DeviceProfile;
use lorikeet_ns::mac::{DlChannelConfig, MacConfig, MacRequest, ProfileMacSettings};
use lorikeet_ns::region::RegionHandle;
use lorikeet_ns::{DownlinkRequest, Event, MacVersion, NsConfig, Output, StoreChange, TxResult};
use lorikeet_region::{ChannelConfig, RegionConfig, RegionName};
use support::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A harness with one device, ready to join or already activated.
struct Run {
    h: Harness,
    dev: VirtualDevice,
    region: RegionHandle,
    /// Uplink frequency and DR used by `up`.
    freq_hz: u32,
    dr: u8,
    snr_db: f32,
    gateways: usize,
}

fn setup(
    region_name: &str,
    region_cfg: RegionConfig,
    version: MacVersion,
    mac: MacConfig,
    edit: impl FnOnce(&mut DeviceProfile),
) -> (Run, Arc<DeviceProfile>) {
    let region = region_with(region_name, &region_cfg);
    let mut p = (*profile(region.clone(), version)).clone();
    edit(&mut p);
    let p = Arc::new(p);
    let h = Harness::new(
        NsConfig {
            mac,
            ..NsConfig::default()
        },
        3,
    );
    let dev = VirtualDevice::otaa(1, version);
    let (freq_hz, dr) = if region_name == "EU868" {
        (868_100_000, 5)
    } else {
        (903_900_000, 0)
    };
    (
        Run {
            h,
            dev,
            region,
            freq_hz,
            dr,
            snr_db: 5.0,
            gateways: 1,
        },
        p,
    )
}

impl Run {
    /// OTAA: provisions and joins the device.
    fn joined(mut self, p: Arc<DeviceProfile>) -> Self {
        self.h.ns.upsert_device(self.dev.provisioned(p));
        let jr = self.dev.join_request();
        self.h.transmit(
            &jr,
            tx(&self.region, self.freq_hz, self.dr),
            &[Heard::by(0)],
        );
        self.h.advance(ms(300));
        let req = self.h.next_tx();
        self.dev.accept(&req.phy_payload).expect("JoinAccept opens");
        self.h.tx_ack(&req, TxResult::Sent);
        self.h.advance(Duration::from_secs(10));
        self
    }

    /// ABP: provisions the device with a session.
    fn abp(mut self, p: Arc<DeviceProfile>) -> Self {
        let d = self.dev.abp(DevAddr::from_u32(0x0000_1234), p);
        self.h.ns.upsert_device(d);
        self
    }

    /// Sends an uplink with `f_opts` (FPort 10, 1 byte) heard by `self.gateways`
    /// gateways; returns the downlink it caused, opened by the device and acknowledged
    /// by the gateway.
    fn up(&mut self, f_opts: &[MacCommand]) -> Option<(DownlinkRequest, DataFrame)> {
        let f_opts = codec::encode(f_opts).unwrap();
        let f_cnt = self.dev.f_cnt_up;
        let phy = self.dev.uplink_opts(
            f_cnt,
            Some(10),
            b"x",
            &f_opts,
            false,
            false,
            self.dr,
            self.region.uplink_channel_index(self.freq_hz).unwrap(),
        );
        self.dev.f_cnt_up += 1;
        let heard: Vec<Heard> = (0..self.gateways)
            .map(|g| Heard::by(g).snr(self.snr_db - g as f32))
            .collect();
        self.h
            .transmit(&phy, tx(&self.region, self.freq_hz, self.dr), &heard);
        self.h.advance(ms(300));
        let out = self.h.pending_tx.pop_front().map(|req| {
            let frame = self
                .dev
                .receive(&req.phy_payload, None)
                .expect("downlink opens");
            self.h.tx_ack(&req, TxResult::Sent);
            (req, frame)
        });
        self.h.advance(Duration::from_secs(10));
        out
    }

    /// The MAC commands of the downlink answering an uplink with `f_opts` (empty when
    /// there was no downlink).
    fn up_mac(&mut self, f_opts: &[MacCommand]) -> Vec<MacCommand> {
        self.up(f_opts)
            .map(|(_, f)| mac_commands(&f))
            .unwrap_or_default()
    }

    fn mac_state(&self) -> lorikeet_ns::mac::MacState {
        self.h
            .ns
            .device(&self.dev.dev_eui)
            .unwrap()
            .session
            .as_ref()
            .unwrap()
            .state
            .mac
            .clone()
    }

    fn session(&self) -> lorikeet_ns::Session {
        self.h
            .ns
            .device(&self.dev.dev_eui)
            .unwrap()
            .session
            .clone()
            .unwrap()
    }
}

fn eu868(version: MacVersion, mac: MacConfig) -> Run {
    let (r, p) = setup("EU868", RegionConfig::default(), version, mac, |_| {});
    r.joined(p)
}

fn quiet_mac() -> MacConfig {
    MacConfig {
        dev_status_interval_s: 0,
        ..MacConfig::default()
    }
}

fn link_adr_reqs(cmds: &[MacCommand]) -> Vec<codec::LinkAdrReq> {
    cmds.iter()
        .filter_map(|c| match c {
            MacCommand::LinkAdrReq(r) => Some(*r),
            _ => None,
        })
        .collect()
}

fn ack_all() -> MacCommand {
    MacCommand::LinkAdrAns(LinkAdrAns {
        power_ack: true,
        data_rate_ack: true,
        channel_mask_ack: true,
    })
}

#[test]
fn link_check_is_answered_in_the_next_downlink() {
    let mut r = eu868(MacVersion::V1_0_3, quiet_mac());
    r.gateways = 2;
    r.snr_db = 3.0;
    let cmds = r.up_mac(&[MacCommand::LinkCheckReq]);
    // DR5 = SF7 needs -7.5 dB: 3 - (-7.5) = 10.5 → 10 dB; heard by two gateways.
    assert_eq!(
        cmds,
        vec![MacCommand::LinkCheckAns(codec::LinkCheckAns {
            margin_db: 10,
            gw_cnt: 2
        })]
    );
    // Answers are for one downlink only.
    assert!(r.up(&[]).is_none());
}

#[test]
fn device_time_is_the_gps_time_of_reception() {
    let mut r = eu868(MacVersion::V1_0_4, quiet_mac());
    let sent_at = r.h.wall();
    let cmds = r.up_mac(&[MacCommand::DeviceTimeReq]);
    let [MacCommand::DeviceTimeAns(a)] = cmds.as_slice() else {
        panic!("expected DeviceTimeAns, got {cmds:?}");
    };
    let unix = sent_at
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(u64::from(a.gps_time_seconds), unix - 315_964_800 + 18);
}

#[test]
fn adr_raises_the_dr_only_after_link_adr_ans() {
    let mut r = eu868(MacVersion::V1_0_3, quiet_mac());
    r.dr = 0;
    r.snr_db = 10.0;
    let mut request = None;
    for i in 0..25 {
        let cmds = r.up_mac(&[]);
        let reqs = link_adr_reqs(&cmds);
        if !reqs.is_empty() {
            assert_eq!(i, 19, "ADR waits for a full history of 20 uplinks");
            request = Some(reqs);
            break;
        }
    }
    let reqs = request.expect("a LinkADRReq within 25 uplinks");
    // SF12 needs -20 dB: 10 + 20 - 10 (margin) = 20 dB = 6 steps: DR0 → DR5, then one
    // TX power step.
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].data_rate, 5);
    assert_eq!(reqs[0].tx_power, 1);
    assert_eq!(reqs[0].nb_trans, 1);
    assert_eq!(reqs[0].ch_mask, 0b111);
    // Not applied before the device acknowledges it.
    assert_eq!(r.mac_state().tx_power_index, 0);
    assert_eq!(
        lorikeet_ns::mac::pending_names(&r.mac_state()).get("LinkADRReq"),
        Some(&1)
    );
    // The device acknowledges from its next uplink (at the old DR still).
    assert!(link_adr_reqs(&r.up_mac(&[ack_all()])).is_empty());
    let m = r.mac_state();
    assert_eq!(m.tx_power_index, 1);
    assert_eq!(m.uplink_dr, Some(5));
    assert!(m.pending.is_empty());
    // At DR5 with the new power the settings hold: no further request.
    r.dr = 5;
    for _ in 0..5 {
        assert!(link_adr_reqs(&r.up_mac(&[])).is_empty());
    }
}

#[test]
fn link_adr_nack_leaves_the_session_unchanged_and_caps_the_dr() {
    let mut r = eu868(MacVersion::V1_0_3, quiet_mac());
    r.dr = 0;
    r.snr_db = 10.0;
    let mut asked = false;
    for _ in 0..20 {
        if !link_adr_reqs(&r.up_mac(&[])).is_empty() {
            asked = true;
        }
    }
    assert!(asked);
    r.h.clear();
    let nack = MacCommand::LinkAdrAns(LinkAdrAns {
        power_ack: true,
        data_rate_ack: false,
        channel_mask_ack: true,
    });
    let cmds = r.up_mac(&[nack]);
    let m = r.mac_state();
    assert_eq!(m.tx_power_index, 0, "nothing applied");
    assert_eq!(m.uplink_dr, Some(0));
    assert_eq!(m.adr_max_dr, Some(4), "DR5 refused: ADR stays below it");
    assert!(r.h.log_codes().contains(&"MAC_COMMAND"));
    // The same uplink does not ask again; the next one asks for at most DR4.
    assert!(link_adr_reqs(&cmds).is_empty());
    let reqs = link_adr_reqs(&r.up_mac(&[]));
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].data_rate, 4);
}

#[test]
fn adr_is_off_without_the_adr_bit_or_in_the_profile() {
    let mut r = eu868(MacVersion::V1_0_3, quiet_mac());
    r.dr = 0;
    r.snr_db = 10.0;
    r.dev.adr = false;
    for _ in 0..25 {
        assert!(link_adr_reqs(&r.up_mac(&[])).is_empty());
    }
    let (r2, p) = setup(
        "EU868",
        RegionConfig::default(),
        MacVersion::V1_0_3,
        quiet_mac(),
        |p| p.adr_enabled = false,
    );
    let mut r2 = r2.joined(p);
    r2.dr = 0;
    r2.snr_db = 10.0;
    for _ in 0..25 {
        assert!(link_adr_reqs(&r2.up_mac(&[])).is_empty());
    }
}

#[test]
fn adr_ack_req_gets_a_downlink_even_with_nothing_to_say() {
    let mut r = eu868(MacVersion::V1_0_3, quiet_mac());
    assert!(r.up(&[]).is_none());
    r.dev.adr_ack_req = true;
    let (_, frame) = r.up(&[]).expect("ADRACKReq is answered");
    assert!(frame.f_opts.is_empty());
    r.dev.adr_ack_req = false;
    assert!(r.up(&[]).is_none());
}

#[test]
fn unanswered_requests_are_resent_then_given_up() {
    let mac = MacConfig {
        dev_status_interval_s: 0,
        dev_status_interval_uplinks: 6,
        max_mac_retries: 2,
        ..MacConfig::default()
    };
    let mut r = eu868(MacVersion::V1_0_3, mac);
    let mut carried = Vec::new();
    for _ in 0..12 {
        let cmds = r.up_mac(&[]);
        carried.push(cmds.contains(&MacCommand::DevStatusReq));
    }
    // Asked after the 6th uplink, sent again twice (max_mac_retries), given up at the
    // 9th; the interval counts from the request, so the 12th asks again.
    let (f, t) = (false, true);
    assert_eq!(carried, vec![f, f, f, f, f, t, t, t, f, f, f, t]);
    assert!(r.h.log_codes().contains(&"MAC_COMMAND"));
}

#[test]
fn dev_status_ans_becomes_a_status_event() {
    let mac = MacConfig {
        dev_status_interval_s: 3600,
        ..MacConfig::default()
    };
    let mut r = eu868(MacVersion::V1_0_3, mac);
    // The clock starts at the first uplink; an hour later the device is asked.
    assert!(r.up(&[]).is_none());
    r.h.advance(Duration::from_secs(3600));
    assert_eq!(r.up_mac(&[]), vec![MacCommand::DevStatusReq]);
    r.h.clear();
    let ans = MacCommand::DevStatusAns(DevStatusAns {
        battery: 127,
        margin_db: -3,
    });
    assert!(r.up_mac(&[ans]).is_empty());
    let status: Vec<_> =
        r.h.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Status {
                    margin_db,
                    battery_level_percent,
                    external_power_source,
                    ..
                } => Some((*margin_db, *battery_level_percent, *external_power_source)),
                _ => None,
            })
            .collect();
    assert_eq!(status, vec![(-3, Some(50.0), false)]);
    assert!(r.mac_state().pending.is_empty());
}

#[test]
fn rx_param_setup_is_resent_until_acknowledged_then_applied() {
    let (r, p) = setup(
        "EU868",
        RegionConfig::default(),
        MacVersion::V1_0_3,
        quiet_mac(),
        |p| {
            p.rx2_frequency_hz = Some(869_000_000);
            p.rx2_dr = Some(3);
        },
    );
    let mut r = r.joined(p);
    let want = MacCommand::RxParamSetupReq(codec::RxParamSetupReq {
        rx1_dr_offset: 0,
        rx2_data_rate: 3,
        frequency_hz: 869_000_000,
    });
    assert_eq!(r.up_mac(&[]), vec![want.clone()]);
    // The device missed it: sent again.
    assert_eq!(r.up_mac(&[]), vec![want]);
    assert_eq!(
        r.session().state.rx2_frequency_hz,
        869_525_000,
        "not yet applied"
    );
    let ack = MacCommand::RxParamSetupAns(RxParamSetupAns {
        rx1_dr_offset_ack: true,
        rx2_data_rate_ack: true,
        channel_ack: true,
    });
    assert!(r.up_mac(&[ack]).is_empty());
    let s = r.session();
    assert_eq!((s.state.rx2_frequency_hz, s.state.rx2_dr), (869_000_000, 3));
    // RX2 now uses the new settings.
    let mut h_cfg = r;
    h_cfg
        .h
        .ns
        .set_queue(&h_cfg.dev.dev_eui, vec![item(7, 3, b"q", false)]);
    // Force RX2: refuse RX1.
    let f_cnt = h_cfg.dev.f_cnt_up;
    let phy = h_cfg
        .dev
        .uplink_with(f_cnt, Some(10), b"x", false, false, 5, 0);
    h_cfg.dev.f_cnt_up += 1;
    h_cfg
        .h
        .transmit(&phy, tx(&h_cfg.region, 868_100_000, 5), &[Heard::by(0)]);
    h_cfg.h.advance(ms(300));
    let rx1 = h_cfg.h.next_tx();
    h_cfg.h.tx_ack(&rx1, TxResult::Rejected("TOO_LATE".into()));
    let rx2 = h_cfg.h.next_tx();
    assert_eq!((rx2.frequency_hz, rx2.dr), (869_000_000, 3));
}

#[test]
fn rx_param_setup_nack_is_logged_and_not_asked_again() {
    let (r, p) = setup(
        "EU868",
        RegionConfig::default(),
        MacVersion::V1_0_3,
        quiet_mac(),
        |p| p.rx2_frequency_hz = Some(869_000_000),
    );
    let mut r = r.joined(p);
    assert_eq!(r.up_mac(&[]).len(), 1);
    let nack = MacCommand::RxParamSetupAns(RxParamSetupAns {
        rx1_dr_offset_ack: true,
        rx2_data_rate_ack: true,
        channel_ack: false,
    });
    assert!(r.up_mac(&[nack]).is_empty());
    assert_eq!(r.session().state.rx2_frequency_hz, 869_525_000);
    assert!(r.h.log_codes().contains(&"MAC_COMMAND"));
    for _ in 0..3 {
        assert!(r.up_mac(&[]).is_empty());
    }
}

#[test]
fn mac_commands_over_15_bytes_go_on_fport_0_and_make_room_for_payloads() {
    // An ABP device on EU868 with five extra channels: it needs NewChannelReqs (6
    // bytes each, two per downlink), a DlChannelReq (5) and a DutyCycleReq (2).
    let cfg = RegionConfig {
        extra_channels: [
            867_100_000u32,
            867_300_000,
            867_500_000,
            867_700_000,
            867_900_000,
        ]
        .iter()
        .map(|&f| ChannelConfig {
            frequency_hz: f,
            min_dr: 0,
            max_dr: 5,
        })
        .collect(),
        ..RegionConfig::default()
    };
    let mac = MacConfig {
        dev_status_interval_s: 0,
        max_duty_cycle: 3,
        dl_channels: vec![DlChannelConfig {
            region: RegionName::Eu868,
            uplink_frequency_hz: 868_100_000,
            downlink_frequency_hz: 869_100_000,
        }],
        ..MacConfig::default()
    };
    let (r, p) = setup("EU868", cfg, MacVersion::V1_0_3, mac, |_| {});
    let mut r = r.abp(p);
    let (_, frame) = r.up(&[]).expect("a MAC downlink");
    assert_eq!(frame.f_port, Some(0), "19 bytes of MAC commands: FPort 0");
    assert!(frame.f_opts.is_empty());
    let cmds = mac_commands(&frame);
    let names: Vec<u8> = cmds.iter().map(MacCommand::cid).collect();
    // Older commands first: DutyCycle (0x04), NewChannel ×2 (0x07), DlChannel (0x0a).
    assert_eq!(names, vec![0x04, 0x07, 0x07, 0x0a]);
    let ok_ch = MacCommand::NewChannelAns(NewChannelAns {
        data_rate_range_ok: true,
        channel_frequency_ok: true,
    });
    let ok_dl = MacCommand::DlChannelAns(DlChannelAns {
        uplink_frequency_exists: true,
        channel_frequency_ok: true,
    });
    // With a queue item waiting, the payload goes and MAC commands ride in FOpts.
    r.h.ns
        .set_queue(&r.dev.dev_eui, vec![item(9, 5, &[0xaa; 40], false)]);
    let (req, frame) = r
        .up(&[
            MacCommand::DutyCycleAns,
            ok_ch.clone(),
            ok_ch.clone(),
            ok_dl,
        ])
        .unwrap();
    assert_eq!(frame.f_port, Some(5));
    assert_eq!(frame.frm_payload, vec![0xaa; 40]);
    let cmds = mac_commands(&frame);
    assert!(frame.f_opts.len() <= 15);
    assert_eq!(
        cmds.iter().map(MacCommand::cid).collect::<Vec<_>>(),
        vec![0x07, 0x07]
    );
    // The DlChannelReq was acknowledged: RX1 for 868.1 MHz moved to 869.1 MHz.
    assert_eq!(req.frequency_hz, 869_100_000);
    let m = r.mac_state();
    assert_eq!(m.max_duty_cycle, Some(3));
    let known = m.channels.unwrap().known.indices();
    assert_eq!(known, vec![0, 1, 2, 3, 4]);
    let cmds = r.up_mac(&[ok_ch.clone(), ok_ch.clone()]);
    assert_eq!(
        cmds.iter().map(MacCommand::cid).collect::<Vec<_>>(),
        vec![0x07]
    );
    assert!(r.up_mac(&[ok_ch]).is_empty());
    let m = r.mac_state();
    assert_eq!(
        m.channels.unwrap().enabled.indices(),
        vec![0, 1, 2, 3, 4, 5, 6, 7]
    );
}

fn us915_sub_band_2(version: MacVersion) -> Run {
    let cfg = RegionConfig {
        enabled_sub_bands: vec![2],
        ..RegionConfig::default()
    };
    let (r, p) = setup("US915", cfg, version, quiet_mac(), |_| {});
    r.joined(p)
}

#[test]
fn us915_sub_band_2_channel_mask_for_a_1_0_2_device() {
    let mut r = us915_sub_band_2(MacVersion::V1_0_2);
    // LoRaWAN 1.0.2 ignores the CFList mask: the device still has all 72 channels.
    let cmds = r.up_mac(&[]);
    let reqs = link_adr_reqs(&cmds);
    let masks: Vec<(u8, u16)> = reqs.iter().map(|r| (r.ch_mask_cntl, r.ch_mask)).collect();
    // ChMaskCntl 7: every 125 kHz channel off, 500 kHz channel 65 on; then channels 8–15.
    assert_eq!(masks, vec![(7, 0x0002), (0, 0xff00)]);
    assert!(reqs.iter().all(|q| q.data_rate == 0 && q.tx_power == 0));
    assert_eq!(r.mac_state().channels.unwrap().enabled.indices().len(), 72);
    // One LinkADRAns per LinkADRReq of the block.
    assert!(link_adr_reqs(&r.up_mac(&[ack_all(), ack_all()])).is_empty());
    let enabled = r.mac_state().channels.unwrap().enabled.indices();
    assert_eq!(enabled, vec![8, 9, 10, 11, 12, 13, 14, 15, 65]);
    assert!(link_adr_reqs(&r.up_mac(&[])).is_empty());
}

#[test]
fn us915_sub_band_2_needs_no_mask_after_a_1_0_3_join() {
    let mut r = us915_sub_band_2(MacVersion::V1_0_3);
    assert!(link_adr_reqs(&r.up_mac(&[])).is_empty());
    let enabled = r.mac_state().channels.unwrap().enabled.indices();
    assert_eq!(enabled, vec![8, 9, 10, 11, 12, 13, 14, 15, 65]);
}

#[test]
fn lorawan_1_1_rekey_reset_and_parameter_setup() {
    let (r, p) = setup(
        "EU868",
        RegionConfig::default(),
        MacVersion::V1_1_0,
        quiet_mac(),
        |p| {
            p.mac_settings = ProfileMacSettings {
                adr_ack_limit_exp: Some(6),
                adr_ack_delay_exp: Some(5),
                rejoin_max_time_n: Some(4),
                rejoin_max_count_n: Some(8),
                ..ProfileMacSettings::default()
            };
        },
    );
    let mut r = r.joined(p);
    let cmds = r.up_mac(&[MacCommand::RekeyInd(RekeyInd {
        dev_lorawan_minor: 1,
    })]);
    assert_eq!(
        cmds,
        vec![
            MacCommand::RekeyConf(codec::RekeyConf {
                serv_lorawan_minor: 1
            }),
            MacCommand::AdrParamSetupReq(codec::AdrParamSetupReq {
                limit_exp: 6,
                delay_exp: 5
            }),
            MacCommand::RejoinParamSetupReq(codec::RejoinParamSetupReq {
                max_time_n: 4,
                max_count_n: 8
            }),
        ]
    );
    let cmds = r.up_mac(&[
        MacCommand::AdrParamSetupAns,
        MacCommand::RejoinParamSetupAns(RejoinParamSetupAns { time_ok: true }),
    ]);
    assert!(cmds.is_empty(), "{cmds:?}");
    let m = r.mac_state();
    assert_eq!(
        (m.adr_ack_exps, m.rejoin_params),
        (Some((6, 5)), Some((4, 8)))
    );
    assert_eq!(m.lorawan_minor, Some(1));

    // ForceRejoinReq goes out once and is not waited for.
    assert!(r.h.ns.force_rejoin(&r.dev.dev_eui, 2, 3, 1, 0));
    let cmds = r.up_mac(&[]);
    assert!(
        matches!(cmds.as_slice(), [MacCommand::ForceRejoinReq(f)] if f.rejoin_type == 2 && f.data_rate == 3)
    );
    assert!(r.mac_state().pending.is_empty());

    // ResetInd: answered, and negotiated settings are forgotten.
    let cmds = r.up_mac(&[MacCommand::ResetInd(ResetInd {
        dev_lorawan_minor: 1,
    })]);
    assert_eq!(
        cmds[0],
        MacCommand::ResetConf(codec::ResetConf {
            serv_lorawan_minor: 1
        })
    );
    // The profile's 1.1 settings are asked for again after the reset.
    assert!(cmds
        .iter()
        .any(|c| matches!(c, MacCommand::AdrParamSetupReq(_))));
}

#[test]
fn lorawan_1_0_devices_get_no_1_1_commands() {
    let (r, p) = setup(
        "EU868",
        RegionConfig::default(),
        MacVersion::V1_0_3,
        quiet_mac(),
        |p| {
            p.mac_settings.adr_ack_limit_exp = Some(6);
            p.mac_settings.adr_ack_delay_exp = Some(5);
        },
    );
    let mut r = r.joined(p);
    assert!(r.up_mac(&[]).is_empty());
    assert!(!r.h.ns.force_rejoin(&r.dev.dev_eui, 0, 0, 0, 0));
}

#[test]
fn tx_param_setup_in_as923() {
    let (r, p) = setup(
        "AS923",
        RegionConfig::default(),
        MacVersion::V1_0_3,
        quiet_mac(),
        |_| {},
    );
    let mut r = r;
    r.freq_hz = 923_200_000;
    r.dr = 2;
    let mut r = r.joined(p);
    let cmds = r.up_mac(&[]);
    let [MacCommand::TxParamSetupReq(t)] = cmds.as_slice() else {
        panic!("expected TxParamSetupReq, got {cmds:?}");
    };
    // AS923: 16 dBm default max EIRP → index 5.
    assert_eq!(t.max_eirp_index, 5);
    assert!(r.up_mac(&[MacCommand::TxParamSetupAns]).is_empty());
    assert!(r.mac_state().tx_params.is_some());
}

#[test]
fn bad_uplink_mac_bytes_keep_what_came_before() {
    let mut r = eu868(MacVersion::V1_0_3, quiet_mac());
    // LinkCheckReq, then a truncated LinkADRAns... (0x03 without its status byte).
    let f_cnt = r.dev.f_cnt_up;
    let phy = r
        .dev
        .uplink_opts(f_cnt, Some(10), b"x", &[0x02, 0x03], false, false, 5, 0);
    r.dev.f_cnt_up += 1;
    r.h.transmit(&phy, tx(&r.region, 868_100_000, 5), &[Heard::by(0)]);
    r.h.advance(ms(300));
    let req = r.h.next_tx();
    let frame = r.dev.receive(&req.phy_payload, None).unwrap();
    assert!(matches!(
        mac_commands(&frame).as_slice(),
        [MacCommand::LinkCheckAns(_)]
    ));
    assert!(r.h.log_codes().contains(&"MAC_COMMAND"));
    // The uplink itself was delivered.
    assert_eq!(r.h.ups().len(), 1);
}

#[test]
fn pending_requests_persist_with_the_session() {
    let (r, p) = setup(
        "EU868",
        RegionConfig::default(),
        MacVersion::V1_0_3,
        quiet_mac(),
        |p| p.rx2_frequency_hz = Some(869_000_000),
    );
    let mut r = r.joined(p);
    r.h.clear();
    assert_eq!(r.up_mac(&[]).len(), 1);
    let stored =
        r.h.log
            .iter()
            .rev()
            .find_map(|o| match o {
                Output::Store(StoreChange::Session {
                    session: Some(s), ..
                }) => Some(s.clone()),
                _ => None,
            })
            .unwrap();
    let p = &stored.state.mac.pending;
    assert_eq!(p.len(), 1);
    assert!(matches!(p[0].request, MacRequest::RxParamSetup { .. }));
    assert!(p[0].awaiting_answer, "stored after the TX_ACK");
    let json = serde_json::to_string(&stored.state).unwrap();
    let back: lorikeet_ns::SessionState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, stored.state);
}
