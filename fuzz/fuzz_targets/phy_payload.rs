//! PHYPayload decoding: see `lorikeet_lorawan::fuzzing::phy_payload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lorikeet_lorawan::fuzzing::phy_payload(data);
});
