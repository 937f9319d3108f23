//! `posp-node hsm`: the simulator HSM (a SoftHsm served over the HSM host protocol) and its
//! LMK file.
//!
//! ```text
//! posp-node hsm --gen-lmk lmk.txt                 # new random LMK, prints its check value
//! posp-node hsm --listen 127.0.0.1:1500 --lmk lmk.txt
//! ```
//!
//! The server runs until Ctrl-C or SIGTERM, then stops accepting, answers what it has read
//! and exits. Key material comes from the operating system's random source (`/dev/urandom`).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use clap::{ArgGroup, Args};
use pboc_sam::hsm::HsmServer;
use pboc_sam::{Kcv, Lmk, RandomSource, SoftHsm};

/// Arguments of `posp-node hsm`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("mode").required(true).args(["listen", "gen_lmk"])))]
pub struct HsmArgs {
    /// Serve the simulator HSM on this address (host:port), with the LMK from --lmk.
    #[arg(long, value_name = "ADDR", requires = "lmk")]
    listen: Option<String>,
    /// The LMK file the simulator uses (see --gen-lmk).
    #[arg(long, value_name = "FILE")]
    lmk: Option<PathBuf>,
    /// Write a new random LMK to FILE (mode 0600) and print its check value.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["listen", "lmk"])]
    gen_lmk: Option<PathBuf>,
    /// Replace the file given to --gen-lmk if it exists (every key under the old LMK is lost).
    #[arg(long, requires = "gen_lmk")]
    force: bool,
    /// The header length of the host protocol.
    #[arg(long, value_name = "N", default_value_t = 4)]
    header_len: usize,
    /// The most client connections served at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_connections: usize,
}

/// Runs `posp-node hsm`. Exit code 0 on success, 1 when the LMK or the socket fails.
pub fn run(args: HsmArgs) -> ExitCode {
    let result = match (&args.gen_lmk, &args.listen, &args.lmk) {
        (Some(path), _, _) => gen_lmk(path, args.force).map(|kcv| {
            println!("{kcv}");
        }),
        (None, Some(addr), Some(lmk)) => serve_until_signal(addr, lmk, &args),
        // clap's argument group makes these unreachable; say so rather than panic.
        _ => Err("give either --gen-lmk FILE or --listen ADDR --lmk FILE".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes a new LMK to `path` (refusing to replace an existing file unless `force`) and
/// returns its check value.
fn gen_lmk(path: &Path, force: bool) -> Result<Kcv, String> {
    if path.exists() && !force {
        return Err(format!(
            "{} exists; refusing to replace an LMK (use --force to overwrite it)",
            path.display()
        ));
    }
    let rng = OsRandom::open().map_err(|e| format!("cannot open the random source: {e}"))?;
    let lmk = Lmk::generate(&rng);
    lmk.save(path).map_err(|e| e.to_string())?;
    Ok(lmk.kcv())
}

fn serve_until_signal(addr: &str, lmk_path: &Path, args: &HsmArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let (server, kcv) = bind(addr, lmk_path, args.header_len, args.max_connections).await?;
        let local = server
            .local_addr()
            .map_err(|e| format!("listening socket: {e}"))?;
        eprintln!("simulator HSM listening on {local}, LMK check value {kcv}");
        let handle = server.shutdown_handle();
        let task = tokio::spawn(server.run());
        wait_for_signal().await?;
        eprintln!("shutting down");
        handle.shutdown();
        match task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("server: {e}")),
            Err(e) => Err(format!("server task: {e}")),
        }
    })
}

/// Loads the LMK and binds the server; returns it with the LMK check value.
async fn bind(
    addr: &str,
    lmk_path: &Path,
    header_len: usize,
    max_connections: usize,
) -> Result<(HsmServer, Kcv), String> {
    let lmk = Lmk::load(lmk_path).map_err(|e| e.to_string())?;
    let rng = OsRandom::open().map_err(|e| format!("cannot open the random source: {e}"))?;
    let hsm = SoftHsm::new(lmk, Box::new(rng));
    let kcv = hsm.lmk_kcv();
    let server = HsmServer::builder(Arc::new(hsm))
        .header_len(header_len)
        .max_connections(max_connections)
        .bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    Ok((server, kcv))
}

async fn wait_for_signal() -> Result<(), String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(|e| format!("cannot watch Ctrl-C: {e}")),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| format!("cannot watch Ctrl-C: {e}"))
    }
}

/// The operating system's random source, read from `/dev/urandom`.
struct OsRandom {
    file: Mutex<File>,
}

impl OsRandom {
    fn open() -> std::io::Result<Self> {
        let mut file = File::open("/dev/urandom")?;
        // Read once now so a broken source fails here, not in the middle of key generation.
        let mut probe = [0u8; 8];
        file.read_exact(&mut probe)?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }
}

impl RandomSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = file.read_exact(buf) {
            // Continuing would mean keys from a broken random source: stop the process.
            eprintln!("fatal: reading /dev/urandom failed: {e}");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use pboc_sam::hsm::HsmClient;
    use pboc_sam::{DesKeyLength, KeyType, MacAlgorithm, SecurityModule};

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("posp-node-hsm-{}-{name}", std::process::id()))
    }

    #[test]
    fn gen_lmk_writes_a_loadable_file_and_refuses_to_overwrite() {
        let path = temp_path("gen");
        let _ = std::fs::remove_file(&path);
        let kcv = gen_lmk(&path, false).unwrap();
        assert_eq!(Lmk::load(&path).unwrap().kcv(), kcv);
        assert_eq!(kcv.as_bytes().len(), 4);
        let e = gen_lmk(&path, false).unwrap_err();
        assert!(e.ends_with("exists; refusing to replace an LMK (use --force to overwrite it)"));
        let again = gen_lmk(&path, true).unwrap();
        assert_ne!(again, kcv, "a new random LMK");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn os_random_is_not_constant() {
        let rng = OsRandom::open().unwrap();
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        rng.fill(&mut a);
        rng.fill(&mut b);
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn serves_the_lmk_from_the_file() {
        let path = temp_path("serve");
        let _ = std::fs::remove_file(&path);
        let kcv = gen_lmk(&path, false).unwrap();
        let (server, served) = bind("127.0.0.1:0", &path, 4, 8).await.unwrap();
        assert_eq!(served, kcv);
        let addr = server.local_addr().unwrap().to_string();
        let handle = server.shutdown_handle();
        let task = tokio::spawn(server.run());
        let client = HsmClient::builder(addr).build().unwrap();
        assert_eq!(client.diagnostics().await.unwrap().lmk_kcv, kcv);
        let key = client
            .generate_key(KeyType::Tak, DesKeyLength::Double, None)
            .await
            .unwrap()
            .key;
        let mac = client
            .generate_mac(&key, MacAlgorithm::X919, b"data")
            .await
            .unwrap();
        client
            .verify_mac(&key, MacAlgorithm::X919, b"data", &mac)
            .await
            .unwrap();
        handle.shutdown();
        task.await.unwrap().unwrap();
        std::fs::remove_file(&path).unwrap();
    }

    #[tokio::test]
    async fn bad_lmk_file_is_reported() {
        let e = bind("127.0.0.1:0", Path::new("/nonexistent/lmk.txt"), 4, 8)
            .await
            .unwrap_err();
        assert!(e.starts_with("LMK file /nonexistent/lmk.txt: "), "{e}");
    }
}
