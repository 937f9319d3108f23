//! The front end's configuration: one TOML file, `deny_unknown_fields` everywhere, durations
//! in humantime form (`30s`, `250ms`, `24h`).
//!
//! ```toml
//! [node]        # acquirer id (field 32), data directory, UTC offset, shutdown grace
//! [hsm]         # an in-process SoftHsm on an LMK file, or remote HSMs in a pool
//! [storage]     # the journal database (SQLite) and its writer limits
//! [[listener]]  # terminals: address, spec, framing, connection limits
//! [[link]]      # the center: address, spec, framing, connection mode, timeouts, heartbeat
//! [saf]         # store and forward: retry interval, batch size, attempts, expiry
//! [[terminal]]  # registered terminals: id, merchant id, TMK as a key reference
//! [keys]        # zone keys shared with the center: ZAK and ZPK
//! [admin]       # the loopback admin endpoint
//! [supervisor]  # module restart backoff
//! [center]      # optional: the data-center host of the same node (see crate::center::config)
//! ```
//!
//! Keys are never in clear here: each is a [`KeyRefConfig`], the key's cryptogram under the
//! HSM's local master key (LMK) with its type and check value. Relative paths are resolved
//! against the directory of the configuration file by [`Config::load`].
//!
//! `posp-node init DIR` writes a commented file with every key (see [`crate::init`]).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pboc_sam::{DesKeyLength, Kcv, KeyRef, KeyType};
use serde::Deserialize;

use crate::store::{SafConfig, StoreConfig};

/// A configuration error: what is wrong and where (the file, the key).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config {path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration (unknown keys included).
    #[error("config {path}: {detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said (with line and column).
        detail: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("config key {key}: {reason}")]
    Invalid {
        /// The key, as a TOML path (`link[0].max_in_flight`).
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    /// A short stable code for logs and exit messages.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "CONFIG_READ",
            ConfigError::Parse { .. } => "CONFIG_PARSE",
            ConfigError::Invalid { .. } => "CONFIG_INVALID",
        }
    }
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The whole configuration of `posp-node front`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[node]`: who this node is.
    pub node: NodeConfig,
    /// `[hsm]`: where key operations run.
    pub hsm: HsmConfig,
    /// `[storage]`: the journal database.
    pub storage: StorageConfig,
    /// `[[listener]]`: where terminals connect (at least one).
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// `[[link]]`: the links to the upstream center, one or more (several for redundancy:
    /// a request goes out on the up link with the fewest requests in flight, a link that is
    /// down is skipped, and with none up the terminal gets `96` without anything being sent).
    /// Names and simplex `receive_address`es must differ; the first link's name is the SAF
    /// destination.
    #[serde(rename = "link", default)]
    pub links: Vec<LinkConfig>,
    /// `[saf]`: store and forward of reversals.
    #[serde(default)]
    pub saf: SafSettings,
    /// `[[terminal]]`: the registered terminals.
    #[serde(rename = "terminal", default)]
    pub terminals: Vec<TerminalConfig>,
    /// `[keys]`: the zone keys shared with the center.
    pub keys: ZoneKeys,
    /// `[admin]`: the admin endpoint; none when absent.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// `[supervisor]`: module restarts.
    #[serde(default)]
    pub supervisor: SupervisorConfig,
    /// `[center]`: the data-center host (`posp-node center` reads it from the same file; the
    /// front end only checks it). Optional.
    #[serde(default)]
    pub center: Option<crate::center::CenterConfig>,
}

/// `[node]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// `acquirer_id`: the acquiring institution id sent upstream in field 32 (1 to 11
    /// digits); with 41 and 11 it forms the matching key.
    pub acquirer_id: String,
    /// `data_dir`: the node's data directory (journal and LMK paths are usually inside it).
    pub data_dir: PathBuf,
    /// `utc_offset_minutes`: the local time zone for fields 12, 13 and 15, in minutes east of
    /// UTC (default 480, China Standard Time).
    #[serde(default = "default_utc_offset")]
    pub utc_offset_minutes: i32,
    /// `shutdown_grace`: how long a graceful shutdown waits for transactions in flight
    /// (default 5s).
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// `flow_workers`: transaction-flow workers (the seed's flow processes), each handling
    /// one request at a time from the listeners' shared queue, so also the most requests in
    /// their flow at once (default 128, 1 to 65536). The supervisor restarts a worker that
    /// dies; the request it held is answered `96` and its journal entry, if unfinished, is
    /// reversed.
    #[serde(default = "default_flow_workers")]
    pub flow_workers: usize,
    /// `flow_queue`: requests waiting for a flow worker before the listeners stop reading
    /// (default 4096).
    #[serde(default = "default_flow_queue")]
    pub flow_queue: usize,
}

fn default_flow_workers() -> usize {
    128
}

fn default_flow_queue() -> usize {
    4096
}

fn default_utc_offset() -> i32 {
    480
}
fn default_grace() -> Duration {
    Duration::from_secs(5)
}

/// `[hsm]`: exactly one of `lmk_file` (an in-process SoftHsm) and `remote` (HSMs over the
/// host protocol, balanced by a pool).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    /// `lmk_file`: the LMK file of an in-process SoftHsm (random source: `/dev/urandom`).
    #[serde(default)]
    pub lmk_file: Option<PathBuf>,
    /// `remote`: addresses (`host:port`) of HSMs speaking the host protocol.
    #[serde(default)]
    pub remote: Vec<String>,
    /// `request_timeout`: per request to a remote HSM (default 2s).
    #[serde(default = "default_hsm_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// `max_in_flight`: requests in flight per remote HSM connection (default 64).
    #[serde(default = "default_hsm_in_flight")]
    pub max_in_flight: usize,
}

fn default_hsm_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_hsm_in_flight() -> usize {
    64
}

/// `[storage]`: the journal and SAF database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `journal`: the SQLite file (created when missing).
    pub journal: PathBuf,
    /// `write_queue`: writes that may wait for the writer thread (default 4096).
    #[serde(default = "default_write_queue")]
    pub write_queue: usize,
    /// `batch_limit`: most writes committed in one transaction (default 512).
    #[serde(default = "default_batch_limit")]
    pub batch_limit: usize,
    /// `readers`: read-only connections (default 4).
    #[serde(default = "default_readers")]
    pub readers: usize,
    /// `busy_timeout`: how long a connection waits for a lock (default 5s).
    #[serde(default = "default_busy", with = "humantime_serde")]
    pub busy_timeout: Duration,
}

fn default_write_queue() -> usize {
    4096
}
fn default_batch_limit() -> usize {
    512
}
fn default_readers() -> usize {
    4
}
fn default_busy() -> Duration {
    Duration::from_secs(5)
}

/// `[[listener]]`: a TCP listener for terminals.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `address`: where to listen (`127.0.0.1:5860`; port 0 picks a free port).
    pub address: SocketAddr,
    /// `spec`: the terminals' ISO 8583 dialect; only `cups-pos`.
    #[serde(default = "default_cups")]
    pub spec: String,
    /// `framing`: the terminals' framing; only `cups-pos` (2-byte length, TPDU, header).
    #[serde(default = "default_cups")]
    pub framing: String,
    /// `max_connections`: terminal connections at once; more are closed on accept
    /// (default 1024).
    #[serde(default = "default_max_conn")]
    pub max_connections: usize,
    /// `max_frame`: the largest frame accepted, bytes after the length header (default 2048).
    #[serde(default = "default_max_frame")]
    pub max_frame: usize,
    /// `idle_timeout`: a connection with no request for this long is closed (default 5m).
    #[serde(default = "default_idle", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// `max_in_flight`: requests of one connection processed at once (default 8).
    #[serde(default = "default_conn_in_flight")]
    pub max_in_flight: usize,
}

fn default_cups() -> String {
    "cups-pos".to_owned()
}
fn default_max_conn() -> usize {
    1024
}
fn default_max_frame() -> usize {
    2048
}
fn default_idle() -> Duration {
    Duration::from_secs(300)
}
fn default_conn_in_flight() -> usize {
    8
}

/// How a link uses its sockets (the connection modes of the spec page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkMode {
    /// Full-duplex long connection (全双工长连接): one long-lived socket carrying requests and
    /// responses interleaved, matched by key; up to `max_in_flight` requests outstanding (the
    /// main mode).
    FullDuplexLong,
    /// Half-duplex long connection (半双工长连接): one long-lived socket, one outstanding
    /// request at a time, the others queued (`max_in_flight` is taken as 1).
    HalfDuplexLong,
    /// Simplex long connection (单工长连接): two long-lived sockets. The front end connects
    /// to `address` and only sends requests there; the center connects to the front end's
    /// `receive_address` and only sends responses there. The link is up only while both
    /// are; responses are matched as in full-duplex-long.
    SimplexLong,
    /// Full-duplex short connection (全双工短连接): a new connection per exchange (request
    /// written, response read, connection closed), at most `max_in_flight` at once; the
    /// link's state comes from an echo probe every `heartbeat` and from each exchange.
    FullDuplexShort,
}

/// `[[link]]`: a connection to the center.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// `name`: the link's name (1 to 64 printable characters, unique among the links); the
    /// first link's name is also the SAF destination of the reversals.
    pub name: String,
    /// `address`: the center (`host:port`).
    pub address: String,
    /// `spec`: the upstream ISO 8583 dialect, a built-in spec name: `cups-pos` (the
    /// default, the terminals' dialect), `iso87-binary`, `iso87-ascii` or `iso93-ascii`. The
    /// center's `[center] spec` must be the same. Requests go up with the terminal's field
    /// numbers and values re-encoded in this spec (a value that does not fit the field there
    /// fails the request, reversed like a timeout), the MAC in field 64 (128 when the message
    /// has a secondary bitmap); responses, echoes and reversals use it too. The terminals
    /// always speak `cups-pos`.
    #[serde(default = "default_cups")]
    pub spec: String,
    /// `framing`: the upstream framing; only `len2` (2-byte binary length).
    #[serde(default = "default_len2")]
    pub framing: String,
    /// `mode`: `full-duplex-long` (one socket, pipelined, matched; the default),
    /// `half-duplex-long` (one socket, one request outstanding), `simplex-long` (a sending
    /// socket to `address` and a receiving socket the center opens to `receive_address`) or
    /// `full-duplex-short` (a connection per exchange). See [`LinkMode`].
    #[serde(default = "default_mode")]
    pub mode: LinkMode,
    /// `receive_address`: simplex-long only, and required there: where the front end
    /// listens for the center's connection carrying the responses (`ip:port`). The center's
    /// `[center] reply_to` names this address for the node's acquirer id. Only one
    /// connection is kept: a newer one from the center replaces the older.
    #[serde(default)]
    pub receive_address: Option<SocketAddr>,
    /// `receive_allow`: simplex-long only: the IP addresses the center's connection to
    /// `receive_address` may come from (default: empty, meaning the IP addresses `address`
    /// resolves to). A connection from any other source is closed at once, logged
    /// (`RECEIVE_REFUSED`) and counted (`refused_peers` in `/status`,
    /// `posp_link_refused_peers_total`); it never replaces the receiving socket.
    #[serde(default)]
    pub receive_allow: Vec<IpAddr>,
    /// `timeout`: how long a request waits for its response (default 5s).
    #[serde(default = "default_link_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// `connect_timeout`: per connection attempt (default 3s).
    #[serde(default = "default_connect", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// `max_in_flight`: requests outstanding at once; more wait for a slot within their
    /// timeout (default 256). In full-duplex-short mode it is also the most connections
    /// open at once.
    #[serde(default = "default_link_in_flight")]
    pub max_in_flight: usize,
    /// `reconnect_min`: the first reconnection delay, doubled after each failure (default
    /// 200ms). In full-duplex-short mode: the first delay between probes while the link is
    /// down.
    #[serde(default = "default_reconnect_min", with = "humantime_serde")]
    pub reconnect_min: Duration,
    /// `reconnect_max`: the longest reconnection delay (default 10s).
    #[serde(default = "default_reconnect_max", with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// `heartbeat`: an idle link sends an echo (0820, 60.3 = 301) this often (default 30s);
    /// an echo without an answer closes the connection(s). In full-duplex-short mode the
    /// echo is the readiness probe, sent on its own connection when no exchange succeeded
    /// for this long.
    #[serde(default = "default_heartbeat", with = "humantime_serde")]
    pub heartbeat: Duration,
    /// `max_frame`: the largest frame accepted from the center (default 4096).
    #[serde(default = "default_link_frame")]
    pub max_frame: usize,
    /// `repeat_mti`: retransmitted reversals carry the repeat MTI 0401 (default true).
    #[serde(default = "default_true")]
    pub repeat_mti: bool,
    /// `late_memory`: timed-out requests remembered to recognise late responses (default 4096).
    #[serde(default = "default_late_memory")]
    pub late_memory: usize,
}

fn default_len2() -> String {
    "len2".to_owned()
}
fn default_mode() -> LinkMode {
    LinkMode::FullDuplexLong
}
fn default_link_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_connect() -> Duration {
    Duration::from_secs(3)
}
fn default_link_in_flight() -> usize {
    256
}
fn default_reconnect_min() -> Duration {
    Duration::from_millis(200)
}
fn default_reconnect_max() -> Duration {
    Duration::from_secs(10)
}
fn default_heartbeat() -> Duration {
    Duration::from_secs(30)
}
fn default_link_frame() -> usize {
    4096
}
fn default_true() -> bool {
    true
}
fn default_late_memory() -> usize {
    4096
}

impl LinkConfig {
    /// Requests outstanding at once as the mode allows: 1 for half-duplex.
    pub fn effective_in_flight(&self) -> usize {
        match self.mode {
            LinkMode::HalfDuplexLong => 1,
            _ => self.max_in_flight,
        }
    }
}

/// `[saf]`: store and forward of reversals to the center.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafSettings {
    /// `retry_interval`: pause between rounds, and after a failed transmission (default 10s).
    #[serde(default = "default_retry", with = "humantime_serde")]
    pub retry_interval: Duration,
    /// `batch_size`: most entries sent per round (default 10).
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    /// `max_attempts`: responses received without completing the entry before it moves to
    /// the exception queue (default 5; only received responses count).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// `expiry`: age after which a queued entry moves to the exception queue (default 24h).
    #[serde(default = "default_expiry", with = "humantime_serde")]
    pub expiry: Duration,
    /// `max_queued`: entries queued per destination before new ones are refused (default 100000).
    #[serde(default = "default_max_queued")]
    pub max_queued: u32,
    /// `done_codes`: response codes that complete a reversal (default `00`, `12`, `25`: done,
    /// nothing to reverse, original not found). Any other code is retried.
    #[serde(default = "default_done_codes")]
    pub done_codes: Vec<String>,
}

fn default_retry() -> Duration {
    Duration::from_secs(10)
}
fn default_batch() -> u32 {
    10
}
fn default_attempts() -> u32 {
    5
}
fn default_expiry() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_max_queued() -> u32 {
    100_000
}
fn default_done_codes() -> Vec<String> {
    vec!["00".to_owned(), "12".to_owned(), "25".to_owned()]
}

impl Default for SafSettings {
    fn default() -> SafSettings {
        SafSettings {
            retry_interval: default_retry(),
            batch_size: default_batch(),
            max_attempts: default_attempts(),
            expiry: default_expiry(),
            max_queued: default_max_queued(),
            done_codes: default_done_codes(),
        }
    }
}

/// A key as configured: its cryptogram under the LMK, its type and its check value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRefConfig {
    /// `type`: `TMK`, `ZMK`, `TPK`, `ZPK`, `TAK`, `ZAK`, `TDK`, `ZEK`, `MPK`, `MLK`, `MTK`,
    /// `MULK` or `MUK` (the PBOC masters).
    #[serde(rename = "type")]
    pub key_type: String,
    /// `cryptogram`: the key under the LMK, hex (16, 32 or 48 digits).
    pub cryptogram: String,
    /// `kcv`: the key check value, hex (the first 4 bytes of E(key, zeros)).
    pub kcv: String,
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

/// The key type for a configuration name (case-insensitive).
pub fn parse_key_type(name: &str) -> Option<KeyType> {
    let t = match name.to_ascii_uppercase().as_str() {
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
    };
    Some(t)
}

impl KeyRefConfig {
    /// The configuration form of a key reference.
    pub fn from_key_ref(key: &KeyRef) -> KeyRefConfig {
        KeyRefConfig {
            key_type: key_type_name(key.key_type).to_owned(),
            cryptogram: hex::encode_upper(&key.cryptogram),
            kcv: key.kcv.to_string(),
        }
    }

    /// The key reference, checked: a known type, hex of a DES key length, a hex KCV.
    /// `at` names the configuration key in the error.
    pub fn to_key_ref(&self, at: &str) -> Result<KeyRef, ConfigError> {
        let key_type = parse_key_type(&self.key_type).ok_or_else(|| {
            invalid(
                format!("{at}.type"),
                format!("unknown key type {:?}", self.key_type),
            )
        })?;
        let cryptogram = hex::decode(&self.cryptogram)
            .map_err(|e| invalid(format!("{at}.cryptogram"), format!("not hex: {e}")))?;
        let length = DesKeyLength::from_bytes(cryptogram.len()).ok_or_else(|| {
            invalid(
                format!("{at}.cryptogram"),
                format!("{} bytes, expected 8, 16 or 24", cryptogram.len()),
            )
        })?;
        let kcv =
            Kcv::from_hex(&self.kcv).map_err(|e| invalid(format!("{at}.kcv"), e.to_string()))?;
        Ok(KeyRef {
            key_type,
            length,
            cryptogram,
            kcv,
        })
    }

    /// Like [`to_key_ref`](Self::to_key_ref), also requiring a type.
    pub fn to_key_ref_of(&self, at: &str, want: KeyType) -> Result<KeyRef, ConfigError> {
        let key = self.to_key_ref(at)?;
        if key.key_type != want {
            return Err(invalid(
                format!("{at}.type"),
                format!(
                    "a {} where a {} is required",
                    key_type_name(key.key_type),
                    key_type_name(want)
                ),
            ));
        }
        Ok(key)
    }
}

/// `[[terminal]]`: a registered terminal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalConfig {
    /// `id`: the terminal id (field 41), exactly 8 printable characters.
    pub id: String,
    /// `merchant_id`: the merchant id (field 42), exactly 15 printable characters; a request
    /// with another merchant id gets `03`.
    pub merchant_id: String,
    /// `tmk`: the terminal master key (type `TMK`) the working keys are sent under.
    pub tmk: KeyRefConfig,
}

/// `[keys]`: the zone keys shared with the center.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneKeys {
    /// `zak`: the zone MAC key (type `ZAK`, double length) for X9.19 MACs upstream.
    pub zak: KeyRefConfig,
    /// `zpk`: the zone PIN key (type `ZPK`) PIN blocks are translated to.
    pub zpk: KeyRefConfig,
}

/// `[admin]`: the admin endpoint (HTTP/1.1, loopback only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `address`: a loopback address (`127.0.0.1:5880`; port 0 picks a free port).
    pub address: SocketAddr,
    /// `max_connections`: admin connections at once (default 16).
    #[serde(default = "default_admin_conn")]
    pub max_connections: usize,
}

fn default_admin_conn() -> usize {
    16
}

/// `[supervisor]`: restarting modules that panic or exit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorConfig {
    /// `restart_min`: the first restart delay, doubled per consecutive failure (default 100ms).
    #[serde(default = "default_restart_min", with = "humantime_serde")]
    pub restart_min: Duration,
    /// `restart_max`: the longest restart delay (default 10s).
    #[serde(default = "default_restart_max", with = "humantime_serde")]
    pub restart_max: Duration,
}

fn default_restart_min() -> Duration {
    Duration::from_millis(100)
}
fn default_restart_max() -> Duration {
    Duration::from_secs(10)
}

impl Default for SupervisorConfig {
    fn default() -> SupervisorConfig {
        SupervisorConfig {
            restart_min: default_restart_min(),
            restart_max: default_restart_max(),
        }
    }
}

fn printable(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

impl Config {
    /// Reads, parses, resolves relative paths against the file's directory, and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { detail, .. } => ConfigError::Parse {
                path: path.to_owned(),
                detail,
            },
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// Parses and validates TOML text (paths are left as written).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            detail: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Makes relative paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.node.data_dir);
        fix(&mut self.storage.journal);
        if let Some(lmk) = &mut self.hsm.lmk_file {
            fix(lmk);
        }
        if let Some(center) = &mut self.center {
            fix(&mut center.database);
            if let Some(lmk) = &mut center.hsm.lmk_file {
                fix(lmk);
            }
        }
    }

    /// Checks every value and the relations between them; the first problem is named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(center) = &self.center {
            center.check().map_err(|e| match e {
                crate::center::CenterError::Config { key, reason } => invalid(key, reason),
                other => invalid("center", other.to_string()),
            })?;
        }
        if !(1..=65_536).contains(&self.node.flow_workers) {
            return Err(invalid(
                "node.flow_workers",
                format!("{} is not 1 to 65536", self.node.flow_workers),
            ));
        }
        if self.node.flow_queue == 0 {
            return Err(invalid("node.flow_queue", "at least 1"));
        }
        let acq = &self.node.acquirer_id;
        if acq.is_empty() || acq.len() > 11 || !acq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "node.acquirer_id",
                format!("{acq:?} is not 1 to 11 digits"),
            ));
        }
        if !(-14 * 60..=14 * 60).contains(&self.node.utc_offset_minutes) {
            return Err(invalid(
                "node.utc_offset_minutes",
                "must be within -840..=840",
            ));
        }
        match (&self.hsm.lmk_file, self.hsm.remote.is_empty()) {
            (Some(_), true) | (None, false) => {}
            (Some(_), false) => {
                return Err(invalid("hsm", "give either lmk_file or remote, not both"));
            }
            (None, true) => return Err(invalid("hsm", "give lmk_file or remote")),
        }
        if self.hsm.max_in_flight == 0 {
            return Err(invalid("hsm.max_in_flight", "must be at least 1"));
        }
        self.store_config()
            .validate()
            .map_err(|e| invalid("storage", e.to_string()))?;
        if self.listeners.is_empty() {
            return Err(invalid("listener", "at least one [[listener]] is required"));
        }
        for (i, l) in self.listeners.iter().enumerate() {
            let at = format!("listener[{i}]");
            if l.spec != "cups-pos" {
                return Err(invalid(
                    format!("{at}.spec"),
                    format!("{:?}: only \"cups-pos\" is supported", l.spec),
                ));
            }
            if l.framing != "cups-pos" {
                return Err(invalid(
                    format!("{at}.framing"),
                    format!("{:?}: only \"cups-pos\" is supported", l.framing),
                ));
            }
            for (k, v) in [
                ("max_connections", l.max_connections),
                ("max_in_flight", l.max_in_flight),
            ] {
                if v == 0 {
                    return Err(invalid(format!("{at}.{k}"), "must be at least 1"));
                }
            }
            if !(64..=65_535).contains(&l.max_frame) {
                return Err(invalid(format!("{at}.max_frame"), "must be 64 to 65535"));
            }
        }
        if self.links.is_empty() {
            return Err(invalid("link", "at least one [[link]] is required"));
        }
        for (i, l) in self.links.iter().enumerate() {
            let at = format!("link[{i}]");
            if let Some(j) = self.links.iter().take(i).position(|o| o.name == l.name) {
                return Err(invalid(
                    format!("{at}.name"),
                    format!("{:?} is also the name of link[{j}]", l.name),
                ));
            }
            if let Some(addr) = l.receive_address
                && addr.port() != 0
                && let Some(j) = self
                    .links
                    .iter()
                    .take(i)
                    .position(|o| o.receive_address == Some(addr))
            {
                return Err(invalid(
                    format!("{at}.receive_address"),
                    format!("{addr} is also the receive_address of link[{j}]"),
                ));
            }
            if l.name.is_empty()
                || l.name.len() > 64
                || !l.name.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(invalid(
                    format!("{at}.name"),
                    "1 to 64 printable characters without spaces",
                ));
            }
            crate::wire::upstream_spec(&l.spec).map_err(|e| invalid(format!("{at}.spec"), e))?;
            if l.framing != "len2" {
                return Err(invalid(
                    format!("{at}.framing"),
                    format!("{:?}: only \"len2\" is supported", l.framing),
                ));
            }
            match (l.mode, l.receive_address) {
                (LinkMode::SimplexLong, None) => {
                    return Err(invalid(
                        format!("{at}.receive_address"),
                        "required with mode = \"simplex-long\": where the center connects to send responses",
                    ));
                }
                (LinkMode::SimplexLong, Some(addr)) => {
                    let taken = self
                        .listeners
                        .iter()
                        .map(|t| t.address)
                        .chain(self.admin.as_ref().map(|a| a.address))
                        .any(|other| other == addr && addr.port() != 0);
                    if taken {
                        return Err(invalid(
                            format!("{at}.receive_address"),
                            format!("{addr} is also a [[listener]] or the admin address"),
                        ));
                    }
                }
                (_, None) => {}
                (_, Some(_)) => {
                    return Err(invalid(
                        format!("{at}.receive_address"),
                        "only used with mode = \"simplex-long\"",
                    ));
                }
            }
            if !l.receive_allow.is_empty() && l.mode != LinkMode::SimplexLong {
                return Err(invalid(
                    format!("{at}.receive_allow"),
                    "only used with mode = \"simplex-long\"",
                ));
            }
            if l.max_in_flight == 0 || l.max_in_flight > 100_000 {
                return Err(invalid(
                    format!("{at}.max_in_flight"),
                    "must be 1 to 100000",
                ));
            }
            for (k, d) in [
                ("timeout", l.timeout),
                ("connect_timeout", l.connect_timeout),
                ("reconnect_min", l.reconnect_min),
                ("heartbeat", l.heartbeat),
            ] {
                if d.is_zero() {
                    return Err(invalid(format!("{at}.{k}"), "must be above zero"));
                }
            }
            if l.reconnect_max < l.reconnect_min {
                return Err(invalid(
                    format!("{at}.reconnect_max"),
                    "must be at least reconnect_min",
                ));
            }
            if !(64..=65_535).contains(&l.max_frame) {
                return Err(invalid(format!("{at}.max_frame"), "must be 64 to 65535"));
            }
            if l.late_memory == 0 {
                return Err(invalid(format!("{at}.late_memory"), "must be at least 1"));
            }
        }
        if self.saf.retry_interval.is_zero() {
            return Err(invalid("saf.retry_interval", "must be above zero"));
        }
        if self.saf.batch_size == 0 {
            return Err(invalid("saf.batch_size", "must be at least 1"));
        }
        for (i, c) in self.saf.done_codes.iter().enumerate() {
            if c.len() != 2 || !printable(c) {
                return Err(invalid(
                    format!("saf.done_codes[{i}]"),
                    format!("{c:?} is not a 2-character response code"),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.terminals.iter().enumerate() {
            let at = format!("terminal[{i}]");
            if t.id.len() != 8 || !printable(&t.id) {
                return Err(invalid(
                    format!("{at}.id"),
                    format!("{:?} is not 8 printable characters", t.id),
                ));
            }
            if !seen.insert(t.id.clone()) {
                return Err(invalid(
                    format!("{at}.id"),
                    format!("terminal {:?} is registered twice", t.id),
                ));
            }
            if t.merchant_id.len() != 15 || !printable(&t.merchant_id) {
                return Err(invalid(
                    format!("{at}.merchant_id"),
                    format!("{:?} is not 15 printable characters", t.merchant_id),
                ));
            }
            t.tmk.to_key_ref_of(&format!("{at}.tmk"), KeyType::Tmk)?;
        }
        self.keys.zak.to_key_ref_of("keys.zak", KeyType::Zak)?;
        self.keys.zpk.to_key_ref_of("keys.zpk", KeyType::Zpk)?;
        if let Some(admin) = &self.admin {
            if !admin.address.ip().is_loopback() {
                return Err(invalid(
                    "admin.address",
                    format!("{} is not a loopback address", admin.address),
                ));
            }
            if admin.max_connections == 0 {
                return Err(invalid("admin.max_connections", "must be at least 1"));
            }
        }
        if self.supervisor.restart_max < self.supervisor.restart_min {
            return Err(invalid(
                "supervisor.restart_max",
                "must be at least restart_min",
            ));
        }
        Ok(())
    }

    /// The store settings from `[storage]` and `[saf]`.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            busy_timeout: self.storage.busy_timeout,
            write_queue: self.storage.write_queue,
            batch_limit: self.storage.batch_limit,
            readers: self.storage.readers,
            saf: SafConfig {
                max_attempts: self.saf.max_attempts,
                expiry: self.saf.expiry,
                max_queued: self.saf.max_queued,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sample() -> String {
        r#"
[node]
acquirer_id = "48020000"
data_dir = "data"

[hsm]
lmk_file = "lmk.txt"

[storage]
journal = "data/journal.db"

[[listener]]
address = "127.0.0.1:5860"

[[link]]
name = "center"
address = "127.0.0.1:5870"
timeout = "2s"

[saf]
retry_interval = "500ms"

[[terminal]]
id = "10000001"
merchant_id = "898100012340001"
tmk = { type = "TMK", cryptogram = "00112233445566778899AABBCCDDEEFF", kcv = "01020304" }

[keys]
zak = { type = "ZAK", cryptogram = "00112233445566778899AABBCCDDEEFF", kcv = "01020304" }
zpk = { type = "ZPK", cryptogram = "00112233445566778899AABBCCDDEEFF", kcv = "01020304" }

[admin]
address = "127.0.0.1:5880"
"#
        .to_owned()
    }

    #[test]
    fn parses_with_defaults_and_resolves_paths() {
        let mut c = Config::from_toml(&sample()).unwrap();
        assert_eq!(c.node.utc_offset_minutes, 480);
        assert_eq!(c.links[0].timeout, Duration::from_secs(2));
        assert_eq!(c.links[0].mode, LinkMode::FullDuplexLong);
        assert_eq!(c.links[0].max_in_flight, 256);
        assert_eq!(c.saf.retry_interval, Duration::from_millis(500));
        assert_eq!(c.saf.done_codes, vec!["00", "12", "25"]);
        assert_eq!(c.listeners[0].max_connections, 1024);
        c.resolve_paths(Path::new("/etc/posp"));
        assert_eq!(
            c.storage.journal,
            PathBuf::from("/etc/posp/data/journal.db")
        );
        assert_eq!(c.hsm.lmk_file, Some(PathBuf::from("/etc/posp/lmk.txt")));
        let tmk = c.terminals[0].tmk.to_key_ref("t").unwrap();
        assert_eq!(tmk.key_type, KeyType::Tmk);
        assert_eq!(tmk.length, DesKeyLength::Double);
        assert_eq!(tmk.kcv.to_string(), "01020304");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let text = sample().replace("[saf]", "[saf]\nretries = 3");
        let e = Config::from_toml(&text).unwrap_err();
        assert_eq!(e.code(), "CONFIG_PARSE");
        assert!(e.to_string().contains("unknown field `retries`"), "{e}");

        let text = sample().replace(
            "name = \"center\"",
            "name = \"center\"\nmode = \"simplex-long\"",
        );
        assert_eq!(
            Config::from_toml(&text).unwrap_err().to_string(),
            "config key link[0].receive_address: required with mode = \"simplex-long\": where the center connects to send responses"
        );
        let text = sample().replace(
            "name = \"center\"",
            "name = \"center\"\nreceive_address = \"127.0.0.1:5871\"",
        );
        assert_eq!(
            Config::from_toml(&text).unwrap_err().to_string(),
            "config key link[0].receive_address: only used with mode = \"simplex-long\""
        );
        let text = sample().replace("name = \"center\"", "name = \"center\"\nmode = \"duplex\"");
        let e = Config::from_toml(&text).unwrap_err().to_string();
        assert!(e.contains("unknown variant `duplex`"), "{e}");
        let text = sample().replace("zak = { type = \"ZAK\"", "zak = { type = \"ZPK\"");
        assert_eq!(
            Config::from_toml(&text).unwrap_err().to_string(),
            "config key keys.zak.type: a ZPK where a ZAK is required"
        );
        let text = sample().replace("127.0.0.1:5880", "0.0.0.0:5880");
        assert_eq!(
            Config::from_toml(&text).unwrap_err().to_string(),
            "config key admin.address: 0.0.0.0:5880 is not a loopback address"
        );
        let text = sample().replace("\"48020000\"", "\"48A\"");
        assert_eq!(
            Config::from_toml(&text).unwrap_err().to_string(),
            "config key node.acquirer_id: \"48A\" is not 1 to 11 digits"
        );
    }

    #[test]
    fn several_links_need_distinct_names() {
        let second = "[[link]]\nname = \"center-b\"\naddress = \"127.0.0.1:5872\"\n\n[saf]";
        let text = sample().replacen("[saf]", second, 1);
        let c = Config::from_toml(&text).unwrap();
        let names: Vec<&str> = c.links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["center", "center-b"]);
        let text = text.replace("name = \"center-b\"", "name = \"center\"");
        assert_eq!(
            Config::from_toml(&text).unwrap_err().to_string(),
            "config key link[1].name: \"center\" is also the name of link[0]"
        );
        let text = sample().replace(
            "[[link]]\nname = \"center\"\naddress = \"127.0.0.1:5870\"\ntimeout = \"2s\"\n",
            "",
        );
        assert_eq!(
            Config::from_toml(&text).unwrap_err().to_string(),
            "config key link: at least one [[link]] is required"
        );
        let text = sample().replace("name = \"center\"", "name = \"center\"\nspec = \"iso87\"");
        assert_eq!(
            Config::from_toml(&text).unwrap_err().to_string(),
            "config key link[0].spec: \"iso87\" is not a built-in spec (one of \"cups-pos\", \"iso87-binary\", \"iso87-ascii\", \"iso93-ascii\")"
        );
    }

    #[test]
    fn half_duplex_has_one_request_outstanding() {
        let text = sample().replace(
            "name = \"center\"",
            "name = \"center\"\nmode = \"half-duplex-long\"",
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(c.links[0].effective_in_flight(), 1);
    }

    #[test]
    fn every_mode_is_accepted_with_the_keys_it_needs() {
        let text = sample().replace(
            "name = \"center\"",
            "name = \"center\"\nmode = \"simplex-long\"\nreceive_address = \"127.0.0.1:5871\"",
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(c.links[0].mode, LinkMode::SimplexLong);
        assert_eq!(
            c.links[0].receive_address,
            Some(SocketAddr::from(([127, 0, 0, 1], 5871)))
        );
        assert_eq!(c.links[0].effective_in_flight(), 256);
        assert!(c.links[0].receive_allow.is_empty());
        let text = sample().replace(
            "name = \"center\"",
            "name = \"center\"\nmode = \"simplex-long\"\nreceive_address = \"127.0.0.1:5871\"\nreceive_allow = [\"127.0.0.1\", \"::1\"]",
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(
            c.links[0].receive_allow,
            vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
            ]
        );
        let text = sample().replace(
            "name = \"center\"",
            "name = \"center\"\nreceive_allow = [\"127.0.0.1\"]",
        );
        assert_eq!(
            Config::from_toml(&text).unwrap_err().to_string(),
            "config key link[0].receive_allow: only used with mode = \"simplex-long\""
        );
        let text = sample().replace(
            "name = \"center\"",
            "name = \"center\"\nmode = \"simplex-long\"\nreceive_address = \"127.0.0.1:5871\"\nreceive_allow = [\"127.0.0.300\"]",
        );
        let e = Config::from_toml(&text).unwrap_err().to_string();
        assert!(e.contains("invalid IP address syntax"), "{e}");
        let text = sample().replace(
            "name = \"center\"",
            "name = \"center\"\nmode = \"simplex-long\"\nreceive_address = \"127.0.0.1:5880\"",
        );
        assert_eq!(
            Config::from_toml(&text).unwrap_err().to_string(),
            "config key link[0].receive_address: 127.0.0.1:5880 is also a [[listener]] or the admin address"
        );
        let text = sample().replace(
            "name = \"center\"",
            "name = \"center\"\nmode = \"full-duplex-short\"\nmax_in_flight = 8",
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(c.links[0].mode, LinkMode::FullDuplexShort);
        assert_eq!(c.links[0].receive_address, None);
        assert_eq!(c.links[0].effective_in_flight(), 8);
    }
}
