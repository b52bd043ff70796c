//! MIC checks and decryption of received frames: see `lorikeet_lorawan::fuzzing::open_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lorikeet_lorawan::fuzzing::open_frames(data);
});
