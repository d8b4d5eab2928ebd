//! `deltaseal completions SHELL` and `deltaseal man`: generated from the
//! clap definitions, so they never drift from the real flags.

use std::io::Write;

use anyhow::{Context, Result};
use clap_complete::Shell;

/// Arguments of `deltaseal completions`.
#[derive(clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: ShellArg,
}

/// Shells with completion scripts.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ShellArg {
    /// bash: `deltaseal completions bash > /etc/bash_completion.d/deltaseal`.
    Bash,
    /// zsh: write `_deltaseal` into a directory on `$fpath`.
    Zsh,
    /// fish: `deltaseal completions fish > ~/.config/fish/completions/deltaseal.fish`.
    Fish,
    /// PowerShell: dot-source the output from your profile.
    Powershell,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn run(args: &Args, mut command: clap::Command) -> Result<()> {
    let shell = match args.shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
        ShellArg::Powershell => Shell::PowerShell,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "deltaseal", &mut out);
    write_stdout(&out)
}

/// Arguments of `deltaseal man`.
#[derive(clap::Args)]
pub struct ManArgs {}

/// Prints the man page (roff) on stdout: `deltaseal man > deltaseal.1`.
pub fn man(_args: &ManArgs, command: clap::Command) -> Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .context("cannot render the man page")?;
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
}
