//! The terminal side: arbitrary bytes as a response APDU, through every typed response parser,
//! and as the answer of a card to the terminal flows and of a PSAM to the PSAM driver (see
//! `iso8583_wire_fuzz::card::apdu_terminal_target`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iso8583_wire_fuzz::card::apdu_terminal_target(data);
});
