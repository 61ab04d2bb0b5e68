//! `sfconnect`: the Salesforce source connector's command line.
//!
//! **Owns:** the binary `sfconnect`: `spec`, `check`, `discover` and `read` speaking the Airbyte
//! protocol on stdout (one JSON message per line, nothing else there), reading Airbyte
//! source-salesforce's config, catalog and state files as they are; `emulate` (serve the emulated
//! org and print a ready-to-use config) and `demo` (a whole sync against it, written to a folder);
//! `login` (the OAuth web-server flow from a terminal, writing a ready config).
//! Logs go to stderr through `tracing` (`RUST_LOG`).
//!
//! **Must not know:** HTTP, SOQL, CSV or Salesforce error bodies. It maps the sync engine's sink
//! events to Airbyte messages and failures to TRACE errors and exit codes; with `xtask` it is the
//! only crate that uses `anyhow` (fixtures uses `clap` too, for the emulator's arguments).

mod check;
mod commands;
mod demo;
mod failure;
mod files;
mod login;
mod progress;
mod protocol;
mod report;
mod sink;
mod spec;
mod tuning;

use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use fixtures::{Scale, ServeArgs};

use crate::failure::Failure;
use crate::protocol::Output;

/// mimalloc rather than glibc's malloc: a read allocates a string per text cell on the stream
/// tasks and frees it on the sink's thread, which glibc's arenas make costly (a fifth of a Bulk
/// read's CPU went to `malloc` and `free`). mimalloc's v2 line, built without transparent huge
/// pages: v3 held 2 to 5 MiB more, and more unevenly, on the same reads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sfconnect",
    version,
    about = "A Salesforce source connector speaking the Airbyte protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the connection specification (SPEC).
    Spec,
    /// Check the config: log in, then tell who is logged in, the org, the daily API allowance,
    /// the readable objects and what the user's permissions leave out (CONNECTION_STATUS).
    Check {
        /// The config file (Airbyte source-salesforce's keys).
        #[arg(long)]
        config: PathBuf,
        /// A configured catalog: warn about its streams only (else about every readable object).
        #[arg(long)]
        catalog: Option<PathBuf>,
    },
    /// List the streams the config can read (CATALOG).
    Discover {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Read the configured streams (RECORD, STATE, LOG, TRACE).
    Read {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// The configured catalog file.
        #[arg(long)]
        catalog: PathBuf,
        /// The state file of the last sync.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Write the run report here (JSON: per stream, the API and why, windows, rows, Bulk
        /// jobs and polls, API calls by kind, seconds; the daily allowance before and after).
        #[arg(long)]
        report: Option<PathBuf>,
        #[command(flatten)]
        tuning: tuning::Tuning,
    },
    /// Log in through the browser (OAuth web-server flow with PKCE) and write a ready config.
    Login(login::LoginArgs),
    /// Serve the emulated Salesforce org on loopback and print a ready-to-use config.
    Emulate {
        #[command(flatten)]
        org: ServeArgs,
    },
    /// Run check, discover, a first read, changes to the org and an incremental read against the
    /// emulated org; write every step's messages under a folder and print a summary.
    Demo {
        /// Where to write the messages.
        #[arg(long, default_value = "sfconnect-demo")]
        dir: PathBuf,
        /// Seed of the org's data.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Size: tiny, small, medium, large or production (about 1,600 objects, every kind a
        /// production org holds).
        #[arg(long, default_value = "small")]
        scale: Scale,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a log file or a platform's collector would keep the
        // escape codes as text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sfconnect: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = Arc::new(Output::new(Box::new(BufWriter::with_capacity(
        1 << 16,
        std::io::stdout(),
    ))));
    match cli.command {
        Command::Emulate { org } => runtime.block_on(async move {
            match emulate(&org).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sfconnect emulate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Login(args) => runtime.block_on(async move {
            match login::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sfconnect login: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Demo { dir, seed, scale } => runtime.block_on(async move {
            match demo::run(&dir, seed, scale).await {
                Ok(steps) => {
                    println!("{}", demo::table(&steps));
                    for step in &steps {
                        if let Some(path) = &step.report {
                            println!("{}: {}", step.step, path.display());
                            match report::table(path) {
                                Ok(table) => println!("{table}"),
                                Err(e) => eprintln!("sfconnect demo: {e:#}"),
                            }
                        }
                    }
                    println!("messages of every step are in {}/", dir.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("sfconnect demo: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }),
        command => {
            let out = stdout.clone();
            let result = runtime.block_on(async move { protocol_command(command, out).await });
            commands::emit_last_rotations();
            let code = match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(failure) => {
                    let _ = stdout.emit(&protocol::trace_error(
                        &failure.message,
                        None,
                        failure.failure_type,
                    ));
                    ExitCode::FAILURE
                }
            };
            let _ = stdout.flush();
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            code
        }
    }
}

async fn protocol_command(command: Command, out: Arc<Output>) -> Result<(), Failure> {
    match command {
        Command::Spec => commands::spec(&out),
        Command::Check { config, catalog } => check::run(&config, catalog.as_deref(), out).await,
        Command::Discover { config } => commands::discover(&config, out).await.map(|_| ()),
        Command::Read {
            config,
            catalog,
            state,
            report,
            tuning,
        } => commands::read_tuned(
            &config,
            &catalog,
            state.as_deref(),
            report.as_deref(),
            &tuning.options(),
            out,
        )
        .await
        .map(|_| ()),
        Command::Emulate { .. } | Command::Demo { .. } | Command::Login(_) => {
            Err(Failure::system("not a protocol command"))
        }
    }
}

async fn emulate(org: &ServeArgs) -> anyhow::Result<()> {
    let seed = org.seed;
    org.serve(org.config(), |url| {
        format!(
            "emulated Salesforce org at {url} (seed {seed}). Save the line above as config.json, then \
             e.g. `sfconnect discover --config config.json`. Ctrl-C stops it."
        )
    })
    .await?;
    Ok(())
}
