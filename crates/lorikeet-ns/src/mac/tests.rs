//! Unit tests of the engine's building blocks; scenarios are in `tests/mac.rs`.

use super::*;
use crate::device::{RxWindows, Session};
use lorikeet_lorawan::crypto::SessionKeys;
use lorikeet_lorawan::{Aes128Key, DevAddr};

#[test]
fn channel_sets_round_trip_as_hex() {
    let s = ChannelSet::from_indices(&[8, 9, 10, 11, 12, 13, 14, 15, 65]);
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(json, "\"2000000000000ff00\"");
    assert_eq!(serde_json::from_str::<ChannelSet>(&json).unwrap(), s);
    assert_eq!(s.indices(), vec![8, 9, 10, 11, 12, 13, 14, 15, 65]);
    assert!(serde_json::from_str::<ChannelSet>("\"xyz\"").is_err());
    assert_eq!(ChannelSet::first(72).indices().len(), 72);
    assert_eq!(ChannelSet::first(128).0, u128::MAX);
}

fn session() -> Session {
    let k = Aes128Key::from_bytes([1; 16]);
    Session::new(
        DevAddr::from_u32(1),
        SessionKeys::from_1_0(k.clone(), k),
        RxWindows {
            rx1_delay_s: 1,
            rx1_dr_offset: 0,
            rx2_dr: 0,
            rx2_frequency_hz: 869_525_000,
        },
    )
}

#[test]
fn selection_puts_answers_first_and_respects_the_limit() {
    let mut s = session();
    let mac = &mut s.state.mac;
    assert!(mac.queue(MacRequest::DevStatus, false));
    assert!(mac.queue(
        MacRequest::RxParamSetup {
            rx1_dr_offset: 1,
            rx2_dr: 3,
            rx2_frequency_hz: 869_000_000
        },
        true
    ));
    // The same request twice is queued once.
    assert!(!mac.queue(MacRequest::DevStatus, false));
    mac.answers.push(MacAnswer::LinkCheck {
        margin_db: 7,
        gw_cnt: 1,
    });
    let sel = select(&s, 15);
    // LinkCheckAns (3), RXParamSetupReq (5), DevStatusReq (1).
    assert_eq!(sel.bytes[0], codec::cid::LINK_CHECK);
    assert_eq!(sel.bytes.len(), 9);
    assert_eq!(sel.request_ids.len(), 2);
    // Only the answer and the DevStatusReq fit in 4 bytes.
    let sel = select(&s, 4);
    assert_eq!(sel.bytes, vec![0x02, 7, 1, 0x06]);
    on_downlink_sent(&mut s, &sel);
    let mac = &s.state.mac;
    assert!(mac.answers.is_empty());
    let awaiting: Vec<_> = mac.pending.iter().filter(|p| p.awaiting_answer).collect();
    assert_eq!(awaiting.len(), 1);
    assert_eq!(awaiting[0].request, MacRequest::DevStatus);
    assert_eq!(awaiting[0].sent, 1);
}

#[test]
fn refused_requests_are_not_queued_again_and_memory_is_bounded() {
    let mut m = MacState::default();
    for i in 0..20u8 {
        m.refuse(MacRequest::RxTimingSetup { rx1_delay_s: i });
    }
    assert_eq!(m.refused.len(), MAX_REFUSED);
    assert!(!m.queue(MacRequest::RxTimingSetup { rx1_delay_s: 19 }, true));
    assert!(m.queue(MacRequest::RxTimingSetup { rx1_delay_s: 0 }, true));
    for i in 0..40u8 {
        m.queue(
            MacRequest::NewChannel {
                ch_index: i,
                frequency_hz: 867_100_000,
                min_dr: 0,
                max_dr: 5,
            },
            false,
        );
    }
    assert_eq!(m.pending.len(), MAX_PENDING);
}

#[test]
fn an_empty_state_is_stored_compactly() {
    let m = MacState::default();
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        r#"{"tx_power_index":0}"#
    );
    let back: MacState = serde_json::from_str("{}").unwrap();
    assert_eq!(back, m);
    assert_eq!(back.nb_trans, 1);
}
