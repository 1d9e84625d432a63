//! `cusaxctl user import FILE.csv`: bulk account creation for migrations.
//!
//! Each line is `user@domain,password[,alias…]` (aliases may also be `;`-separated in one
//! field). Bad rows are skipped and reported with their line number; good rows are created in
//! batches, with SCRAM derivation spread over all cores.

use crate::commands::Ctx;
use anyhow::Context;
use cusax_account::{AccountId, Alias, Credentials, Domain, Password};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashSet;
use std::path::Path;

const BATCH: usize = 512;

struct Row {
    line: u64,
    id: AccountId,
    password: Password,
    aliases: Vec<Alias>,
}

pub async fn run(ctx: &Ctx, file: &Path) -> anyhow::Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_path(file)
        .with_context(|| format!("opening {}", file.display()))?;
    let domains: HashSet<Domain> = ctx.store.list_domains().await?.into_iter().collect();
    let mut rows = Vec::new();
    let mut skipped = 0u64;
    let mut seen = HashSet::new();
    for (i, rec) in reader.records().enumerate() {
        let line = rec
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(i as u64 + 1, |p| p.line());
        match rec
            .map_err(|e| e.to_string())
            .and_then(|r| parse_row(line, &r, &domains))
        {
            Ok(Some(row)) if seen.insert(row.id.clone()) => rows.push(row),
            Ok(Some(row)) => {
                skipped += 1;
                eprintln!("line {line}: skipped: {} appears twice in the file", row.id);
            }
            Ok(None) => {}
            Err(msg) => {
                skipped += 1;
                eprintln!("line {line}: skipped: {msg}");
            }
        }
    }
    let bar = ProgressBar::new(rows.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} accounts ({per_sec}, eta {eta})")
            .expect("invariant: the progress template is valid"),
    );
    let mut created = 0u64;
    for chunk in rows.chunks(BATCH) {
        let batch = derive_all(ctx, chunk);
        let results = ctx.store.create_accounts(&batch).await?;
        for (row, res) in chunk.iter().zip(results) {
            match res {
                Ok(()) => {
                    created += 1;
                    for a in &row.aliases {
                        if let Err(e) = ctx.store.add_alias(&row.id, a).await {
                            bar.suspend(|| {
                                eprintln!("line {}: account created, alias not: {e}", row.line)
                            });
                        }
                    }
                }
                Err(e) => {
                    skipped += 1;
                    bar.suspend(|| eprintln!("line {}: skipped: {e}", row.line));
                }
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    println!("imported {created} account(s), skipped {skipped} row(s)");
    Ok(())
}

fn parse_row(
    line: u64,
    r: &csv::StringRecord,
    domains: &HashSet<Domain>,
) -> Result<Option<Row>, String> {
    let user = r.get(0).unwrap_or_default();
    if user.is_empty() && r.len() <= 1 {
        return Ok(None);
    }
    if line == 1 && user.eq_ignore_ascii_case("user") {
        return Ok(None); // a header line
    }
    let id = AccountId::parse(user).map_err(|e| e.to_string())?;
    if !domains.contains(id.domain()) {
        return Err(format!("unknown domain {}", id.domain()));
    }
    let pw = r.get(1).unwrap_or_default();
    if pw.is_empty() {
        return Err("empty password".into());
    }
    let mut aliases = Vec::new();
    for field in r.iter().skip(2) {
        for a in field.split(';').map(str::trim).filter(|a| !a.is_empty()) {
            aliases.push(Alias::parse(a).map_err(|e| e.to_string())?);
        }
    }
    Ok(Some(Row {
        line,
        id,
        password: Password::new(pw),
        aliases,
    }))
}

/// Derives credentials for a chunk on every core (PBKDF2 dominates import time).
fn derive_all(ctx: &Ctx, chunk: &[Row]) -> Vec<(AccountId, Credentials)> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .max(1);
    let per = chunk.len().div_ceil(workers).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = chunk
            .chunks(per)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|r| (r.id.clone(), ctx.derive(&r.id, &r.password)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .expect("invariant: credential derivation does not panic")
            })
            .collect()
    })
}
