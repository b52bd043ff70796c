//! The MAC command decoders must never panic in either direction; what they
//! accept re-encodes to as many bytes and decodes to the same commands.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lorikeet_lorawan::mac;
use lorikeet_lorawan::phy::Direction;

fuzz_target!(|data: &[u8]| {
    for direction in [Direction::Uplink, Direction::Downlink] {
        if let Ok(cmds) = mac::decode(data, direction) {
            let again = mac::encode(&cmds).expect("decoded commands re-encode");
            assert_eq!(again.len(), data.len());
            assert_eq!(mac::decode(&again, direction).expect("re-decodes"), cmds);
        }
    }
});
