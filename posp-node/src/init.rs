//! `posp-node init DIR`: a fresh LMK, demo keys generated through a SoftHsm on it, and a
//! commented default configuration.
//!
//! Writes (never over existing files):
//!
//! - `DIR/lmk.txt`: a new triple-length LMK from `/dev/urandom` (mode 0600);
//! - `DIR/posp.toml`: the front end's configuration, every key commented, with the demo
//!   keys as key references (cryptograms under the LMK): TMKs of three demo terminals, the
//!   zone ZAK and ZPK, and the PBOC load and TAC masters (MLK, MTK) the center uses;
//!   The same file has the `[center]` section `posp-node center` reads: the center listens
//!   where the front end's `[[link]]` points, shares the ZAK and ZPK, verifies PINs with its
//!   own PVK and derives purse keys from the MLK and MTK;
//! - `DIR/terminals.json`: the demo terminals with their clear TMKs for the POS simulator
//!   (mode 0600; demo use only);
//! - `DIR/issuer.json`: the demo issuer profile for `posp-node card issue`, with the clear
//!   PBOC masters (DPK, DLK, DTK) the MLK and MTK were formed from, so that cards issued
//!   from it can be loaded through the center (mode 0600; demo use only).
//!
//! `posp-node center --config DIR/posp.toml --seed-demo` then serves the demo cards, and
//! `posp-node front --config DIR/posp.toml` the terminals.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};

use pboc_card::image::KeyPurpose;
use pboc_card::personalize::{IssuerProfile, MasterKey, PurseProfile};
use pboc_sam::{DesKey, DesKeyLength, KeyRef, KeyType, Lmk, RandomSource, SecurityModule, SoftHsm};

use crate::center::{CenterConfig, KeySpec};
use crate::config::KeyRefConfig;
use crate::store::block_on;

/// The operating system's random source (`/dev/urandom`).
#[derive(Debug)]
pub struct OsRandom {
    file: Mutex<File>,
}

impl OsRandom {
    /// Opens `/dev/urandom` and reads from it once, so a broken source fails here.
    pub fn open() -> std::io::Result<OsRandom> {
        let mut file = File::open("/dev/urandom")?;
        let mut probe = [0u8; 8];
        file.read_exact(&mut probe)?;
        Ok(OsRandom {
            file: Mutex::new(file),
        })
    }
}

impl RandomSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = file.read_exact(buf) {
            // Keys from a broken random source must never be made: stop the process.
            eprintln!("fatal: reading /dev/urandom failed: {e}");
            std::process::abort();
        }
    }
}

/// An `init` failure: a code, the file or step, and what happened.
#[derive(Debug, thiserror::Error)]
#[error("{code} at {at}: {message}")]
pub struct InitError {
    /// `EXISTS`, `IO`, `RANDOM`, `HSM` or `TERMINALS`.
    pub code: &'static str,
    /// The file or step.
    pub at: String,
    /// What happened.
    pub message: String,
}

fn err(code: &'static str, at: impl Into<String>, message: impl std::fmt::Display) -> InitError {
    InitError {
        code,
        at: at.into(),
        message: message.to_string(),
    }
}

/// A demo terminal.
#[derive(Debug, Clone)]
pub struct DemoTerminal {
    /// Terminal id.
    pub id: String,
    /// Merchant id.
    pub merchant_id: String,
    /// TMK under the LMK.
    pub tmk: KeyRef,
    /// TMK in clear, hex (for the simulator only).
    pub tmk_clear_hex: String,
}

/// The demo keys `init` generates.
#[derive(Debug, Clone)]
pub struct DemoKeys {
    /// The three demo terminals.
    pub terminals: Vec<DemoTerminal>,
    /// Zone MAC key.
    pub zak: KeyRef,
    /// Zone PIN key.
    pub zpk: KeyRef,
    /// PBOC master load key (the center derives each card's DLK from it).
    pub mlk: KeyRef,
    /// PBOC master TAC key (the center derives each card's DTK from it).
    pub mtk: KeyRef,
    /// The center's PIN verification key (a ZPK).
    pub pvk: KeyRef,
    /// The demo issuer profile: the clear masters the MLK and MTK were formed from (`Debug`
    /// shows their check values only).
    pub issuer: IssuerProfile,
}

/// The demo terminal ids and their merchant.
pub const DEMO_TERMINALS: [&str; 3] = ["10000001", "10000002", "10000003"];
/// The demo merchant id.
pub const DEMO_MERCHANT: &str = "898100012340001";
/// The demo acquirer id (field 32).
pub const DEMO_ACQUIRER: &str = "48020000";

/// The id of the `i`th demo terminal (from 0): `10000001`, `10000002` ...
pub fn demo_terminal_id(i: usize) -> String {
    format!("{:08}", 10_000_001 + i)
}

/// Generates the demo keys through `hsm` (TMKs from `rng` in clear, formed into the HSM)
/// for the three [`DEMO_TERMINALS`].
pub fn demo_keys(hsm: &SoftHsm, rng: &dyn RandomSource) -> Result<DemoKeys, InitError> {
    demo_keys_for(hsm, rng, DEMO_TERMINALS.len())
}

/// [`demo_keys`] for `terminals` terminals ([`demo_terminal_id`]).
pub fn demo_keys_for(
    hsm: &SoftHsm,
    rng: &dyn RandomSource,
    terminals_wanted: usize,
) -> Result<DemoKeys, InitError> {
    let mut terminals = Vec::new();
    for id in (0..terminals_wanted).map(demo_terminal_id) {
        let mut clear = [0u8; 16];
        rng.fill(&mut clear);
        let tmk = hsm
            .form_key_from_components(&[&clear], KeyType::Tmk)
            .map_err(|e| err("HSM", "TMK", e))?;
        // The HSM sets odd parity; hand the simulator the key as the HSM holds it.
        let key = pboc_sam::DesKey::double(clear).with_odd_parity();
        terminals.push(DemoTerminal {
            id,
            merchant_id: DEMO_MERCHANT.to_owned(),
            tmk,
            tmk_clear_hex: hex::encode_upper(key.as_bytes()),
        });
        clear.fill(0);
    }
    let make = |t: KeyType, what: &str| {
        block_on(hsm.generate_key(t, DesKeyLength::Double, None))
            .map(|g| g.key)
            .map_err(|e| err("HSM", what, e))
    };
    let master = |purpose: KeyPurpose| {
        let mut clear = [0u8; 16];
        rng.fill(&mut clear);
        let key = DesKey::double(clear).with_odd_parity();
        clear.fill(0);
        MasterKey {
            purpose,
            index: 1,
            version: 1,
            algorithm_id: 0,
            key,
        }
    };
    let masters = vec![
        master(KeyPurpose::Purchase),
        master(KeyPurpose::Load),
        master(KeyPurpose::Tac),
    ];
    let form = |purpose: KeyPurpose, t: KeyType, what: &str| {
        let key = masters
            .iter()
            .find(|m| m.purpose == purpose)
            .map(|m| m.key.as_bytes())
            .unwrap_or_default();
        hsm.form_key_from_components(&[key], t)
            .map_err(|e| err("HSM", what, e))
    };
    let mlk = form(KeyPurpose::Load, KeyType::PbocLoad, "MLK")?;
    let mtk = form(KeyPurpose::Tac, KeyType::PbocTac, "MTK")?;
    let issuer = IssuerProfile {
        issuer_id: DEMO_ISSUER_ID,
        card_type: 3,
        app_version: 1,
        aid: pboc_card::image::DEFAULT_AID.to_vec(),
        valid_from: [0x20, 0x26, 0x01, 0x01],
        valid_until: [0x20, 0x30, 0x12, 0x31],
        deposit: 0,
        ed: None,
        ep: Some(PurseProfile {
            initial_balance: 0,
            overdraw_limit: 0,
            max_balance: 100_000,
        }),
        diversification_factors: Vec::new(),
        master_keys: masters,
        pin: None,
        record_capacity: pboc_card::image::DEFAULT_RECORD_CAPACITY,
    };
    Ok(DemoKeys {
        terminals,
        zak: make(KeyType::Zak, "ZAK")?,
        zpk: make(KeyType::Zpk, "ZPK")?,
        mlk,
        mtk,
        pvk: make(KeyType::Zpk, "PVK")?,
        issuer,
    })
}

/// The demo issuer's id (the first 8 bytes of the card's issuer data).
pub const DEMO_ISSUER_ID: [u8; 8] = [0x31, 0x00, 0, 0, 0, 0, 0, 0];

/// The `[center]` section for `keys`: listening where the front end's link points, the
/// database `center.db` and the LMK `lmk.txt` beside the configuration file.
pub fn center_config(keys: &DemoKeys) -> CenterConfig {
    let mut c = CenterConfig::example();
    c.listen = std::net::SocketAddr::from(([127, 0, 0, 1], DEMO_CENTER_PORT));
    c.acquirers = vec![DEMO_ACQUIRER.to_owned()];
    c.keys.zak = KeySpec::from_key_ref(&keys.zak);
    c.keys.zpk = KeySpec::from_key_ref(&keys.zpk);
    c.keys.pvk = Some(KeySpec::from_key_ref(&keys.pvk));
    c.keys.dlk_master = KeySpec::from_key_ref(&keys.mlk);
    c.keys.dtk_master = KeySpec::from_key_ref(&keys.mtk);
    c.keys.issuer_factors = keys
        .issuer
        .diversification_factors
        .iter()
        .map(hex::encode_upper)
        .collect();
    c
}

/// The center's port in the default configuration (the front end's `[[link]]` address).
pub const DEMO_CENTER_PORT: u16 = 5870;

fn key_line(name: &str, k: &KeyRef) -> String {
    let c = KeyRefConfig::from_key_ref(k);
    format!(
        "{name} = {{ type = \"{}\", cryptogram = \"{}\", kcv = \"{}\" }}",
        c.key_type, c.cryptogram, c.kcv
    )
}

/// The commented default configuration for `keys`, with paths relative to its directory.
pub fn default_config(keys: &DemoKeys) -> String {
    let mut terminals = String::new();
    for t in &keys.terminals {
        terminals.push_str(&format!(
            "[[terminal]]\n# id: the terminal id (field 41), 8 characters.\nid = \"{}\"\n# merchant_id: the merchant id (field 42), 15 characters; another one gets 03.\nmerchant_id = \"{}\"\n# tmk: the terminal master key under the LMK (type TMK); sign-in sends the working keys under it.\n{}\n\n",
            t.id,
            t.merchant_id,
            key_line("tmk", &t.tmk)
        ));
    }
    format!(
        r#"# posp-node front end configuration, written by `posp-node init`.
# Durations are humantime ("30s", "250ms", "24h"). Relative paths are relative to this file.
# Keys are never in clear here: each is {{ type, cryptogram (under the LMK, hex), kcv (hex) }}.

[node]
# acquirer_id: the acquiring institution id sent upstream in field 32 (1 to 11 digits).
acquirer_id = "{DEMO_ACQUIRER}"
# data_dir: the node's data directory.
data_dir = "."
# utc_offset_minutes: local time zone for fields 12, 13 and 15 (480 = UTC+8).
utc_offset_minutes = 480
# shutdown_grace: how long shutdown waits for transactions in flight.
shutdown_grace = "5s"
# flow_workers: transaction-flow workers, each one request at a time (so also the most
# requests in their flow at once); the supervisor restarts one that dies.
flow_workers = 128
# flow_queue: requests waiting for a worker before the listeners stop reading.
flow_queue = 4096

[hsm]
# lmk_file: the LMK of the in-process SoftHsm. Give either lmk_file or remote.
lmk_file = "lmk.txt"
# remote: HSMs speaking the host protocol, balanced by a pool (instead of lmk_file).
# remote = ["127.0.0.1:1500"]
# request_timeout: per request to a remote HSM.
request_timeout = "2s"
# max_in_flight: requests in flight per remote HSM connection.
max_in_flight = 64

[storage]
# journal: the SQLite journal and SAF database (WAL, synchronous=FULL).
journal = "journal.db"
# write_queue: writes waiting for the writer thread before callers wait.
write_queue = 4096
# batch_limit: most writes committed in one transaction (group commit).
batch_limit = 512
# readers: read-only connections.
readers = 4
# busy_timeout: how long a connection waits for a lock.
busy_timeout = "5s"

[[listener]]
# address: where terminals connect.
address = "127.0.0.1:5860"
# spec: the terminals' ISO 8583 dialect (only "cups-pos").
spec = "cups-pos"
# framing: 2-byte length, TPDU, 6-byte header (only "cups-pos").
framing = "cups-pos"
# max_connections: terminal connections at once; more are closed on accept.
max_connections = 1024
# max_frame: the largest frame accepted, bytes after the length header.
max_frame = 2048
# idle_timeout: a connection without a request for this long is closed.
idle_timeout = "5m"
# max_in_flight: requests of one connection processed at once.
max_in_flight = 8

# [[link]]: the links to the center. Add more [[link]] sections (each with its own name) for
# redundancy: a request goes out on the link that is up with the fewest requests in flight; a
# link that is down is skipped; with none up the terminal gets 96 and nothing is sent.
[[link]]
# name: the link's name (unique); the first link's name is the SAF destination of reversals,
# which go out through any link that is up.
name = "center"
# address: the center.
address = "127.0.0.1:5870"
# spec: the upstream dialect, a built-in spec: "cups-pos" (the terminals' dialect), "iso87-binary",
# "iso87-ascii" or "iso93-ascii"; the center's [center] spec must be the same. Requests go up with
# the terminal's field numbers and values in this dialect, X9.19 MAC under the ZAK in field 64
# (128 when the message has a secondary bitmap); the terminals always speak cups-pos. In
# "iso93-ascii" field 39 carries ISO 8583:1993 action codes, translated to and from the
# terminals' two-character response codes.
spec = "cups-pos"
# framing: 2-byte binary length (only "len2").
framing = "len2"
# mode: how the link uses its sockets; every mode matches responses by MTI class + 32 + 41 + 11.
#   "full-duplex-long"  (全双工长连接) one long-lived socket, requests pipelined (up to max_in_flight).
#   "half-duplex-long"  (半双工长连接) one long-lived socket, one request outstanding, others queued.
#   "simplex-long"      (单工长连接) two long-lived sockets: the front end sends requests only on
#                       its connection to address; the center connects to receive_address and
#                       sends responses only there ([center] reply_to). Up only while both are.
#   "full-duplex-short" (全双工短连接) a new connection to address per exchange (request, response,
#                       close), at most max_in_flight at once; up/down from the last exchange and
#                       an echo probe on its own connection when idle for a heartbeat.
mode = "full-duplex-long"
# receive_address: simplex-long only (required there): where the front end listens for the
# center's connection carrying the responses.
# receive_address = "127.0.0.1:5871"
# receive_allow: simplex-long only: the IP addresses the center's connection to receive_address
# may come from; others are closed, logged (RECEIVE_REFUSED) and counted. Default: the IP
# addresses of address.
# receive_allow = ["127.0.0.1"]
# timeout: how long a request waits for its response; then the terminal gets 98 and a
# reversal is queued.
timeout = "5s"
# connect_timeout: per connection attempt.
connect_timeout = "3s"
# max_in_flight: requests outstanding at once (full-duplex-short: connections open at once).
max_in_flight = 256
# reconnect_min / reconnect_max: reconnection backoff, doubling from min to max (full-duplex-short:
# the delay between probes while the link is down).
reconnect_min = "200ms"
reconnect_max = "10s"
# heartbeat: an idle link sends an echo (0820, 60.3 = 301) this often; an unanswered echo closes
# the connection(s). full-duplex-short: the readiness probe's interval.
heartbeat = "30s"
# max_frame: the largest frame accepted from the center.
max_frame = 4096
# repeat_mti: retransmitted reversals carry 0401.
repeat_mti = true
# late_memory: timed-out requests remembered to recognise late responses.
late_memory = 4096

[saf]
# retry_interval: pause between SAF rounds and after a failed transmission.
retry_interval = "10s"
# batch_size: most entries sent per round.
batch_size = 10
# max_attempts: responses without completion before an entry goes to the exception queue
# (a transmission without a response does not count).
max_attempts = 5
# expiry: age after which a queued entry goes to the exception queue.
expiry = "24h"
# max_queued: entries queued per destination before new ones are refused.
max_queued = 100000
# done_codes: response codes that complete a reversal; others are retried.
done_codes = ["00", "12", "25"]

{terminals}[keys]
# zak: the zone MAC key shared with the center (X9.19 MACs upstream).
{zak}
# zpk: the zone PIN key shared with the center (PIN blocks are translated to it).
{zpk}

[admin]
# address: the admin endpoint (loopback only): /health, /status, /metrics.
address = "127.0.0.1:5880"
# max_connections: admin connections at once.
max_connections = 16

[supervisor]
# restart_min / restart_max: a module that panics or exits is restarted after a delay
# doubling from min to max.
restart_min = "100ms"
restart_max = "10s"

# The data-center host of `posp-node center --config` (this file); the front end only checks
# it. The center listens where [[link]] points; for a simplex-long link its reply_to names the
# link's receive_address under the node's acquirer id.
{center}"#,
        zak = key_line("zak", &keys.zak),
        zpk = key_line("zpk", &keys.zpk),
        center = center_config(keys).to_toml_section(),
    )
}

fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<(), InitError> {
    let at = path.display().to_string();
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            err("EXISTS", at.clone(), "exists; init never overwrites")
        } else {
            err("IO", at.clone(), e)
        }
    })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| err("IO", at, e))
}

/// What `init` wrote.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The files written.
    pub files: Vec<PathBuf>,
    /// The LMK's check value.
    pub lmk_kcv: String,
    /// The generated keys.
    pub keys: DemoKeys,
}

/// Writes the LMK, the configuration and the terminals file into `dir` (created if
/// missing) for the three [`DEMO_TERMINALS`]. Refuses when any of the files exists.
pub fn init(dir: &Path) -> Result<InitReport, InitError> {
    init_with(dir, DEMO_TERMINALS.len())
}

/// [`init`] with `terminals` demo terminals (1 to 9,999; ids from [`demo_terminal_id`]).
pub fn init_with(dir: &Path, terminals: usize) -> Result<InitReport, InitError> {
    if !(1..=9_999).contains(&terminals) {
        return Err(err(
            "TERMINALS",
            "terminals",
            format!("{terminals}: 1 to 9999 terminals"),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| err("IO", dir.display().to_string(), e))?;
    let files = [
        dir.join("lmk.txt"),
        dir.join("posp.toml"),
        dir.join("terminals.json"),
        dir.join("issuer.json"),
    ];
    for f in &files {
        if f.exists() {
            return Err(err(
                "EXISTS",
                f.display().to_string(),
                "exists; init never overwrites",
            ));
        }
    }
    let rng = OsRandom::open().map_err(|e| err("RANDOM", "/dev/urandom", e))?;
    let lmk = Lmk::generate(&rng);
    let lmk_kcv = lmk.kcv().to_string();
    let hsm = SoftHsm::new(
        lmk.clone(),
        Box::new(OsRandom::open().map_err(|e| err("RANDOM", "/dev/urandom", e))?),
    );
    let keys = demo_keys_for(&hsm, &rng, terminals)?;
    write_new(&files[0], lmk.to_text().as_bytes(), true)?;
    write_new(&files[1], default_config(&keys).as_bytes(), false)?;
    let terminals = serde_json::json!({
        "front": "127.0.0.1:5860",
        "terminals": keys.terminals.iter().map(|t| serde_json::json!({
            "id": t.id,
            "merchant_id": t.merchant_id,
            "tmk": t.tmk_clear_hex,
        })).collect::<Vec<_>>(),
    });
    let text =
        serde_json::to_string_pretty(&terminals).map_err(|e| err("IO", "terminals.json", e))?;
    write_new(&files[2], (text + "\n").as_bytes(), true)?;
    let issuer =
        serde_json::to_string_pretty(&keys.issuer).map_err(|e| err("IO", "issuer.json", e))?;
    write_new(&files[3], (issuer + "\n").as_bytes(), true)?;
    Ok(InitReport {
        files: files.to_vec(),
        lmk_kcv,
        keys,
    })
}

/// Arguments of `posp-node init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The directory to write into (created if missing).
    pub dir: PathBuf,
    /// How many demo terminals to register (ids 10000001, 10000002 ...).
    #[arg(long, default_value_t = 3)]
    pub terminals: usize,
}

/// `posp-node init DIR`.
pub fn run(args: InitArgs) -> ExitCode {
    match init_with(&args.dir, args.terminals) {
        Ok(r) => {
            for f in &r.files {
                println!("wrote {}", f.display());
            }
            println!("LMK check value {}", r.lmk_kcv);
            let config = args.dir.join("posp.toml");
            println!(
                "run: posp-node center --config {} --seed-demo",
                config.display()
            );
            println!("and: posp-node front --config {}", config.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::config::Config;

    #[test]
    fn init_writes_a_loadable_config_and_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("posp-init-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let r = init(&dir).unwrap();
        assert_eq!(r.files.len(), 4);
        let config = Config::load(&dir.join("posp.toml")).unwrap();
        assert_eq!(config.terminals.len(), 3);
        assert_eq!(config.terminals[0].id, "10000001");
        assert_eq!(config.node.acquirer_id, "48020000");
        assert_eq!(config.storage.journal, dir.join("journal.db"));
        assert_eq!(config.listeners[0].address.to_string(), "127.0.0.1:5860");
        assert_eq!(
            config.admin.as_ref().unwrap().address.to_string(),
            "127.0.0.1:5880"
        );
        let lmk = Lmk::load(dir.join("lmk.txt")).unwrap();
        assert_eq!(lmk.kcv().to_string(), r.lmk_kcv);
        // The clear TMK in terminals.json is the key under the LMK in posp.toml.
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("terminals.json")).unwrap())
                .unwrap();
        let clear =
            pboc_sam::DesKey::from_hex(json["terminals"][0]["tmk"].as_str().unwrap()).unwrap();
        assert_eq!(
            clear.kcv(pboc_sam::KcvLength::UNIONPAY).to_string(),
            config.terminals[0].tmk.kcv
        );
        // The [center] section: where the link points, the same zone keys, the masters the
        // issuer profile holds in clear.
        let center = config.center.as_ref().unwrap();
        assert_eq!(center.listen.to_string(), config.links[0].address);
        assert_eq!(center.database, dir.join("center.db"));
        assert_eq!(
            center.hsm.lmk_file.as_deref(),
            Some(dir.join("lmk.txt").as_path())
        );
        assert_eq!(center.keys.zak.kcv, config.keys.zak.kcv);
        assert_eq!(center.keys.zpk.cryptogram, config.keys.zpk.cryptogram);
        let separate = crate::center::CenterConfig::load(&dir.join("posp.toml")).unwrap();
        assert_eq!(&separate, center);
        let issuer =
            IssuerProfile::from_json(&std::fs::read_to_string(dir.join("issuer.json")).unwrap())
                .unwrap();
        let dlk = issuer.master(KeyPurpose::Load, 1).unwrap();
        assert_eq!(
            dlk.key.kcv(pboc_sam::KcvLength::UNIONPAY).to_string(),
            center.keys.dlk_master.kcv
        );
        let e = init(&dir).unwrap_err();
        assert_eq!(e.code, "EXISTS");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
