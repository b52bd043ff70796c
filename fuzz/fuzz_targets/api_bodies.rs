//! REST API request bodies and query strings: see `lorikeet_api::fuzzing::api_bodies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lorikeet_api::fuzzing::api_bodies(data);
});
