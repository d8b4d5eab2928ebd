//! Install reports: one JSON record per install under `reports/`, and the
//! CSV a CMMS imports.

use serde::{Deserialize, Serialize};

/// One install, as an operator sees it. Written when the install starts and
/// rewritten at every step (pending, trial, confirmed or rolled back); a
/// refused bundle gets one `failed` record and a deferred one one `deferred`
/// record, each final.
///
/// Fields added after the first release are optional and left out of the
/// JSON when empty, so older records still parse and records that do not
/// use them are written exactly as before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The bundle file as given to `install`.
    pub bundle: String,
    /// SHA-256 of the bundle, hex.
    pub bundle_sha256: String,
    /// Image the device ran before: first 12 hex digits of its SHA-256.
    pub from_version: String,
    /// Image the bundle installs: first 12 hex digits of its SHA-256.
    pub to_version: String,
    /// Installed sequence before this install.
    pub from_sequence: u64,
    /// The bundle's sequence.
    pub sequence: u64,
    /// When the install started (RFC 3339, UTC).
    pub start: String,
    /// When it ended: confirmed, rolled back or failed (RFC 3339, UTC).
    pub end: Option<String>,
    /// Milliseconds from switching slots (the trial boot) to the
    /// confirmation or the rollback.
    pub downtime_ms: Option<u64>,
    /// `installing`, `pending`, `trial`, `installed`, `rolled_back`,
    /// `failed` or `deferred`.
    pub result: String,
    /// Why it failed or was rolled back.
    pub error: Option<String>,
    /// Chunk the install resumed from after an interruption (the last one,
    /// if several).
    pub resumed_from_chunk: Option<u32>,
    /// The operator asked to reinstall a rolled-back sequence.
    pub retry: bool,
    /// Start as Unix milliseconds (for sorting and downtime).
    pub start_ms: u64,
    /// A `deferred` record only: when the maintenance window opens and the
    /// bundle will install (RFC 3339, UTC). The install itself, when it
    /// comes, writes a record of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_at: Option<String>,
}

/// Columns of [`csv`], in order.
///
/// New columns are only ever appended, so importers that read by position
/// keep working.
pub const CSV_COLUMNS: [&str; 13] = [
    "device",
    "bundle",
    "from_version",
    "to_version",
    "from_sequence",
    "sequence",
    "start",
    "end",
    "downtime_ms",
    "result",
    "error",
    "resumed_from_chunk",
    "install_at",
];

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The cells of one CSV row (same order as [`CSV_COLUMNS`]).
pub fn row(device: &str, r: &Report) -> Vec<String> {
    vec![
        device.to_owned(),
        r.bundle.clone(),
        r.from_version.clone(),
        r.to_version.clone(),
        r.from_sequence.to_string(),
        r.sequence.to_string(),
        r.start.clone(),
        r.end.clone().unwrap_or_default(),
        r.downtime_ms.map(|d| d.to_string()).unwrap_or_default(),
        r.result.clone(),
        r.error.clone().unwrap_or_default(),
        r.resumed_from_chunk
            .map(|c| c.to_string())
            .unwrap_or_default(),
        r.install_at.clone().unwrap_or_default(),
    ]
}

/// RFC 4180 CSV (CRLF line ends, quoted where needed) of `(device, report)`
/// rows, with a header line.
///
/// ```
/// let text = deltaseal_agent::report::csv(&[]);
/// assert!(text.starts_with("device,bundle,"));
/// ```
pub fn csv(rows: &[(String, Report)]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for (device, r) in rows {
        let cells: Vec<String> = row(device, r).iter().map(|c| field(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds.
///
/// ```
/// assert_eq!(deltaseal_agent::report::rfc3339(0), "1970-01-01T00:00:00Z");
/// assert_eq!(deltaseal_agent::report::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
/// ```
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_commas_and_quotes() {
        let r = Report {
            bundle: "a,b.bundle".into(),
            bundle_sha256: String::new(),
            from_version: "x".into(),
            to_version: "y".into(),
            from_sequence: 1,
            sequence: 2,
            start: rfc3339(1_764_028_800),
            end: None,
            downtime_ms: Some(42),
            result: "installed".into(),
            error: Some("said \"no\"".into()),
            resumed_from_chunk: None,
            retry: false,
            start_ms: 0,
            install_at: None,
        };
        let text = csv(&[("pump-1".into(), r)]);
        let line = text.lines().nth(1).unwrap();
        assert_eq!(
            line,
            "pump-1,\"a,b.bundle\",x,y,1,2,2025-11-25T00:00:00Z,,42,installed,\"said \"\"no\"\"\",,"
        );
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    /// A record written before `install_at` existed parses, and a record
    /// without it is written back byte for byte: no new key appears.
    #[test]
    fn records_without_install_at_parse_and_are_written_unchanged() {
        let old = r#"{
  "bundle": "update.bundle",
  "bundle_sha256": "00",
  "from_version": "aaaaaaaaaaaa",
  "to_version": "bbbbbbbbbbbb",
  "from_sequence": 6,
  "sequence": 7,
  "start": "2025-11-25T00:00:00Z",
  "end": "2025-11-25T00:01:00Z",
  "downtime_ms": 1200,
  "result": "installed",
  "error": null,
  "resumed_from_chunk": null,
  "retry": false,
  "start_ms": 1764028800000
}"#;
        let r: Report = serde_json::from_str(old).unwrap();
        assert_eq!(r.install_at, None);
        assert_eq!(serde_json::to_string_pretty(&r).unwrap(), old);

        let deferred = Report {
            result: "deferred".into(),
            install_at: Some(rfc3339(1_764_122_400)),
            ..r
        };
        let text = serde_json::to_string(&deferred).unwrap();
        assert!(
            text.ends_with(r#""install_at":"2025-11-26T02:00:00Z"}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Report>(&text).unwrap(), deferred);
        let cells = row("pump-2", &deferred);
        assert_eq!(cells.len(), CSV_COLUMNS.len());
        assert_eq!(cells.last().unwrap(), "2025-11-26T02:00:00Z");
    }
}
