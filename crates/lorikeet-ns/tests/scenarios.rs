//! Scenario tests of the network-server core: virtual devices and gateways, time
//! stepped by hand (see `support`).

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use lorikeet_lorawan::crypto::{self, SessionKeys};
use lorikeet_lorawan::phy::Direction;
use lorikeet_lorawan::DevAddr;
use lorikeet_ns::output::UpEvent;
use lorikeet_ns::{Event, MacVersion, NsConfig, Output, StoreChange, Timing, TxResult, Window};
use lorikeet_region::RegionConfig;
use support::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn plaintext(up: &UpEvent) -> Vec<u8> {
    crypto::decrypt_frm_payload(
        &up.app_s_key,
        Direction::Uplink,
        up.dev_addr,
        up.f_cnt,
        &up.frm_payload,
    )
}

/// Joins `dev` through gateway 0 on EU868 868.1 MHz DR5 and checks the JoinAccept
/// timing; returns with the device holding its session.
fn join(h: &mut Harness, dev: &mut VirtualDevice) {
    let region =
        h.ns.device(&dev.dev_eui)
            .expect("provisioned")
            .profile
            .region
            .clone();
    let jr = dev.join_request();
    let up_tmst = h.tmst(0, h.now);
    h.transmit(&jr, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let req = h.next_tx();
    assert_eq!(req.window, Window::Rx1);
    assert_eq!(
        Harness::tmst_delta(up_tmst, &req),
        5_000_000,
        "JOIN_ACCEPT_DELAY1"
    );
    assert_eq!(req.frequency_hz, 868_100_000);
    assert_eq!(req.dr, 5);
    dev.accept(&req.phy_payload)
        .expect("device accepts the JoinAccept");
    h.tx_ack(&req, TxResult::Sent);
}

fn join_1_0_3_uplink_downlink(version: MacVersion) {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), version);
    let mut dev = VirtualDevice::otaa(1, version);
    h.ns.upsert_device(dev.provisioned(p));

    join(&mut h, &mut dev);
    let joins: Vec<_> = h
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Join { .. }))
        .cloned()
        .collect();
    assert_eq!(joins.len(), 1);
    let Event::Join { dev_addr, .. } = &joins[0] else {
        unreachable!()
    };
    assert_eq!(Some(*dev_addr), dev.dev_addr);
    assert!(dev_addr.is_net_id(h.ns.config().net_id));
    // The session and the join state were persisted before the JoinAccept went out.
    let first_transmit = h
        .log
        .iter()
        .position(|o| matches!(o, Output::Transmit(_)))
        .unwrap();
    let join_store = h
        .log
        .iter()
        .position(|o| matches!(o, Output::Store(StoreChange::Join { .. })))
        .unwrap();
    assert!(join_store < first_transmit);

    // Uplink.
    h.clear();
    let up = dev.uplink(Some(10), b"hello", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let ups = h.ups();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].f_cnt, 0);
    assert_eq!(ups[0].f_port, Some(10));
    assert_eq!(plaintext(ups[0]), b"hello");
    assert!(h.pending_tx.is_empty(), "nothing to send");

    // A queued downlink goes out in RX1 of the next uplink.
    h.ns.set_queue(&dev.dev_eui, vec![item(1, 20, b"down", false)]);
    h.clear();
    let up_tmst = h.tmst(0, h.now);
    let up = dev.uplink(Some(10), b"again", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let req = h.next_tx();
    assert_eq!(req.window, Window::Rx1);
    assert_eq!(
        Harness::tmst_delta(up_tmst, &req),
        1_000_000,
        "RECEIVE_DELAY1"
    );
    let frame = dev
        .receive(&req.phy_payload, None)
        .expect("device opens the downlink");
    assert_eq!(frame.f_port, Some(20));
    assert_eq!(frame.frm_payload, b"down");
    h.tx_ack(&req, TxResult::Sent);
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, Event::TxAck { queue_item_id: Some(id), .. } if id.as_u128() == 1)));
    assert!(h.log.iter().any(|o| matches!(o, Output::Store(StoreChange::QueueItemDone { queue_item_id, .. }) if queue_item_id.as_u128() == 1)));
    assert!(h.ns.device(&dev.dev_eui).unwrap().queue.is_empty());

    // A second queued item uses the next downlink counter.
    h.ns.set_queue(&dev.dev_eui, vec![item(2, 21, b"two", false)]);
    let up = dev.uplink(Some(10), b"x", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let req = h.next_tx();
    let frame = dev
        .receive(&req.phy_payload, None)
        .expect("second downlink");
    assert_eq!(frame.f_cnt, 1);
    assert_eq!(frame.frm_payload, b"two");
}

#[test]
fn otaa_1_0_3_join_uplink_downlink() {
    join_1_0_3_uplink_downlink(MacVersion::V1_0_3);
}

#[test]
fn otaa_1_1_join_uplink_downlink() {
    join_1_0_3_uplink_downlink(MacVersion::V1_1_0);
}

fn abp(version: MacVersion) {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), version);
    let mut dev = VirtualDevice::otaa(2, version);
    let d = dev.abp(DevAddr::from_u32(0x0000_1234), p);
    h.ns.upsert_device(d);
    for i in 0..3u8 {
        let up = dev.uplink(Some(1), &[i], i == 1, false, 3, 1);
        h.transmit(&up, tx(&region, 868_300_000, 3), &[Heard::by(0)]);
        h.advance(ms(300));
    }
    let payloads: Vec<Vec<u8>> = h.ups().iter().map(|u| plaintext(u)).collect();
    assert_eq!(payloads, vec![vec![0], vec![1], vec![2]]);
    // The confirmed uplink (i == 1) got an ACK in RX1.
    let req = h.next_tx();
    let frame = dev
        .receive(&req.phy_payload, Some(1))
        .expect("ack downlink opens");
    assert!(frame.f_ctrl.ack);
    assert_eq!(frame.f_port, None);
}

#[test]
fn abp_1_0() {
    abp(MacVersion::V1_0_2);
}

#[test]
fn abp_1_1() {
    abp(MacVersion::V1_1_0);
}

#[test]
fn dev_nonce_reuse_is_rejected_1_0_3() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(3, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.provisioned(p));
    dev.dev_nonce = 0x1234;
    join(&mut h, &mut dev);
    h.clear();
    // Replay the same DevNonce (also what an attacker replaying a recording does).
    dev.dev_nonce = 0x1234;
    let jr = dev.join_request();
    h.transmit(&jr, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    assert!(
        h.pending_tx.is_empty(),
        "no JoinAccept for a reused DevNonce"
    );
    assert_eq!(h.log_codes(), vec!["OTAA"]);
    assert_eq!(h.drops(), vec!["join_rejected"]);
    // A fresh random nonce works.
    dev.dev_nonce = 0x0042;
    join(&mut h, &mut dev);
}

#[test]
fn join_nonces_start_at_one_and_grow() {
    // A factory-fresh 1.1 device remembers JoinNonce 0 and accepts only a greater one.
    let mut h = Harness::eu868();
    let p = profile(region("EU868"), MacVersion::V1_1_0);
    let mut dev = VirtualDevice::otaa(5, MacVersion::V1_1_0);
    h.ns.upsert_device(dev.provisioned(p));
    join(&mut h, &mut dev);
    assert_eq!(dev.last_join_nonce, 1, "the first JoinAccept carries 1");
    assert_eq!(
        h.ns.device(&dev.dev_eui).unwrap().join.last_join_nonce,
        Some(1)
    );
    join(&mut h, &mut dev);
    assert_eq!(dev.last_join_nonce, 2);
}

#[test]
fn dev_nonce_must_increase_1_0_4() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_4);
    let mut dev = VirtualDevice::otaa(4, MacVersion::V1_0_4);
    h.ns.upsert_device(dev.provisioned(p));
    dev.dev_nonce = 10;
    join(&mut h, &mut dev);
    h.clear();
    dev.dev_nonce = 5;
    let jr = dev.join_request();
    h.transmit(&jr, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    assert!(h.pending_tx.is_empty());
    assert_eq!(h.drops(), vec!["join_rejected"]);
    dev.dev_nonce = 11;
    join(&mut h, &mut dev);
}

#[test]
fn wrong_app_key_fails_the_join_mic() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(5, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.provisioned(p));
    dev.app_key = key(0x99);
    let jr = dev.join_request();
    h.transmit(&jr, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    assert!(h.pending_tx.is_empty());
    assert_eq!(h.drops(), vec!["mic_mismatch"]);
}

#[test]
fn f_cnt_replay_and_retransmission() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(6, MacVersion::V1_0_3);
    let d = dev.abp(DevAddr::from_u32(0x0000_0042), p);
    h.ns.upsert_device(d);
    dev.f_cnt_up = 5;
    let old = dev.uplink_with(3, Some(1), b"old", false, false, 5, 0);
    let up = dev.uplink(Some(1), b"five", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    assert_eq!(h.ups().len(), 1);
    // The same frame again, after the dedup window: a retransmission, not delivered twice.
    h.clear();
    h.advance(Duration::from_secs(2));
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    assert!(h.ups().is_empty());
    assert_eq!(h.log_codes(), vec!["UPLINK_F_CNT_RETRANSMISSION"]);
    // An older counter: refused.
    h.clear();
    h.transmit(&old, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    assert!(h.ups().is_empty());
    assert_eq!(h.log_codes(), vec!["UPLINK_F_CNT_RESET"]);
    assert_eq!(h.drops(), vec!["f_cnt_invalid"]);
    assert_eq!(
        h.ns.device(&dev.dev_eui)
            .unwrap()
            .session
            .as_ref()
            .unwrap()
            .f_cnt_up,
        Some(5)
    );
}

#[test]
fn skip_f_cnt_check_accepts_a_reset_device() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(7, MacVersion::V1_0_3);
    let mut d = dev.abp(DevAddr::from_u32(0x0000_0043), p);
    d.skip_f_cnt_check = true;
    h.ns.upsert_device(d);
    dev.f_cnt_up = 100;
    let up = dev.uplink(Some(1), b"a", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    // The device reboots and counts from 0 again.
    dev.f_cnt_up = 0;
    let up = dev.uplink(Some(1), b"b", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let f: Vec<u32> = h.ups().iter().map(|u| u.f_cnt).collect();
    assert_eq!(f, vec![100, 0]);
}

#[test]
fn f_cnt_16_bit_rollover_is_accepted() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(8, MacVersion::V1_0_3);
    let mut d = dev.abp(DevAddr::from_u32(0x0000_0044), p);
    d.session.as_mut().unwrap().f_cnt_up = Some(0xfffd);
    h.ns.upsert_device(d);
    for f_cnt in [0xfffe_u32, 0xffff, 0x1_0000, 0x1_0002] {
        let up = dev.uplink_with(f_cnt, Some(1), b"r", false, false, 5, 0);
        h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
        h.advance(ms(300));
    }
    let f: Vec<u32> = h.ups().iter().map(|u| u.f_cnt).collect();
    assert_eq!(f, vec![0xfffe, 0xffff, 0x1_0000, 0x1_0002]);
}

#[test]
fn dev_addr_collision_is_resolved_by_the_mic() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let addr = DevAddr::from_u32(0x0000_0777);
    let mut a = VirtualDevice::otaa(9, MacVersion::V1_0_3);
    let mut b = VirtualDevice::otaa(10, MacVersion::V1_0_3);
    h.ns.upsert_device(a.abp(addr, p.clone()));
    let mut db = b.abp(addr, p);
    // Give b its own keys.
    let keys_b = SessionKeys::from_1_0(key(0x71), key(0x72));
    b.keys = Some(keys_b.clone());
    db.session.as_mut().unwrap().keys = keys_b;
    h.ns.upsert_device(db);
    let up = b.uplink(Some(1), b"from b", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let up = a.uplink(Some(1), b"from a", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_300_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let ups = h.ups();
    assert_eq!(ups.len(), 2);
    assert_eq!(ups[0].dev_eui, b.dev_eui);
    assert_eq!(plaintext(ups[0]), b"from b");
    assert_eq!(ups[1].dev_eui, a.dev_eui);
}

#[test]
fn three_gateways_make_one_uplink_and_the_best_answers() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(11, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_0888), p));
    let up = dev.uplink(Some(1), b"c", true, false, 5, 0);
    let now = h.now;
    h.transmit(
        &up,
        tx(&region, 868_100_000, 5),
        &[
            Heard::by(0).snr(2.0).after(ms(10)),
            Heard::by(1).snr(9.5).after(ms(60)),
            Heard::by(2).snr(-3.0).after(ms(150)),
        ],
    );
    h.advance(ms(400));
    let ups = h.ups();
    assert_eq!(ups.len(), 1, "deduplicated");
    assert_eq!(ups[0].rx_info.len(), 3);
    assert_eq!(h.ns.counters().duplicates, 2);
    // The ACK goes through gateway 1 (best SNR), timed on gateway 1's own clock.
    let req = h.next_tx();
    assert_eq!(req.gateway_id, h.gateways[1].id);
    assert_eq!(Harness::tmst_delta(h.tmst(1, now), &req), 1_000_000);
    assert!(h.pending_tx.is_empty(), "one downlink only");
}

#[test]
fn rx1_and_rx2_parameters_eu868() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(12, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_0999), p));
    let up_tmst = h.tmst(0, h.now);
    let up = dev.uplink(Some(1), b"c", true, false, 3, 2);
    h.transmit(&up, tx(&region, 868_500_000, 3), &[Heard::by(0)]);
    h.advance(ms(300));
    let rx1 = h.next_tx();
    assert_eq!(
        (rx1.window, rx1.frequency_hz, rx1.dr),
        (Window::Rx1, 868_500_000, 3)
    );
    assert_eq!(Harness::tmst_delta(up_tmst, &rx1), 1_000_000);
    // The gateway cannot make RX1: the same frame goes to RX2, one second later.
    h.tx_ack(&rx1, TxResult::Rejected("TOO_LATE".into()));
    let rx2 = h.next_tx();
    assert_eq!(
        (rx2.window, rx2.frequency_hz, rx2.dr),
        (Window::Rx2, 869_525_000, 0)
    );
    assert_eq!(Harness::tmst_delta(up_tmst, &rx2), 2_000_000);
    assert_eq!(rx2.phy_payload, rx1.phy_payload);
    assert_ne!(rx2.id, rx1.id);
    h.tx_ack(&rx2, TxResult::Sent);
    assert!(dev.receive(&rx2.phy_payload, Some(0)).unwrap().f_ctrl.ack);
}

#[test]
fn rx1_and_rx2_parameters_us915() {
    let cfg = RegionConfig {
        enabled_sub_bands: vec![2],
        ..RegionConfig::default()
    };
    let region = region_with("US915", &cfg);
    let mut h = Harness::new(NsConfig::default(), 1);
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(13, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_0aaa), p));
    // Channel 10 = 902.3 + 0.2·10 = 904.3 MHz, DR0 (SF10BW125).
    let up_tmst = h.tmst(0, h.now);
    let up = dev.uplink(Some(1), b"us", true, false, 0, 10);
    h.transmit(&up, tx(&region, 904_300_000, 0), &[Heard::by(0)]);
    h.advance(ms(300));
    let rx1 = h.next_tx();
    // RX1: 923.3 + 0.6·(10 mod 8) = 924.5 MHz, DR10 (DR0 + 10, offset 0).
    assert_eq!((rx1.frequency_hz, rx1.dr), (924_500_000, 10));
    assert_eq!(Harness::tmst_delta(up_tmst, &rx1), 1_000_000);
    h.tx_ack(&rx1, TxResult::Rejected("COLLISION_PACKET".into()));
    let rx2 = h.next_tx();
    assert_eq!((rx2.frequency_hz, rx2.dr), (923_300_000, 8));
    assert_eq!(Harness::tmst_delta(up_tmst, &rx2), 2_000_000);
}

#[test]
fn too_late_for_rx1_goes_straight_to_rx2() {
    // A slow backhaul: the copy arrives 850 ms after the uplink; with a 200 ms window
    // there is no time left for RX1.
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(14, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_0bbb), p));
    let up = dev.uplink(Some(1), b"s", true, false, 5, 0);
    h.transmit(
        &up,
        tx(&region, 868_100_000, 5),
        &[Heard::by(0).after(ms(850))],
    );
    h.advance(ms(1100));
    let req = h.next_tx();
    assert_eq!(req.window, Window::Rx2);
}

#[test]
fn without_gateway_time_a_late_rx1_falls_back_on_too_late() {
    // Same slow backhaul, but the gateway has no clock: the core cannot know RX1 is
    // lost, tries it, and the forwarder's TOO_LATE moves the frame to RX2 in time.
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(21, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_0bbc), p));
    let up = dev.uplink(Some(1), b"s", true, false, 5, 0);
    h.gateway_clock = false;
    h.transmit(
        &up,
        tx(&region, 868_100_000, 5),
        &[Heard::by(0).after(ms(850))],
    );
    h.advance(ms(1100));
    let rx1 = h.next_tx();
    assert_eq!(rx1.window, Window::Rx1);
    h.tx_ack(&rx1, TxResult::Rejected("TOO_LATE".into()));
    assert_eq!(h.next_tx().window, Window::Rx2);
}

#[test]
fn a_session_stored_without_receive_windows_gets_the_profiles() {
    // Sessions written by ABP activations before the windows were filled in carry
    // an RX2 frequency of 0: the core gives them the profile's (region's) windows.
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(22, MacVersion::V1_0_3);
    let mut d = dev.abp(DevAddr::from_u32(0x0000_0bbd), p);
    d.session.as_mut().unwrap().state = lorikeet_ns::SessionState::default();
    h.ns.upsert_device(d);
    h.ns.set_queue(&dev.dev_eui, vec![item(7, 5, b"rx2", false)]);
    let up = dev.uplink(Some(1), b"s", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let rx1 = h.next_tx();
    h.tx_ack(&rx1, TxResult::Rejected("TOO_LATE".into()));
    let rx2 = h.next_tx();
    assert_eq!(rx2.window, Window::Rx2);
    assert_eq!(rx2.frequency_hz, 869_525_000);
    assert_eq!(rx2.dr, 0);
}

#[test]
fn nothing_left_when_rx2_also_refused() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(15, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_0ccc), p));
    h.ns.set_queue(&dev.dev_eui, vec![item(9, 5, b"keep", false)]);
    let up = dev.uplink(Some(1), b"s", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let rx1 = h.next_tx();
    h.tx_ack(&rx1, TxResult::Rejected("TOO_LATE".into()));
    let rx2 = h.next_tx();
    h.tx_ack(&rx2, TxResult::Rejected("TX_FREQ".into()));
    assert!(h.pending_tx.is_empty());
    assert_eq!(h.log_codes(), vec!["DOWNLINK_GATEWAY"]);
    // The item was not lost: it is still queued.
    assert_eq!(h.ns.device(&dev.dev_eui).unwrap().queue.len(), 1);
}

fn confirmed_downlink(ack: bool) {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_1_0);
    let mut dev = VirtualDevice::otaa(16, MacVersion::V1_1_0);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_0ddd), p));
    h.ns.set_queue(&dev.dev_eui, vec![item(77, 3, b"conf", true)]);
    let up = dev.uplink(Some(1), b"u", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let req = h.next_tx();
    let frame = dev.receive(&req.phy_payload, None).unwrap();
    assert!(frame.confirmed);
    h.tx_ack(&req, TxResult::Sent);
    // Still queued (pending) until the device answers.
    assert_eq!(h.ns.device(&dev.dev_eui).unwrap().queue.len(), 1);
    h.clear();
    let up = dev.uplink(Some(1), b"v", false, ack, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let acks: Vec<bool> = h
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Ack {
                acknowledged,
                queue_item_id,
                f_cnt_down,
                ..
            } => {
                assert_eq!(queue_item_id.as_u128(), 77);
                assert_eq!(*f_cnt_down, 0);
                Some(*acknowledged)
            }
            _ => None,
        })
        .collect();
    assert_eq!(acks, vec![ack]);
    assert_eq!(
        h.ups().len(),
        1,
        "the uplink carrying the ACK is delivered (MIC with ConfFCnt)"
    );
    assert!(h.ns.device(&dev.dev_eui).unwrap().queue.is_empty());
}

#[test]
fn confirmed_downlink_acknowledged() {
    confirmed_downlink(true);
}

#[test]
fn confirmed_downlink_not_acknowledged() {
    confirmed_downlink(false);
}

#[test]
fn class_c_sends_immediately_after_first_uplink() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let mut p = (*profile(region.clone(), MacVersion::V1_0_3)).clone();
    p.supports_class_c = true;
    let p = std::sync::Arc::new(p);
    let mut dev = VirtualDevice::otaa(17, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_0eee), p));
    // Before any uplink the device may not be listening: nothing is sent.
    h.ns.set_queue(&dev.dev_eui, vec![item(1, 2, b"early", false)]);
    h.advance(ms(10));
    assert!(h.pending_tx.is_empty());
    // The first uplink is answered in RX1 (Class A) with the queued item.
    let up = dev.uplink(Some(1), b"hi", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(2)]);
    h.advance(ms(300));
    let req = h.next_tx();
    assert_eq!(req.window, Window::Rx1);
    h.tx_ack(&req, TxResult::Sent);
    dev.receive(&req.phy_payload, None).unwrap();
    // Now a new item goes out at once, through the gateway that heard it, on RX2 settings.
    h.advance(Duration::from_secs(30));
    h.ns.set_queue(&dev.dev_eui, vec![item(2, 2, b"now", false)]);
    h.advance(ms(1));
    let req = h.next_tx();
    assert_eq!(req.window, Window::ClassC);
    assert_eq!(req.timing, Timing::Immediately);
    assert_eq!(req.gateway_id, h.gateways[2].id);
    assert_eq!((req.frequency_hz, req.dr), (869_525_000, 0));
    assert_eq!(
        dev.receive(&req.phy_payload, None).unwrap().frm_payload,
        b"now"
    );
    h.tx_ack(&req, TxResult::Sent);
    assert!(h.ns.device(&dev.dev_eui).unwrap().queue.is_empty());
}

#[test]
fn class_c_confirmed_downlink_times_out_as_nack() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let mut p = (*profile(region.clone(), MacVersion::V1_0_3)).clone();
    p.supports_class_c = true;
    p.class_c_timeout_s = 5;
    let p = std::sync::Arc::new(p);
    let mut dev = VirtualDevice::otaa(18, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_0fff), p));
    let up = dev.uplink(Some(1), b"hi", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(Duration::from_secs(3));
    h.ns.set_queue(
        &dev.dev_eui,
        vec![item(1, 2, b"c1", true), item(2, 2, b"c2", false)],
    );
    h.advance(ms(1));
    let req = h.next_tx();
    h.tx_ack(&req, TxResult::Sent);
    // The second item waits for the first one's acknowledgement.
    h.advance(Duration::from_secs(4));
    assert!(h.pending_tx.is_empty());
    h.advance(Duration::from_secs(2));
    let acks: Vec<bool> = h
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Ack { acknowledged, .. } => Some(*acknowledged),
            _ => None,
        })
        .collect();
    assert_eq!(acks, vec![false]);
    let req = h.next_tx();
    assert_eq!(
        dev.receive(&req.phy_payload, None).unwrap().frm_payload,
        b"c2"
    );
}

#[test]
fn payload_too_large_for_the_data_rate() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(19, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_1111), p));
    // EU868 DR0: N = 51 bytes. 60 bytes do not fit; the small item behind it does.
    h.ns.set_queue(
        &dev.dev_eui,
        vec![item(1, 2, &[0u8; 60], false), item(2, 2, b"small", false)],
    );
    let up = dev.uplink(Some(1), b"slow", false, false, 0, 0);
    h.transmit(&up, tx(&region, 868_100_000, 0), &[Heard::by(0)]);
    h.advance(ms(300));
    assert_eq!(h.log_codes(), vec!["DOWNLINK_PAYLOAD_SIZE"]);
    let req = h.next_tx();
    assert_eq!(req.dr, 0);
    assert_eq!(
        dev.receive(&req.phy_payload, None).unwrap().frm_payload,
        b"small"
    );
}

#[test]
fn unknown_device_and_garbage_are_counted_drops() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    h.transmit(&[0xff, 0x00], tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    let mut stranger = VirtualDevice::otaa(20, MacVersion::V1_0_3);
    stranger.dev_addr = Some(DevAddr::from_u32(0x0000_2222));
    stranger.keys = Some(SessionKeys::from_1_0(key(1), key(2)));
    let up = stranger.uplink(Some(1), b"?", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_300_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let mut drops = h.drops();
    drops.sort();
    assert_eq!(drops, vec!["malformed", "unknown_device"]);
    assert!(h.events().is_empty());
}

#[test]
fn a_downlink_counter_is_stored_as_spent_before_its_frame_leaves() {
    // After a crash the server must never reuse a counter a device may have seen:
    // the session with the counter advanced comes out before the frame does, and a
    // refused frame leaves the counter spent (a gap the device accepts).
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(23, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_0eee), p));
    h.ns.set_queue(&dev.dev_eui, vec![item(31, 5, b"one", false)]);
    let up = dev.uplink(Some(1), b"s", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let transmit = h
        .log
        .iter()
        .position(|o| matches!(o, Output::Transmit(_)))
        .expect("a downlink");
    let spent = h.log[..transmit].iter().any(|o| {
        matches!(o, Output::Store(StoreChange::Session { session: Some(s), .. }) if s.n_f_cnt_down == 1)
    });
    assert!(spent, "NFCntDown 0 is stored as spent before the frame");
    let rx1 = h.next_tx();
    assert_eq!(dev.receive(&rx1.phy_payload, None).unwrap().f_cnt, 0);
    // Both windows refused: the frame may still have been heard; 0 is not reused.
    h.tx_ack(&rx1, TxResult::Rejected("TOO_LATE".into()));
    let rx2 = h.next_tx();
    assert_eq!(
        rx2.phy_payload, rx1.phy_payload,
        "the RX2 retry is the same frame"
    );
    h.tx_ack(&rx2, TxResult::Rejected("TX_FREQ".into()));
    assert_eq!(
        h.ns.device(&dev.dev_eui)
            .unwrap()
            .session
            .as_ref()
            .unwrap()
            .n_f_cnt_down,
        1
    );
    h.clear();
    let up = dev.uplink(Some(1), b"t", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let again = h.next_tx();
    let frame = dev.receive(&again.phy_payload, None).unwrap();
    assert_eq!(frame.f_cnt, 1, "the next frame takes the next counter");
    assert_eq!(frame.frm_payload, b"one");
}

/// Airtime of a downlink as the gateway will transmit it (no CRC on downlinks).
fn airtime_us(req: &lorikeet_ns::DownlinkRequest) -> u64 {
    lorikeet_ns::schedule::time_on_air(req.modulation, 5, req.phy_payload.len(), false)
        .unwrap()
        .as_micros() as u64
}

/// Confirmed uplinks of `n` devices heard at the same instant; returns the downlinks
/// handed out, after each got its TX_ACK.
fn simultaneous_confirmed_uplinks(
    h: &mut Harness,
    n: u8,
    heard: &[Heard],
) -> Vec<lorikeet_ns::DownlinkRequest> {
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut devs = Vec::new();
    for i in 0..n {
        let mut dev = VirtualDevice::otaa(40 + u64::from(i), MacVersion::V1_0_3);
        h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_4000 + u32::from(i)), p.clone()));
        devs.push(dev);
    }
    for dev in &mut devs {
        let up = dev.uplink(Some(1), b"c", true, false, 5, 0);
        h.transmit(&up, tx(&region, 868_100_000, 5), heard);
    }
    h.advance(ms(400));
    let mut sent = Vec::new();
    while !h.pending_tx.is_empty() {
        let req = h.next_tx();
        h.tx_ack(&req, TxResult::Sent);
        sent.push(req);
    }
    sent
}

/// No two transmissions handed to one gateway overlap (with the gateway's minimum gap).
fn assert_no_overlap(reqs: &[lorikeet_ns::DownlinkRequest]) {
    for (i, a) in reqs.iter().enumerate() {
        for b in &reqs[i + 1..] {
            if a.gateway_id != b.gateway_id {
                continue;
            }
            let (Timing::Delay { tmst: ta }, Timing::Delay { tmst: tb }) = (a.timing, b.timing)
            else {
                continue;
            };
            let gap = lorikeet_ns::schedule::DEFAULT_MIN_GAP.as_micros() as u64;
            let (first, second, t1, t2) = if ta <= tb {
                (a, b, ta, tb)
            } else {
                (b, a, tb, ta)
            };
            let _ = second;
            assert!(
                u64::from(t2 - t1) >= airtime_us(first) + gap,
                "overlapping transmissions on {}: {t1} and {t2}",
                a.gateway_id
            );
        }
    }
}

#[test]
fn simultaneous_acks_through_one_gateway_do_not_overlap() {
    // Three confirmed uplinks at one instant through one gateway: RX1 for one, RX2
    // for the next, and the third has no free window (logged and counted) instead of
    // a third transmission on a busy radio that the gateway would refuse.
    let mut h = Harness::eu868();
    let sent = simultaneous_confirmed_uplinks(&mut h, 3, &[Heard::by(0)]);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let windows: Vec<Window> = sent.iter().map(|r| r.window).collect();
    assert!(windows.contains(&Window::Rx1) && windows.contains(&Window::Rx2));
    assert_no_overlap(&sent);
    assert_eq!(
        h.ns.counters().downlinks_refused_collision,
        3,
        "RX1 and RX2 of the third, RX1 of the second"
    );
    assert!(h.log_codes().contains(&"DOWNLINK_GATEWAY"));
}

#[test]
fn simultaneous_acks_spread_across_gateways() {
    // Heard by two gateways: the third ACK goes through the second gateway.
    let mut h = Harness::new(NsConfig::default(), 2);
    let sent =
        simultaneous_confirmed_uplinks(&mut h, 3, &[Heard::by(0).snr(9.0), Heard::by(1).snr(3.0)]);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_no_overlap(&sent);
    let via_second = sent
        .iter()
        .filter(|r| r.gateway_id == h.gateways[1].id)
        .count();
    assert_eq!(via_second, 1);
    let first: Vec<_> = sent
        .iter()
        .filter(|r| r.gateway_id == h.gateways[0].id)
        .collect();
    assert_eq!(first.len(), 2, "RX1 and RX2 on the best gateway");
}

#[test]
fn a_refused_frame_frees_its_slot_for_the_retry() {
    // The gateway refuses device A's RX1 frame (COLLISION_PACKET from a transmission
    // we did not plan): its RX2 retry is placed, and the freed RX1 time is not
    // counted as busy afterwards.
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(50, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_5000), p));
    let up = dev.uplink(Some(1), b"c", true, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let rx1 = h.next_tx();
    h.tx_ack(&rx1, TxResult::Rejected("COLLISION_PACKET".into()));
    let rx2 = h.next_tx();
    assert_eq!(rx2.window, Window::Rx2);
    h.tx_ack(&rx2, TxResult::Sent);
    assert_eq!(h.ns.counters().downlinks_refused_collision, 0);
}

#[test]
fn a_class_c_frame_waits_for_the_radio_after_a_class_a_answer() {
    // Device B (Class C) gets an item just before device A's RX1 answer goes out on
    // the same gateway: B's frame is timed right after A's, not sent on top of it.
    let mut h = Harness::eu868();
    let region = region("EU868");
    let mut pc = (*profile(region.clone(), MacVersion::V1_0_3)).clone();
    pc.supports_class_c = true;
    let pc = std::sync::Arc::new(pc);
    let pa = profile(region.clone(), MacVersion::V1_0_3);
    let mut b = VirtualDevice::otaa(60, MacVersion::V1_0_3);
    h.ns.upsert_device(b.abp(DevAddr::from_u32(0x0000_6000), pc));
    let mut a = VirtualDevice::otaa(61, MacVersion::V1_0_3);
    h.ns.upsert_device(a.abp(DevAddr::from_u32(0x0000_6001), pa));
    // B is heard once (now listening in Class C).
    let up = b.uplink(Some(1), b"b", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    assert!(h.pending_tx.is_empty());
    // A's confirmed uplink: its ACK is planned for RX1, one second after reception.
    let up = a.uplink(Some(1), b"a", true, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    let ack = h.next_tx();
    assert_eq!(ack.window, Window::Rx1);
    let Timing::Delay { tmst: ack_at } = ack.timing else {
        panic!("a timed RX1 frame");
    };
    // 650 ms later (50 ms before A's frame) an item for B.
    h.advance(ms(650));
    h.ns.set_queue(&b.dev_eui, vec![item(9, 2, b"c", false)]);
    h.advance(ms(1));
    let c = h.next_tx();
    assert_eq!(c.window, Window::ClassC);
    let Timing::Delay { tmst: c_at } = c.timing else {
        panic!("timed after A's frame, not immediate: {:?}", c.timing);
    };
    let ack_air =
        lorikeet_ns::schedule::time_on_air(ack.modulation, 5, ack.phy_payload.len(), false)
            .unwrap()
            .as_micros() as u32;
    let gap = lorikeet_ns::schedule::DEFAULT_MIN_GAP.as_micros() as u32;
    assert!(
        c_at.wrapping_sub(ack_at) >= ack_air + gap,
        "B's frame at {c_at} overlaps A's at {ack_at}"
    );
    assert_eq!(b.receive(&c.phy_payload, None).unwrap().frm_payload, b"c");
}

#[test]
fn a_class_c_burst_is_paced_within_the_duty_cycle_and_all_of_it_is_sent() {
    // 330 Class C devices behind one EU868 gateway each get one item: about 1.2 s on
    // air each at SF12 on 869.525 MHz, 10 % (360 s an hour) allowed. The radio sends
    // one at a time, the budget holds the rest back, and every item goes out.
    const N: u32 = 330;
    let mut h = Harness::eu868();
    let region = region("EU868");
    let mut pc = (*profile(region.clone(), MacVersion::V1_0_3)).clone();
    pc.supports_class_c = true;
    let pc = std::sync::Arc::new(pc);
    let mut devs = Vec::new();
    for i in 0..N {
        let mut d = VirtualDevice::otaa(1_000 + u64::from(i), MacVersion::V1_0_3);
        h.ns.upsert_device(d.abp(DevAddr::from_u32(0x0001_0000 + i), pc.clone()));
        let up = d.uplink(Some(1), b"u", false, false, 5, 0);
        h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
        devs.push(d);
    }
    h.advance(ms(300));
    assert!(h.pending_tx.is_empty(), "nothing queued yet");
    let origin_tmst = h.tmst(0, h.now);
    for d in &devs {
        h.ns.set_queue(&d.dev_eui, vec![item(7, 2, b"0123456789", false)]);
    }
    // Every frame's start (µs after `origin_tmst` on the gateway's clock) and airtime.
    let mut frames: Vec<(u64, u64)> = Vec::new();
    for _ in 0..(3 * 3600 / 5) {
        h.advance(Duration::from_secs(5));
        while !h.pending_tx.is_empty() {
            let req = h.next_tx();
            assert_eq!(req.window, Window::ClassC);
            let start = match req.timing {
                Timing::Delay { tmst } => u64::from(tmst.wrapping_sub(origin_tmst)),
                // Sent at once: on air as soon as it reaches the gateway, which is
                // the earliest moment and the one that could overlap what follows.
                Timing::Immediately => {
                    let at = h.handed_at[&req.id];
                    u64::from(h.tmst(0, at).wrapping_sub(origin_tmst))
                }
            };
            frames.push((start, airtime_us(&req)));
            h.tx_ack(&req, TxResult::Sent);
        }
        if frames.len() == N as usize {
            break;
        }
    }
    assert_eq!(frames.len(), N as usize, "every item is sent eventually");
    assert!(
        h.ns.counters().downlinks_refused_duty_cycle > 0,
        "the budget held some back"
    );
    frames.sort();
    let gap = lorikeet_ns::schedule::DEFAULT_MIN_GAP.as_micros() as u64;
    for w in frames.windows(2) {
        assert!(w[1].0 >= w[0].0 + w[0].1 + gap, "overlap: {w:?}");
    }
    // No hour (starting at any frame) holds more than 10 % on air.
    for (i, (start, _)) in frames.iter().enumerate() {
        let end = start + 3_600_000_000;
        let on_air: u64 = frames[i..]
            .iter()
            .take_while(|(s, _)| *s < end)
            .map(|(s, a)| (*a).min(end - s))
            .sum();
        assert!(
            on_air <= 360_000_000,
            "{on_air} µs on air in the hour from {start}"
        );
    }
    let last = frames.last().unwrap().0;
    assert!(
        last > 3_600_000_000 - 400_000_000,
        "the last frames waited for the budget: {last}"
    );
}

#[test]
fn a_spent_rx1_budget_leaves_rx2() {
    // EU868 RX1 of an uplink on 868.1 MHz is in the 1 % sub-band (36 s an hour); with
    // an operator cap far below, the first ACK spends it and the next ones use RX2
    // (869.525 MHz, its own budget).
    let config = NsConfig {
        duty_cycle_cap: Some(0.000_02), // 72 ms an hour
        ..NsConfig::default()
    };
    let mut h = Harness::new(config, 1);
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(70, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_7000), p));
    let mut windows = Vec::new();
    for _ in 0..2 {
        let up = dev.uplink(Some(1), b"c", true, false, 5, 0);
        h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
        h.advance(ms(300));
        if let Some(req) = h.pending_tx.pop_front() {
            windows.push(req.window);
            h.tx_ack(&req, TxResult::Sent);
        }
        h.advance(Duration::from_secs(3));
    }
    assert_eq!(windows.first(), Some(&Window::Rx1));
    assert!(h.ns.counters().downlinks_refused_duty_cycle > 0);
}

#[test]
fn a_collision_answer_sends_the_frame_again_in_another_slot() {
    // The gateway refuses a Class C frame with COLLISION_PACKET (something we did
    // not plan is on air then): the frame comes again, timed after that moment.
    let mut h = Harness::eu868();
    let region = region("EU868");
    let mut pc = (*profile(region.clone(), MacVersion::V1_0_3)).clone();
    pc.supports_class_c = true;
    let pc = std::sync::Arc::new(pc);
    let mut dev = VirtualDevice::otaa(80, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_8000), pc));
    let up = dev.uplink(Some(1), b"u", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    h.ns.set_queue(&dev.dev_eui, vec![item(3, 2, b"again", false)]);
    h.advance(ms(1));
    let first = h.next_tx();
    assert_eq!(first.timing, Timing::Immediately);
    let refused_at = h.tmst(0, h.now);
    h.tx_ack(&first, TxResult::Rejected("COLLISION_PACKET".into()));
    h.advance(ms(1));
    let retry = h.next_tx();
    let Timing::Delay { tmst } = retry.timing else {
        panic!("the retry is timed into another slot, not sent at once again");
    };
    assert!(
        tmst.wrapping_sub(refused_at) >= airtime_us(&first) as u32,
        "the retry starts after the refused frame's time"
    );
    assert_eq!(
        dev.receive(&retry.phy_payload, None).unwrap().frm_payload,
        b"again"
    );
}

/// One confirmed uplink of `dev` on 868.1 MHz heard by gateway 0; returns the first
/// frame handed out for its answer.
fn confirmed_uplink_answer(
    h: &mut Harness,
    dev: &mut VirtualDevice,
    region: &lorikeet_ns::region::RegionHandle,
) -> lorikeet_ns::DownlinkRequest {
    let up = dev.uplink(Some(1), b"c", true, false, 5, 0);
    h.transmit(&up, tx(region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    h.next_tx()
}

fn gateway_stats(h: &Harness, gateway: usize) -> lorikeet_ns::DownlinkStats {
    let id = h.gateways[gateway].id;
    h.ns.gateway_downlink_stats()
        .find(|(g, _)| *g == id)
        .map(|(_, s)| s.clone())
        .unwrap_or_default()
}

fn refused(stats: &lorikeet_ns::DownlinkStats, by: &str, reason: &str) -> u64 {
    stats
        .refused()
        .find(|(b, r, _)| *b == by && *r == reason)
        .map_or(0, |(_, _, n)| n)
}

#[test]
fn a_tx_freq_answer_moves_the_retry_and_later_frames_off_that_frequency() {
    // The gateway cannot transmit on 868.1 MHz: the RX2 retry (869.525 MHz) goes out,
    // and the next answer skips RX1 on that frequency instead of asking again.
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(90, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_9000), p));
    let rx1 = confirmed_uplink_answer(&mut h, &mut dev, &region);
    assert_eq!((rx1.window, rx1.frequency_hz), (Window::Rx1, 868_100_000));
    h.tx_ack(&rx1, TxResult::Rejected("TX_FREQ".into()));
    let rx2 = h.next_tx();
    assert_eq!((rx2.window, rx2.frequency_hz), (Window::Rx2, 869_525_000));
    h.tx_ack(&rx2, TxResult::Sent);
    h.advance(Duration::from_secs(3));

    let next = confirmed_uplink_answer(&mut h, &mut dev, &region);
    assert_eq!(
        next.window,
        Window::Rx2,
        "RX1 on the refused frequency is skipped"
    );
    h.tx_ack(&next, TxResult::Sent);
    let stats = gateway_stats(&h, 0);
    assert_eq!(refused(&stats, "gateway", "TX_FREQ"), 1);
    assert_eq!(refused(&stats, "scheduler", "tx_freq"), 1);
    assert_eq!((stats.planned, stats.sent), (3, 2));
}

#[test]
fn a_tx_power_answer_lowers_the_power_asked_of_that_gateway() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(91, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_9100), p));
    let rx1 = confirmed_uplink_answer(&mut h, &mut dev, &region);
    h.tx_ack(&rx1, TxResult::Rejected("TX_POWER".into()));
    let rx2 = h.next_tx();
    assert_eq!(rx2.window, Window::Rx2);
    assert_eq!(rx2.tx_power_eirp_dbm, rx1.tx_power_eirp_dbm - 2);
    h.tx_ack(&rx2, TxResult::Sent);
    h.advance(Duration::from_secs(3));
    let next = confirmed_uplink_answer(&mut h, &mut dev, &region);
    assert_eq!(next.window, Window::Rx1);
    assert!(next.tx_power_eirp_dbm <= rx1.tx_power_eirp_dbm - 2);
    h.tx_ack(&next, TxResult::Sent);
}

#[test]
fn too_late_answers_grow_the_gateways_lead_until_rx1_is_no_longer_tried() {
    // Each TOO_LATE adds 100 ms to the gateway's lead time (each accepted frame
    // takes 5 ms back). An answer planned when the dedup window closes has well under
    // a second to RX1: after a handful of TOO_LATE answers RX1 is out of reach and
    // RX2 is asked for directly, instead of another frame the gateway drops.
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(92, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_9200), p));
    let mut too_late = 0;
    loop {
        let first = confirmed_uplink_answer(&mut h, &mut dev, &region);
        if first.window == Window::Rx2 {
            h.tx_ack(&first, TxResult::Sent);
            break;
        }
        assert!(
            too_late < 10,
            "RX1 is still tried after {too_late} TOO_LATE answers"
        );
        h.tx_ack(&first, TxResult::Rejected("TOO_LATE".into()));
        too_late += 1;
        let rx2 = h.next_tx();
        h.tx_ack(&rx2, TxResult::Sent);
        h.advance(Duration::from_secs(3));
    }
    assert!(too_late >= 2, "{too_late}");
    let stats = gateway_stats(&h, 0);
    assert_eq!(refused(&stats, "gateway", "TOO_LATE"), too_late);
    assert_eq!(refused(&stats, "scheduler", "too_late"), 1);
}

#[test]
fn gps_unlocked_is_remembered_and_the_frame_retried() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(93, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_9300), p));
    let rx1 = confirmed_uplink_answer(&mut h, &mut dev, &region);
    assert!(h.ns.gateway_gps_unlocked_at(h.gateways[0].id).is_none());
    h.tx_ack(&rx1, TxResult::Rejected("GPS_UNLOCKED".into()));
    assert!(h.ns.gateway_gps_unlocked_at(h.gateways[0].id).is_some());
    let rx2 = h.next_tx();
    assert_eq!(rx2.window, Window::Rx2);
    h.tx_ack(&rx2, TxResult::Sent);
    assert_eq!(refused(&gateway_stats(&h, 0), "gateway", "GPS_UNLOCKED"), 1);
}

#[test]
fn a_too_early_class_c_frame_is_placed_again_later_not_at_once() {
    let mut h = Harness::eu868();
    let region = region("EU868");
    let mut pc = (*profile(region.clone(), MacVersion::V1_0_3)).clone();
    pc.supports_class_c = true;
    let pc = std::sync::Arc::new(pc);
    let mut dev = VirtualDevice::otaa(94, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_9400), pc));
    let up = dev.uplink(Some(1), b"u", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    h.ns.set_queue(&dev.dev_eui, vec![item(3, 2, b"early", false)]);
    h.advance(ms(1));
    let first = h.next_tx();
    h.tx_ack(&first, TxResult::Rejected("TOO_EARLY".into()));
    h.advance(ms(500));
    assert!(h.pending_tx.is_empty(), "not sent again at once");
    h.advance(ms(600));
    let retry = h.next_tx();
    assert_eq!(
        dev.receive(&retry.phy_payload, None).unwrap().frm_payload,
        b"early"
    );
}

#[test]
fn per_gateway_counters_follow_the_schedule() {
    // Three simultaneous ACKs through one gateway: two handed out and sent, three
    // windows skipped as taken (see simultaneous_acks_through_one_gateway_do_not_overlap).
    let mut h = Harness::eu868();
    let sent = simultaneous_confirmed_uplinks(&mut h, 3, &[Heard::by(0)]);
    assert_eq!(sent.len(), 2);
    let stats = gateway_stats(&h, 0);
    assert_eq!((stats.planned, stats.sent), (2, 2));
    assert_eq!(refused(&stats, "scheduler", "collision"), 3);
    // Once both are on air, the sub-band's use shows.
    h.advance(Duration::from_secs(3));
    let duty = h.ns.gateway_duty_use(h.now);
    let g = h.gateways[0].id;
    let rx1_band = duty
        .iter()
        .find(|(id, b)| {
            *id == g && (b.min_frequency_hz..=b.max_frequency_hz).contains(&868_100_000)
        })
        .expect("the 868.1 MHz sub-band is tracked");
    assert!(rx1_band.1.used > 0.0 && rx1_band.1.used < rx1_band.1.limit);
}
