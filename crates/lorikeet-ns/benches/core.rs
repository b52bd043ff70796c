//! The pure core's hot path: one ABP uplink through the `NetworkServer` (dedup window
//! opened and closed, FCnt, MIC, MAC engine, event out), and the deduplicator alone
//! with three gateway copies per uplink.
//!
//! `cargo bench -p lorikeet-ns`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lorikeet_lorawan::DevAddr;
use lorikeet_lorawan::Eui64;
use lorikeet_ns::{Deduplicator, MacVersion, RxFrame, RxInfo};

#[path = "../tests/support/mod.rs"]
#[allow(clippy::unwrap_used, clippy::expect_used, unused)]
mod support;

use support::*;

fn core_uplink(c: &mut Criterion) {
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    for (name, version) in [("1.0", MacVersion::V1_0_2), ("1.1", MacVersion::V1_1_0)] {
        let mut h = Harness::eu868();
        let region = region("EU868");
        let p = profile(region.clone(), version);
        let mut dev = VirtualDevice::otaa(2, version);
        let d = dev.abp(DevAddr::from_u32(0x0000_1234), p);
        h.ns.upsert_device(d);
        let tx_info = tx(&region, 868_300_000, 5);
        g.bench_function(format!("abp_uplink_{name}"), |b| {
            b.iter(|| {
                let up = dev.uplink(Some(1), &[1, 2, 3, 4, 5, 6, 7, 8], false, false, 5, 1);
                h.transmit(black_box(&up), tx_info, &[Heard::by(0)]);
                h.advance(Duration::from_millis(250));
                // Outputs would pile up otherwise; the server loop drains them the same way.
                h.clear();
            })
        });
    }
    g.finish();
}

fn rx_info(gateway: u64) -> RxInfo {
    RxInfo {
        gateway_id: Eui64::from_u64(0xaa00 + gateway),
        uplink_id: 1,
        tmst: 1_000_000,
        gw_time: None,
        time_since_gps_epoch_ms: None,
        ns_time: std::time::SystemTime::UNIX_EPOCH,
        rssi_dbm: -80,
        snr_db: Some(5.0),
        channel: 0,
        rf_chain: 0,
        antenna: 0,
        board: 0,
        location: None,
    }
}

fn dedup(c: &mut Criterion) {
    let region = region("EU868");
    let tx_info = tx(&region, 868_100_000, 5);
    let mut g = c.benchmark_group("dedup");
    g.throughput(Throughput::Elements(3));
    g.bench_function("insert_3_copies", |b| {
        let mut d = Deduplicator::new(Duration::from_millis(200), 1 << 20);
        let t0 = std::time::Instant::now();
        let mut n: u32 = 0;
        b.iter(|| {
            n = n.wrapping_add(1);
            let mut phy = vec![0x40u8; 23];
            phy[1..5].copy_from_slice(&n.to_le_bytes());
            let phy: Arc<[u8]> = phy.into();
            let now = t0 + Duration::from_micros(u64::from(n));
            for gw in 0..3 {
                let frame = RxFrame {
                    phy_payload: phy.clone(),
                    tx_info,
                    rx_info: rx_info(gw),
                };
                black_box(d.insert(frame, now));
            }
            // Windows close as time passes, as in the server.
            while let Some(u) = d.poll(now + Duration::from_millis(200)) {
                black_box(u);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, core_uplink, dedup);
criterion_main!(benches);
