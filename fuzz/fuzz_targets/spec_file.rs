//! Loads arbitrary UTF-8 as a TOML and a JSON spec file; loaded specs must save and load back
//! equal (see `iso8583_wire_fuzz::spec_file_target`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iso8583_wire_fuzz::spec_file_target(data);
});
