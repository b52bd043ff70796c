//! MAC command decoding: see `lorikeet_lorawan::fuzzing::mac_commands`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lorikeet_lorawan::fuzzing::mac_commands(data);
});
