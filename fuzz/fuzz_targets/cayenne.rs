//! Cayenne LPP decoding and encoding: see `lorikeet_codec::fuzzing::cayenne`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lorikeet_codec::fuzzing::cayenne(data);
});
