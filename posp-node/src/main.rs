//! `posp-node`: the front-end processor of the one-card system and the payment engineer's tools.
//!
//! Run `posp-node --help` for the subcommands.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod card_cmd;
mod crypto;
mod hsm;
mod journal_cmd;
mod msg;

/// The POSP node and its tools.
#[derive(Parser)]
#[command(name = "posp-node", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands. Each module owns its own argument types and its `run` function.
#[derive(Subcommand)]
enum Command {
    /// Decode, encode and inspect ISO 8583 messages.
    #[command(subcommand)]
    Msg(msg::MsgCommand),
    /// The payment engineer's cryptographic calculator.
    ///
    /// Any hex value (keys, data, blocks) and any PIN can be given as `@PATH` (read from a
    /// file) or `env:NAME` (read from an environment variable), which keeps them out of the
    /// process list and the shell history.
    #[command(subcommand)]
    Crypto(crypto::CryptoCommand),
    /// Run the simulator HSM server, or write a new LMK file.
    Hsm(hsm::HsmArgs),
    /// Look transactions up in a journal database.
    #[command(subcommand)]
    Journal(journal_cmd::JournalCommand),
    /// PBOC card tools: virtual card and PSAM, personalization.
    #[command(subcommand)]
    Card(card_cmd::CardCommand),
    /// Write a fresh LMK, demo keys and a commented front-end configuration into DIR.
    Init(posp_node::init::InitArgs),
    /// Run the front end (POSP) until SIGTERM or SIGINT.
    Front(posp_node::front::FrontArgs),
    /// Print a running front end's status from its admin endpoint.
    Status(posp_node::front::admin::StatusArgs),
    /// Run simulated POS terminals against a front end.
    PosSim(posp_node::possim::PosSimArgs),
    /// Run the data-center host.
    Center(posp_node::center::CenterArgs),
    /// The main job: HSM simulator, center, front end and terminals on loopback run one
    /// scripted business day and print a summary.
    Demo(posp_node::demo::DemoArgs),
    /// Measure end-to-end throughput and latency: a bare echo server, echo through the front
    /// end, and purchases through the front end and the center.
    LoadTest(posp_node::loadtest::LoadTestArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Msg(cmd) => msg::run(cmd),
        Command::Crypto(cmd) => crypto::run(cmd),
        Command::Hsm(args) => hsm::run(args),
        Command::Journal(cmd) => journal_cmd::run(cmd),
        Command::Card(cmd) => card_cmd::run(cmd),
        Command::Init(args) => posp_node::init::run(args),
        Command::Front(args) => posp_node::front::run(args),
        Command::Demo(args) => posp_node::demo::run(args),
        Command::LoadTest(args) => posp_node::loadtest::run(args),
        Command::Status(args) => posp_node::front::admin::run_status(args),
        Command::PosSim(args) => posp_node::possim::run(args),
        Command::Center(args) => posp_node::center::run(args),
    }
}
