#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| potproxy_fuzz::sabr_set_po_token(data));
