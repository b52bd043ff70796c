//! Frames anyone with a radio can send (a made-up MIC with a real DevAddr, a replay,
//! a JoinRequest with a known DevEUI): each is dropped, and the `log` events they
//! cause are throttled per DevAddr (DevEUI for joins), the rest counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use lorikeet_lorawan::DevAddr;
use lorikeet_ns::{MacVersion, NsConfig};
use support::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config(per_minute: u32) -> NsConfig {
    NsConfig {
        refused_uplink_logs_per_minute: per_minute,
        ..NsConfig::default()
    }
}

fn suppressed(h: &Harness, code: &str) -> u64 {
    h.ns.counters()
        .log_events_suppressed
        .get(code)
        .copied()
        .unwrap_or(0)
}

#[test]
fn forged_frames_to_a_real_dev_addr_make_a_few_log_events_per_minute() {
    let mut h = Harness::new(config(3), 1);
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(0x20, MacVersion::V1_0_3);
    let mut other = VirtualDevice::otaa(0x21, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_2000), p.clone()));
    h.ns.upsert_device(other.abp(DevAddr::from_u32(0x0000_2001), p));
    // The forger knows the DevAddr, not the keys.
    let mut forger = dev.clone();
    forger.keys = Some(lorikeet_ns::SessionKeys::from_1_0(key(0xee), key(0xef)));
    for f_cnt in 0..20 {
        let up = forger.uplink_with(f_cnt, Some(1), b"forged", false, false, 5, 0);
        h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
        h.advance(ms(300));
    }
    assert_eq!(h.drops().len(), 20, "every forged frame is dropped");
    assert!(h.drops().iter().all(|d| *d == "mic_mismatch"));
    assert_eq!(h.log_codes(), vec!["UPLINK_MIC"; 3], "a burst of 3");
    assert_eq!(suppressed(&h, "UPLINK_MIC"), 17, "the rest are counted");

    // Another device's DevAddr has its own budget.
    let mut forger2 = other.clone();
    forger2.keys = Some(lorikeet_ns::SessionKeys::from_1_0(key(0xee), key(0xef)));
    let up = forger2.uplink_with(0, Some(1), b"forged", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    assert_eq!(h.log_codes().len(), 4);

    // The real device is served all along.
    let up = dev.uplink(Some(1), b"real", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    assert_eq!(h.ups().len(), 1);

    // The budget refills at 3 a minute: one more after 20 s.
    h.clear();
    h.advance(Duration::from_secs(20));
    for f_cnt in 100..105 {
        let up = forger.uplink_with(f_cnt, Some(1), b"forged", false, false, 5, 0);
        h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
        h.advance(ms(300));
    }
    assert_eq!(h.log_codes(), vec!["UPLINK_MIC"]);
    assert_eq!(suppressed(&h, "UPLINK_MIC"), 17 + 4);
    let _ = other;
}

#[test]
fn replays_are_throttled_too() {
    let mut h = Harness::new(config(2), 1);
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(0x22, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_2200), p));
    let first = dev.uplink(Some(1), b"a", false, false, 5, 0);
    let second = dev.uplink(Some(1), b"b", false, false, 5, 0);
    for up in [&first, &second] {
        h.transmit(up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
        h.advance(ms(300));
    }
    assert_eq!(h.ups().len(), 2);
    h.clear();
    // A captured old frame (counter below the last) and the last frame, replayed.
    for _ in 0..5 {
        for up in [&first, &second] {
            h.transmit(up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
            h.advance(ms(300));
        }
    }
    assert_eq!(h.drops().len(), 10);
    assert_eq!(h.log_codes().len(), 2, "{:?}", h.log_codes());
    assert_eq!(
        suppressed(&h, "UPLINK_F_CNT_RESET") + suppressed(&h, "UPLINK_F_CNT_RETRANSMISSION"),
        8
    );
}

#[test]
fn refused_join_requests_are_throttled_per_dev_eui() {
    let mut h = Harness::new(config(2), 1);
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(0x23, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.provisioned(p));
    // The DevEUI travels in clear: JoinRequests with a made-up key.
    dev.app_key = key(0x99);
    for nonce in 0..6 {
        dev.dev_nonce = nonce;
        let jr = dev.join_request();
        h.transmit(&jr, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
        h.advance(ms(300));
    }
    assert_eq!(h.drops(), vec!["mic_mismatch"; 6]);
    assert_eq!(h.log_codes(), vec!["OTAA"; 2]);
    assert_eq!(suppressed(&h, "OTAA"), 4);
}

#[test]
fn zero_stores_no_such_log_event() {
    let mut h = Harness::new(config(0), 1);
    let region = region("EU868");
    let p = profile(region.clone(), MacVersion::V1_0_3);
    let mut dev = VirtualDevice::otaa(0x24, MacVersion::V1_0_3);
    h.ns.upsert_device(dev.abp(DevAddr::from_u32(0x0000_2400), p));
    dev.keys = Some(lorikeet_ns::SessionKeys::from_1_0(key(0xee), key(0xef)));
    let up = dev.uplink(Some(1), b"forged", false, false, 5, 0);
    h.transmit(&up, tx(&region, 868_100_000, 5), &[Heard::by(0)]);
    h.advance(ms(300));
    assert!(h.log_codes().is_empty());
    assert_eq!(suppressed(&h, "UPLINK_MIC"), 1);
}
