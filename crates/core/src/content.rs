//! Content keys: what identifies records by their bytes. A part's key is what the statistics
//! cache keys its sums by; a data set's key ([`Dataset::content_key`]) is what `--resume` and a
//! cluster's handshake compare; a file's key ([`file_key`]) identifies a model.
//!
//! A part read from files is keyed by an xxh3-128 hash of their bytes and names, so a copy or a
//! touched file keys the same, and any change of a byte keys differently. Hashing reads every
//! byte: cheap beside decoding them (within the noise of a 2 s statistics pass on the photo
//! workload's 126 MiB of shards), but a cache hit must not read the data set (ImageNet's is
//! 140 GB). So the key is remembered by the files' metadata: path, size, device, inode, and
//! mtime and ctime to the nanosecond. A write always moves ctime, which no tool can set back, so
//! a file rewritten to its old size and mtime (`touch -r`, `rsync -t`) is read again; only
//! unchanged files are not. A part in memory (IDX, synthetic) is keyed by its pixels and labels.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use twox_hash::XxHash3_128;

use crate::source::{Dataset, Kind, Part, Records, Split};
use crate::stats::{PartId, StatsStore};

/// Each part of `records` with its content key, in order. With a store, unchanged files are not
/// read again.
pub(crate) fn part_ids(records: &Records, store: Option<&StatsStore>) -> Vec<(Part, PartId)> {
    records
        .parts()
        .into_iter()
        .map(|part| {
            let id = PartId {
                name: part.name.clone(),
                content: content_key(records, &part, store),
            };
            (part, id)
        })
        .collect()
}

impl Dataset {
    /// One key for the data set: its training parts and its test parts, named and keyed by
    /// content. Through `store`, files that have not changed since it last saw them are not
    /// read again.
    pub fn content_key(&self, store: Option<&StatsStore>) -> u128 {
        let ids = |r: &Records| -> Vec<PartId> {
            part_ids(r, store).into_iter().map(|(_, id)| id).collect()
        };
        let (train, test) = (ids(&self.train), self.test.as_ref().map(ids));
        keyed([("train", train), ("test", test.unwrap_or_default())])
    }
}

impl Records {
    /// One key for these records alone (a split, where [`Dataset::content_key`] keys both):
    /// their parts, named and keyed by content. A Python run's file records it.
    pub fn content_key(&self, store: Option<&StatsStore>) -> u128 {
        let ids = part_ids(self, store)
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        keyed([("records", ids)])
    }
}

/// One key over named lists of part keys.
fn keyed<const N: usize>(lists: [(&str, Vec<PartId>); N]) -> u128 {
    let mut h = XxHash3_128::new();
    for (split, ids) in lists {
        for id in ids {
            h.write(format!("{split} {} {:032x}\n", id.name, id.content).as_bytes());
        }
    }
    h.finish_128()
}

fn content_key(records: &Records, part: &Part, store: Option<&StatsStore>) -> u128 {
    if part.files.is_empty() {
        let split = match &records.0 {
            Kind::Raw(s) => s,
            Kind::Transformed(t) => &t.split,
            Kind::Encoded(_) => unreachable!("an encoded part reads files"),
        };
        return memory_key(split, part);
    }
    let quick = metadata_key(part);
    if let Some(content) = store.and_then(|s| s.seen(quick)) {
        return content;
    }
    let content = bytes_key(part);
    if let Some(s) = store {
        s.put_seen(quick, content);
    }
    content
}

/// The records of an in-memory split: shape, pixels and labels.
fn memory_key(split: &Split, part: &Part) -> u128 {
    let mut h = XxHash3_128::new();
    h.write(format!("{} {}\n", split.shape, part.rows.len()).as_bytes());
    let len = split.shape.len();
    h.write(&split.pixels[part.rows.start * len..part.rows.end * len]);
    for label in &split.labels[part.rows.clone()] {
        h.write(&label.to_le_bytes());
    }
    h.finish_128()
}

/// The files' metadata: cheap (one `stat` per file), and different after any write. A file
/// that cannot be read keys as such: reading it is the decoder's bad record to report.
pub(crate) fn metadata_key(part: &Part) -> u128 {
    let mut h = XxHash3_128::new();
    for f in &part.files {
        h.write(f.as_os_str().as_encoded_bytes());
        let Ok(m) = std::fs::metadata(f) else {
            h.write(b"\0unreadable");
            continue;
        };
        for v in [
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime() as u64,
            m.mtime_nsec() as u64,
            m.ctime() as u64,
            m.ctime_nsec() as u64,
        ] {
            h.write(&v.to_le_bytes());
        }
    }
    h.finish_128()
}

/// The files' names (below the part) and bytes; a file that cannot be read keys as such.
fn bytes_key(part: &Part) -> u128 {
    let mut h = XxHash3_128::new();
    let mut buf = vec![0u8; 1 << 20];
    for f in &part.files {
        let name = f.strip_prefix(&part.name).unwrap_or(f);
        h.write(name.as_os_str().as_encoded_bytes());
        match hash_file(f, &mut h, &mut buf) {
            // The length ends each file's bytes, so two files cannot shift into one another.
            Ok(len) => h.write(&len.to_le_bytes()),
            Err(_) => h.write(b"\0unreadable"),
        }
    }
    h.finish_128()
}

fn hash_file(path: &Path, h: &mut XxHash3_128, buf: &mut [u8]) -> std::io::Result<u64> {
    let mut file = std::fs::File::open(path)?;
    let mut len = 0u64;
    loop {
        let n = file.read(buf)?;
        if n == 0 {
            return Ok(len);
        }
        h.write(&buf[..n]);
        len += n as u64;
    }
}

/// The content key of one file (a TorchScript model): its bytes.
pub fn file_key(path: &Path) -> std::io::Result<u128> {
    let mut h = XxHash3_128::new();
    hash_file(path, &mut h, &mut vec![0u8; 1 << 20])?;
    Ok(h.finish_128())
}
