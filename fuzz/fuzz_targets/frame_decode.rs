//! Frames arbitrary bytes with every `FrameConfig` preset through the sans-IO decoders
//! (see `iso8583_wire_fuzz::frame_target`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iso8583_wire_fuzz::frame_target(data);
});
