//! The statistics cache: each part's channel sums on disk, keyed by the part's content and by
//! everything that turns its bytes into pixels, so that a data set is decoded for statistics
//! once, and after that only the parts that are new or changed.
//!
//! ```text
//! <dir>/v1/parts/<key>.json   one part's sums; <key> hashes its content key and the settings
//! <dir>/v1/sets/<key>.json    a data set's parts when its statistics were last taken: the
//!                             version the next pass starts from, and retracts what has gone
//! <dir>/v1/seen/<key>         a part's content key, by its files' metadata (path, size, inode,
//!                             mtime, ctime), so that files that have not changed are not read
//! ```
//!
//! Each file is one JSON line and a CRC-32 line, written atomically (write, then rename), so
//! two runs at once leave whole files. A file that fails its check, or cannot be read, is a
//! warning, and what it held is computed again: the cache can make a run faster, never wrong.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{PartId, PartSums};
use crate::fs::AtomicFile;

/// The layout's version: a change of what a file means starts a new directory beside it.
const FORMAT: &str = "v1";

/// The environment variable that sets the cache when no flag does: a directory, or `off`.
pub const CACHE_ENV: &str = "FLOWLOAD_STATS_CACHE";

/// Where the statistics cache is: `--stats-cache DIR`, `--no-stats-cache`, else
/// `FLOWLOAD_STATS_CACHE`, else `$XDG_CACHE_HOME/flowload/stats` or `~/.cache/flowload/stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CacheSetting {
    /// `FLOWLOAD_STATS_CACHE`'s directory, else the user's cache directory.
    #[default]
    Default,
    /// This directory.
    Dir(PathBuf),
    /// No cache: every part is decoded, every time.
    Off,
}

impl CacheSetting {
    /// The setting from the flags, falling back on [`CACHE_ENV`].
    pub fn from_flags(dir: Option<PathBuf>, off: bool) -> CacheSetting {
        match (dir, off) {
            (_, true) => CacheSetting::Off,
            (Some(d), false) => CacheSetting::Dir(d),
            (None, false) => match std::env::var_os(CACHE_ENV) {
                Some(v) if v == "off" => CacheSetting::Off,
                Some(v) if !v.is_empty() => CacheSetting::Dir(v.into()),
                _ => CacheSetting::Default,
            },
        }
    }

    /// The store, or `None` when the cache is off (or there is no home directory to put it in).
    pub fn open(&self) -> Option<StatsStore> {
        let dir = match self {
            CacheSetting::Off => return None,
            CacheSetting::Dir(d) => d.clone(),
            CacheSetting::Default => {
                let base =
                    user_cache_dir(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"));
                match base {
                    Some(b) => b.join("flowload").join("stats"),
                    None => {
                        warn(
                            "no HOME or XDG_CACHE_HOME: the statistics cache is off (give --stats-cache DIR)",
                        );
                        return None;
                    }
                }
            }
        };
        Some(StatsStore::at(&dir))
    }
}

/// The user's cache directory: `$XDG_CACHE_HOME`, else `$HOME/.cache`. A relative
/// `XDG_CACHE_HOME` is ignored, as the XDG Base Directory specification says: it would give
/// every working directory a cache of its own.
fn user_cache_dir(xdg: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    xdg.map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home.map(|h| Path::new(&h).join(".cache")))
}

/// Prints a warning about the cache. The cache only ever saves work, so nothing about it stops a
/// run; but a user whose cache does not work should hear why.
fn warn(message: &str) {
    eprintln!("flowload: warning: statistics cache: {message}");
}

/// An open statistics cache directory; clones share it (the statistics workers write to it).
#[derive(Clone, Debug)]
pub struct StatsStore {
    root: PathBuf,
    /// Set after the first failed read or write, so that a cache that cannot be used (read-only,
    /// not a directory) warns once, not once per file.
    io_failed: Arc<AtomicBool>,
}

/// A part's file: its sums, and what they were computed from, checked on every read.
#[derive(Serialize, Deserialize)]
struct PartFile {
    settings: String,
    /// The part's name when it was computed (a copy elsewhere, with the same content, hits).
    name: String,
    #[serde(with = "hex128")]
    content: u128,
    sums: PartSums,
}

/// A data set's parts when its statistics were last taken.
#[derive(Serialize, Deserialize)]
struct SetFile {
    settings: String,
    parts: Vec<(PartId, PartSums)>,
}

/// A part's content key, by the metadata of its files.
#[derive(Serialize, Deserialize)]
struct SeenFile {
    #[serde(with = "hex128")]
    content: u128,
}

impl StatsStore {
    /// The cache in `dir` (made when first written).
    pub fn at(dir: &Path) -> StatsStore {
        StatsStore {
            root: dir.join(FORMAT),
            io_failed: Arc::new(AtomicBool::new(false)),
        }
    }

    fn path(&self, kind: &str, key: u128, ext: &str) -> PathBuf {
        self.root.join(kind).join(format!("{key:032x}{ext}"))
    }

    /// The sums of part `id` under `settings`, when they are cached and pass `check` (the
    /// part's records and the policy); an entry that does not is corrupt, and its file named.
    pub(crate) fn part(
        &self,
        id: &PartId,
        settings: &str,
        check: impl Fn(&PartSums) -> Result<(), String>,
    ) -> Option<PartSums> {
        let path = self.path("parts", part_key(id.content, settings), ".json");
        let file: PartFile = self.read(&path, |f: &PartFile| check(&f.sums))?;
        // A hash names the file; the file itself says what it holds.
        (file.settings == settings && file.content == id.content).then_some(file.sums)
    }

    pub(crate) fn put_part(&self, id: &PartId, settings: &str, sums: &PartSums) {
        let path = self.path("parts", part_key(id.content, settings), ".json");
        self.write(
            &path,
            &PartFile {
                settings: settings.into(),
                name: id.name.clone(),
                content: id.content,
                sums: sums.clone(),
            },
        );
    }

    /// The parts of data set `set` under `settings` when its statistics were last taken; none
    /// when it has not been seen, or (naming the file) when an entry's sums are impossible.
    pub(crate) fn set(&self, set: u128, settings: &str) -> Vec<(PartId, PartSums)> {
        let path = self.path("sets", set, ".json");
        let possible = |f: &SetFile| {
            f.parts.iter().try_for_each(|(id, sums)| {
                sums.possible()
                    .map_err(|why| format!("part {}: {why}", id.name))
            })
        };
        match self.read::<SetFile>(&path, possible) {
            Some(f) if f.settings == settings => f.parts,
            _ => Vec::new(),
        }
    }

    pub(crate) fn put_set(&self, set: u128, settings: &str, parts: &[(PartId, PartSums)]) {
        let path = self.path("sets", set, ".json");
        self.write(
            &path,
            &SetFile {
                settings: settings.into(),
                parts: parts.to_vec(),
            },
        );
    }

    /// The content key remembered for files whose metadata hashes to `quick`.
    pub(crate) fn seen(&self, quick: u128) -> Option<u128> {
        self.read::<SeenFile>(&self.path("seen", quick, ""), |_| Ok(()))
            .map(|f| f.content)
    }

    pub(crate) fn put_seen(&self, quick: u128, content: u128) {
        self.write(&self.path("seen", quick, ""), &SeenFile { content });
    }

    /// Reads a checked file: `None` when it is not there, or (with a warning naming it) when it
    /// fails its checksum, does not parse, or holds what `valid` refuses.
    fn read<T: DeserializeOwned>(
        &self,
        path: &Path,
        valid: impl FnOnce(&T) -> Result<(), String>,
    ) -> Option<T> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                self.io_failed(&format!("cannot read {}: {e}", path.display()));
                return None;
            }
        };
        let parsed = unseal(&text)
            .and_then(|json| serde_json::from_str(json).map_err(|e| e.to_string()))
            .and_then(|v: T| valid(&v).map(|()| v));
        match parsed {
            Ok(v) => Some(v),
            Err(why) => {
                warn(&format!(
                    "{} is corrupt ({why}); computing it again",
                    path.display()
                ));
                None
            }
        }
    }

    /// Writes a checked file atomically; a failure is a warning (once per store).
    fn write<T: Serialize>(&self, path: &Path, value: &T) {
        let json = serde_json::to_string(value).expect("cache files serialize");
        if let Err(e) = AtomicFile::write(path, seal(&json).as_bytes()) {
            self.io_failed(&e.to_string());
        }
    }

    /// Warns of the first failed read or write; the statistics are computed without the cache.
    fn io_failed(&self, why: &str) {
        if !self.io_failed.swap(true, Ordering::Relaxed) {
            warn(&format!(
                "{why}; statistics are computed without it (--stats-cache DIR puts it elsewhere)"
            ));
        }
    }
}

/// The file name of a part's sums: its content key and the settings, hashed together.
fn part_key(content: u128, settings: &str) -> u128 {
    let mut h = twox_hash::XxHash3_128::new();
    h.write(format!("{content:032x}\n").as_bytes());
    h.write(settings.as_bytes());
    h.finish_128()
}

/// `json` and a line with its CRC-32.
fn seal(json: &str) -> String {
    format!("{json}\n{:08x}\n", crc32fast::hash(json.as_bytes()))
}

/// The JSON of a sealed file, if its CRC-32 matches.
fn unseal(text: &str) -> Result<&str, String> {
    let (json, crc) = text
        .strip_suffix('\n')
        .and_then(|t| t.rsplit_once('\n'))
        .ok_or("no checksum line")?;
    let want = u32::from_str_radix(crc, 16).map_err(|_| "bad checksum line")?;
    if crc32fast::hash(json.as_bytes()) != want {
        return Err("checksum mismatch".into());
    }
    Ok(json)
}

/// A 128-bit key as 32 hex digits: JSON numbers that large do not survive every reader.
mod hex128 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:032x}"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        u128::from_str_radix(&s, 16).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ChannelSums;

    fn sums() -> PartSums {
        PartSums {
            channels: vec![ChannelSums {
                count: 3,
                sum: 500,
                sumsq: i128::from(i64::MAX) * 7,
            }],
            max_label: 9,
            skipped: 1,
        }
    }

    fn ok(_: &PartSums) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn a_part_round_trips_and_a_corrupt_file_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = StatsStore::at(dir.path());
        let id = PartId {
            name: "a.parquet".into(),
            content: u128::MAX - 5,
        };
        assert_eq!(store.part(&id, "s", ok), None);
        store.put_part(&id, "s", &sums());
        assert_eq!(store.part(&id, "s", ok), Some(sums()));
        // Other settings, or other content under the same name, miss.
        assert_eq!(store.part(&id, "t", ok), None);
        let other = PartId {
            content: 1,
            ..id.clone()
        };
        assert_eq!(store.part(&other, "s", ok), None);
        // One flipped digit fails the checksum: a miss, not other sums.
        let path = store.path("parts", part_key(id.content, "s"), ".json");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("500", "501");
        std::fs::write(&path, text).unwrap();
        assert_eq!(store.part(&id, "s", ok), None);
    }

    #[test]
    fn a_relative_or_empty_xdg_cache_home_is_ignored() {
        let dir = |xdg: &str| user_cache_dir(Some(xdg.into()), Some("/home/u".into()));
        assert_eq!(dir("/var/cache/u"), Some(PathBuf::from("/var/cache/u")));
        assert_eq!(dir("cache"), Some(PathBuf::from("/home/u/.cache")));
        assert_eq!(dir("./x"), Some(PathBuf::from("/home/u/.cache")));
        assert_eq!(dir(""), Some(PathBuf::from("/home/u/.cache")));
        assert_eq!(user_cache_dir(Some("rel".into()), None), None);
    }

    #[test]
    fn sealed_text_needs_its_checksum() {
        assert_eq!(unseal(&seal("{\"a\":1}")), Ok("{\"a\":1}"));
        assert!(unseal("{\"a\":1}").is_err());
        assert!(unseal("{\"a\":2}\n00000000\n").is_err());
    }
}
