//! `deltaseal report DIR... [--csv]`: install records of many devices.

use std::path::PathBuf;

use anyhow::{Context, Result};
use deltaseal_agent::report::{self, CSV_COLUMNS, Report};

use crate::cmd::device;

/// Arguments of `deltaseal report`.
#[derive(clap::Args)]
pub struct Args {
    /// Device directories.
    #[arg(value_name = "DIR", required = true)]
    devices: Vec<PathBuf>,
    /// Print RFC 4180 CSV (for a CMMS import) instead of a table.
    #[arg(long)]
    csv: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let mut rows: Vec<(String, Report)> = Vec::new();
    for dir in &args.devices {
        let name = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut agent = device::open(dir);
        agent
            .state()
            .with_context(|| format!("{} is not a device directory", dir.display()))?;
        let reports = agent
            .reports()
            .with_context(|| format!("cannot read the reports of {}", dir.display()))?;
        rows.extend(reports.into_iter().map(|r| (name.clone(), r)));
    }
    if args.csv {
        crate::ui::write_stdout(format_args!("{}", report::csv(&rows)));
        return Ok(());
    }
    if crate::ui::json() {
        let records: Vec<serde_json::Value> = rows
            .iter()
            .map(|(d, r)| {
                let cells = report::row(d, r);
                CSV_COLUMNS
                    .iter()
                    .zip(cells)
                    .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v)))
                    .collect::<serde_json::Map<_, _>>()
                    .into()
            })
            .collect();
        crate::ui::outln!("{}", serde_json::Value::Array(records));
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows.iter().map(|(d, r)| report::row(d, r)).collect();
    let mut widths: Vec<usize> = CSV_COLUMNS.iter().map(|c| c.len()).collect();
    for cells in &table {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let header: Vec<String> = CSV_COLUMNS.iter().map(|c| c.to_string()).collect();
    crate::ui::outln!("{}", line(&header));
    for cells in &table {
        crate::ui::outln!("{}", line(cells));
    }
    let count = |result: &str| rows.iter().filter(|(_, r)| r.result == result).count();
    let total_down: u64 = rows.iter().filter_map(|(_, r)| r.downtime_ms).sum();
    // A deferral is a record but not an install: counted apart, and its
    // install, when it comes, is counted by its own record.
    let deferred = count("deferred");
    crate::ui::outln!(
        "{} installs on {} devices: {} installed, {} rolled back, {} failed; {deferred} deferred; \
         downtime {total_down} ms in total",
        rows.len() - deferred,
        args.devices.len(),
        count("installed"),
        count("rolled_back"),
        count("failed"),
    );
    Ok(())
}
