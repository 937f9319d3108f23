//! Spec-aware message helpers shared by the front end and the center: which built-in
//! dialects the upstream link may speak, where a message's MAC goes, its MAC block, and the
//! bytes of binary fields whatever their wire form.
//!
//! The terminals always speak `cups-pos`; the link between the front end and the center
//! speaks the dialect of `[[link]] spec` and `[center] spec` (see PROTOCOL.md, "Links").
//!
//! **Where the MAC goes** (ISO 8583:1987, 5.3.2): field 64 when the message has no secondary
//! bitmap, field 128 when it has one (a field above 64 is present) and the spec defines 128.
//! The MAC is the last field; the MAC block is the message from the MTI up to the MAC
//! field. Its wire form is the spec's: 8 raw bytes where field 64/128 is binary
//! (`cups-pos`, `iso87-binary`), 16 hex-ASCII characters where it is hex (`iso87-ascii`,
//! `iso93-ascii`).

use iso8583_wire::{Encoding, Field, Length, Mask, Message, MessageBuf, Spec, specs};

/// The built-in specs `[[link]] spec` and `[center] spec` accept.
pub const UPSTREAM_SPECS: [&str; 4] = ["cups-pos", "iso87-binary", "iso87-ascii", "iso93-ascii"];

/// The built-in spec named `name`, or why not (the text names the accepted names).
pub fn upstream_spec(name: &str) -> Result<&'static Spec, String> {
    if UPSTREAM_SPECS.contains(&name)
        && let Some(spec) = specs::by_name(name)
    {
        return Ok(spec);
    }
    Err(format!(
        "{name:?} is not a built-in spec (one of {})",
        UPSTREAM_SPECS
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Fields left out of a journal copy whatever the spec says: the expiry date, the sign-in
/// key block (62) and both MAC fields, besides every field the spec masks (card numbers,
/// tracks, PIN blocks, secrets).
pub const JOURNAL_LEFT_OUT: [u16; 4] = [14, 62, 64, 128];

/// A message as a journal keeps it: re-encoded in `spec` without the fields of
/// [`JOURNAL_LEFT_OUT`] and without any field `spec` masks in descriptions, so no card
/// number, track, PIN block, key or MAC is stored. Empty when it does not re-encode.
pub fn journal_copy(spec: &Spec, msg: &Message<'_>) -> Vec<u8> {
    journal_copy_of(spec, msg.to_buf())
}

/// [`journal_copy`] of a message being built rather than decoded (the center's response,
/// once encoded to be sent): `buf` loses the fields a journal leaves out, then is encoded.
pub fn journal_copy_of(spec: &Spec, mut buf: MessageBuf<'_>) -> Vec<u8> {
    remove_fields(&mut buf, |n| journal_leaves_out(spec, n));
    buf.to_vec(spec).unwrap_or_default()
}

/// Whether a journal leaves field `n` of a message in `spec` out: a field of
/// [`JOURNAL_LEFT_OUT`] or one `spec` masks in descriptions.
pub fn journal_leaves_out(spec: &Spec, n: u16) -> bool {
    JOURNAL_LEFT_OUT.contains(&n) || spec.field(n).is_some_and(|d| d.mask != Mask::None)
}

/// Removes from `buf` every field `leave_out` picks.
pub fn remove_fields(buf: &mut MessageBuf<'_>, leave_out: impl Fn(u16) -> bool) {
    loop {
        let next = buf.fields().map(|(n, _)| n).find(|&n| leave_out(n));
        match next {
            Some(n) => {
                buf.remove(n);
            }
            None => return,
        }
    }
}

/// The MAC field of a message to build: 128 when it has a field above 64 (so a secondary
/// bitmap) and `spec` defines 128, else 64.
pub fn mac_field(spec: &Spec, buf: &MessageBuf<'_>) -> u16 {
    let secondary = buf.fields().any(|(n, _)| n > 64 && n != 128);
    if secondary && spec.field(128).is_some() {
        128
    } else {
        64
    }
}

/// The bytes the 8-byte MAC takes on the wire in field `n` of `spec`: 16 when hex-ASCII,
/// else 8.
fn mac_width(spec: &Spec, n: u16) -> usize {
    match spec.field(n).map(|f| f.encoding) {
        Some(Encoding::HexAscii) => 16,
        _ => 8,
    }
}

/// Encodes `buf` with a zero MAC in its [`mac_field`] (the other MAC field removed) and
/// returns the body; [`mab`] is its MAC block and [`put_mac`] fills the MAC in.
pub fn encode_for_mac(
    spec: &Spec,
    buf: &mut MessageBuf<'_>,
) -> Result<Vec<u8>, iso8583_wire::Error> {
    let n = mac_field(spec, buf);
    buf.remove(if n == 64 { 128 } else { 64 });
    buf.set(n, vec![0u8; 8]);
    buf.to_vec(spec)
}

/// The MAC width of a body built by [`encode_for_mac`] (field 64 and 128 share their
/// encoding in every built-in spec).
fn body_mac_width(spec: &Spec) -> usize {
    mac_width(spec, 64)
}

/// Puts an 8-byte MAC into the MAC field of a body built by [`encode_for_mac`] (the last
/// field), in the spec's wire form.
pub fn put_mac(spec: &Spec, body: &mut [u8], mac: &[u8]) {
    let width = body_mac_width(spec);
    let n = body.len();
    if n < width || mac.len() != 8 {
        return;
    }
    let Some(slot) = body.get_mut(n - width..) else {
        return;
    };
    if width == 16 {
        let text = hex::encode_upper(mac);
        slot.copy_from_slice(text.as_bytes());
    } else {
        slot.copy_from_slice(mac);
    }
}

/// The MAC block of a body built by [`encode_for_mac`]: everything before the MAC field.
pub fn mab<'b>(spec: &Spec, body: &'b [u8]) -> &'b [u8] {
    body.get(..body.len().saturating_sub(body_mac_width(spec)))
        .unwrap_or_default()
}

/// The MAC a received message carries and the block it covers: field 128 when the message
/// has a secondary bitmap, else field 64; it must be the last field and 8 bytes. `Err` says
/// what is wrong.
pub fn received_mac<'b>(msg: &Message<'_>, body: &'b [u8]) -> Result<(&'b [u8], [u8; 8]), String> {
    let n = if msg.bitmap().contains(1) { 128 } else { 64 };
    let f = msg.field(n).ok_or_else(|| format!("no field {n} (MAC)"))?;
    let mac: [u8; 8] = binary_array(&f).ok_or_else(|| format!("field {n} is not an 8-byte MAC"))?;
    if f.body_offset() + f.raw().len() != body.len() {
        return Err(format!("field {n} (MAC) is not the last field"));
    }
    Ok((body.get(..f.offset()).unwrap_or_default(), mac))
}

/// The bytes of a binary field (raw, or decoded from hex-ASCII); `None` when not binary or
/// not valid hex.
pub fn binary_value(f: &Field<'_>) -> Option<Vec<u8>> {
    f.binary().ok().map(|b| b.to_vec())
}

/// The bytes of a binary field of exactly `N` bytes (raw, or decoded from hex-ASCII), with
/// no allocation; `None` when not binary, not valid hex or another length.
pub fn binary_array<const N: usize>(f: &Field<'_>) -> Option<[u8; N]> {
    let b = f.binary().ok()?;
    let mut out = [0u8; N];
    (b.len() == N && b.copy_to(&mut out).is_some()).then_some(out)
}

/// A text value from an upstream message made to fit field `n` of `spec` (the terminals'
/// spec) by undoing the padding a longer upstream field added: leading zeros (of a number),
/// else trailing spaces (of text) (ISO 8583:1993's 3-digit field 39 carries `00` as `000`, its
/// 12-digit field 12 carries `hhmmss` as `000000hhmmss`). `None` when the value does not fit
/// (a real 1993 action code such as `100`, a date and time in field 12) or `spec` has no
/// field `n`.
pub fn fit_text(spec: &Spec, n: u16, value: &str) -> Option<String> {
    let def = spec.field(n)?;
    let (min, max) = match def.length {
        Length::Fixed(l) => (usize::from(l), usize::from(l)),
        Length::Var { max, .. } => (0, usize::from(max)),
    };
    let mut v = value;
    if v.len() > max {
        // The upstream field's padding: leading zeros of a number, trailing spaces of text.
        let extra = v.len() - max;
        v = match v.split_at_checked(extra) {
            Some((pad, rest)) if pad.bytes().all(|b| b == b'0') => rest,
            _ => v.trim_end_matches(' '),
        };
    }
    (v.len() <= max && (v.len() >= min || def.pad_short)).then(|| v.to_owned())
}

/// Whether `spec` carries ISO 8583:1993 action codes in field 39 (three digits) instead of
/// the two-character response codes of ISO 8583:1987 and of the terminals' `cups-pos`.
pub fn uses_action_codes(spec: &Spec) -> bool {
    spec.field(39).is_some_and(|d| d.length == Length::Fixed(3))
}

/// Response codes (ISO 8583:1987 and the UnionPay POS codes the terminals read) and the
/// ISO 8583:1993 action codes of the same meaning, both ways. `A0` (MAC failure) is 916,
/// UnionPay's `99` (PIN block format error) 126. Codes of 1987 with no 1993 counterpart
/// here (`64`, original amount wrong, for one) travel zero-padded instead.
const ACTION_CODES: [(&str, &str); 48] = [
    ("00", "000"),
    ("08", "001"),
    ("10", "002"),
    ("11", "003"),
    ("05", "100"),
    ("54", "101"),
    ("59", "102"),
    ("60", "103"),
    ("62", "104"),
    ("66", "105"),
    ("75", "106"),
    ("01", "107"),
    ("02", "108"),
    ("03", "109"),
    ("13", "110"),
    ("14", "111"),
    ("23", "113"),
    ("40", "115"),
    ("51", "116"),
    ("55", "117"),
    ("56", "118"),
    ("57", "119"),
    ("58", "120"),
    ("61", "121"),
    ("63", "122"),
    ("65", "123"),
    ("99", "126"),
    ("04", "200"),
    ("33", "201"),
    ("34", "202"),
    ("35", "203"),
    ("36", "204"),
    ("37", "205"),
    ("38", "206"),
    ("07", "207"),
    ("41", "208"),
    ("43", "209"),
    ("12", "902"),
    ("19", "903"),
    ("30", "904"),
    ("31", "905"),
    ("90", "906"),
    ("91", "907"),
    ("92", "908"),
    ("96", "909"),
    ("94", "913"),
    ("25", "914"),
    ("A0", "916"),
];

/// Action codes read only (several map to one response code; the code sent for that
/// response code is the one in [`ACTION_CODES`]).
const ACTION_CODES_READ_ONLY: [(&str, &str); 12] = [
    ("00", "004"),
    ("00", "005"),
    ("10", "006"),
    ("00", "007"),
    ("55", "112"),
    ("55", "127"),
    ("34", "210"),
    ("91", "910"),
    ("91", "911"),
    ("91", "912"),
    ("96", "920"),
    ("96", "921"),
];

/// The ISO 8583:1993 action code for response code `code` in a response of type `mti`.
/// Approval is `000`, but `400` in a reversal's response (04xx), `500` in a reconciliation's
/// (05xx) and `800` in a network management one (08xx). A code with no counterpart travels
/// zero-padded (`64` as `064`), which [`from_action_code`] reads back as it was.
pub fn to_action_code(mti: &str, code: &str) -> String {
    if code == "00" {
        let class = match mti.as_bytes().get(1) {
            Some(b'4') => "400",
            Some(b'5') => "500",
            Some(b'8') => "800",
            _ => "000",
        };
        return class.to_owned();
    }
    ACTION_CODES
        .iter()
        .find(|(rc, _)| *rc == code)
        .map_or_else(|| format!("{code:0>3}"), |(_, ac)| (*ac).to_owned())
}

/// The response code for an ISO 8583:1993 action code: the tables above; `400`, `500` and
/// `800` are `00`; another code starting with `0` is a zero-padded response code (`064` is
/// `64`); otherwise by class, `1xx` (denied) `05`, `2xx` (denied, pick up) `04`, `9xx`
/// (error) `96`. `None` for anything else, which the caller handles as no valid answer.
pub fn from_action_code(code: &str) -> Option<String> {
    if let Some((rc, _)) = ACTION_CODES
        .iter()
        .chain(ACTION_CODES_READ_ONLY.iter())
        .find(|(_, ac)| *ac == code)
    {
        return Some((*rc).to_owned());
    }
    if !(code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    match code {
        "400" | "500" | "800" => return Some("00".to_owned()),
        _ => {}
    }
    match code.as_bytes().first() {
        Some(b'0') => code.get(1..).map(str::to_owned),
        Some(b'1') => Some("05".to_owned()),
        Some(b'2') => Some("04".to_owned()),
        Some(b'9') => Some("96".to_owned()),
        _ => None,
    }
}

/// Field 39 of a message on a link of `spec`, as the terminals read it: an action code
/// translated ([`from_action_code`]) where `spec` carries them, else the value made to fit
/// ([`fit_text`]). `None` when neither gives a response code.
pub fn terminal_response_code(spec: &Spec, carried: &str) -> Option<String> {
    if uses_action_codes(spec) {
        from_action_code(carried.trim())
    } else {
        fit_text(specs::cups_pos(), 39, carried)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use iso8583_wire::decode;

    fn purchase() -> MessageBuf<'static> {
        let mut m = MessageBuf::new("0200").unwrap();
        m.set(3, "000000")
            .set(4, "000000001234")
            .set(11, "000042")
            .set(32, "48020000")
            .set(41, "10000001")
            .set(42, "898100012340001")
            .set(52, vec![0xA5u8; 8])
            .set(60, "22000001");
        m
    }

    #[test]
    fn a_built_messages_journal_copy_is_the_decoded_ones() {
        for name in UPSTREAM_SPECS {
            let spec = upstream_spec(name).unwrap();
            let mut m = purchase();
            m.set_mti("0210").unwrap();
            m.set(2, "6212340000000001")
                .set(12, "092041")
                .set(13, "1129")
                .set(37, "633300000001")
                .set(38, "112648")
                .set(39, "00");
            m.remove(52);
            let body = encode_for_mac(spec, &mut m).unwrap();
            let decoded = journal_copy(spec, &decode(spec, &body).unwrap());
            assert!(!decoded.is_empty(), "{name}");
            assert_eq!(journal_copy_of(spec, m), decoded, "{name}");
        }
    }

    #[test]
    fn a_journal_copy_has_no_card_number_track_pin_key_or_mac() {
        for name in UPSTREAM_SPECS {
            let spec = upstream_spec(name).unwrap();
            let mut m = purchase();
            m.set(2, "6212340000000001")
                .set(14, "3012")
                .set(35, "6212340000000001=30121010000000000")
                .set(62, b"0123456789ABCDEF".to_vec())
                .set(64, vec![0xEEu8; 8]);
            if spec.field(128).is_some() {
                // A field above 64 moves the MAC to 128.
                m.remove(64);
                m.set(102, "ACC-1").set(128, vec![0xEEu8; 8]);
            }
            let body = m.to_vec(spec).unwrap();
            let msg = decode(spec, &body).unwrap();
            let copy = journal_copy(spec, &msg);
            let kept = decode(spec, &copy).unwrap();
            let numbers: Vec<u16> = kept.fields().map(|f| f.number()).collect();
            let mut want = vec![3, 4, 11, 32, 41, 42, 60];
            if spec.field(128).is_some() {
                want.push(102);
            }
            assert_eq!(numbers, want, "{name}");
            assert_eq!(kept.mti(), "0200");
            for n in want {
                assert_eq!(
                    kept.field(n).unwrap().raw(),
                    msg.field(n).unwrap().raw(),
                    "{name} field {n}"
                );
            }
        }
    }

    #[test]
    fn binary_array_takes_exactly_its_length() {
        for name in UPSTREAM_SPECS {
            let spec = upstream_spec(name).unwrap();
            let body = purchase().to_vec(spec).unwrap();
            let msg = decode(spec, &body).unwrap();
            let pin = msg.field(52).unwrap();
            assert_eq!(binary_array::<8>(&pin), Some([0xA5; 8]), "{name}");
            assert_eq!(binary_array::<7>(&pin), None);
            assert_eq!(binary_array::<9>(&pin), None);
        }
    }

    #[test]
    fn the_mac_is_the_last_field_in_each_dialects_form() {
        let mac = [1u8, 2, 3, 4, 5, 6, 7, 8];
        for name in UPSTREAM_SPECS {
            if name == "iso93-ascii" {
                continue; // field 60 is the same, but 93's 12/22/25 differ; not built here
            }
            let spec = upstream_spec(name).unwrap();
            let mut m = purchase();
            let mut body = encode_for_mac(spec, &mut m).unwrap();
            let block = mab(spec, &body).to_vec();
            put_mac(spec, &mut body, &mac);
            let msg = decode(spec, &body).unwrap();
            let (got_block, got) = received_mac(&msg, &body).unwrap();
            assert_eq!(got, mac, "{name}");
            assert_eq!(got_block, &block[..], "{name}");
            assert_eq!(
                binary_value(&msg.field(52).unwrap()).unwrap(),
                vec![0xA5u8; 8]
            );
            let wire_len = if name == "iso87-ascii" { 16 } else { 8 };
            assert_eq!(body.len() - block.len(), wire_len, "{name}");
        }
    }

    #[test]
    fn a_secondary_bitmap_moves_the_mac_to_128() {
        let spec = upstream_spec("iso87-binary").unwrap();
        let mut m = purchase();
        m.set(70, "301");
        assert_eq!(mac_field(spec, &m), 128);
        let mut body = encode_for_mac(spec, &mut m).unwrap();
        put_mac(spec, &mut body, &[9u8; 8]);
        let msg = decode(spec, &body).unwrap();
        assert!(!msg.has(64));
        assert_eq!(received_mac(&msg, &body).unwrap().1, [9u8; 8]);
        // cups-pos has no field 128: the MAC stays in 64.
        let cups = upstream_spec("cups-pos").unwrap();
        assert_eq!(mac_field(cups, &m), 64);
    }

    #[test]
    fn a_journal_leaves_out_what_any_spec_masks_and_the_fixed_list() {
        let iso87 = upstream_spec("iso87-ascii").unwrap();
        let left_out: Vec<u16> = (1..=128)
            .filter(|&n| journal_leaves_out(iso87, n))
            .collect();
        assert_eq!(left_out, [2, 14, 34, 35, 36, 45, 52, 62, 64, 96, 128]);
        let cups = specs::cups_pos();
        let left_out: Vec<u16> = (1..=128).filter(|&n| journal_leaves_out(cups, n)).collect();
        assert_eq!(left_out, [2, 14, 35, 36, 52, 62, 64, 128]);
    }

    #[test]
    fn only_the_1993_spec_carries_action_codes() {
        let names: Vec<&str> = UPSTREAM_SPECS
            .into_iter()
            .filter(|n| uses_action_codes(upstream_spec(n).unwrap()))
            .collect();
        assert_eq!(names, ["iso93-ascii"]);
    }

    #[test]
    fn response_codes_become_action_codes_by_message_class() {
        assert_eq!(to_action_code("0210", "00"), "000");
        assert_eq!(to_action_code("0110", "00"), "000");
        assert_eq!(to_action_code("0410", "00"), "400");
        assert_eq!(to_action_code("0510", "00"), "500");
        assert_eq!(to_action_code("0830", "00"), "800");
        assert_eq!(to_action_code("0210", "51"), "116");
        assert_eq!(to_action_code("0210", "41"), "208");
        assert_eq!(to_action_code("0210", "55"), "117");
        assert_eq!(to_action_code("0210", "A0"), "916");
        assert_eq!(to_action_code("0410", "25"), "914");
        // No 1993 counterpart: zero-padded, and read back as it was.
        assert_eq!(to_action_code("0410", "64"), "064");
        assert_eq!(from_action_code("064").as_deref(), Some("64"));
    }

    #[test]
    fn action_codes_become_response_codes() {
        let read = |c: &str| from_action_code(c);
        assert_eq!(read("000").as_deref(), Some("00"));
        assert_eq!(read("400").as_deref(), Some("00"));
        assert_eq!(read("800").as_deref(), Some("00"));
        assert_eq!(read("002").as_deref(), Some("10"));
        assert_eq!(read("006").as_deref(), Some("10"));
        assert_eq!(read("116").as_deref(), Some("51"));
        assert_eq!(read("911").as_deref(), Some("91"));
        assert_eq!(read("916").as_deref(), Some("A0"));
        // Unlisted codes by class: denied, denied with pick-up, error.
        assert_eq!(read("150").as_deref(), Some("05"));
        assert_eq!(read("299").as_deref(), Some("04"));
        assert_eq!(read("999").as_deref(), Some("96"));
        // Neither a listed code nor a class that says what happened.
        assert_eq!(read("300"), None);
        assert_eq!(read("12"), None);
        assert_eq!(read("1A0"), None);
        assert_eq!(read(""), None);
    }

    #[test]
    fn every_listed_response_code_goes_and_comes_back_unchanged() {
        for (rc, ac) in ACTION_CODES {
            assert_eq!(to_action_code("0210", rc), ac, "{rc}");
            assert_eq!(from_action_code(ac).as_deref(), Some(rc), "{ac}");
        }
        for (rc, ac) in ACTION_CODES_READ_ONLY {
            assert_eq!(from_action_code(ac).as_deref(), Some(rc), "{ac}");
            assert!(
                ACTION_CODES.iter().any(|(r, _)| *r == rc),
                "{rc} is never sent"
            );
        }
        // The center's own codes of every kind come back as they left.
        for rc in [
            "00", "03", "05", "12", "13", "14", "25", "30", "41", "43", "51", "54",
        ] {
            for mti in ["0210", "0410", "0230"] {
                let back = from_action_code(&to_action_code(mti, rc));
                assert_eq!(back.as_deref(), Some(rc), "{mti} {rc}");
            }
        }
        for rc in ["55", "57", "61", "62", "64", "75", "94", "96", "99", "A0"] {
            let back = from_action_code(&to_action_code("0210", rc));
            assert_eq!(back.as_deref(), Some(rc), "{rc}");
        }
    }

    #[test]
    fn a_terminal_response_code_follows_the_link_spec() {
        let iso93 = upstream_spec("iso93-ascii").unwrap();
        let iso87 = upstream_spec("iso87-ascii").unwrap();
        assert_eq!(terminal_response_code(iso93, "116").as_deref(), Some("51"));
        assert_eq!(terminal_response_code(iso93, "000").as_deref(), Some("00"));
        assert_eq!(terminal_response_code(iso87, "51").as_deref(), Some("51"));
        assert_eq!(terminal_response_code(iso87, "116"), None);
    }

    #[test]
    fn padding_of_longer_upstream_fields_is_undone() {
        let cups = specs::cups_pos();
        assert_eq!(fit_text(cups, 39, "000").as_deref(), Some("00"));
        assert_eq!(fit_text(cups, 39, "05").as_deref(), Some("05"));
        assert_eq!(fit_text(cups, 39, "100"), None);
        assert_eq!(
            fit_text(cups, 12, "000000092041").as_deref(),
            Some("092041")
        );
        assert_eq!(fit_text(cups, 12, "251129092041"), None);
        assert_eq!(
            fit_text(cups, 37, "633300000001").as_deref(),
            Some("633300000001")
        );
        assert_eq!(
            fit_text(cups, 54, "1002156C000000001000").as_deref(),
            Some("1002156C000000001000")
        );
        assert_eq!(fit_text(cups, 22, "021         ").as_deref(), Some("021"));
        assert_eq!(fit_text(cups, 77, "1"), None);
    }

    #[test]
    fn unknown_names_are_refused_with_the_choices() {
        assert_eq!(
            upstream_spec("iso87").unwrap_err(),
            "\"iso87\" is not a built-in spec (one of \"cups-pos\", \"iso87-binary\", \"iso87-ascii\", \"iso93-ascii\")"
        );
    }
}
