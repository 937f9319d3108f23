//! `posp-node card sim`: a virtual ED/EP card in an APDU session.
//!
//! The card comes from an image (`--image`, JSON as `card issue` writes it) or from keys on
//! the command line. Keys given on the command line are the card's own (already
//! diversified) keys: DLK, DPK and DTK, all at key index `--key-index` (default `01`), key
//! version `--key-version` (default `01`) and algorithm id `--alg-id` (default `00`). Such a
//! card has one application (`--app`, default `ep`) with `--balance` fen (default 0) and
//! `--max-balance` (default 4294967295, no practical limit), no overdraw limit, no PIN, the
//! default AID `A00000000386980701`, issuer id `0000000000000000`, card type `00`,
//! application version `01`, validity 2000-01-01 to 2099-12-31 and 10 detail records.
//!
//! With `--random`, every card challenge is that value, so a recorded trace replays byte
//! for byte; without it the challenges come from `/dev/urandom`. `--save FILE` writes the
//! card's image when the session ends (replacing FILE atomically; it may be the `--image`
//! file itself), so a card keeps its balance, counters and records between sessions.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use pboc_card::image::{CardKey, DEFAULT_AID, DEFAULT_RECORD_CAPACITY, IMAGE_FORMAT, Purse};
use pboc_card::{CardImage, FixedRandom, KeyPurpose, TearPoint, VirtualCard};
use pboc_sam::RandomSource;

use super::{
    OsRandom, Simulator, des_key_option, hex_byte, hex_option, read_text, replace_file,
    stdio_session,
};

/// The application a card built from command-line keys has.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum AppArg {
    /// Electronic purse (P2 `02`).
    Ep,
    /// Electronic deposit (P2 `01`).
    Ed,
}

/// Arguments of `card sim`.
#[derive(Args)]
pub struct SimArgs {
    /// A card image (JSON). Without it, give --serial, --dlk, --dpk and --dtk.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = [
            "serial", "dlk", "dpk", "dtk", "balance", "max_balance", "key_index",
            "key_version", "alg_id", "app",
        ]
    )]
    image: Option<PathBuf>,
    /// The application serial number (8 bytes, hex).
    #[arg(long, value_name = "HEX")]
    serial: Option<String>,
    /// The card's load key DLK (16 bytes, hex).
    #[arg(long, value_name = "HEX")]
    dlk: Option<String>,
    /// The card's purchase key DPK (16 bytes, hex).
    #[arg(long, value_name = "HEX")]
    dpk: Option<String>,
    /// The card's TAC key DTK (16 bytes, hex).
    #[arg(long, value_name = "HEX")]
    dtk: Option<String>,
    /// Initial balance in fen.
    #[arg(long, value_name = "FEN", default_value_t = 0)]
    balance: u32,
    /// Largest balance a load may reach, in fen.
    #[arg(long, value_name = "FEN", default_value_t = u32::MAX)]
    max_balance: u32,
    /// Key index of the three keys (1 byte, hex).
    #[arg(long, value_name = "HEX", default_value = "01")]
    key_index: String,
    /// Key version of the three keys (1 byte, hex).
    #[arg(long, value_name = "HEX", default_value = "01")]
    key_version: String,
    /// Algorithm id of the three keys (1 byte, hex).
    #[arg(long, value_name = "HEX", default_value = "00")]
    alg_id: String,
    /// The application of the card.
    #[arg(long, value_enum, default_value = "ep")]
    app: AppArg,
    /// Fixed card challenge (4 bytes, hex): every random the card issues is this value.
    #[arg(long, value_name = "HEX")]
    random: Option<String>,
    /// Write the card's image here when the session ends.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
}

/// The card image the arguments describe.
fn image_from(args: &SimArgs) -> Result<CardImage, String> {
    if let Some(path) = &args.image {
        let text = read_text(path)?;
        return CardImage::from_json(&text).map_err(|e| format!("{}: {e}", path.display()));
    }
    let (Some(serial), Some(dlk), Some(dpk), Some(dtk)) =
        (&args.serial, &args.dlk, &args.dpk, &args.dtk)
    else {
        return Err(
            "card sim needs --image FILE, or all of --serial, --dlk, --dpk and --dtk".into(),
        );
    };
    let serial = hex_option::<8>("--serial", "the application serial", serial)?;
    let index = hex_byte("--key-index", &args.key_index)?;
    let version = hex_byte("--key-version", &args.key_version)?;
    let algorithm_id = hex_byte("--alg-id", &args.alg_id)?;
    let mut keys = Vec::new();
    for (purpose, arg, text) in [
        (KeyPurpose::Purchase, "--dpk", dpk),
        (KeyPurpose::Load, "--dlk", dlk),
        (KeyPurpose::Tac, "--dtk", dtk),
    ] {
        keys.push(CardKey {
            purpose,
            index,
            version,
            algorithm_id,
            key: des_key_option(arg, text)?,
            mac_failures: 0,
        });
    }
    let purse = Some(Purse::new(args.balance, args.max_balance));
    let (ed, ep) = match args.app {
        AppArg::Ed => (purse, None),
        AppArg::Ep => (None, purse),
    };
    let image = CardImage {
        format: IMAGE_FORMAT,
        aid: DEFAULT_AID.to_vec(),
        serial,
        issuer_id: [0; 8],
        card_type: 0x00,
        app_version: 0x01,
        valid_from: [0x20, 0x00, 0x01, 0x01],
        valid_until: [0x20, 0x99, 0x12, 0x31],
        deposit: 0,
        locked: false,
        ed,
        ep,
        keys,
        pin: None,
        record_capacity: DEFAULT_RECORD_CAPACITY,
        records: Vec::new(),
        capp_records: Vec::new(),
        proofs: Vec::new(),
    };
    image.validate().map_err(|e| e.to_string())?;
    Ok(image)
}

/// The card's random source: fixed with `--random`, else the OS's.
fn random_from(args: &SimArgs) -> Result<Box<dyn RandomSource>, String> {
    match &args.random {
        Some(text) => Ok(Box::new(FixedRandom::new(hex_option::<4>(
            "--random",
            "the card challenge",
            text,
        )?))),
        None => Ok(Box::new(OsRandom::open()?)),
    }
}

impl Simulator for VirtualCard {
    fn process(&mut self, capdu: &[u8]) -> Vec<u8> {
        VirtualCard::process(self, capdu)
    }

    fn control(&mut self, words: &[&str]) -> Result<(), String> {
        match words {
            ["reset"] => self.reset(),
            ["tear", "before"] => self.set_tear(TearPoint::BeforeCommit),
            ["tear", "after"] => self.set_tear(TearPoint::AfterCommitBeforeResponse),
            ["tear", "off"] => self.clear_tear(),
            _ => {
                return Err(format!(
                    "unknown control line `!{}` (the card knows !reset, !tear before, \
                     !tear after, !tear off)",
                    words.join(" ")
                ));
            }
        }
        Ok(())
    }
}

/// Runs `card sim`.
pub fn run(args: &SimArgs) -> Result<ExitCode, String> {
    let image = image_from(args)?;
    let random = random_from(args)?;
    let mut card = VirtualCard::from_image(&image, random).map_err(|e| e.to_string())?;
    stdio_session(&mut card)?;
    if let Some(path) = &args.save {
        let json = card.image().to_json().map_err(|e| e.to_string())?;
        replace_file(path, &format!("{json}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}
