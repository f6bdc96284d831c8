#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| potproxy_fuzz::player_response(data));
