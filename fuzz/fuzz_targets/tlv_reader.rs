//! Reads arbitrary bytes as BER-TLV, recursing into constructed objects, and rebuilds them
//! (see `iso8583_wire_fuzz::tlv_target`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iso8583_wire_fuzz::tlv_target(data);
});
