//! PhyPayload::decode must never panic, and whatever it accepts must re-encode to
//! exactly the same bytes (MICs are computed over the re-encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lorikeet_lorawan::PhyPayload;

fuzz_target!(|data: &[u8]| {
    if let Ok(phy) = PhyPayload::decode(data) {
        let again = phy.encode().expect("a decoded frame re-encodes");
        assert_eq!(again, data);
    }
});
