//! Files flowload writes: each is written to a hidden temporary file beside the target, then
//! renamed, so a reader sees the whole old file or the whole new one, never half of either, and
//! an error or panic leaves nothing behind. The one write-then-rename helper of the workspace:
//! the statistics cache, `convert`'s shards and the application's results all use it.

use std::fs::File;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use tempfile::TempPath;

use crate::error::{Error, Result};

/// A file being written in place of `path`. Dropped without [`AtomicFile::commit`] (an error, a
/// panic), its temporary file is removed. `kill -9` can leave one behind: its name starts with
/// a dot and ends in `.tmp`, and no reader looks at it.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: TempPath,
}

impl AtomicFile {
    /// Creates `path`'s directory if needed, and a uniquely named temporary file in it: two
    /// writers of the same path never write into one temporary file.
    pub fn create(path: &Path) -> Result<(File, AtomicFile)> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // The mode `File::create` gives (0666 less the umask), not tempfile's private 0600:
        // a converted data set or a shared cache must be readable by whom the user lets read.
        let (file, tmp) = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?
            .into_parts();
        Ok((
            file,
            AtomicFile {
                path: path.into(),
                tmp,
            },
        ))
    }

    /// The temporary file's path, for error messages while it is written.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Flushes `file` (the one [`AtomicFile::create`] returned) to disk and renames it into place.
    pub fn commit(self, file: File) -> Result<PathBuf> {
        file.sync_all().map_err(|e| Error::io(&*self.tmp, e))?;
        drop(file);
        self.tmp
            .persist(&self.path)
            .map_err(|e| Error::io(&self.path, e.error))?;
        Ok(self.path)
    }

    /// As [`AtomicFile::commit`], but never replaces a file: where `path` exists (another
    /// writer got there first), an [`Error::Io`] of kind `AlreadyExists`, and the temporary file
    /// is removed.
    pub fn commit_new(self, file: File) -> Result<PathBuf> {
        file.sync_all().map_err(|e| Error::io(&*self.tmp, e))?;
        drop(file);
        self.tmp
            .persist_noclobber(&self.path)
            .map_err(|e| Error::io(&self.path, e.error))?;
        Ok(self.path)
    }

    /// Writes `bytes` as the whole of `path`, atomically.
    pub fn write(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
        use std::io::Write as _;
        let (mut file, atomic) = AtomicFile::create(path)?;
        file.write_all(bytes)
            .map_err(|e| Error::io(atomic.tmp_path(), e))?;
        atomic.commit(file)
    }
}

/// `summary.json, runs/run-0001.parquet, runs/run-0002.parquet and 3 more`: the first few of
/// what a directory holds, for an error message.
pub fn listing<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = names.len();
    let shown: Vec<&str> = names.take(3).collect();
    match n {
        n if n > 3 => format!("{} and {} more", shown.join(", "), n - 3),
        _ => shown.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_replaces_the_file_and_a_drop_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.json");
        AtomicFile::write(&path, b"one").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let (_file, atomic) = AtomicFile::create(&path).unwrap();
        let tmp = atomic.tmp_path().to_path_buf();
        assert!(tmp.exists());
        drop(atomic);
        assert!(!tmp.exists());
        assert_eq!(names(&dir.path().join("sub")), vec!["a.json"]);
        AtomicFile::write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
    }

    #[test]
    fn commit_new_refuses_an_existing_file_and_leaves_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.parquet");
        let (f1, first) = AtomicFile::create(&path).unwrap();
        let (mut f2, second) = AtomicFile::create(&path).unwrap();
        std::io::Write::write_all(&mut f2, b"second").unwrap();
        second.commit_new(f2).unwrap();
        let err = first.commit_new(f1).unwrap_err();
        assert!(
            matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(names(dir.path()), vec!["run.parquet"]);
    }

    #[test]
    fn a_written_file_gets_the_mode_file_create_gives() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let written = AtomicFile::write(&dir.path().join("atomic"), b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&written), mode(&plain));
        // Under the usual umask 022 that is 0644: others may read.
        assert_ne!(mode(&written) & 0o044, 0, "{:o}", mode(&written));
    }

    #[test]
    fn two_writers_of_one_path_get_two_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.parquet");
        let (_f1, a) = AtomicFile::create(&path).unwrap();
        let (_f2, b) = AtomicFile::create(&path).unwrap();
        assert_ne!(a.tmp_path(), b.tmp_path());
    }
}
