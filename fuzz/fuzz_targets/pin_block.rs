//! Decodes, re-encodes, converts and translates PIN blocks of every format taken from
//! arbitrary bytes, against a fixed PAN and a PAN from the input (see
//! `iso8583_wire_fuzz::sam::pin_block_target`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iso8583_wire_fuzz::sam::pin_block_target(data);
});
