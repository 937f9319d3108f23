//! Decodes arbitrary bytes as a `iso87-binary` message (see `iso8583_wire_fuzz::decode_target`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iso8583_wire_fuzz::decode_target(iso8583_wire::specs::iso87_binary(), data);
});
