//! Decodes arbitrary bytes as an HSM host protocol response frame, and the first byte as the
//! response code of a command with the rest as error code and fields; what decodes must
//! re-encode and decode equal (see `iso8583_wire_fuzz::sam::hsm_response_target`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iso8583_wire_fuzz::sam::hsm_response_target(data);
});
