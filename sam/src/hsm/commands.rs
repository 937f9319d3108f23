//! The commands of the HSM host protocol as typed [`Request`]s and [`Response`]s, with their
//! field encodings. The field layouts are documented in the [module docs](super).

use core::fmt;

use super::codec::{
    FrameConfig, HEADER_OFFSET, Reader, WireError, WireErrorKind, put_decimal, put_hex,
    split_frame, write_frame,
};
use crate::kcv::Kcv;
use crate::key::{DesKeyLength, KeyType};
use crate::pinblock::{Pan, PinBlockFormat};
use crate::security::{
    DataMode, Diagnostics, ExportedKey, GeneratedKey, HsmError, HsmErrorCode, KeyRef, LoadRequest,
    MAX_DATA_LEN, MAX_DIVERSIFICATION_LEVELS, MacAlgorithm, PinTranslation, TacRequest,
};

/// The longest error detail text carried after a non-zero error code.
pub const MAX_DETAIL_LEN: usize = 200;

/// The longest firmware text in an `ND` response.
pub const MAX_FIRMWARE_LEN: usize = 99;

/// The longest MAC field, in bytes.
pub const MAX_MAC_LEN: usize = 16;

/// A command of the protocol. payShield codes for the standard operations; `Q*` codes are
/// this crate's own PBOC commands, **not payShield commands**.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `NC`: diagnostics (LMK check value and firmware).
    Diagnostics,
    /// `B2`: echo.
    Echo,
    /// `A0`: generate a key, optionally also under a TMK/ZMK.
    GenerateKey,
    /// `A6`: import a key under a KEK.
    ImportKey,
    /// `A8`: export a key under a KEK.
    ExportKey,
    /// `BU`: key check value.
    KeyCheckValue,
    /// `CA`: translate a PIN block from a TPK to a ZPK.
    TranslatePinTpk,
    /// `CC`: translate a PIN block from a ZPK to a ZPK.
    TranslatePinZpk,
    /// `M6`: generate a MAC.
    GenerateMac,
    /// `M8`: verify a MAC.
    VerifyMac,
    /// `M0`: encrypt data.
    EncryptData,
    /// `M2`: decrypt data.
    DecryptData,
    /// `QA` (ours): derive a PBOC card key.
    PbocDeriveKey,
    /// `QC` (ours): verify a load MAC1 and produce MAC2.
    PbocLoadMac2,
    /// `QE` (ours): verify a TAC.
    PbocVerifyTac,
}

impl Command {
    /// Every command, in table order.
    pub const ALL: [Self; 15] = [
        Self::Diagnostics,
        Self::Echo,
        Self::GenerateKey,
        Self::ImportKey,
        Self::ExportKey,
        Self::KeyCheckValue,
        Self::TranslatePinTpk,
        Self::TranslatePinZpk,
        Self::GenerateMac,
        Self::VerifyMac,
        Self::EncryptData,
        Self::DecryptData,
        Self::PbocDeriveKey,
        Self::PbocLoadMac2,
        Self::PbocVerifyTac,
    ];

    /// The two-character command code.
    #[must_use]
    pub const fn code(self) -> [u8; 2] {
        *match self {
            Self::Diagnostics => b"NC",
            Self::Echo => b"B2",
            Self::GenerateKey => b"A0",
            Self::ImportKey => b"A6",
            Self::ExportKey => b"A8",
            Self::KeyCheckValue => b"BU",
            Self::TranslatePinTpk => b"CA",
            Self::TranslatePinZpk => b"CC",
            Self::GenerateMac => b"M6",
            Self::VerifyMac => b"M8",
            Self::EncryptData => b"M0",
            Self::DecryptData => b"M2",
            Self::PbocDeriveKey => b"QA",
            Self::PbocLoadMac2 => b"QC",
            Self::PbocVerifyTac => b"QE",
        }
    }

    /// The response code: the command code with its second character plus one.
    #[must_use]
    pub const fn response_code(self) -> [u8; 2] {
        response_code(self.code())
    }

    /// The command for a code.
    #[must_use]
    pub fn from_code(code: [u8; 2]) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The command a response code answers.
    #[must_use]
    pub fn from_response_code(code: [u8; 2]) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.response_code() == code)
    }

    /// The code as text (e.g. `"M6"`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Diagnostics => "NC",
            Self::Echo => "B2",
            Self::GenerateKey => "A0",
            Self::ImportKey => "A6",
            Self::ExportKey => "A8",
            Self::KeyCheckValue => "BU",
            Self::TranslatePinTpk => "CA",
            Self::TranslatePinZpk => "CC",
            Self::GenerateMac => "M6",
            Self::VerifyMac => "M8",
            Self::EncryptData => "M0",
            Self::DecryptData => "M2",
            Self::PbocDeriveKey => "QA",
            Self::PbocLoadMac2 => "QC",
            Self::PbocVerifyTac => "QE",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The response code for any request code: the second byte plus one (`NC` -> `ND`).
#[must_use]
pub const fn response_code(request_code: [u8; 2]) -> [u8; 2] {
    [request_code[0], request_code[1].wrapping_add(1)]
}

/// The 3-digit wire code of a key type (see the module docs).
#[must_use]
pub const fn key_type_code(key_type: KeyType) -> &'static [u8; 3] {
    match key_type {
        KeyType::Zmk => b"000",
        KeyType::Zpk => b"001",
        KeyType::Tpk => b"002",
        KeyType::Tak => b"003",
        KeyType::Tmk => b"004",
        KeyType::Tdk => b"005",
        KeyType::Zak => b"008",
        KeyType::Zek => b"009",
        KeyType::PbocPurchase => b"101",
        KeyType::PbocLoad => b"102",
        KeyType::PbocTac => b"103",
        KeyType::PbocUnload => b"104",
        KeyType::PbocUpdate => b"105",
    }
}

/// The key type for a 3-digit wire code.
#[must_use]
pub fn key_type_from_code(code: [u8; 3]) -> Option<KeyType> {
    KeyType::ALL
        .into_iter()
        .find(|t| *key_type_code(*t) == code)
}

/// The key scheme character of a length: `Z` single, `U` double, `T` triple.
#[must_use]
pub const fn scheme_char(length: DesKeyLength) -> u8 {
    match length {
        DesKeyLength::Single => b'Z',
        DesKeyLength::Double => b'U',
        DesKeyLength::Triple => b'T',
    }
}

/// The 2-digit wire code of a PIN block format (payShield's): `01` ISO 0, `05` ISO 1,
/// `47` ISO 3, `48` ISO 4.
#[must_use]
pub const fn pin_format_code(format: PinBlockFormat) -> &'static [u8; 2] {
    match format {
        PinBlockFormat::Iso0 => b"01",
        PinBlockFormat::Iso1 => b"05",
        PinBlockFormat::Iso3 => b"47",
        PinBlockFormat::Iso4 => b"48",
    }
}

/// A request: one command with its fields.
///
/// `Debug` shows keys by type and check value and data by length; never PIN blocks, data or
/// cryptograms.
#[derive(Clone, PartialEq, Eq)]
pub enum Request {
    /// `NC`.
    Diagnostics,
    /// `B2`.
    Echo {
        /// The bytes to echo.
        data: Vec<u8>,
    },
    /// `A0`.
    GenerateKey {
        /// The type of the new key.
        key_type: KeyType,
        /// Its length.
        length: DesKeyLength,
        /// A TMK or ZMK to also encrypt it under.
        export_under: Option<KeyRef>,
    },
    /// `A6`.
    ImportKey {
        /// The key-encrypting key.
        kek: KeyRef,
        /// The type of the imported key.
        key_type: KeyType,
        /// The key under `kek`.
        encrypted: Vec<u8>,
        /// The check value to verify, if any.
        expected_kcv: Option<Kcv>,
    },
    /// `A8`.
    ExportKey {
        /// The key-encrypting key.
        kek: KeyRef,
        /// The key to export.
        key: KeyRef,
    },
    /// `BU`.
    KeyCheckValue {
        /// The key.
        key: KeyRef,
    },
    /// `CA`: the source key must be a TPK.
    TranslatePinTpk(PinTranslation),
    /// `CC`: the source key must be a ZPK.
    TranslatePinZpk(PinTranslation),
    /// `M6`.
    GenerateMac {
        /// A TAK or ZAK.
        key: KeyRef,
        /// The algorithm.
        algorithm: MacAlgorithm,
        /// The data.
        data: Vec<u8>,
    },
    /// `M8`.
    VerifyMac {
        /// A TAK or ZAK.
        key: KeyRef,
        /// The algorithm.
        algorithm: MacAlgorithm,
        /// The data.
        data: Vec<u8>,
        /// The MAC to verify.
        mac: Vec<u8>,
    },
    /// `M0`.
    EncryptData {
        /// A TDK or ZEK.
        key: KeyRef,
        /// ECB or CBC with an IV.
        mode: DataMode,
        /// The data (whole 8-byte blocks).
        data: Vec<u8>,
    },
    /// `M2`.
    DecryptData {
        /// A TDK or ZEK.
        key: KeyRef,
        /// ECB or CBC with an IV.
        mode: DataMode,
        /// The data (whole 8-byte blocks).
        data: Vec<u8>,
    },
    /// `QA` (ours).
    PbocDeriveKey {
        /// The issuer master key.
        master: KeyRef,
        /// Diversification factors, outermost first.
        factors: Vec<[u8; 8]>,
    },
    /// `QC` (ours).
    PbocLoadMac2 {
        /// The master load key.
        dlk_master: KeyRef,
        /// The load.
        request: LoadRequest,
    },
    /// `QE` (ours).
    PbocVerifyTac {
        /// The master TAC key.
        dtk_master: KeyRef,
        /// The TAC and its input.
        request: TacRequest,
    },
}

impl Request {
    /// The command.
    #[must_use]
    pub const fn command(&self) -> Command {
        match self {
            Self::Diagnostics => Command::Diagnostics,
            Self::Echo { .. } => Command::Echo,
            Self::GenerateKey { .. } => Command::GenerateKey,
            Self::ImportKey { .. } => Command::ImportKey,
            Self::ExportKey { .. } => Command::ExportKey,
            Self::KeyCheckValue { .. } => Command::KeyCheckValue,
            Self::TranslatePinTpk(_) => Command::TranslatePinTpk,
            Self::TranslatePinZpk(_) => Command::TranslatePinZpk,
            Self::GenerateMac { .. } => Command::GenerateMac,
            Self::VerifyMac { .. } => Command::VerifyMac,
            Self::EncryptData { .. } => Command::EncryptData,
            Self::DecryptData { .. } => Command::DecryptData,
            Self::PbocDeriveKey { .. } => Command::PbocDeriveKey,
            Self::PbocLoadMac2 { .. } => Command::PbocLoadMac2,
            Self::PbocVerifyTac { .. } => Command::PbocVerifyTac,
        }
    }

    /// Appends the message (command code and fields, no length or header) to `out`.
    ///
    /// # Errors
    /// A [`WireError`] for a value the wire cannot carry (a cryptogram whose length is not
    /// the key's, data longer than [`MAX_DATA_LEN`], too many factors...); its offset counts
    /// from the start of the message. `out` may hold part of the message then.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let start = out.len();
        let w = &mut Writer { out, start };
        w.out.extend_from_slice(&self.command().code());
        match self {
            Self::Diagnostics => {}
            Self::Echo { data } => w.data("data", data)?,
            Self::GenerateKey {
                key_type,
                length,
                export_under,
            } => {
                w.key_type(*key_type);
                w.out.push(scheme_char(*length));
                match export_under {
                    None => w.out.push(b'0'),
                    Some(kek) => {
                        w.out.push(b'1');
                        w.key_ref("KEK", kek)?;
                    }
                }
            }
            Self::ImportKey {
                kek,
                key_type,
                encrypted,
                expected_kcv,
            } => {
                w.key_ref("KEK", kek)?;
                w.key_type(*key_type);
                w.key_field("encrypted key", encrypted)?;
                match expected_kcv {
                    None => w.out.push(b'0'),
                    Some(kcv) => {
                        w.out.push(b'1');
                        w.kcv(kcv);
                    }
                }
            }
            Self::ExportKey { kek, key } => {
                w.key_ref("KEK", kek)?;
                w.key_ref("key", key)?;
            }
            Self::KeyCheckValue { key } => w.key_ref("key", key)?,
            Self::TranslatePinTpk(t) | Self::TranslatePinZpk(t) => {
                w.key_ref("source key", &t.source_key)?;
                w.key_ref("destination key", &t.dest_key)?;
                w.out.extend_from_slice(pin_format_code(t.source_format));
                w.out.extend_from_slice(pin_format_code(t.dest_format));
                w.pan(&t.pan)?;
                put_hex(w.out, &t.block);
            }
            Self::GenerateMac {
                key,
                algorithm,
                data,
            } => {
                w.key_ref("MAC key", key)?;
                w.algorithm(*algorithm)?;
                w.data("data", data)?;
            }
            Self::VerifyMac {
                key,
                algorithm,
                data,
                mac,
            } => {
                w.key_ref("MAC key", key)?;
                w.algorithm(*algorithm)?;
                w.data("data", data)?;
                w.mac("MAC", mac)?;
            }
            Self::EncryptData { key, mode, data } | Self::DecryptData { key, mode, data } => {
                w.key_ref("data key", key)?;
                match mode {
                    DataMode::Ecb => w.out.extend_from_slice(b"00"),
                    DataMode::Cbc(iv) => {
                        w.out.extend_from_slice(b"01");
                        put_hex(w.out, iv);
                    }
                }
                w.data("data", data)?;
            }
            Self::PbocDeriveKey { master, factors } => {
                w.key_ref("master key", master)?;
                w.factors(factors)?;
            }
            Self::PbocLoadMac2 {
                dlk_master,
                request: r,
            } => {
                w.key_ref("load master key", dlk_master)?;
                w.factors(&r.factors)?;
                put_hex(w.out, &r.random);
                put_hex(w.out, &r.online_seq.to_be_bytes());
                put_hex(w.out, &r.balance.to_be_bytes());
                put_hex(w.out, &r.amount.to_be_bytes());
                put_hex(w.out, &[r.tx_type]);
                put_hex(w.out, &r.terminal);
                put_hex(w.out, &r.date);
                put_hex(w.out, &r.time);
                put_hex(w.out, &r.mac1);
            }
            Self::PbocVerifyTac {
                dtk_master,
                request: r,
            } => {
                w.key_ref("TAC master key", dtk_master)?;
                w.factors(&r.factors)?;
                w.data("TAC data", &r.data)?;
                put_hex(w.out, &r.tac);
            }
        }
        Ok(())
    }

    /// Appends a whole frame: length, `header`, message.
    ///
    /// # Errors
    /// As [`Request::encode`] and [`write_frame`]; `out` is unchanged on error.
    pub fn encode_frame(
        &self,
        config: &FrameConfig,
        header: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let mut message = Vec::new();
        self.encode(&mut message)?;
        write_frame(config, header, &message, out)
    }

    /// Decodes a message (command code and fields) that starts at frame offset `offset`.
    ///
    /// # Errors
    /// A [`WireError`] naming the field and its frame offset: an unknown command, a field cut
    /// short, a bad digit, a count out of range, or bytes after the last field.
    pub fn decode(message: &[u8], offset: usize) -> Result<Self, WireError> {
        let r = &mut Reader::new(message, offset);
        let code = r.take("command code", 2)?;
        let code = [
            code.first().copied().unwrap_or(0),
            code.get(1).copied().unwrap_or(0),
        ];
        let command = Command::from_code(code).ok_or(WireError::new(
            "command code",
            offset,
            WireErrorKind::UnknownCommand { code },
        ))?;
        let request = match command {
            Command::Diagnostics => Self::Diagnostics,
            Command::Echo => Self::Echo {
                data: read_data(r, "data")?,
            },
            Command::GenerateKey => {
                let key_type = read_key_type(r, "key type")?;
                let length = read_length_scheme(r, "key scheme")?;
                let export_under = if read_flag(r, "export flag")? {
                    Some(read_key_ref(r, "KEK")?)
                } else {
                    None
                };
                Self::GenerateKey {
                    key_type,
                    length,
                    export_under,
                }
            }
            Command::ImportKey => {
                let kek = read_key_ref(r, "KEK")?;
                let key_type = read_key_type(r, "key type")?;
                let (_, encrypted) = read_key_field(r, "encrypted key")?;
                let expected_kcv = if read_flag(r, "KCV flag")? {
                    Some(read_kcv(r, "expected KCV")?)
                } else {
                    None
                };
                Self::ImportKey {
                    kek,
                    key_type,
                    encrypted,
                    expected_kcv,
                }
            }
            Command::ExportKey => Self::ExportKey {
                kek: read_key_ref(r, "KEK")?,
                key: read_key_ref(r, "key")?,
            },
            Command::KeyCheckValue => Self::KeyCheckValue {
                key: read_key_ref(r, "key")?,
            },
            Command::TranslatePinTpk | Command::TranslatePinZpk => {
                let source_key = read_key_ref(r, "source key")?;
                let dest_key = read_key_ref(r, "destination key")?;
                let source_format = read_pin_format(r, "source PIN block format")?;
                let dest_format = read_pin_format(r, "destination PIN block format")?;
                let pan = read_pan(r, "account number")?;
                let block = r.hex_array::<8>("PIN block")?;
                let t = PinTranslation {
                    source_key,
                    source_format,
                    dest_key,
                    dest_format,
                    pan,
                    block,
                };
                if command == Command::TranslatePinTpk {
                    Self::TranslatePinTpk(t)
                } else {
                    Self::TranslatePinZpk(t)
                }
            }
            Command::GenerateMac => Self::GenerateMac {
                key: read_key_ref(r, "MAC key")?,
                algorithm: read_algorithm(r, "MAC algorithm")?,
                data: read_data(r, "data")?,
            },
            Command::VerifyMac => Self::VerifyMac {
                key: read_key_ref(r, "MAC key")?,
                algorithm: read_algorithm(r, "MAC algorithm")?,
                data: read_data(r, "data")?,
                mac: read_mac(r, "MAC")?,
            },
            Command::EncryptData | Command::DecryptData => {
                let key = read_key_ref(r, "data key")?;
                let mode = read_mode(r, "cipher mode")?;
                let data = read_data(r, "data")?;
                if command == Command::EncryptData {
                    Self::EncryptData { key, mode, data }
                } else {
                    Self::DecryptData { key, mode, data }
                }
            }
            Command::PbocDeriveKey => Self::PbocDeriveKey {
                master: read_key_ref(r, "master key")?,
                factors: read_factors(r, "factor count")?,
            },
            Command::PbocLoadMac2 => {
                let dlk_master = read_key_ref(r, "load master key")?;
                let factors = read_factors(r, "factor count")?;
                let random = r.hex_array::<4>("card random")?;
                let online_seq = u16::from_be_bytes(r.hex_array::<2>("online sequence")?);
                let balance = u32::from_be_bytes(r.hex_array::<4>("balance")?);
                let amount = u32::from_be_bytes(r.hex_array::<4>("amount")?);
                let [tx_type] = r.hex_array::<1>("transaction type")?;
                let terminal = r.hex_array::<6>("terminal id")?;
                let date = r.hex_array::<4>("host date")?;
                let time = r.hex_array::<3>("host time")?;
                let mac1 = r.hex_array::<4>("MAC1")?;
                Self::PbocLoadMac2 {
                    dlk_master,
                    request: LoadRequest {
                        factors,
                        random,
                        online_seq,
                        balance,
                        amount,
                        tx_type,
                        terminal,
                        date,
                        time,
                        mac1,
                    },
                }
            }
            Command::PbocVerifyTac => {
                let dtk_master = read_key_ref(r, "TAC master key")?;
                let factors = read_factors(r, "factor count")?;
                let data = read_data(r, "TAC data")?;
                let tac = r.hex_array::<4>("TAC")?;
                Self::PbocVerifyTac {
                    dtk_master,
                    request: TacRequest { factors, data, tac },
                }
            }
        };
        r.finish("end of message")?;
        Ok(request)
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Request");
        d.field("command", &self.command());
        match self {
            Self::Diagnostics => {}
            Self::Echo { data } => {
                d.field("data_len", &data.len());
            }
            Self::GenerateKey {
                key_type,
                length,
                export_under,
            } => {
                d.field("key_type", key_type)
                    .field("length", length)
                    .field("export_under", export_under);
            }
            Self::ImportKey {
                kek,
                key_type,
                encrypted,
                expected_kcv,
            } => {
                d.field("kek", kek)
                    .field("key_type", key_type)
                    .field("encrypted_len", &encrypted.len())
                    .field("expected_kcv", expected_kcv);
            }
            Self::ExportKey { kek, key } => {
                d.field("kek", kek).field("key", key);
            }
            Self::KeyCheckValue { key } => {
                d.field("key", key);
            }
            Self::TranslatePinTpk(t) | Self::TranslatePinZpk(t) => {
                d.field("translation", t);
            }
            Self::GenerateMac {
                key,
                algorithm,
                data,
            } => {
                d.field("key", key)
                    .field("algorithm", algorithm)
                    .field("data_len", &data.len());
            }
            Self::VerifyMac {
                key,
                algorithm,
                data,
                mac,
            } => {
                d.field("key", key)
                    .field("algorithm", algorithm)
                    .field("data_len", &data.len())
                    .field("mac_len", &mac.len());
            }
            Self::EncryptData { key, mode, data } | Self::DecryptData { key, mode, data } => {
                let mode = match mode {
                    DataMode::Ecb => "ECB",
                    DataMode::Cbc(_) => "CBC",
                };
                d.field("key", key)
                    .field("mode", &mode)
                    .field("data_len", &data.len());
            }
            Self::PbocDeriveKey { master, factors } => {
                d.field("master", master).field("levels", &factors.len());
            }
            Self::PbocLoadMac2 {
                dlk_master,
                request,
            } => {
                d.field("dlk_master", dlk_master)
                    .field("levels", &request.factors.len())
                    .field("amount", &request.amount);
            }
            Self::PbocVerifyTac {
                dtk_master,
                request,
            } => {
                d.field("dtk_master", dtk_master)
                    .field("levels", &request.factors.len())
                    .field("data_len", &request.data.len());
            }
        }
        d.finish_non_exhaustive()
    }
}

/// A response: the fields of a successful command, or an error code (with our detail text).
///
/// `Debug` never shows PIN blocks, data or cryptograms.
#[derive(Clone, PartialEq, Eq)]
pub enum Response {
    /// `ND 00`.
    Diagnostics(Diagnostics),
    /// `B3 00`.
    Echo(Vec<u8>),
    /// `A1 00`.
    GenerateKey(GeneratedKey),
    /// `A7 00`.
    ImportKey(KeyRef),
    /// `A9 00`.
    ExportKey(ExportedKey),
    /// `BV 00`.
    KeyCheckValue(Kcv),
    /// `CB 00`: the PIN block under the destination key.
    TranslatePinTpk([u8; 8]),
    /// `CD 00`: the PIN block under the destination key.
    TranslatePinZpk([u8; 8]),
    /// `M7 00`: the MAC.
    GenerateMac(Vec<u8>),
    /// `M9 00`: the MAC verified.
    VerifyMac,
    /// `M1 00`: the ciphertext.
    EncryptData(Vec<u8>),
    /// `M3 00`: the plaintext.
    DecryptData(Vec<u8>),
    /// `QB 00`: the derived key.
    PbocDeriveKey(KeyRef),
    /// `QD 00`: MAC2.
    PbocLoadMac2([u8; 4]),
    /// `QF 00`: the TAC verified.
    PbocVerifyTac,
    /// A non-zero error code, answering the request with `request_code` (which need not be a
    /// command this protocol knows).
    Error {
        /// The request's command code; the response code is derived from it.
        request_code: [u8; 2],
        /// The code and the detail text.
        error: HsmError,
    },
}

impl Response {
    /// An error answering `command`.
    #[must_use]
    pub const fn error(command: Command, error: HsmError) -> Self {
        Self::Error {
            request_code: command.code(),
            error,
        }
    }

    /// The command this answers, if it is a known one.
    #[must_use]
    pub fn command(&self) -> Option<Command> {
        Some(match self {
            Self::Diagnostics(_) => Command::Diagnostics,
            Self::Echo(_) => Command::Echo,
            Self::GenerateKey(_) => Command::GenerateKey,
            Self::ImportKey(_) => Command::ImportKey,
            Self::ExportKey(_) => Command::ExportKey,
            Self::KeyCheckValue(_) => Command::KeyCheckValue,
            Self::TranslatePinTpk(_) => Command::TranslatePinTpk,
            Self::TranslatePinZpk(_) => Command::TranslatePinZpk,
            Self::GenerateMac(_) => Command::GenerateMac,
            Self::VerifyMac => Command::VerifyMac,
            Self::EncryptData(_) => Command::EncryptData,
            Self::DecryptData(_) => Command::DecryptData,
            Self::PbocDeriveKey(_) => Command::PbocDeriveKey,
            Self::PbocLoadMac2(_) => Command::PbocLoadMac2,
            Self::PbocVerifyTac => Command::PbocVerifyTac,
            Self::Error { request_code, .. } => return Command::from_code(*request_code),
        })
    }

    /// The two-character response code.
    #[must_use]
    pub fn response_code(&self) -> [u8; 2] {
        match (self, self.command()) {
            (Self::Error { request_code, .. }, _) => response_code(*request_code),
            (_, Some(c)) => c.response_code(),
            // Every non-error variant has a command.
            (_, None) => *b"ZZ",
        }
    }

    /// Appends the message (response code, error code, fields) to `out`.
    ///
    /// An error's detail text goes after the error code, limited to [`MAX_DETAIL_LEN`]
    /// printable ASCII characters (others become `?`).
    ///
    /// # Errors
    /// A [`WireError`] for a value the wire cannot carry; offsets count from the start of the
    /// message.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let start = out.len();
        let w = &mut Writer { out, start };
        w.out.extend_from_slice(&self.response_code());
        if let Self::Error { error, .. } = self {
            w.out.extend_from_slice(error.code.as_str().as_bytes());
            w.out
                .extend(error.detail.chars().take(MAX_DETAIL_LEN).map(|c| {
                    u8::try_from(c)
                        .ok()
                        .filter(|b| is_printable(*b))
                        .unwrap_or(b'?')
                }));
            return Ok(());
        }
        w.out.extend_from_slice(b"00");
        match self {
            Self::Diagnostics(d) => {
                w.kcv(&d.lmk_kcv);
                let len = d.firmware.len();
                let at = w.at();
                put_decimal(w.out, "firmware length", at, "0 to 99", len, 2)?;
                if let Some(i) = d.firmware.bytes().position(|b| !is_printable(b)) {
                    return Err(WireError::new(
                        "firmware",
                        at + 2 + i,
                        WireErrorKind::BadByte {
                            expected: "printable ASCII",
                            found: d.firmware.as_bytes().get(i).copied().unwrap_or(0),
                        },
                    ));
                }
                w.out.extend_from_slice(d.firmware.as_bytes());
            }
            Self::Echo(data) | Self::EncryptData(data) | Self::DecryptData(data) => {
                w.data("data", data)?;
            }
            Self::GenerateKey(g) => {
                w.key_ref("key", &g.key)?;
                match &g.under_kek {
                    None => w.out.push(b'0'),
                    Some(k) => {
                        w.out.push(b'1');
                        w.key_field("key under KEK", k)?;
                    }
                }
            }
            Self::ImportKey(k) | Self::PbocDeriveKey(k) => w.key_ref("key", k)?,
            Self::ExportKey(e) => {
                w.key_field("key under KEK", &e.encrypted)?;
                w.kcv(&e.kcv);
            }
            Self::KeyCheckValue(kcv) => w.kcv(kcv),
            Self::TranslatePinTpk(b) | Self::TranslatePinZpk(b) => put_hex(w.out, b),
            Self::GenerateMac(mac) => w.mac("MAC", mac)?,
            Self::PbocLoadMac2(mac2) => put_hex(w.out, mac2),
            Self::VerifyMac | Self::PbocVerifyTac | Self::Error { .. } => {}
        }
        Ok(())
    }

    /// Appends a whole frame: length, `header`, message.
    ///
    /// # Errors
    /// As [`Response::encode`] and [`write_frame`]; `out` is unchanged on error.
    pub fn encode_frame(
        &self,
        config: &FrameConfig,
        header: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let mut message = Vec::new();
        self.encode(&mut message)?;
        write_frame(config, header, &message, out)
    }

    /// Decodes a message (response code, error code, fields) that starts at frame offset
    /// `offset`.
    ///
    /// A non-zero error code decodes to [`Response::Error`] for any printable response code;
    /// the detail text is whatever printable ASCII follows (other bytes are dropped).
    ///
    /// # Errors
    /// A [`WireError`] naming the field and its frame offset.
    pub fn decode(message: &[u8], offset: usize) -> Result<Self, WireError> {
        let r = &mut Reader::new(message, offset);
        let code = r.take("response code", 2)?;
        let code = [
            code.first().copied().unwrap_or(0),
            code.get(1).copied().unwrap_or(0),
        ];
        let error_at = r.offset();
        let err = r.take("error code", 2)?;
        let err = [
            err.first().copied().unwrap_or(0),
            err.get(1).copied().unwrap_or(0),
        ];
        if let Some(i) = err.iter().position(|b| !b.is_ascii_digit()) {
            return Err(WireError::new(
                "error code",
                error_at + i,
                WireErrorKind::NotDigit {
                    found: err.get(i).copied().unwrap_or(0),
                },
            ));
        }
        if err != *b"00" {
            let number = usize::from(err[0] - b'0') * 10 + usize::from(err[1] - b'0');
            let hsm_code = HsmErrorCode::from_ascii(err).ok_or(WireError::new(
                "error code",
                error_at,
                WireErrorKind::OutOfRange {
                    expected: "a known error code",
                    found: number,
                },
            ))?;
            if !code.iter().all(|b| is_printable(*b)) {
                return Err(WireError::new(
                    "response code",
                    offset,
                    WireErrorKind::UnknownCommand { code },
                ));
            }
            let detail: String = r
                .rest()
                .iter()
                .copied()
                .filter(|b| is_printable(*b))
                .take(MAX_DETAIL_LEN)
                .map(char::from)
                .collect();
            let detail = if detail.is_empty() {
                hsm_code.description().to_owned()
            } else {
                detail
            };
            return Ok(Self::Error {
                request_code: [code[0], code[1].wrapping_sub(1)],
                error: HsmError::new(hsm_code, detail),
            });
        }
        let command = Command::from_response_code(code).ok_or(WireError::new(
            "response code",
            offset,
            WireErrorKind::UnknownCommand { code },
        ))?;
        let response = match command {
            Command::Diagnostics => {
                let lmk_kcv = read_kcv(r, "LMK KCV")?;
                let len = r.decimal("firmware length", 2)?;
                let at = r.offset();
                let bytes = r.take("firmware", len)?;
                if let Some(i) = bytes.iter().position(|b| !is_printable(*b)) {
                    return Err(WireError::new(
                        "firmware",
                        at + i,
                        WireErrorKind::BadByte {
                            expected: "printable ASCII",
                            found: bytes.get(i).copied().unwrap_or(0),
                        },
                    ));
                }
                Self::Diagnostics(Diagnostics {
                    lmk_kcv,
                    firmware: bytes.iter().copied().map(char::from).collect(),
                })
            }
            Command::Echo => Self::Echo(read_data(r, "data")?),
            Command::GenerateKey => {
                let key = read_key_ref(r, "key")?;
                let under_kek = if read_flag(r, "export flag")? {
                    Some(read_key_field(r, "key under KEK")?.1)
                } else {
                    None
                };
                Self::GenerateKey(GeneratedKey { key, under_kek })
            }
            Command::ImportKey => Self::ImportKey(read_key_ref(r, "key")?),
            Command::ExportKey => {
                let (_, encrypted) = read_key_field(r, "key under KEK")?;
                let kcv = read_kcv(r, "KCV")?;
                Self::ExportKey(ExportedKey { encrypted, kcv })
            }
            Command::KeyCheckValue => Self::KeyCheckValue(read_kcv(r, "KCV")?),
            Command::TranslatePinTpk => Self::TranslatePinTpk(r.hex_array("PIN block")?),
            Command::TranslatePinZpk => Self::TranslatePinZpk(r.hex_array("PIN block")?),
            Command::GenerateMac => Self::GenerateMac(read_mac(r, "MAC")?),
            Command::VerifyMac => Self::VerifyMac,
            Command::EncryptData => Self::EncryptData(read_data(r, "data")?),
            Command::DecryptData => Self::DecryptData(read_data(r, "data")?),
            Command::PbocDeriveKey => Self::PbocDeriveKey(read_key_ref(r, "key")?),
            Command::PbocLoadMac2 => Self::PbocLoadMac2(r.hex_array("MAC2")?),
            Command::PbocVerifyTac => Self::PbocVerifyTac,
        };
        r.finish("end of message")?;
        Ok(response)
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Diagnostics(d) => f.debug_tuple("Diagnostics").field(d).finish(),
            Self::GenerateKey(g) => f.debug_tuple("GenerateKey").field(g).finish(),
            Self::ImportKey(k) => f.debug_tuple("ImportKey").field(k).finish(),
            Self::PbocDeriveKey(k) => f.debug_tuple("PbocDeriveKey").field(k).finish(),
            Self::ExportKey(e) => f.debug_tuple("ExportKey").field(e).finish(),
            Self::KeyCheckValue(k) => f.debug_tuple("KeyCheckValue").field(k).finish(),
            Self::Error {
                request_code,
                error,
            } => f
                .debug_struct("Error")
                .field("request_code", &String::from_utf8_lossy(request_code))
                .field("error", error)
                .finish(),
            Self::VerifyMac => f.write_str("VerifyMac"),
            Self::PbocVerifyTac => f.write_str("PbocVerifyTac"),
            other => {
                let (name, len) = match other {
                    Self::Echo(d) => ("Echo", d.len()),
                    Self::EncryptData(d) => ("EncryptData", d.len()),
                    Self::DecryptData(d) => ("DecryptData", d.len()),
                    Self::GenerateMac(d) => ("GenerateMac", d.len()),
                    Self::TranslatePinTpk(_) => ("TranslatePinTpk", 8),
                    Self::TranslatePinZpk(_) => ("TranslatePinZpk", 8),
                    _ => ("PbocLoadMac2", 4),
                };
                write!(f, "{name}(<{len} bytes>)")
            }
        }
    }
}

/// Decodes one whole request frame (length, header, message) with the default
/// [`FrameConfig`] (4-byte header): the entry point for fuzzing. Returns the header and the
/// request.
///
/// # Errors
/// A [`WireError`] with the field and frame offset: a frame cut short, longer than its
/// length prefix says, over the limit, or with a bad header or message.
pub fn decode_request(frame: &[u8]) -> Result<(&[u8], Request), WireError> {
    decode_request_with(&FrameConfig::default(), frame)
}

/// [`decode_request`] with a given configuration.
///
/// # Errors
/// As [`decode_request`].
pub fn decode_request_with<'a>(
    config: &FrameConfig,
    frame: &'a [u8],
) -> Result<(&'a [u8], Request), WireError> {
    let raw = whole_frame(config, frame)?;
    let header = raw.header()?;
    Ok((
        header,
        Request::decode(raw.message(), raw.message_offset())?,
    ))
}

/// Decodes one whole response frame with the default [`FrameConfig`]. Returns the header and
/// the response.
///
/// # Errors
/// As [`decode_request`].
pub fn decode_response(frame: &[u8]) -> Result<(&[u8], Response), WireError> {
    decode_response_with(&FrameConfig::default(), frame)
}

/// [`decode_response`] with a given configuration.
///
/// # Errors
/// As [`decode_request`].
pub fn decode_response_with<'a>(
    config: &FrameConfig,
    frame: &'a [u8],
) -> Result<(&'a [u8], Response), WireError> {
    let raw = whole_frame(config, frame)?;
    let header = raw.header()?;
    Ok((
        header,
        Response::decode(raw.message(), raw.message_offset())?,
    ))
}

fn whole_frame<'a>(
    config: &FrameConfig,
    frame: &'a [u8],
) -> Result<super::codec::RawFrame<'a>, WireError> {
    match split_frame(config, frame)? {
        None => {
            let needed = match frame {
                [hi, lo, ..] => HEADER_OFFSET + usize::from(u16::from_be_bytes([*hi, *lo])),
                _ => HEADER_OFFSET,
            };
            Err(WireError::new(
                "frame",
                frame.len(),
                WireErrorKind::Truncated {
                    needed,
                    available: frame.len(),
                },
            ))
        }
        Some((raw, used)) if used == frame.len() => Ok(raw),
        Some((_, used)) => Err(WireError::new(
            "frame",
            used,
            WireErrorKind::TrailingBytes {
                count: frame.len() - used,
            },
        )),
    }
}

const fn is_printable(b: u8) -> bool {
    matches!(b, 0x20..=0x7E)
}

/// Writes fields; offsets in errors count from the start of the message.
struct Writer<'o> {
    out: &'o mut Vec<u8>,
    start: usize,
}

impl Writer<'_> {
    fn at(&self) -> usize {
        self.out.len() - self.start
    }

    fn key_type(&mut self, key_type: KeyType) {
        self.out.extend_from_slice(key_type_code(key_type));
    }

    fn key_field(&mut self, field: &'static str, cryptogram: &[u8]) -> Result<(), WireError> {
        let length = DesKeyLength::from_bytes(cryptogram.len()).ok_or(WireError::new(
            field,
            self.at(),
            WireErrorKind::OutOfRange {
                expected: "a cryptogram of 8, 16 or 24 bytes",
                found: cryptogram.len(),
            },
        ))?;
        self.out.push(scheme_char(length));
        put_hex(self.out, cryptogram);
        Ok(())
    }

    fn kcv(&mut self, kcv: &Kcv) {
        let bytes = kcv.as_bytes();
        // A KCV has 1 to 8 bytes, so its length is a single digit.
        self.out.push(b'0' + (bytes.len() % 10) as u8);
        put_hex(self.out, bytes);
    }

    fn key_ref(&mut self, field: &'static str, key: &KeyRef) -> Result<(), WireError> {
        if key.cryptogram.len() != key.length.bytes() {
            return Err(WireError::new(
                field,
                self.at(),
                WireErrorKind::OutOfRange {
                    expected: "a cryptogram as long as the key",
                    found: key.cryptogram.len(),
                },
            ));
        }
        self.key_type(key.key_type);
        self.key_field(field, &key.cryptogram)?;
        self.kcv(&key.kcv);
        Ok(())
    }

    fn data(&mut self, field: &'static str, data: &[u8]) -> Result<(), WireError> {
        let at = self.at();
        put_decimal(
            self.out,
            field,
            at,
            "at most 16384 bytes",
            if data.len() > MAX_DATA_LEN {
                usize::MAX
            } else {
                data.len()
            },
            5,
        )
        .map_err(|e| WireError {
            kind: WireErrorKind::OutOfRange {
                expected: "at most 16384 bytes",
                found: data.len(),
            },
            ..e
        })?;
        self.out.extend_from_slice(data);
        Ok(())
    }

    fn mac(&mut self, field: &'static str, mac: &[u8]) -> Result<(), WireError> {
        if mac.is_empty() || mac.len() > MAX_MAC_LEN {
            return Err(WireError::new(
                field,
                self.at(),
                WireErrorKind::OutOfRange {
                    expected: "1 to 16 bytes",
                    found: mac.len(),
                },
            ));
        }
        let at = self.at();
        put_decimal(self.out, field, at, "1 to 16 bytes", mac.len(), 2)?;
        put_hex(self.out, mac);
        Ok(())
    }

    fn algorithm(&mut self, alg: MacAlgorithm) -> Result<(), WireError> {
        let at = self.at();
        put_decimal(
            self.out,
            "MAC algorithm",
            at,
            "01 to 99",
            usize::from(alg.code()),
            2,
        )
    }

    fn factors(&mut self, factors: &[[u8; 8]]) -> Result<(), WireError> {
        if factors.len() > MAX_DIVERSIFICATION_LEVELS {
            return Err(WireError::new(
                "factor count",
                self.at(),
                WireErrorKind::OutOfRange {
                    expected: "0 to 8",
                    found: factors.len(),
                },
            ));
        }
        let at = self.at();
        put_decimal(self.out, "factor count", at, "0 to 8", factors.len(), 1)?;
        for f in factors {
            put_hex(self.out, f);
        }
        Ok(())
    }

    fn pan(&mut self, pan: &Pan) -> Result<(), WireError> {
        let at = self.at();
        put_decimal(
            self.out,
            "account number",
            at,
            "8 to 19 digits",
            pan.len(),
            2,
        )?;
        self.out
            .extend(pan.digits().iter().map(|d| b'0' + (d % 10)));
        Ok(())
    }
}

fn read_key_type(r: &mut Reader<'_>, field: &'static str) -> Result<KeyType, WireError> {
    let at = r.offset();
    let bytes = r.take(field, 3)?;
    let mut code = [0u8; 3];
    for (i, (d, &c)) in code.iter_mut().zip(bytes).enumerate() {
        if !c.is_ascii_digit() {
            return Err(WireError::new(
                field,
                at + i,
                WireErrorKind::NotDigit { found: c },
            ));
        }
        *d = c;
    }
    key_type_from_code(code).ok_or(WireError::new(
        field,
        at,
        WireErrorKind::OutOfRange {
            expected: "a key type code (000-005, 008, 009, 101-105)",
            found: code
                .iter()
                .fold(0usize, |n, c| n * 10 + usize::from(c - b'0')),
        },
    ))
}

fn read_length_scheme(r: &mut Reader<'_>, field: &'static str) -> Result<DesKeyLength, WireError> {
    let at = r.offset();
    match r.byte(field)? {
        b'Z' => Ok(DesKeyLength::Single),
        b'U' => Ok(DesKeyLength::Double),
        b'T' => Ok(DesKeyLength::Triple),
        found => Err(WireError::new(
            field,
            at,
            WireErrorKind::BadByte {
                expected: "a key scheme Z, U or T",
                found,
            },
        )),
    }
}

/// A key field: an optional scheme (`Z`/none single, `U` double, `T` triple) and the hex.
fn read_key_field(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<(DesKeyLength, Vec<u8>), WireError> {
    let length = match r.peek() {
        Some(c) if c.is_ascii_hexdigit() => DesKeyLength::Single,
        _ => read_length_scheme(r, field)?,
    };
    let bytes = r.hex_vec(field, length.bytes())?;
    Ok((length, bytes))
}

fn read_kcv(r: &mut Reader<'_>, field: &'static str) -> Result<Kcv, WireError> {
    let at = r.offset();
    let n = r.decimal(field, 1)?;
    if !(1..=8).contains(&n) {
        return Err(WireError::new(
            field,
            at,
            WireErrorKind::OutOfRange {
                expected: "a KCV length of 1 to 8 bytes",
                found: n,
            },
        ));
    }
    let mut buf = [0u8; 8];
    let slot = buf.get_mut(..n).unwrap_or(&mut []);
    r.hex_into(field, slot)?;
    Kcv::from_bytes(slot).map_err(|_| {
        WireError::new(
            field,
            at,
            WireErrorKind::OutOfRange {
                expected: "a KCV length of 1 to 8 bytes",
                found: n,
            },
        )
    })
}

fn read_key_ref(r: &mut Reader<'_>, field: &'static str) -> Result<KeyRef, WireError> {
    let key_type = read_key_type(r, field)?;
    let (length, cryptogram) = read_key_field(r, field)?;
    let kcv = read_kcv(r, field)?;
    Ok(KeyRef {
        key_type,
        length,
        cryptogram,
        kcv,
    })
}

fn read_flag(r: &mut Reader<'_>, field: &'static str) -> Result<bool, WireError> {
    let at = r.offset();
    match r.byte(field)? {
        b'0' => Ok(false),
        b'1' => Ok(true),
        found => Err(WireError::new(
            field,
            at,
            WireErrorKind::BadByte {
                expected: "0 or 1",
                found,
            },
        )),
    }
}

fn read_data(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>, WireError> {
    let at = r.offset();
    let n = r.decimal(field, 5)?;
    if n > MAX_DATA_LEN {
        return Err(WireError::new(
            field,
            at,
            WireErrorKind::OutOfRange {
                expected: "a length of at most 16384 bytes",
                found: n,
            },
        ));
    }
    Ok(r.take(field, n)?.to_vec())
}

fn read_mac(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>, WireError> {
    let at = r.offset();
    let n = r.decimal(field, 2)?;
    if !(1..=MAX_MAC_LEN).contains(&n) {
        return Err(WireError::new(
            field,
            at,
            WireErrorKind::OutOfRange {
                expected: "a MAC length of 1 to 16 bytes",
                found: n,
            },
        ));
    }
    r.hex_vec(field, n)
}

fn read_algorithm(r: &mut Reader<'_>, field: &'static str) -> Result<MacAlgorithm, WireError> {
    let at = r.offset();
    let n = r.decimal(field, 2)?;
    u8::try_from(n)
        .ok()
        .and_then(MacAlgorithm::from_code)
        .ok_or(WireError::new(
            field,
            at,
            WireErrorKind::OutOfRange {
                expected: "a MAC algorithm code 01 to 08",
                found: n,
            },
        ))
}

fn read_mode(r: &mut Reader<'_>, field: &'static str) -> Result<DataMode, WireError> {
    let at = r.offset();
    match r.decimal(field, 2)? {
        0 => Ok(DataMode::Ecb),
        1 => Ok(DataMode::Cbc(r.hex_array("IV")?)),
        n => Err(WireError::new(
            field,
            at,
            WireErrorKind::OutOfRange {
                expected: "00 (ECB) or 01 (CBC)",
                found: n,
            },
        )),
    }
}

fn read_factors(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<[u8; 8]>, WireError> {
    let at = r.offset();
    let n = r.decimal(field, 1)?;
    if n > MAX_DIVERSIFICATION_LEVELS {
        return Err(WireError::new(
            field,
            at,
            WireErrorKind::OutOfRange {
                expected: "0 to 8 factors",
                found: n,
            },
        ));
    }
    (0..n).map(|_| r.hex_array("factor")).collect()
}

fn read_pin_format(r: &mut Reader<'_>, field: &'static str) -> Result<PinBlockFormat, WireError> {
    let at = r.offset();
    match r.decimal(field, 2)? {
        1 => Ok(PinBlockFormat::Iso0),
        5 => Ok(PinBlockFormat::Iso1),
        47 => Ok(PinBlockFormat::Iso3),
        48 => Ok(PinBlockFormat::Iso4),
        n => Err(WireError::new(
            field,
            at,
            WireErrorKind::OutOfRange {
                expected: "a PIN block format 01, 05, 47 or 48",
                found: n,
            },
        )),
    }
}

fn read_pan(r: &mut Reader<'_>, field: &'static str) -> Result<Pan, WireError> {
    let at = r.offset();
    let n = r.decimal(field, 2)?;
    if !(8..=19).contains(&n) {
        return Err(WireError::new(
            field,
            at,
            WireErrorKind::OutOfRange {
                expected: "8 to 19 digits",
                found: n,
            },
        ));
    }
    let digits_at = r.offset();
    let digits = r.take(field, n)?;
    if let Some(i) = digits.iter().position(|b| !b.is_ascii_digit()) {
        return Err(WireError::new(
            field,
            digits_at + i,
            WireErrorKind::NotDigit {
                found: digits.get(i).copied().unwrap_or(0),
            },
        ));
    }
    let text = core::str::from_utf8(digits).unwrap_or("");
    Pan::new(text).map_err(|_| {
        WireError::new(
            field,
            at,
            WireErrorKind::OutOfRange {
                expected: "8 to 19 digits",
                found: n,
            },
        )
    })
}
