//! `deltaseal`: build, sign, inspect, verify and apply firmware update bundles.
//!
//! A thin layer over the library crates: argument parsing, file I/O and
//! output formatting live here, everything else in `deltaseal-diff`,
//! `deltaseal-sign` and `deltaseal-verify`.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod bundler;
mod cmd;
mod evidence;
mod fsutil;
mod ui;

/// Shown under every `--help` and in the man page.
const EXIT_STATUS: &str = "\
Exit status: 0 success; 1 a rejected or malformed input, or an I/O failure
(one `error:` line on stderr, no output file left behind); 2 a usage error.
Global options: --json prints one JSON document on stdout; --quiet prints
no progress bars and no informational text.";

/// Secure, small, verifiable over-the-air firmware updates.
///
/// Exit status: 0 success; 1 a rejected or malformed input, or an I/O
/// failure; 2 a usage error. On failure one line starting with `error:` is
/// printed on stderr and no output file is left behind.
#[derive(Parser)]
#[command(
    name = "deltaseal",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = EXIT_STATUS
)]
struct Cli {
    /// Machine-readable output: one JSON document on stdout, for every
    /// command (`deltaseal --json CMD ...`; most commands also take
    /// `--json` after their name).
    #[arg(long)]
    json: bool,
    /// No progress bars and no informational text; errors, and JSON output
    /// when asked for, are still printed.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate an Ed25519 signing key (PKCS#8 PEM) and its public key (SPKI PEM).
    Keygen(cmd::keygen::Args),
    /// Compute a patch that turns OLD into NEW.
    Diff(cmd::diff::Args),
    /// Apply a patch to OLD and write the result (checked against the patch's digests).
    Apply(cmd::apply::Args),
    /// Build a signed update bundle (SUIT envelope) from an old and a new image.
    Release(cmd::release::Args),
    /// Check a bundle's signature and policy; with --old, also apply it.
    Verify(cmd::verify::Args),
    /// Show what a key, patch or bundle holds.
    Inspect(cmd::inspect::Args),
    /// Manage a device directory of the reference A/B agent: `device init`.
    Device(cmd::device::Args),
    /// Verify a bundle and write it into the device's inactive slot (resumes
    /// an interrupted install); the slot is then pending.
    Install(cmd::install::Args),
    /// Simulate a reboot: try a pending slot once; roll back an unconfirmed trial.
    Boot(cmd::boot::Args),
    /// Keep the image on trial and raise the installed sequence.
    Confirm(cmd::boot::Args),
    /// Show a device's state, active slot and installed sequence.
    Status(cmd::status::Args),
    /// Summarise the install reports of device directories (table or --csv).
    Report(cmd::report::Args),
    /// Generate or check the deterministic test vectors (testvectors/).
    Vectors(cmd::vectors::Args),
    /// Manage trust roots: init, sign, rotate, verify.
    Root(cmd::root::Args),
    /// Add a signature to a bundle, or write the bytes for an external signer.
    Sign(cmd::sign::Args),
    /// Add a signature made elsewhere (HSM, KMS, openssl) to a bundle or root.
    AttachSignature(cmd::attach_signature::Args),
    /// Build every bundle of a release plan (TOML), or one shard of it, and
    /// its index; --merge joins the shards' indexes.
    ReleasePlan(cmd::release_plan::Args),
    /// Print a shell completion script (bash, zsh, fish, powershell).
    Completions(cmd::completions::Args),
    /// Print the man page (roff): `deltaseal man > deltaseal.1`.
    Man(cmd::completions::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ui::init(ui::Flags {
        json: cli.json,
        quiet: cli.quiet,
    });
    let result = match cli.command {
        Command::Keygen(args) => cmd::keygen::run(&args),
        Command::Diff(args) => cmd::diff::run(&args),
        Command::Apply(args) => cmd::apply::run(&args),
        Command::Release(args) => cmd::release::run(&args),
        Command::Verify(args) => cmd::verify::run(&args),
        Command::Inspect(args) => cmd::inspect::run(&args),
        Command::Device(args) => cmd::device::run(&args),
        Command::Install(args) => cmd::install::run(&args),
        Command::Boot(args) => cmd::boot::run(&args),
        Command::Confirm(args) => cmd::confirm::run(&args),
        Command::Status(args) => cmd::status::run(&args),
        Command::Report(args) => cmd::report::run(&args),
        Command::Vectors(args) => cmd::vectors::run(&args),
        Command::Root(args) => cmd::root::run(&args),
        Command::Sign(args) => cmd::sign::run(&args),
        Command::AttachSignature(args) => cmd::attach_signature::run(&args),
        Command::ReleasePlan(args) => cmd::release_plan::run(&args),
        Command::Completions(args) => cmd::completions::run(&args, Cli::command()),
        Command::Man(args) => cmd::completions::man(&args, Cli::command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the context chain joined, so scripts can grep it.
            let mut line = err.to_string();
            for cause in err.chain().skip(1) {
                line.push_str(": ");
                line.push_str(&cause.to_string());
            }
            // Some causes (e.g. TOML parse errors) span lines: keep one.
            let line = line.replace('\n', " ");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

/// `deltaseal inspect big.bundle | head` must not report an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
