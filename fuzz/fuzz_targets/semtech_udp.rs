//! Semtech UDP datagrams as the gateway listener receives them (PUSH_DATA,
//! PULL_DATA, TX_ACK): see `lorikeet_gateway::fuzzing::semtech_udp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lorikeet_gateway::fuzzing::semtech_udp(data);
});
