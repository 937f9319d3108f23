//! Allocation counts, exactly: decoding, validating, reading fields and encoding into a buffer
//! with room allocate nothing.
//!
//! This binary installs a counting global allocator: a wrapper around `System` that adds one to
//! an `AtomicUsize` for every `alloc`, `alloc_zeroed` and `realloc` made by a thread that has
//! armed it. Only the measured closure runs armed, on the test's own thread, and measurements
//! are serialised, so libtest's threads and parallel tests do not disturb the counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Implementing `GlobalAlloc` is `unsafe` by definition; the implementation only forwards to
// `System` and bumps a counter. Needed to count allocations exactly.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use benches::{cups, iso87_fixture};
use iso8583_wire::frame::{CupsHeader, FrameConfig};
use iso8583_wire::{decode, scan, specs};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static MEASURING: Mutex<()> = Mutex::new(());

thread_local! {
    // Const-initialised and without a destructor: reading it never allocates.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if ARMED.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` armed and returns its result with the number of allocations it made.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    ALLOCATIONS.store(0, Ordering::SeqCst);
    ARMED.with(|a| a.set(true));
    let result = f();
    ARMED.with(|a| a.set(false));
    (result, ALLOCATIONS.load(Ordering::SeqCst))
}

#[test]
fn the_counter_sees_allocations() {
    let (v, n) = allocations(|| {
        let mut v: Vec<u8> = Vec::with_capacity(4);
        v.extend_from_slice(b"12345");
        v
    });
    assert_eq!(v, b"12345");
    assert_eq!(n, 2, "one alloc, one realloc");
    let (s, n) = allocations(|| format!("{}", 42));
    assert_eq!((s.as_str(), n), ("42", 1));
}

#[test]
fn decode_0200_and_field_access_allocate_nothing() {
    let spec = specs::iso87_ascii(); // built once, before measuring
    let bytes = iso87_fixture("0200").unwrap();
    let ((fields, amount, terminal, pan, pan_len, valid), n) = allocations(|| {
        let msg = decode(spec, &bytes).unwrap();
        let amount = msg.field(4).unwrap().to_u64();
        let terminal = msg.field(41).unwrap().as_str();
        let mut pan = [0u8; 19];
        let mut pan_len = 0;
        for (slot, digit) in pan.iter_mut().zip(msg.field(2).unwrap().digits()) {
            *slot = digit;
            pan_len += 1;
        }
        let valid = msg.validate();
        (msg.len(), amount, terminal, pan, pan_len, valid)
    });
    assert_eq!(n, 0, "allocations in decode, field access and validate");
    assert_eq!(fields, 20);
    assert_eq!(amount, Ok(12500));
    assert_eq!(terminal, Ok("TERM0001"));
    assert_eq!(&pan[..pan_len], b"4761739001010119");
    assert_eq!(valid, Ok(()));
}

#[test]
fn decode_large_validate_and_every_field_allocate_nothing() {
    let spec = specs::iso87_ascii();
    let bytes = iso87_fixture("large").unwrap();
    let ((fields, body_bytes, numbers, texts, valid), n) = allocations(|| {
        let msg = decode(spec, &bytes).unwrap();
        let (mut body_bytes, mut numbers, mut texts) = (0, 0, 0);
        for f in msg.fields() {
            body_bytes += f.raw().len();
            numbers += f.to_u64().is_ok() as usize;
            texts += f.as_str().is_ok() as usize;
        }
        (msg.len(), body_bytes, numbers, texts, msg.validate())
    });
    assert_eq!(n, 0, "allocations in decode, field access and validate");
    let (checked, n) =
        allocations(|| iso8583_wire::decode_validated(spec, &bytes).map(|m| m.len()));
    assert_eq!((checked, n), (Ok(40), 0), "decode_validated");
    assert_eq!(fields, 40);
    // 1084 bytes less MTI (4), bitmaps (32), 7 LL and 6 LLL prefixes.
    assert_eq!(body_bytes, 1016);
    assert_eq!(
        (numbers, texts),
        (22, 38),
        "n/x+n fields that fit a u64, ASCII fields"
    );
    assert_eq!(valid, Ok(()));
}

#[test]
fn encode_into_a_buffer_with_room_allocates_nothing() {
    let spec = specs::iso87_ascii();
    for name in ["0800", "0200", "large"] {
        let bytes = iso87_fixture(name).unwrap();
        let msg = decode(spec, &bytes).unwrap().to_buf();
        let mut out = Vec::with_capacity(2048);
        let (written, n) = allocations(|| msg.encode(spec, &mut out));
        assert_eq!(n, 0, "{name}: allocations in encode");
        assert_eq!(written, Ok(bytes.len()));
        assert_eq!(out, bytes);
    }
}

#[test]
fn unionpay_frame_decode_encode_and_scan_allocate_nothing() {
    let spec = specs::cups_pos();
    let config = FrameConfig::cups_pos();
    let header = CupsHeader::from_bytes(cups::HEADER).unwrap();
    let wire = cups::purchase_frame().unwrap();
    let msg = cups::purchase().unwrap();
    let mut body = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(1024);

    let ((used, fields, valid, routed), n) = allocations(|| {
        let (frame, used) = config.decode(&wire).unwrap().unwrap();
        let decoded = decode(spec, frame.body).unwrap();
        let routed = scan(spec, frame.body, 25).unwrap();
        let routed = (routed.len(), routed.field(3).map(|f| f.raw()));
        (used, decoded.len(), decoded.validate(), routed)
    });
    assert_eq!(
        n, 0,
        "allocations in frame decode, decode, validate and scan"
    );
    assert_eq!((used, fields, valid), (307, 18, Ok(())));
    assert_eq!(routed, (8, Some(&[0u8, 0, 0][..])));

    let (result, n) = allocations(|| {
        msg.encode(spec, &mut body).unwrap();
        config.encode(Some(cups::TPDU), Some(header), &body, &mut out)
    });
    assert_eq!(n, 0, "allocations in encode and frame encode");
    assert!(result.is_ok());
    assert_eq!(out, wire);
}
