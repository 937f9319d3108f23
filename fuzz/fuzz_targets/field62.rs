//! Parses arbitrary bytes as UnionPay field 62 under a fixed TMK; what parses must rebuild to
//! the same bytes. Also builds a field from keys in the input and parses it back (see
//! `iso8583_wire_fuzz::sam::field62_target`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iso8583_wire_fuzz::sam::field62_target(data);
});
