//! A results directory has one owner at a time, and holds one sweep.
//!
//! The sweep that writes `<out>` holds an exclusive `flock` on `<out>/.flowload.lock` (with its
//! pid inside) for as long as it runs: a second writer is refused with the holder's pid, never
//! mixed in. A directory that already holds results is refused too, unless the sweep resumes
//! them (`--resume`) or replaces them (`--overwrite`, which first removes flowload's own files
//! and refuses to touch anything else).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use flowload_core::listing;

/// The lock file's name: hidden, and left in place (removing a lock file races with the next
/// writer that opens it).
pub const LOCK_FILE: &str = ".flowload.lock";

/// What a sweep does with results already in its directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Existing {
    /// Refuse them: a new sweep starts in an empty directory.
    #[default]
    Refuse,
    /// Keep the runs that are complete and made with this config (`--resume`).
    Resume,
    /// Remove flowload's files first (`--overwrite`).
    Overwrite,
}

/// The right to write one results directory; released on drop (or when the process dies).
#[derive(Debug)]
pub struct ResultsDir {
    path: PathBuf,
    lock: File,
    /// Whether `claim` made the directory: a sweep that writes nothing takes it away again.
    made: bool,
}

impl ResultsDir {
    /// Takes `path` for one sweep: creates it, locks it, and applies `existing` to what it
    /// already holds. `runs` is the sweep's grid size: under `--resume`, run files numbered
    /// beyond it belong to another sweep and are refused.
    pub fn claim(path: &Path, existing: Existing, runs: usize) -> Result<ResultsDir> {
        let made = !path.exists();
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let lock = lock(path)?;
        let found = results_in(path)?;
        let foreign: Vec<Found> = found
            .iter()
            .filter(|f| f.kind == Kind::Foreign)
            .cloned()
            .collect();
        match existing {
            Existing::Refuse if !found.is_empty() => {
                return Err(Error::ResultsExist {
                    path: path.into(),
                    found: summary(&found),
                });
            }
            Existing::Overwrite if !foreign.is_empty() => {
                return Err(Error::config(format!(
                    "--overwrite: {} holds files flowload did not write ({}); nothing was removed: choose another --out",
                    path.display(),
                    summary(&foreign)
                )));
            }
            Existing::Overwrite => {
                for f in &found {
                    let p = path.join(&f.name);
                    let removed = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                    removed.map_err(|e| Error::io(&p, e))?;
                }
            }
            Existing::Resume => {
                if let Some(beyond) = found.iter().find(|f| f.run.is_some_and(|r| r > runs)) {
                    return Err(Error::config(format!(
                        "--resume: {} holds {}, beyond this grid's {runs} run(s): it belongs to another sweep; use --overwrite to replace that sweep, or another --out",
                        path.display(),
                        beyond.name
                    )));
                }
            }
            Existing::Refuse => {}
        }
        Ok(ResultsDir {
            path: path.into(),
            lock,
            made,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the directory up after a sweep that failed: when it holds no results (the first
    /// run was refused, say during its statistics pass), what the claim and the runs made —
    /// the lock file, empty `runs/` and `models/`, the directory itself if the claim made it —
    /// is removed, so that a refused configuration leaves nothing behind. Results are kept,
    /// and so is the lock file beside them.
    pub fn abandon(self) {
        if !results_in(&self.path).is_ok_and(|found| found.is_empty()) {
            return;
        }
        for folder in ["runs", "models", "checkpoints"] {
            let _ = std::fs::remove_dir(self.path.join(folder));
        }
        // Unlinked while still held: a claimant that opened it before sees, once it has the
        // lock, that it is no longer the directory's lock file, and opens the new one.
        let _ = std::fs::remove_file(self.path.join(LOCK_FILE));
        drop(self.lock);
        if self.made {
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// Locks `<dir>/.flowload.lock` without waiting, and writes this process's pid into it.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    loop {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if let Err(e) = file.try_lock() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return match e {
                std::fs::TryLockError::WouldBlock => Err(Error::Locked {
                    path: dir.into(),
                    holder: holder.trim().to_string(),
                }),
                std::fs::TryLockError::Error(e) => Err(Error::io(&path, e)),
            };
        }
        // A sweep that wrote nothing unlinks its lock file before releasing it
        // (`ResultsDir::abandon`): holding that file's lock is holding nothing. The file at
        // the path must be the one locked.
        let same = |on_disk: &std::fs::Metadata, held: &std::fs::Metadata| {
            (on_disk.dev(), on_disk.ino()) == (held.dev(), held.ino())
        };
        match (std::fs::metadata(&path), file.metadata()) {
            (Ok(on_disk), Ok(held)) if same(&on_disk, &held) => {}
            _ => continue,
        }
        let written = file
            .set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| write!(file, "{}", std::process::id()))
            .and_then(|_| file.flush());
        written.map_err(|e| Error::io(&path, e))?;
        return Ok(file);
    }
}

/// What a results directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A file or folder a sweep or `report` writes.
    Ours,
    /// Anything else.
    Foreign,
}

#[derive(Clone, Debug)]
struct Found {
    /// Relative to the directory: `summary.json`, `runs/run-0003.parquet`, …
    name: String,
    kind: Kind,
    /// The run number of a run file.
    run: Option<usize>,
}

/// The results in `dir`: run files, trained models, `summary.json`, `skipped.parquet`,
/// `report/`, and anything foreign. The lock file, an empty `runs/` or `models/`, and hidden temporary files (left by `kill -9`) do
/// not count as results; the temporary files are listed as ours, so that they go too.
fn results_in(dir: &Path) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    for entry in read_dir(dir)? {
        let name = entry.0;
        match name.as_str() {
            LOCK_FILE => {}
            "summary.json" | "skipped.parquet" | "report" => found.push(Found {
                name,
                kind: Kind::Ours,
                run: None,
            }),
            folder @ ("runs" | "models" | "checkpoints") if entry.1 => {
                // A checkpoint is a directory per run: checkpoints/run-0003/.
                let ext = match folder {
                    "runs" => ".parquet",
                    "models" => ".pt",
                    _ => "",
                };
                for (file, _) in read_dir(&dir.join(folder))? {
                    let run = file
                        .strip_prefix("run-")
                        .and_then(|r| r.strip_suffix(ext))
                        .and_then(|r| r.parse::<usize>().ok());
                    let temporary = file.starts_with('.') && file.ends_with(".tmp");
                    found.push(Found {
                        name: format!("{folder}/{file}"),
                        kind: if run.is_some() || temporary {
                            Kind::Ours
                        } else {
                            Kind::Foreign
                        },
                        run,
                    });
                }
            }
            n if n.starts_with('.') && n.ends_with(".tmp") => found.push(Found {
                name,
                kind: Kind::Ours,
                run: None,
            }),
            _ => found.push(Found {
                name,
                kind: Kind::Foreign,
                run: None,
            }),
        }
    }
    // Temporary files alone are no results: remove them quietly with the rest, or ignore them.
    if found.iter().all(|f| f.name.ends_with(".tmp")) {
        for f in &found {
            let _ = std::fs::remove_file(dir.join(&f.name));
        }
        found.clear();
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// `(name, is_dir)` of every entry of `dir`, sorted.
fn read_dir(dir: &Path) -> Result<Vec<(String, bool)>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        v.push((
            e.file_name().to_string_lossy().into_owned(),
            e.file_type().is_ok_and(|t| t.is_dir()),
        ));
    }
    v.sort();
    Ok(v)
}

fn summary(found: &[Found]) -> String {
    listing(found.iter().map(|f| f.name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn a_second_claim_is_refused_with_the_holder_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = ResultsDir::claim(dir.path(), Existing::Refuse, 1).unwrap();
        let e = ResultsDir::claim(dir.path(), Existing::Resume, 1).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::Locked { .. }), "{text}");
        assert!(
            text.contains(&std::process::id().to_string()) && text.contains("is being written"),
            "{text}"
        );
        drop(first);
        ResultsDir::claim(dir.path(), Existing::Resume, 1).unwrap();
    }

    #[test]
    fn results_are_refused_resumed_within_the_grid_or_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "runs/run-0001.parquet");
        touch(dir.path(), "runs/run-0003.parquet");
        touch(dir.path(), "summary.json");
        let e = ResultsDir::claim(dir.path(), Existing::Refuse, 2).unwrap_err();
        assert!(matches!(e, Error::ResultsExist { .. }), "{e}");
        let e = ResultsDir::claim(dir.path(), Existing::Resume, 2)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("runs/run-0003.parquet") && e.contains("2 run(s)"),
            "{e}"
        );
        ResultsDir::claim(dir.path(), Existing::Resume, 3).unwrap();
        ResultsDir::claim(dir.path(), Existing::Overwrite, 2).unwrap();
        assert!(results_in(dir.path()).unwrap().is_empty());
        ResultsDir::claim(dir.path(), Existing::Refuse, 2).unwrap();
    }

    #[test]
    fn overwrite_removes_nothing_when_a_foreign_file_is_there() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "runs/run-0001.parquet");
        touch(dir.path(), "thesis.tex");
        let e = ResultsDir::claim(dir.path(), Existing::Overwrite, 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("thesis.tex") && e.contains("nothing was removed"),
            "{e}"
        );
        assert!(dir.path().join("runs/run-0001.parquet").exists());
    }

    #[test]
    fn a_sweep_that_wrote_nothing_leaves_nothing_and_results_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let owned = ResultsDir::claim(&out, Existing::Refuse, 1).unwrap();
        std::fs::create_dir_all(out.join("runs")).unwrap();
        owned.abandon();
        assert!(!out.exists(), "the claim made it; nothing was written");
        // A directory that was there stays, empty; one with results keeps them and its lock.
        std::fs::create_dir_all(&out).unwrap();
        ResultsDir::claim(&out, Existing::Refuse, 1)
            .unwrap()
            .abandon();
        assert!(out.exists() && std::fs::read_dir(&out).unwrap().next().is_none());
        let owned = ResultsDir::claim(&out, Existing::Refuse, 1).unwrap();
        touch(&out, "runs/run-0001.parquet");
        owned.abandon();
        assert!(out.join("runs/run-0001.parquet").exists() && out.join(LOCK_FILE).exists());
        // After an abandon, the next claim locks the new lock file.
        ResultsDir::claim(&out, Existing::Resume, 1).unwrap();
    }

    #[test]
    fn leftover_temporary_files_alone_are_no_results() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "runs/.run-0001.parquet.a1b2.tmp");
        ResultsDir::claim(dir.path(), Existing::Refuse, 1).unwrap();
        assert!(!dir.path().join("runs/.run-0001.parquet.a1b2.tmp").exists());
    }
}
