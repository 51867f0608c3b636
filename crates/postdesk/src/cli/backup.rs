//! `postdesk backup DEST` and `postdesk restore SRC`.
//!
//! A backup is a folder: `postdesk.db` (a consistent copy of the SQLite database, taken
//! while postdesk runs: the store's `snapshot_into`), `attachments/` (the files the copy
//! points at, in the data folder's layout) and `manifest.json` (the SHA-256 and size of
//! every file, the row counts and the schema version), written last, so a backup
//! without a manifest is one that did not finish.
//!
//! Restore checks before it writes: every file of the manifest is there with its size
//! and hash (else it names the file), the database copy passes SQLite's integrity and
//! foreign-key checks, its counts are the manifest's and every attachment it points at
//! is in the backup. Then it copies into an empty data folder (or, told `--force`, over
//! a store), hashing again as it writes. PostgreSQL stores are refused with the way
//! to back them up (`pg_dump`, base backups).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use postdesk_store::backup::{self, Counts};
use postdesk_store::blobs::attachment_path;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;

#[derive(clap::Args)]
pub struct BackupArgs {
    /// A folder that does not exist yet (or is empty): the backup is written there.
    pub dest: PathBuf,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// A folder written by `postdesk backup`.
    pub src: PathBuf,
    /// Restore into this data folder (its database `postdesk.db`, its `attachments/`)
    /// instead of the config's `data_dir` and `database_url`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Replace the store that is there (stop postdesk first).
    #[arg(long)]
    pub force: bool,
}

const MANIFEST: &str = "manifest.json";
const DATABASE: &str = "postdesk.db";
/// Of the manifest; a restore refuses a format it does not know.
const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    /// The postdesk that wrote it.
    postdesk: String,
    /// Unix seconds.
    created_at: i64,
    schema: i64,
    counts: Counts,
    /// The database first, then the attachments; paths relative to the backup, `/`-separated.
    files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileEntry {
    path: String,
    sha256: String,
    bytes: u64,
}

pub async fn backup(config_path: &Path, args: BackupArgs) -> anyhow::Result<()> {
    // Refused before connecting: a PostgreSQL that does not answer gets the same advice.
    let config = Config::load(config_path)?;
    backup::sqlite_file(&config.database_url)
        .map_err(|e| anyhow::anyhow!("{e} (see \"Backup and restore\" in the README)"))?;
    config.apply_umask();
    // The store only, with a schema that must be current: a backup writes nothing to the
    // database (registering the helpdesks would), so it never waits for a running
    // import's writer and its copy is taken at once, while that import goes on.
    let (store, _) = postdesk_store::Store::open_with(
        &config.database_url,
        &config.data_dir,
        postdesk_store::Schema::MustBeCurrent,
    )
    .await?;
    let dest = args.dest;
    if dest.exists() && !is_empty_dir(&dest)? {
        bail!(
            "{} already exists and is not empty; name a new folder",
            dest.display()
        );
    }
    std::fs::create_dir_all(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let database = dest.join(DATABASE);
    store
        .snapshot_into(&database)
        .await
        .with_context(|| format!("cannot copy the database into {}", database.display()))?;
    let data_dir = config.data_dir.clone();
    let dest_dir = dest.clone();
    let manifest = tokio::task::spawn_blocking(move || -> anyhow::Result<Manifest> {
        let inventory = backup::inventory(&database)?;
        let mut files = vec![entry_for(&dest_dir, DATABASE)?];
        for sha256 in &inventory.attachment_files {
            let from = attachment_path(&data_dir, sha256);
            let relative = relative_attachment(sha256);
            let to = dest_dir.join(&relative);
            let (hash, bytes) = copy_hashed(&from, &to)?;
            if hash != *sha256 {
                bail!(
                    "the attachment file {} is damaged: its content's SHA-256 is {hash}, not its name",
                    from.display()
                );
            }
            files.push(FileEntry {
                path: relative,
                sha256: hash,
                bytes,
            });
        }
        Ok(Manifest {
            format: FORMAT,
            postdesk: env!("CARGO_PKG_VERSION").into(),
            created_at: postdesk_store::now(),
            schema: inventory.schema,
            counts: inventory.counts,
            files,
        })
    })
    .await??;
    let text = serde_json::to_string_pretty(&manifest)?;
    write_synced(&dest.join(MANIFEST), text.as_bytes())?;
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "Backed up to {}: {}; schema {}; {} files, {:.1} MB, each with its SHA-256 in {MANIFEST}.",
        dest.display(),
        manifest.counts,
        manifest.schema,
        manifest.files.len(),
        bytes as f64 / 1e6
    );
    Ok(())
}

pub async fn restore(config_path: &Path, args: RestoreArgs) -> anyhow::Result<()> {
    let (data_dir, database) = match &args.data_dir {
        Some(dir) => {
            // SAFETY: umask only sets the process's file mode mask; it cannot fail.
            unsafe { libc::umask(0o077) };
            (dir.clone(), dir.join(DATABASE))
        }
        None => {
            let config = Config::load(config_path)?;
            config.apply_umask();
            let database = backup::sqlite_file(&config.database_url)
                .map_err(|e| anyhow::anyhow!("{e} (see \"Backup and restore\" in the README)"))?;
            (config.data_dir.clone(), database)
        }
    };
    let src = args.src.clone();
    let force = args.force;
    tokio::task::spawn_blocking(move || restore_files(&src, &data_dir, &database, force)).await?
}

fn restore_files(src: &Path, data_dir: &Path, database: &Path, force: bool) -> anyhow::Result<()> {
    let manifest = verify(src)?;
    let attachments = data_dir.join("attachments");
    let holds_a_store = database.metadata().is_ok_and(|m| m.len() > 0)
        || (attachments.exists() && !is_empty_dir(&attachments)?);
    if holds_a_store && !force {
        bail!(
            "{} already holds a store; restore into an empty data folder (--data-dir NEW), \
             or stop postdesk and pass --force to replace it",
            data_dir.display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    for file in &manifest.files {
        let to = if file.path == DATABASE {
            // The old database's log and index would apply to the new file.
            for suffix in ["-wal", "-shm"] {
                let side = PathBuf::from(format!("{}{suffix}", database.display()));
                if side.exists() {
                    std::fs::remove_file(&side)
                        .with_context(|| format!("cannot remove {}", side.display()))?;
                }
            }
            database.to_path_buf()
        } else {
            data_dir.join(&file.path)
        };
        let (hash, _) = copy_hashed(&src.join(&file.path), &to)?;
        if hash != file.sha256 {
            bail!(
                "{} changed while it was restored (SHA-256 {hash}, the manifest says {})",
                src.join(&file.path).display(),
                file.sha256
            );
        }
    }
    println!(
        "Restored {} into {}: {}; schema {}; {} files, each matching its SHA-256.",
        src.display(),
        data_dir.display(),
        manifest.counts,
        manifest.schema,
        manifest.files.len()
    );
    Ok(())
}

/// Checks a backup without writing anything: the manifest, every file's size and hash,
/// the database copy's integrity, its counts and the attachments it needs.
fn verify(src: &Path) -> anyhow::Result<Manifest> {
    let manifest_path = src.join(MANIFEST);
    let text = std::fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "{} is not a finished backup: cannot read {}",
            src.display(),
            manifest_path.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a backup manifest", manifest_path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "{} is of format {}; this postdesk reads format {FORMAT}",
            manifest_path.display(),
            manifest.format
        );
    }
    if manifest.files.first().map(|f| f.path.as_str()) != Some(DATABASE) {
        bail!("{} lists no database", manifest_path.display());
    }
    for file in &manifest.files {
        if !is_safe_relative(&file.path) {
            bail!(
                "{} names a file outside the backup: {:?}",
                manifest_path.display(),
                file.path
            );
        }
        let path = src.join(&file.path);
        let (hash, bytes) = hash_file(&path)
            .with_context(|| format!("the backup is incomplete: cannot read {}", path.display()))?;
        if hash != file.sha256 || bytes != file.bytes {
            bail!(
                "the backup is damaged: {} has SHA-256 {hash} ({bytes} bytes), the manifest says {} ({} bytes)",
                path.display(),
                file.sha256,
                file.bytes
            );
        }
    }
    let database = src.join(DATABASE);
    backup::check_integrity(&database)?;
    let inventory = backup::inventory(&database)?;
    if inventory.counts != manifest.counts || inventory.schema != manifest.schema {
        bail!(
            "the backup's database holds {} (schema {}), its manifest says {} (schema {})",
            inventory.counts,
            inventory.schema,
            manifest.counts,
            manifest.schema
        );
    }
    let listed: std::collections::HashSet<&str> =
        manifest.files.iter().map(|f| f.sha256.as_str()).collect();
    if let Some(missing) = inventory
        .attachment_files
        .iter()
        .find(|sha| !listed.contains(sha.as_str()))
    {
        bail!(
            "the backup is incomplete: its database points at the attachment {missing}, which it does not hold"
        );
    }
    Ok(manifest)
}

/// `attachments/ab/abcdef…`, as the data folder lays them out.
fn relative_attachment(sha256: &str) -> String {
    let path = attachment_path(Path::new(""), sha256);
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A manifest's path stays inside the backup: no `..`, no root.
fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

fn entry_for(dir: &Path, relative: &str) -> anyhow::Result<FileEntry> {
    let (sha256, bytes) = hash_file(&dir.join(relative))?;
    Ok(FileEntry {
        path: relative.into(),
        sha256,
        bytes,
    })
}

fn is_empty_dir(dir: &Path) -> anyhow::Result<bool> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .next()
        .is_none())
}

/// The hex SHA-256 and size of a file.
fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut bytes = 0;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// Copies `from` to `to` (through a temporary name beside it, flushed, then renamed),
/// hashing what it copies.
fn copy_hashed(from: &Path, to: &Path) -> anyhow::Result<(String, u64)> {
    let mut input =
        std::fs::File::open(from).with_context(|| format!("cannot read {}", from.display()))?;
    let dir = to.parent().expect("a file in a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".restore-{}-{}",
        std::process::id(),
        to.file_name().unwrap_or_default().to_string_lossy()
    ));
    let write_err = || format!("cannot write {}", to.display());
    let mut output = std::fs::File::create(&tmp).with_context(write_err)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut bytes = 0;
    loop {
        let n = input
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", from.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        output.write_all(&buffer[..n]).with_context(write_err)?;
        bytes += n as u64;
    }
    output.sync_all().with_context(write_err)?;
    std::fs::rename(&tmp, to).with_context(write_err)?;
    Ok((hex::encode(hasher.finalize()), bytes))
}

fn write_synced(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let write_err = || format!("cannot write {}", path.display());
    let mut file = std::fs::File::create(path).with_context(write_err)?;
    file.write_all(data).with_context(write_err)?;
    file.sync_all().with_context(write_err)?;
    Ok(())
}
