//! Arbitrary bytes as a card command APDU and as a session of APDUs sent to the virtual card
//! (see `iso8583_wire_fuzz::card::apdu_card_target`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iso8583_wire_fuzz::card::apdu_card_target(data);
});
