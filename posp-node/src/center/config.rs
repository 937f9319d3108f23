//! The data center's configuration: the `[center]` section of the node's TOML file (or a file
//! of its own with the same keys at the top level).
//!
//! ```toml
//! [center]
//! listen = "127.0.0.1:5900"          # where front ends connect (len2 framing)
//! spec = "cups-pos"                  # their dialect: the [[link]] spec of the front ends
//! acquirers = ["48020000"]           # field 32 values accepted
//! database = "center.db"             # the registry and the center's journal (SQLite)
//! utc_offset_minutes = 480           # local time of fields 12/13 and the load's host date
//! max_connections = 16
//! max_in_flight = 64                 # requests being processed per connection
//! max_frame = 4096
//! shutdown_grace = "2s"
//! duplicate_window = "24h"
//! reply_to = { "48030000" = "127.0.0.1:5871" }  # simplex front ends: where their replies go
//!
//! [center.hsm]                       # an in-process SoftHsm, or remote HSMs in a pool
//! lmk_file = "lmk.txt"
//!
//! [center.keys]                      # every key as a cryptogram under the LMK
//! zak = { type = "ZAK", cryptogram = "...", kcv = "..." }
//! zpk = { type = "ZPK", cryptogram = "...", kcv = "..." }
//! pvk = { type = "ZPK", cryptogram = "...", kcv = "..." }    # optional: PIN verification
//! dlk_master = { type = "MLK", cryptogram = "...", kcv = "..." }
//! dtk_master = { type = "MTK", cryptogram = "...", kcv = "..." }
//! issuer_factors = []                # PBOC diversification factors above the card serial
//!
//! [center.faults]                    # test only: misbehave on purpose
//! delay = "0s"
//! ```
//!
//! Keys never appear in clear: each is a [`KeySpec`] (`type`, `cryptogram`, `kcv`), the same
//! shape the front end's `[keys]` section uses. Durations are humantime (`250ms`, `2s`, `24h`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pboc_sam::{DesKeyLength, Kcv, KeyRef, KeyType};
use serde::{Deserialize, Serialize};

use super::CenterError;

/// The data center host's configuration (the `[center]` section).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CenterConfig {
    /// `listen`: the address front ends connect to (`host:port`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// `spec`: the ISO 8583 dialect front ends speak to the center, a built-in spec name:
    /// `cups-pos` (the default), `iso87-binary`, `iso87-ascii` or `iso93-ascii`; the same as
    /// the front ends' `[[link]] spec`. Requests are decoded and answers built in it; the
    /// MAC is in field 64, or 128 when the message has a secondary bitmap. In `iso93-ascii`
    /// field 39 of an answer is an ISO 8583:1993 action code (`000`, `116`, ...).
    #[serde(default = "default_spec")]
    pub spec: String,
    /// `acquirers`: the acquiring institution ids (field 32) accepted; a request from any
    /// other gets `03`. At least one.
    pub acquirers: Vec<String>,
    /// `database`: the SQLite file holding the registry (cards, accounts, purses, blacklist),
    /// the authorizations and the center's message journal. Relative paths are resolved
    /// against the configuration file's directory.
    pub database: PathBuf,
    /// `utc_offset_minutes`: the center's local time zone in minutes east of UTC, for fields
    /// 12 and 13, card expiry and the load's host date and time (default 480, UTC+8).
    #[serde(default = "default_utc_offset")]
    pub utc_offset_minutes: i32,
    /// `max_connections`: front-end connections served at once; more are closed on accept
    /// (default 16).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `max_in_flight`: requests processed at once per connection; reading pauses while the
    /// limit is reached (default 64).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// `max_frame`: the largest frame accepted, in bytes after the 2-byte length (default
    /// 4096); a longer one closes the connection.
    #[serde(default = "default_max_frame")]
    pub max_frame: usize,
    /// `shutdown_grace`: how long a graceful shutdown waits for requests being processed
    /// (default 2s).
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// `duplicate_window`: how long a matching key (field 32 + 41 + 11) identifies the same
    /// transaction: a repeated request within it gets the stored answer, a reversal finds its
    /// original within it (default 24h: upstream STANs are unique per day).
    #[serde(default = "default_window", with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// `reply_to`: the front ends whose links are simplex long connections, by acquirer id
    /// (field 32) -> the front end's `receive_address` (`host:port`). The center keeps its
    /// own connection to each (reconnecting with backoff from 100 ms doubling to 5 s) and
    /// sends every reply to a request carrying that field 32, echoes included, there instead
    /// of on the connection the request came on; it never reads requests from it. Replies
    /// made while that connection is down are lost (the front end has failed those requests
    /// already and reverses them). Acquirers not listed get their replies on the request's
    /// own connection (full-duplex-long, half-duplex-long, full-duplex-short). Each key must
    /// be one of `acquirers`. Default: empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reply_to: BTreeMap<String, String>,
    /// `[center.hsm]`: where key operations run.
    pub hsm: CenterHsmConfig,
    /// `[center.keys]`: the zone keys and the PBOC master keys.
    pub keys: CenterKeys,
    /// `[center.limits]`: default per-card limits.
    #[serde(default)]
    pub limits: CardLimits,
    /// `[center.faults]`: fault injection for tests; absent means none.
    #[serde(default)]
    pub faults: FaultsConfig,
}

fn default_utc_offset() -> i32 {
    480
}
fn default_spec() -> String {
    "cups-pos".to_owned()
}
fn default_max_connections() -> usize {
    16
}
fn default_max_in_flight() -> usize {
    64
}
fn default_max_frame() -> usize {
    4096
}
fn default_grace() -> Duration {
    Duration::from_secs(2)
}
fn default_window() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// `[center.hsm]`: an in-process SoftHsm on an LMK file, or remote HSMs in a pool (exactly
/// one of the two).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CenterHsmConfig {
    /// `lmk_file`: the LMK file of an in-process SoftHsm (relative to the configuration
    /// file's directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lmk_file: Option<PathBuf>,
    /// `remote`: addresses (`host:port`) of HSMs speaking the host protocol, balanced in a
    /// pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote: Vec<String>,
    /// `request_timeout`: per request to a remote HSM (default 2s).
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub request_timeout: Duration,
}

/// A key as configured: its cryptogram under the LMK, its type and its check value.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// `type`: `ZAK`, `ZPK`, `MLK` (PBOC master load key), `MTK` (PBOC master TAC key), or
    /// any other type name of the front end's configuration (`TMK`, `ZMK`, `TPK`, `TAK`,
    /// `TDK`, `ZEK`, `MPK`, `MULK`, `MUK`).
    #[serde(rename = "type")]
    pub key_type: String,
    /// `cryptogram`: the key under the LMK, hex (16, 32 or 48 digits).
    pub cryptogram: String,
    /// `kcv`: the key check value, hex.
    pub kcv: String,
}

impl std::fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySpec")
            .field("key_type", &self.key_type)
            .field("kcv", &self.kcv)
            .finish_non_exhaustive()
    }
}

/// The configuration name of a key type.
pub fn key_type_name(t: KeyType) -> &'static str {
    match t {
        KeyType::Tmk => "TMK",
        KeyType::Zmk => "ZMK",
        KeyType::Tpk => "TPK",
        KeyType::Zpk => "ZPK",
        KeyType::Tak => "TAK",
        KeyType::Zak => "ZAK",
        KeyType::Tdk => "TDK",
        KeyType::Zek => "ZEK",
        KeyType::PbocPurchase => "MPK",
        KeyType::PbocLoad => "MLK",
        KeyType::PbocTac => "MTK",
        KeyType::PbocUnload => "MULK",
        KeyType::PbocUpdate => "MUK",
        _ => "?",
    }
}

fn parse_key_type(name: &str) -> Option<KeyType> {
    Some(match name.to_ascii_uppercase().as_str() {
        "TMK" => KeyType::Tmk,
        "ZMK" => KeyType::Zmk,
        "TPK" => KeyType::Tpk,
        "ZPK" => KeyType::Zpk,
        "TAK" => KeyType::Tak,
        "ZAK" => KeyType::Zak,
        "TDK" => KeyType::Tdk,
        "ZEK" => KeyType::Zek,
        "MPK" => KeyType::PbocPurchase,
        "MLK" => KeyType::PbocLoad,
        "MTK" => KeyType::PbocTac,
        "MULK" => KeyType::PbocUnload,
        "MUK" => KeyType::PbocUpdate,
        _ => return None,
    })
}

impl KeySpec {
    /// The configuration form of a key reference.
    pub fn from_key_ref(key: &KeyRef) -> KeySpec {
        KeySpec {
            key_type: key_type_name(key.key_type).to_owned(),
            cryptogram: hex::encode_upper(&key.cryptogram),
            kcv: key.kcv.to_string(),
        }
    }

    /// The key reference, checked to be of type `want`; `at` names the configuration key in
    /// errors (`center.keys.zak`).
    ///
    /// # Errors
    /// [`CenterError::Config`] for an unknown or wrong type, bad hex, a cryptogram that is
    /// not 8, 16 or 24 bytes, or a bad check value.
    pub fn to_key_ref(&self, at: &str, want: KeyType) -> Result<KeyRef, CenterError> {
        let key_type = parse_key_type(&self.key_type).ok_or_else(|| {
            CenterError::config(
                format!("{at}.type"),
                format!("unknown key type {:?}", self.key_type),
            )
        })?;
        if key_type != want {
            return Err(CenterError::config(
                format!("{at}.type"),
                format!(
                    "a {} where a {} is required",
                    key_type_name(key_type),
                    key_type_name(want)
                ),
            ));
        }
        let cryptogram = hex::decode(&self.cryptogram).map_err(|e| {
            CenterError::config(format!("{at}.cryptogram"), format!("not hex: {e}"))
        })?;
        let length = DesKeyLength::from_bytes(cryptogram.len()).ok_or_else(|| {
            CenterError::config(
                format!("{at}.cryptogram"),
                format!("{} bytes, expected 8, 16 or 24", cryptogram.len()),
            )
        })?;
        let kcv = Kcv::from_hex(&self.kcv)
            .map_err(|e| CenterError::config(format!("{at}.kcv"), e.to_string()))?;
        Ok(KeyRef {
            key_type,
            length,
            cryptogram,
            kcv,
        })
    }
}

/// `[center.keys]`: the keys the center uses, all as cryptograms under the HSM's LMK.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CenterKeys {
    /// `zak`: the zone MAC key shared with the front ends (type `ZAK`, double length): every
    /// request's field 64 is verified with it (ANSI X9.19) and every response is MACed with it.
    pub zak: KeySpec,
    /// `zpk`: the zone PIN key the front ends translate PIN blocks to (type `ZPK`).
    pub zpk: KeySpec,
    /// `pvk`: the PIN verification key (type `ZPK`). Each card's PIN verification data is its
    /// ISO format 0 PIN block under this key; a request's PIN block is translated from the ZPK
    /// to it by the HSM and compared. Absent: PINs are not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvk: Option<KeySpec>,
    /// `dlk_master`: the PBOC master load key (type `MLK`); each purse card's DLK is derived
    /// from it by the HSM.
    pub dlk_master: KeySpec,
    /// `dtk_master`: the PBOC master TAC key (type `MTK`); each purse card's DTK is derived
    /// from it by the HSM to verify load TACs.
    pub dtk_master: KeySpec,
    /// `issuer_factors`: diversification factors above the card serial (issuer, city ...),
    /// outermost first, each 16 hex digits; empty for diversification by the serial alone.
    #[serde(default)]
    pub issuer_factors: Vec<String>,
}

/// `[center.limits]`: limits applied to cards that have none of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CardLimits {
    /// `single`: the largest purchase, in fen (default 5 000 000 = 50 000 yuan); more gets `61`.
    #[serde(default = "default_single")]
    pub single: u64,
    /// `daily`: the most a card may spend per local day, in fen (default 10 000 000); more
    /// gets `61`.
    #[serde(default = "default_daily")]
    pub daily: u64,
    /// `purse_max_balance`: the largest balance a purse may reach by a load, in fen (default
    /// 100 000 = 1 000 yuan, the PBOC EP ceiling); more gets `61`.
    #[serde(default = "default_purse_max")]
    pub purse_max_balance: u64,
}

fn default_single() -> u64 {
    5_000_000
}
fn default_daily() -> u64 {
    10_000_000
}
fn default_purse_max() -> u64 {
    100_000
}

impl Default for CardLimits {
    fn default() -> Self {
        CardLimits {
            single: default_single(),
            daily: default_daily(),
            purse_max_balance: default_purse_max(),
        }
    }
}

/// Which transaction messages a fault applies to. A message is selected when any of `all`,
/// `every`, `stans` and `amounts` says so and, if `mtis` is given, its MTI is one of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FaultSelector {
    /// `all`: every transaction message.
    #[serde(default)]
    pub all: bool,
    /// `every`: every Nth transaction message the center receives (counted from 1 since
    /// start, across connections; 0 = off).
    #[serde(default)]
    pub every: u64,
    /// `stans`: messages whose field 11 is one of these.
    #[serde(default)]
    pub stans: Vec<u32>,
    /// `amounts`: messages whose field 4 (fen) is one of these.
    #[serde(default)]
    pub amounts: Vec<u64>,
    /// `mtis`: when not empty, only messages of these MTIs are selected (`["0200"]` drops a
    /// purchase's reply but not its reversal's, which carries the same amount and STAN).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mtis: Vec<String>,
}

/// `[center.faults.late]`: replies sent only after a delay (longer than the front end's
/// timeout, to test late responses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LateFault {
    /// `after`: how long after processing the reply is sent.
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    /// Which messages (the [`FaultSelector`] keys, flattened).
    #[serde(flatten)]
    pub select: FaultSelector,
}

/// `[center.faults]`: fault injection, for tests of the front end. Faults apply to
/// transaction messages only: network management (08xx echoes) is always answered at once.
/// A faulty reply is still processed and journaled: "drop" loses the reply, not the
/// transaction, exactly as a lost response on a real network does.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FaultsConfig {
    /// `delay`: every reply is sent this long after processing (default 0).
    #[serde(default, with = "humantime_serde")]
    pub delay: Duration,
    /// `[center.faults.drop]`: replies never sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<FaultSelector>,
    /// `[center.faults.late]`: replies sent late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<LateFault>,
    /// `[center.faults.duplicate]`: replies sent twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<FaultSelector>,
    /// `close_after`: the Nth transaction message on each connection is processed, its
    /// reply is not sent and the connection is closed (0 = never).
    #[serde(default)]
    pub close_after: u64,
}

/// Where a [`CenterConfig`]'s paths and keys resolve to, checked.
#[derive(Debug, Clone)]
pub struct ResolvedKeys {
    /// Zone MAC key.
    pub zak: KeyRef,
    /// Zone PIN key.
    pub zpk: KeyRef,
    /// PIN verification key, if PINs are verified.
    pub pvk: Option<KeyRef>,
    /// The PBOC issuer keys (DLK and DTK masters, issuer factors).
    pub issuer: pboc_card::issuer::IssuerKeys,
}

impl CenterConfig {
    /// Example values for `posp-node init` and tests: loopback port 5900, the demo acquirer
    /// `48020000`, `center.db` and `lmk.txt` next to the configuration file. The keys are
    /// placeholders of the right types (all-zero cryptograms): replace them with keys made by
    /// the HSM ([`KeySpec::from_key_ref`]) before use.
    pub fn example() -> CenterConfig {
        let placeholder = |t: KeyType| KeySpec {
            key_type: key_type_name(t).to_owned(),
            cryptogram: "0".repeat(32),
            kcv: "00000000".to_owned(),
        };
        CenterConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5900)),
            spec: default_spec(),
            acquirers: vec!["48020000".to_owned()],
            database: PathBuf::from("center.db"),
            utc_offset_minutes: default_utc_offset(),
            max_connections: default_max_connections(),
            max_in_flight: default_max_in_flight(),
            max_frame: default_max_frame(),
            shutdown_grace: default_grace(),
            duplicate_window: default_window(),
            reply_to: BTreeMap::new(),
            hsm: CenterHsmConfig {
                lmk_file: Some(PathBuf::from("lmk.txt")),
                remote: Vec::new(),
                request_timeout: default_grace(),
            },
            keys: CenterKeys {
                zak: placeholder(KeyType::Zak),
                zpk: placeholder(KeyType::Zpk),
                pvk: Some(placeholder(KeyType::Zpk)),
                dlk_master: placeholder(KeyType::PbocLoad),
                dtk_master: placeholder(KeyType::PbocTac),
                issuer_factors: Vec::new(),
            },
            limits: CardLimits::default(),
            faults: FaultsConfig::default(),
        }
    }

    /// The `[center]` section as commented TOML, for `posp-node init` to append to the node's
    /// configuration file.
    pub fn to_toml_section(&self) -> String {
        let key = |k: &KeySpec| {
            format!(
                "{{ type = \"{}\", cryptogram = \"{}\", kcv = \"{}\" }}",
                k.key_type, k.cryptogram, k.kcv
            )
        };
        let quoted = |v: &[String]| {
            v.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = String::new();
        out.push_str("[center]\n");
        out.push_str("# listen: where front ends connect (len2 framing).\n");
        out.push_str(&format!("listen = \"{}\"\n", self.listen));
        out.push_str(
            "# spec: the front ends' upstream dialect, their [[link]] spec: \"cups-pos\",\n\
             # \"iso87-binary\", \"iso87-ascii\" or \"iso93-ascii\". The MAC is in field 64 (128 with\n\
             # a secondary bitmap). In iso93-ascii field 39 is an ISO 8583:1993 action code.\n",
        );
        out.push_str(&format!("spec = \"{}\"\n", self.spec));
        out.push_str(
            "# acquirers: acquiring institution ids (field 32) accepted; others get 03.\n",
        );
        out.push_str(&format!("acquirers = [{}]\n", quoted(&self.acquirers)));
        out.push_str("# database: the registry, the authorizations and the center's journal.\n");
        out.push_str(&format!(
            "database = \"{}\"\n",
            self.database.display().to_string().replace('\\', "/")
        ));
        out.push_str(
            "# utc_offset_minutes: the center's local time (fields 12/13, expiry, load date).\n",
        );
        out.push_str(&format!(
            "utc_offset_minutes = {}\n",
            self.utc_offset_minutes
        ));
        out.push_str(
            "# max_connections / max_in_flight: front-end connections; requests per connection.\n",
        );
        out.push_str(&format!("max_connections = {}\n", self.max_connections));
        out.push_str(&format!("max_in_flight = {}\n", self.max_in_flight));
        out.push_str("# max_frame: the largest frame accepted, bytes after the length.\n");
        out.push_str(&format!("max_frame = {}\n", self.max_frame));
        out.push_str("# shutdown_grace: how long shutdown waits for requests being processed.\n");
        out.push_str(&format!(
            "shutdown_grace = \"{}\"\n",
            humantime_serde::re::humantime::format_duration(self.shutdown_grace)
        ));
        out.push_str("# duplicate_window: how long 32+41+11 identifies one transaction.\n");
        out.push_str(&format!(
            "duplicate_window = \"{}\"\n",
            humantime_serde::re::humantime::format_duration(self.duplicate_window)
        ));
        out.push_str(
            "# reply_to: front ends on simplex-long links, by acquirer id (field 32) -> their link's\n\
             # receive_address. The center connects there itself and sends those acquirers' replies\n\
             # (echoes included) on that connection only; others are answered on the connection the\n\
             # request came on (full-duplex-long, half-duplex-long, full-duplex-short).\n",
        );
        if self.reply_to.is_empty() {
            out.push_str("# reply_to = { \"48020000\" = \"127.0.0.1:5871\" }\n\n");
        } else {
            let pairs = self
                .reply_to
                .iter()
                .map(|(a, r)| format!("\"{a}\" = \"{r}\""))
                .collect::<Vec<_>>()
                .join(", ");
            out.push_str(&format!("reply_to = {{ {pairs} }}\n\n"));
        }
        out.push_str("[center.hsm]\n");
        out.push_str(
            "# lmk_file: an in-process SoftHsm on this LMK; or remote = [\"host:port\", ...].\n",
        );
        if let Some(lmk) = &self.hsm.lmk_file {
            out.push_str(&format!(
                "lmk_file = \"{}\"\n",
                lmk.display().to_string().replace('\\', "/")
            ));
        }
        if !self.hsm.remote.is_empty() {
            out.push_str(&format!("remote = [{}]\n", quoted(&self.hsm.remote)));
        }
        out.push_str("# request_timeout: per request to a remote HSM.\n");
        out.push_str(&format!(
            "request_timeout = \"{}\"\n\n",
            humantime_serde::re::humantime::format_duration(self.hsm.request_timeout)
        ));
        out.push_str("[center.keys]\n");
        out.push_str("# zak: zone MAC key (X9.19 on field 64 both ways).\n");
        out.push_str(&format!("zak = {}\n", key(&self.keys.zak)));
        out.push_str("# zpk: zone PIN key the front end translates PIN blocks to.\n");
        out.push_str(&format!("zpk = {}\n", key(&self.keys.zpk)));
        out.push_str("# pvk: PIN verification key (a ZPK); without it PINs are not verified.\n");
        if let Some(pvk) = &self.keys.pvk {
            out.push_str(&format!("pvk = {}\n", key(pvk)));
        }
        out.push_str("# dlk_master / dtk_master: PBOC master load (MLK) and TAC (MTK) keys.\n");
        out.push_str(&format!("dlk_master = {}\n", key(&self.keys.dlk_master)));
        out.push_str(&format!("dtk_master = {}\n", key(&self.keys.dtk_master)));
        out.push_str("# issuer_factors: diversification factors above the card serial, 16 hex digits each.\n");
        out.push_str(&format!(
            "issuer_factors = [{}]\n\n",
            quoted(&self.keys.issuer_factors)
        ));
        out.push_str("[center.limits]\n");
        out.push_str(
            "# single / daily: purchase limits per card in fen; purse_max_balance: load ceiling.\n",
        );
        out.push_str(&format!("single = {}\n", self.limits.single));
        out.push_str(&format!("daily = {}\n", self.limits.daily));
        out.push_str(&format!(
            "purse_max_balance = {}\n\n",
            self.limits.purse_max_balance
        ));
        out.push_str("# [center.faults]: fault injection for tests (delay, drop, late, duplicate, close_after).\n");
        out
    }

    /// Reads a configuration file: its `[center]` table if it has one (the node's combined
    /// file), otherwise the whole file. Relative paths (`database`, `hsm.lmk_file`) are
    /// resolved against the file's directory.
    ///
    /// # Errors
    /// [`CenterError::Config`] naming the file and what is wrong.
    pub fn load(path: &Path) -> Result<CenterConfig, CenterError> {
        let at = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| CenterError::config(at.clone(), format!("cannot read: {e}")))?;
        let mut config = Self::from_toml(&text).map_err(|e| match e {
            CenterError::Config { key, reason } if key.is_empty() => {
                CenterError::config(at.clone(), reason)
            }
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if config.database.is_relative() {
            config.database = base.join(&config.database);
        }
        if let Some(lmk) = &config.hsm.lmk_file
            && lmk.is_relative()
        {
            config.hsm.lmk_file = Some(base.join(lmk));
        }
        Ok(config)
    }

    /// Parses configuration text (a `[center]` table, or the keys at the top level) and
    /// checks it ([`CenterConfig::check`]).
    ///
    /// # Errors
    /// [`CenterError::Config`]: the TOML error (line and column) or the key at fault.
    pub fn from_toml(text: &str) -> Result<CenterConfig, CenterError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| CenterError::config("", e.to_string()))?;
        let section = match table.get("center") {
            Some(toml::Value::Table(t)) => t.clone(),
            Some(_) => return Err(CenterError::config("center", "not a table")),
            None => table,
        };
        let config: CenterConfig = section
            .try_into()
            .map_err(|e: toml::de::Error| CenterError::config("center", e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// Checks values that serde cannot: acquirer ids, limits, the HSM choice, key types,
    /// issuer factors.
    ///
    /// # Errors
    /// [`CenterError::Config`] naming the key.
    pub fn check(&self) -> Result<(), CenterError> {
        crate::wire::upstream_spec(&self.spec)
            .map_err(|e| CenterError::config("center.spec", e))?;
        if self.acquirers.is_empty() {
            return Err(CenterError::config(
                "center.acquirers",
                "at least one acquirer id is needed",
            ));
        }
        for (i, a) in self.acquirers.iter().enumerate() {
            if a.is_empty() || a.len() > 11 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CenterError::config(
                    format!("center.acquirers[{i}]"),
                    format!("{a:?} is not 1 to 11 digits"),
                ));
            }
        }
        for (key, v) in [
            ("center.max_connections", self.max_connections),
            ("center.max_in_flight", self.max_in_flight),
        ] {
            if v == 0 {
                return Err(CenterError::config(key, "must be at least 1"));
            }
        }
        for (acquirer, address) in &self.reply_to {
            let at = format!("center.reply_to.{acquirer}");
            if !self.acquirers.contains(acquirer) {
                return Err(CenterError::config(
                    at,
                    format!("{acquirer:?} is not one of center.acquirers"),
                ));
            }
            let port_ok = address.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
            });
            if !port_ok {
                return Err(CenterError::config(
                    at,
                    format!("{address:?} is not host:port (the front end's receive_address)"),
                ));
            }
        }
        if !(64..=65_535).contains(&self.max_frame) {
            return Err(CenterError::config(
                "center.max_frame",
                format!("{} is outside 64..=65535", self.max_frame),
            ));
        }
        match (&self.hsm.lmk_file, self.hsm.remote.is_empty()) {
            (Some(_), true) | (None, false) => {}
            _ => {
                return Err(CenterError::config(
                    "center.hsm",
                    "give exactly one of lmk_file and remote",
                ));
            }
        }
        self.resolve_keys()?;
        Ok(())
    }

    /// The keys as checked [`KeyRef`]s.
    ///
    /// # Errors
    /// [`CenterError::Config`] naming the key at fault.
    pub fn resolve_keys(&self) -> Result<ResolvedKeys, CenterError> {
        let k = &self.keys;
        let zak = k.zak.to_key_ref("center.keys.zak", KeyType::Zak)?;
        if zak.length != DesKeyLength::Double {
            return Err(CenterError::config(
                "center.keys.zak",
                "X9.19 needs a double-length ZAK",
            ));
        }
        let zpk = k.zpk.to_key_ref("center.keys.zpk", KeyType::Zpk)?;
        let pvk = match &k.pvk {
            Some(p) => Some(p.to_key_ref("center.keys.pvk", KeyType::Zpk)?),
            None => None,
        };
        let dlk = k
            .dlk_master
            .to_key_ref("center.keys.dlk_master", KeyType::PbocLoad)?;
        let dtk = k
            .dtk_master
            .to_key_ref("center.keys.dtk_master", KeyType::PbocTac)?;
        let mut issuer = pboc_card::issuer::IssuerKeys::new(dlk, dtk);
        for (i, f) in k.issuer_factors.iter().enumerate() {
            let at = format!("center.keys.issuer_factors[{i}]");
            let bytes =
                hex::decode(f).map_err(|e| CenterError::config(&at, format!("not hex: {e}")))?;
            let factor: [u8; 8] = bytes.try_into().map_err(|b: Vec<u8>| {
                CenterError::config(&at, format!("{} bytes, expected 8", b.len()))
            })?;
            issuer.issuer_factors.push(factor);
        }
        if issuer.issuer_factors.len() >= pboc_sam::security::MAX_DIVERSIFICATION_LEVELS {
            return Err(CenterError::config(
                "center.keys.issuer_factors",
                "too many levels",
            ));
        }
        Ok(ResolvedKeys {
            zak,
            zpk,
            pvk,
            issuer,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn reply_to_round_trips_through_the_commented_section() {
        let mut c = CenterConfig::example();
        let text = c.to_toml_section();
        assert!(text.contains("# reply_to = { \"48020000\" = \"127.0.0.1:5871\" }\n"));
        assert!(CenterConfig::from_toml(&text).unwrap().reply_to.is_empty());
        c.reply_to = BTreeMap::from([("48020000".to_owned(), "fe1.example:5871".to_owned())]);
        let text = c.to_toml_section();
        assert!(text.contains("\nreply_to = { \"48020000\" = \"fe1.example:5871\" }\n"));
        let back = CenterConfig::from_toml(&text).unwrap();
        assert_eq!(back.reply_to, c.reply_to);
    }

    #[test]
    fn reply_to_names_a_configured_acquirer_and_a_host_and_port() {
        let mut c = CenterConfig::example();
        c.reply_to = BTreeMap::from([("48030000".to_owned(), "127.0.0.1:5871".to_owned())]);
        assert_eq!(
            c.check().unwrap_err().to_string(),
            "config center.reply_to.48030000: \"48030000\" is not one of center.acquirers"
        );
        for bad in ["127.0.0.1", "127.0.0.1:0", ":5871", "127.0.0.1:70000"] {
            c.reply_to = BTreeMap::from([("48020000".to_owned(), bad.to_owned())]);
            assert_eq!(
                c.check().unwrap_err().to_string(),
                format!(
                    "config center.reply_to.48020000: {bad:?} is not host:port (the front end's receive_address)"
                )
            );
        }
        c.reply_to = BTreeMap::from([("48020000".to_owned(), "[::1]:5871".to_owned())]);
        c.check().unwrap();
    }
}
