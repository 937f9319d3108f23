//! Decodes arbitrary bytes as an HSM host protocol request frame, and the first byte as a
//! command with the rest as its fields; what decodes must re-encode and decode equal (see
//! `iso8583_wire_fuzz::sam::hsm_request_target`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iso8583_wire_fuzz::sam::hsm_request_target(data);
});
