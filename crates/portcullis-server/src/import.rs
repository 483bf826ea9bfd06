//! Drives `portcullis user import`: reads the file line by line, reports
//! each bad line by its number and goes on, stores good ones in batches,
//! shows progress on large files, and sums up.

use std::io::BufRead;
use std::path::Path;

use time::OffsetDateTime;

use crate::auth::Auth;
use crate::auth::import::{self, Format};
use crate::store::{Store, UserRecord};

/// Accounts stored per transaction.
const BATCH: usize = 500;
/// Lines between progress reports.
const PROGRESS_EVERY: usize = 10_000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub imported: usize,
    pub skipped: usize,
    pub failed: usize,
}

pub async fn run<S: Store>(
    auth: &Auth<S>,
    file: &Path,
    format: Format,
    verified: bool,
) -> anyhow::Result<Summary> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?,
    );
    let mut summary = Summary::default();
    let mut batch: Vec<UserRecord> = Vec::with_capacity(BATCH);
    let mut columns = None;
    let at = OffsetDateTime::now_utc();
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| anyhow::anyhow!("line {number}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let raw = match (format, columns) {
            (Format::JsonLines, _) => import::parse_json_line(&line),
            (Format::Csv, None) => {
                columns = Some(
                    import::parse_csv_header(&line)
                        .map_err(|e| anyhow::anyhow!("line {number}: {e}"))?,
                );
                continue;
            }
            (Format::Csv, Some(columns)) => import::parse_csv_line(&line, columns),
        };
        match raw.and_then(|raw| import::to_record(raw, verified, at)) {
            Ok(record) => batch.push(record),
            Err(reason) => {
                summary.failed += 1;
                eprintln!("line {number}: {reason}");
            }
        }
        if batch.len() == BATCH {
            store(auth, &mut batch, &mut summary).await?;
        }
        if number % PROGRESS_EVERY == 0 {
            eprintln!(
                "… {number} lines: imported {}, skipped {}, failed {}",
                summary.imported, summary.skipped, summary.failed
            );
        }
    }
    store(auth, &mut batch, &mut summary).await?;
    Ok(summary)
}

async fn store<S: Store>(
    auth: &Auth<S>,
    batch: &mut Vec<UserRecord>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let inserted = auth
        .import_users(batch)
        .await
        .map_err(|e| anyhow::anyhow!("storing accounts failed: {e}"))?;
    let new = inserted.iter().filter(|&&new| new).count();
    summary.imported += new;
    summary.skipped += inserted.len() - new;
    batch.clear();
    Ok(())
}
