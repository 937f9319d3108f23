//! The built-in interface specs.
//!
//! | name | what |
//! |---|---|
//! | `iso87-ascii` | ISO 8583:1987, everything ASCII, hex-ASCII bitmaps: field for field pyiso8583's `default_ascii` |
//! | `iso87-binary` | ISO 8583:1987, binary bitmaps and binary `b` fields: pyiso8583's `default` |
//! | `iso93-ascii` | ISO 8583:1993 field lengths, ASCII, hex-ASCII bitmaps, field 65 a tertiary bitmap |
//! | `cups-pos` | the UnionPay POS dialect: BCD MTI, binary bitmap, packed BCD numbers, BCD prefixes |
//!
//! Each is also shipped as a TOML file under `specs/` in the crate (the same table, saved by
//! [`crate::spec_file`]); a test checks the files and the code agree.
//!
//! Data classes follow ISO 8583 where the standard is strict and are `ans` where real messages
//! carry spaces and punctuation in fields the standard calls `an` (additional data, reserved
//! fields), so that validation refuses real errors and not real traffic.

use alloc::vec::Vec;

use crate::spec::{
    Align, BitmapEncoding, Counts, DataClass, Encoding, FieldSpec, Layout, Length, Mask,
    MtiEncoding, PadNibble, PrefixEncoding, Spec, Subfield,
};

use DataClass::{An, Ans, B, N, Ns, XN, Z};

/// Names of the built-in specs.
pub const NAMES: [&str; 4] = ["iso87-ascii", "iso87-binary", "iso93-ascii", "cups-pos"];

/// A compact row of a field table: number, name, class, length (0 prefix digits = fixed).
type Row = (u16, &'static str, DataClass, u8, u16);

const F: u8 = 0;
const LL: u8 = 2;
const LLL: u8 = 3;

/// ISO 8583:1987 as pyiso8583 4.0.1 defines it (lengths in characters of the ASCII form;
/// binary fields in bytes).
const ISO87: &[Row] = &[
    (1, "Bitmap, Secondary", B, F, 8),
    (2, "Primary Account Number (PAN)", N, LL, 19),
    (3, "Processing Code", N, F, 6),
    (4, "Amount, Transaction", N, F, 12),
    (5, "Amount, Settlement", N, F, 12),
    (6, "Amount, Cardholder Billing", N, F, 12),
    (7, "Transmission Date and Time", N, F, 10),
    (8, "Amount, Cardholder Billing Fee", N, F, 8),
    (9, "Conversion Rate, Settlement", N, F, 8),
    (10, "Conversion Rate, Cardholder Billing", N, F, 8),
    (11, "System Trace Audit Number", N, F, 6),
    (12, "Time, Local Transaction", N, F, 6),
    (13, "Date, Local Transaction", N, F, 4),
    (14, "Date, Expiration", N, F, 4),
    (15, "Date, Settlement", N, F, 4),
    (16, "Date, Conversion", N, F, 4),
    (17, "Date, Capture", N, F, 4),
    (18, "Merchant Type", N, F, 4),
    (19, "Acquiring Institution Country Code", N, F, 3),
    (20, "PAN Country Code", N, F, 3),
    (21, "Forwarding Institution Country Code", N, F, 3),
    (22, "Point-of-Service Entry Mode", N, F, 3),
    (23, "PAN Sequence Number", N, F, 3),
    (24, "Network International ID (NII)", N, F, 3),
    (25, "Point-of-Service Condition Code", N, F, 2),
    (26, "Point-of-Service Capture Code", N, F, 2),
    (27, "Authorizing ID Response Length", N, F, 1),
    (28, "Amount, Transaction Fee", XN, F, 9),
    (29, "Amount, Settlement Fee", XN, F, 9),
    (30, "Amount, Transaction Processing Fee", XN, F, 9),
    (31, "Amount, Settlement Processing Fee", XN, F, 9),
    (32, "Acquiring Institution ID Code", N, LL, 11),
    (33, "Forwarding Institution ID Code", N, LL, 11),
    (34, "Primary Account Number, Extended", Ns, LL, 28),
    (35, "Track 2 Data", Z, LL, 37),
    (36, "Track 3 Data", Z, LLL, 104),
    (37, "Retrieval Reference Number", An, F, 12),
    (38, "Authorization ID Response", An, F, 6),
    (39, "Response Code", An, F, 2),
    (40, "Service Restriction Code", An, F, 3),
    (41, "Card Acceptor Terminal ID", Ans, F, 8),
    (42, "Card Acceptor ID Code", Ans, F, 15),
    (43, "Card Acceptor Name/Location", Ans, F, 40),
    (44, "Additional Response Data", Ans, LL, 25),
    (45, "Track 1 Data", Ans, LL, 76),
    (46, "Additional Data - ISO", Ans, LLL, 999),
    (47, "Additional Data - National", Ans, LLL, 999),
    (48, "Additional Data - Private", Ans, LLL, 999),
    (49, "Currency Code, Transaction", An, F, 3),
    (50, "Currency Code, Settlement", An, F, 3),
    (51, "Currency Code, Cardholder Billing", An, F, 3),
    (52, "PIN", B, F, 8),
    (53, "Security-Related Control Information", N, F, 16),
    (54, "Additional Amounts", Ans, LLL, 240),
    (55, "ICC data", B, LLL, 255),
    (56, "Reserved ISO", Ans, LLL, 999),
    (57, "Reserved National", Ans, LLL, 999),
    (58, "Reserved National", Ans, LLL, 999),
    (59, "Reserved National", Ans, LLL, 999),
    (60, "Reserved National", Ans, LLL, 999),
    (61, "Reserved Private", Ans, LLL, 999),
    (62, "Reserved Private", Ans, LLL, 999),
    (63, "Reserved Private", Ans, LLL, 999),
    (64, "MAC", B, F, 8),
    (65, "Bitmap, Extended", B, F, 8),
    (66, "Settlement Code", N, F, 1),
    (67, "Extended Payment Code", N, F, 2),
    (68, "Receiving Institution Country Code", N, F, 3),
    (69, "Settlement Institution Country Code", N, F, 3),
    (70, "Network Management Information Code", N, F, 3),
    (71, "Message Number", N, F, 4),
    (72, "Message Number, Last", N, F, 4),
    (73, "Date, Action", N, F, 6),
    (74, "Credits, Number", N, F, 10),
    (75, "Credits, Reversal Number", N, F, 10),
    (76, "Debits, Number", N, F, 10),
    (77, "Debits, Reversal Number", N, F, 10),
    (78, "Transfer, Number", N, F, 10),
    (79, "Transfer, Reversal Number", N, F, 10),
    (80, "Inquiries, Number", N, F, 10),
    (81, "Authorizations, Number", N, F, 10),
    (82, "Credits, Processing Fee Amount", N, F, 12),
    (83, "Credits, Transaction Fee Amount", N, F, 12),
    (84, "Debits, Processing Fee Amount", N, F, 12),
    (85, "Debits, Transaction Fee Amount", N, F, 12),
    (86, "Credits, Amount", N, F, 16),
    (87, "Credits, Reversal Amount", N, F, 16),
    (88, "Debits, Amount", N, F, 16),
    (89, "Debits, Reversal Amount", N, F, 16),
    (90, "Original Data Elements", N, F, 42),
    (91, "File Update Code", An, F, 1),
    (92, "File Security Code", An, F, 2),
    (93, "Response Indicator", An, F, 5),
    (94, "Service Indicator", An, F, 7),
    (95, "Replacement Amounts", An, F, 42),
    (96, "Message Security Code", B, F, 8),
    (97, "Amount, Net Settlement", XN, F, 17),
    (98, "Payee", Ans, F, 25),
    (99, "Settlement Institution ID Code", N, LL, 11),
    (100, "Receiving Institution ID Code", N, LL, 11),
    (101, "File Name", Ans, LL, 17),
    (102, "Account ID 1", Ans, LL, 28),
    (103, "Account ID 2", Ans, LL, 28),
    (104, "Transaction Description", Ans, LLL, 100),
    (105, "Reserved for ISO Use", Ans, LLL, 999),
    (106, "Reserved for ISO Use", Ans, LLL, 999),
    (107, "Reserved for ISO Use", Ans, LLL, 999),
    (108, "Reserved for ISO Use", Ans, LLL, 999),
    (109, "Reserved for ISO Use", Ans, LLL, 999),
    (110, "Reserved for ISO Use", Ans, LLL, 999),
    (111, "Reserved for ISO Use", Ans, LLL, 999),
    (112, "Reserved for National Use", Ans, LLL, 999),
    (113, "Reserved for National Use", Ans, LLL, 999),
    (114, "Reserved for National Use", Ans, LLL, 999),
    (115, "Reserved for National Use", Ans, LLL, 999),
    (116, "Reserved for National Use", Ans, LLL, 999),
    (117, "Reserved for National Use", Ans, LLL, 999),
    (118, "Reserved for National Use", Ans, LLL, 999),
    (119, "Reserved for National Use", Ans, LLL, 999),
    (120, "Reserved for Private Use", Ans, LLL, 999),
    (121, "Reserved for Private Use", Ans, LLL, 999),
    (122, "Reserved for Private Use", Ans, LLL, 999),
    (123, "Reserved for Private Use", Ans, LLL, 999),
    (124, "Reserved for Private Use", Ans, LLL, 999),
    (125, "Reserved for Private Use", Ans, LLL, 999),
    (126, "Reserved for Private Use", Ans, LLL, 999),
    (127, "Reserved for Private Use", Ans, LLL, 999),
    (128, "MAC", B, F, 8),
];

/// ISO 8583:1993 field lengths (the 1993 data element directory).
const ISO93: &[Row] = &[
    (1, "Bitmap, secondary", B, F, 8),
    (2, "Primary account number (PAN)", N, LL, 19),
    (3, "Processing code", N, F, 6),
    (4, "Amount, transaction", N, F, 12),
    (5, "Amount, reconciliation", N, F, 12),
    (6, "Amount, cardholder billing", N, F, 12),
    (7, "Date and time, transmission", N, F, 10),
    (8, "Amount, cardholder billing fee", N, F, 8),
    (9, "Conversion rate, reconciliation", N, F, 8),
    (10, "Conversion rate, cardholder billing", N, F, 8),
    (11, "Systems trace audit number", N, F, 6),
    (12, "Date and time, local transaction", N, F, 12),
    (13, "Date, effective", N, F, 4),
    (14, "Date, expiration", N, F, 4),
    (15, "Date, settlement", N, F, 6),
    (16, "Date, conversion", N, F, 4),
    (17, "Date, capture", N, F, 4),
    (18, "Merchant type", N, F, 4),
    (19, "Country code, acquiring institution", N, F, 3),
    (20, "Country code, primary account number", N, F, 3),
    (21, "Country code, forwarding institution", N, F, 3),
    (22, "Point of service data code", An, F, 12),
    (23, "Card sequence number", N, F, 3),
    (24, "Function code", N, F, 3),
    (25, "Message reason code", N, F, 4),
    (26, "Card acceptor business code", N, F, 4),
    (27, "Approval code length", N, F, 1),
    (28, "Date, reconciliation", N, F, 6),
    (29, "Reconciliation indicator", N, F, 3),
    (30, "Amounts, original", N, F, 24),
    (31, "Acquirer reference data", Ans, LL, 99),
    (32, "Acquiring institution identification code", N, LL, 11),
    (33, "Forwarding institution identification code", N, LL, 11),
    (34, "Primary account number, extended", Ns, LL, 28),
    (35, "Track 2 data", Z, LL, 37),
    (36, "Track 3 data", Z, LLL, 104),
    (37, "Retrieval reference number", Ans, F, 12),
    (38, "Approval code", Ans, F, 6),
    (39, "Action code", N, F, 3),
    (40, "Service code", N, F, 3),
    (41, "Card acceptor terminal identification", Ans, F, 8),
    (42, "Card acceptor identification code", Ans, F, 15),
    (43, "Card acceptor name/location", Ans, LL, 99),
    (44, "Additional response data", Ans, LL, 99),
    (45, "Track 1 data", Ans, LL, 76),
    (46, "Amounts, fees", Ans, LLL, 204),
    (47, "Additional data - national", Ans, LLL, 999),
    (48, "Additional data - private", Ans, LLL, 999),
    (49, "Currency code, transaction", An, F, 3),
    (50, "Currency code, reconciliation", An, F, 3),
    (51, "Currency code, cardholder billing", An, F, 3),
    (52, "Personal identification number (PIN) data", B, F, 8),
    (53, "Security related control information", B, LL, 48),
    (54, "Amounts, additional", Ans, LLL, 120),
    (
        55,
        "Integrated circuit card (ICC) system related data",
        B,
        LLL,
        255,
    ),
    (56, "Original data elements", N, LL, 35),
    (57, "Authorization life cycle code", N, F, 3),
    (
        58,
        "Authorizing agent institution identification code",
        N,
        LL,
        11,
    ),
    (59, "Transport data", Ans, LLL, 999),
    (60, "Reserved for national use", Ans, LLL, 999),
    (61, "Reserved for national use", Ans, LLL, 999),
    (62, "Reserved for private use", Ans, LLL, 999),
    (63, "Reserved for private use", Ans, LLL, 999),
    (64, "Message authentication code (MAC) field", B, F, 8),
    (65, "Bitmap, tertiary", B, F, 8),
    (66, "Amounts, original fees", Ans, LLL, 204),
    (67, "Extended payment data", N, F, 2),
    (68, "Country code, receiving institution", N, F, 3),
    (69, "Country code, settlement institution", N, F, 3),
    (70, "Country code, authorizing agent institution", N, F, 3),
    (71, "Message number", N, F, 8),
    (72, "Data record", Ans, LLL, 999),
    (73, "Date, action", N, F, 6),
    (74, "Credits, number", N, F, 10),
    (75, "Credits, reversal number", N, F, 10),
    (76, "Debits, number", N, F, 10),
    (77, "Debits, reversal number", N, F, 10),
    (78, "Transfer, number", N, F, 10),
    (79, "Transfer, reversal number", N, F, 10),
    (80, "Inquiries, number", N, F, 10),
    (81, "Authorizations, number", N, F, 10),
    (82, "Inquiries, reversal number", N, F, 10),
    (83, "Payments, number", N, F, 10),
    (84, "Payments, reversal number", N, F, 10),
    (85, "Fee collections, number", N, F, 10),
    (86, "Credits, amount", N, F, 16),
    (87, "Credits, reversal amount", N, F, 16),
    (88, "Debits, amount", N, F, 16),
    (89, "Debits, reversal amount", N, F, 16),
    (90, "Authorizations, reversal number", N, F, 10),
    (
        91,
        "Country code, transaction destination institution",
        N,
        F,
        3,
    ),
    (
        92,
        "Country code, transaction originator institution",
        N,
        F,
        3,
    ),
    (
        93,
        "Transaction destination institution identification code",
        N,
        LL,
        11,
    ),
    (
        94,
        "Transaction originator institution identification code",
        N,
        LL,
        11,
    ),
    (95, "Card issuer reference data", Ans, LL, 99),
    (
        96,
        "Key management data (b..999 in binary dialects; 499 bytes fit a 3-digit hex-ASCII prefix)",
        B,
        LLL,
        499,
    ),
    (97, "Amount, net reconciliation", XN, F, 17),
    (98, "Payee", Ans, F, 25),
    (99, "Settlement institution identification code", An, LL, 11),
    (100, "Receiving institution identification code", N, LL, 11),
    (101, "File name", Ans, LL, 17),
    (102, "Account identification 1", Ans, LL, 28),
    (103, "Account identification 2", Ans, LL, 28),
    (104, "Transaction description", Ans, LLL, 100),
    (105, "Credits, chargeback amount", N, F, 16),
    (106, "Debits, chargeback amount", N, F, 16),
    (107, "Credits, chargeback number", N, F, 10),
    (108, "Debits, chargeback number", N, F, 10),
    (109, "Credits, fee amounts", Ans, LL, 84),
    (110, "Debits, fee amounts", Ans, LL, 84),
    (111, "Reserved for ISO use", Ans, LLL, 999),
    (112, "Reserved for ISO use", Ans, LLL, 999),
    (113, "Reserved for ISO use", Ans, LLL, 999),
    (114, "Reserved for ISO use", Ans, LLL, 999),
    (115, "Reserved for ISO use", Ans, LLL, 999),
    (116, "Reserved for national use", Ans, LLL, 999),
    (117, "Reserved for national use", Ans, LLL, 999),
    (118, "Reserved for national use", Ans, LLL, 999),
    (119, "Reserved for national use", Ans, LLL, 999),
    (120, "Reserved for national use", Ans, LLL, 999),
    (121, "Reserved for national use", Ans, LLL, 999),
    (122, "Reserved for national use", Ans, LLL, 999),
    (123, "Reserved for private use", Ans, LLL, 999),
    (124, "Reserved for private use", Ans, LLL, 999),
    (125, "Reserved for private use", Ans, LLL, 999),
    (126, "Reserved for private use", Ans, LLL, 999),
    (127, "Reserved for private use", Ans, LLL, 999),
    (128, "Message authentication code (MAC) field", B, F, 8),
];

/// The UnionPay POS dialect (see `shared/spec/unionpay-pos.md`).
const CUPS: &[Row] = &[
    (1, "Bitmap, secondary", B, F, 8),
    (2, "Primary account number", N, LL, 19),
    (3, "Processing code", N, F, 6),
    (4, "Amount, transaction", N, F, 12),
    (11, "System trace audit number", N, F, 6),
    (12, "Time, local transaction", N, F, 6),
    (13, "Date, local transaction", N, F, 4),
    (14, "Date, expiration", N, F, 4),
    (15, "Date, settlement", N, F, 4),
    (22, "Point of service entry mode", N, F, 3),
    (23, "Card sequence number", N, F, 3),
    (25, "Point of service condition code", N, F, 2),
    (26, "Point of service PIN capture code", N, F, 2),
    (32, "Acquiring institution identification code", N, LL, 11),
    (35, "Track 2 data", Z, LL, 37),
    (36, "Track 3 data", Z, LLL, 104),
    (37, "Retrieval reference number", An, F, 12),
    (38, "Authorization identification response", An, F, 6),
    (39, "Response code", An, F, 2),
    (41, "Card acceptor terminal identification", Ans, F, 8),
    (42, "Card acceptor identification code", Ans, F, 15),
    (44, "Additional response data", An, LL, 25),
    (
        48,
        "Additional data, private (settlement totals)",
        N,
        LLL,
        322,
    ),
    (49, "Currency code, transaction", An, F, 3),
    (52, "PIN data", B, F, 8),
    (53, "Security related control information", N, F, 16),
    (54, "Balance amount", An, LLL, 20),
    (55, "ICC system related data", B, LLL, 255),
    (59, "Acquirer private data", Ans, LLL, 999),
    (60, "Reserved private", N, LLL, 17),
    (61, "Original transaction", N, LLL, 29),
    (62, "Reserved private (sign-in keys)", B, LLL, 512),
    (63, "Reserved private", Ans, LLL, 163),
    (64, "Message authentication code", B, F, 8),
];

fn mask_for(n: u16, class: DataClass) -> Mask {
    match n {
        2 | 34 => Mask::Pan,
        35 | 36 | 45 => Mask::Track,
        52 | 64 | 96 | 128 => Mask::Secret,
        _ if class == B && n == 53 => Mask::Secret,
        _ => Mask::None,
    }
}

fn length(prefix: u8, len: u16) -> Length {
    if prefix == F {
        Length::Fixed(len)
    } else {
        Length::Var { prefix, max: len }
    }
}

/// A row as an all-ASCII field: text and digits as characters, binary as hex-ASCII.
fn ascii_field(&(n, name, class, prefix, len): &Row) -> (u16, FieldSpec) {
    let encoding = if class == B {
        Encoding::HexAscii
    } else {
        Encoding::Ascii
    };
    let f = FieldSpec::new(name, class, length(prefix, len), encoding)
        .with_prefix(PrefixEncoding::Ascii, Counts::Units)
        .with_mask(mask_for(n, class));
    (n, f)
}

/// A row with ASCII text and digits but raw binary `b` fields (prefix counting bytes).
fn binary_field(row: &Row) -> (u16, FieldSpec) {
    let (n, mut f) = ascii_field(row);
    if f.class == B {
        f.encoding = Encoding::Binary;
        f.counts = Counts::Bytes;
    }
    (n, f)
}

fn cups_field(row: &Row) -> (u16, FieldSpec) {
    let &(n, name, class, prefix, len) = row;
    let counts = if class.is_numeric() {
        Counts::Units
    } else {
        Counts::Bytes
    };
    let encoding = match class {
        N | Z => Encoding::Bcd,
        B => Encoding::Binary,
        _ => Encoding::Ascii,
    };
    let align = if n == 23 { Align::Right } else { Align::Left };
    let mut f = FieldSpec::new(name, class, length(prefix, len), encoding)
        .with_prefix(PrefixEncoding::Bcd, counts)
        .with_bcd(align, PadNibble::Zero)
        .with_mask(match n {
            62 => Mask::Secret,
            _ => mask_for(n, class),
        });
    f.layout = match n {
        55 => Some(Layout::Tlv),
        60 => Some(Layout::Positional(alloc::vec![
            Subfield::new("Message type code", 2),
            Subfield::new("Batch number", 6),
            Subfield::new("Network management information code", 3),
            Subfield::new("Terminal read capability", 1),
            Subfield::new("IC card condition code", 1),
            Subfield::new("Partial approval flag", 1),
            Subfield::new("Reserved", 3),
        ])),
        61 => Some(Layout::Positional(alloc::vec![
            Subfield::new("Original batch number", 6),
            Subfield::new("Original STAN", 6),
            Subfield::new("Original date", 4),
            Subfield::new("Additional", 13),
        ])),
        63 => Some(Layout::Positional(alloc::vec![
            Subfield::new("Operator / card organisation", 3),
            Subfield::new("Additional", 160),
        ])),
        _ => None,
    };
    (n, f)
}

fn build(
    name: &'static str,
    mti: MtiEncoding,
    bitmap: BitmapEncoding,
    tertiary: bool,
    fields: Vec<(u16, FieldSpec)>,
) -> Spec {
    // Infallible: the tables above are constant and `every_table_compiles_completely` checks
    // each of them through this very function.
    #[allow(clippy::expect_used)]
    Spec::new(name, mti, bitmap, tertiary, fields).expect("built-in spec tables are valid")
}

/// Builds `iso87-ascii`.
pub fn build_iso87_ascii() -> Spec {
    let mut fields: Vec<_> = ISO87.iter().map(ascii_field).collect();
    for (n, f) in &mut fields {
        if *n == 55 {
            f.layout = Some(Layout::Tlv);
        }
    }
    build(
        "iso87-ascii",
        MtiEncoding::Ascii,
        BitmapEncoding::HexAscii,
        false,
        fields,
    )
}

/// Builds `iso87-binary`.
pub fn build_iso87_binary() -> Spec {
    let mut fields: Vec<_> = ISO87.iter().map(binary_field).collect();
    for (n, f) in &mut fields {
        if *n == 55 {
            f.layout = Some(Layout::Tlv);
        }
    }
    build(
        "iso87-binary",
        MtiEncoding::Ascii,
        BitmapEncoding::Binary,
        false,
        fields,
    )
}

/// Builds `iso93-ascii`.
pub fn build_iso93_ascii() -> Spec {
    let mut fields: Vec<_> = ISO93.iter().map(ascii_field).collect();
    for (n, f) in &mut fields {
        if *n == 55 {
            f.layout = Some(Layout::Tlv);
        }
    }
    build(
        "iso93-ascii",
        MtiEncoding::Ascii,
        BitmapEncoding::HexAscii,
        true,
        fields,
    )
}

/// Builds `cups-pos`.
pub fn build_cups_pos() -> Spec {
    let mut fields: Vec<_> = CUPS.iter().map(cups_field).collect();
    // The bitmap field is binary like the bitmaps themselves.
    for (n, f) in &mut fields {
        if *n == 1 {
            f.prefix = PrefixEncoding::Bcd;
        }
    }
    build(
        "cups-pos",
        MtiEncoding::Bcd,
        BitmapEncoding::Binary,
        false,
        fields,
    )
}

/// Builds a built-in spec by name.
pub fn build_by_name(name: &str) -> Option<Spec> {
    Some(match name {
        "iso87-ascii" => build_iso87_ascii(),
        "iso87-binary" => build_iso87_binary(),
        "iso93-ascii" => build_iso93_ascii(),
        "cups-pos" => build_cups_pos(),
        _ => return None,
    })
}

#[cfg(feature = "std")]
mod cached {
    use super::*;
    use std::sync::OnceLock;

    macro_rules! cached {
        ($(#[$doc:meta])* $name:ident, $build:ident) => {
            $(#[$doc])*
            pub fn $name() -> &'static Spec {
                static SPEC: OnceLock<Spec> = OnceLock::new();
                SPEC.get_or_init($build)
            }
        };
    }

    cached!(
        /// `iso87-ascii`, built once.
        iso87_ascii,
        build_iso87_ascii
    );
    cached!(
        /// `iso87-binary`, built once.
        iso87_binary,
        build_iso87_binary
    );
    cached!(
        /// `iso93-ascii`, built once.
        iso93_ascii,
        build_iso93_ascii
    );
    cached!(
        /// `cups-pos`, built once.
        cups_pos,
        build_cups_pos
    );

    /// A built-in spec by name, built once.
    pub fn by_name(name: &str) -> Option<&'static Spec> {
        Some(match name {
            "iso87-ascii" => iso87_ascii(),
            "iso87-binary" => iso87_binary(),
            "iso93-ascii" => iso93_ascii(),
            "cups-pos" => cups_pos(),
            _ => return None,
        })
    }
}

#[cfg(feature = "std")]
pub use cached::{by_name, cups_pos, iso87_ascii, iso87_binary, iso93_ascii};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_compiles_completely() {
        for (spec, rows) in [
            (build_iso87_ascii(), ISO87),
            (build_iso87_binary(), ISO87),
            (build_iso93_ascii(), ISO93),
            (build_cups_pos(), CUPS),
        ] {
            assert_eq!(spec.fields().count(), rows.len(), "{}", spec.name());
        }
    }

    #[test]
    fn cups_encodings() {
        let s = build_cups_pos();
        let f = s.field(22).unwrap();
        assert_eq!((f.encoding, f.align), (Encoding::Bcd, Some(Align::Left)));
        assert_eq!(s.field(23).unwrap().align, Some(Align::Right));
        assert_eq!(s.field(44).unwrap().counts, Counts::Bytes);
        assert_eq!(s.field(35).unwrap().counts, Counts::Units);
        assert_eq!(s.field(62).unwrap().mask, Mask::Secret);
        assert_eq!(s.compiled(60).prefix_width, 2);
        assert_eq!(s.compiled(2).prefix_width, 1);
    }
}
