//! Opening the redb state file so that a power cut at any moment leaves
//! something [`crate::Store::open`] can open.
//!
//! redb initialises a new file in two durable steps: the file grown to its
//! first size with a header whose magic number is zero, then the magic
//! number. A power cut between them (or after the file grew, before the
//! header reached the disk) leaves a file whose magic is zero, which redb
//! refuses for ever ("magic number mismatch"). No transaction can have been
//! committed to such a file (the first one comes after the magic), and the
//! logs are created only after it is complete, so it holds nothing
//! acknowledged: it is deleted and created again. (Two processes starting
//! at once on one new state dir could race here; one plugin runs per host.)
//! The same header next to a log of the file is damage, not a cut: the file
//! was complete once, so it is refused and left as it is, never deleted.
//!
//! Directory entries are durable too: the state file's directory and that
//! directory's parent are synced at every open (a cut after `mkdir` or a
//! file's creation must not lose the entry; syncing them again is cheap).

use redb::Database;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// redb's magic number is the first 9 bytes of a complete file.
const MAGIC_LEN: usize = 9;

/// Opens (creating if needed) the redb file at `path` with a page cache of
/// `cache_bytes`, after creating its directory and removing a file a power
/// cut left half-made. `logs` are the file's write-ahead logs: if one
/// exists, the file was complete once.
pub(crate) fn open_database(
    path: &Path,
    cache_bytes: usize,
    logs: &[PathBuf],
) -> Result<Database, String> {
    let dir = dir_of(path);
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if half_made(path).map_err(|e| e.to_string())? {
        if let Some(log) = logs.iter().find(|l| l.exists()) {
            return Err(format!(
                "{} has no redb header, but its log {} exists, so the file was complete once and is damaged, not cut off during its creation; it is left as it is: restore it from a backup, or move it and its .wal files aside to start with an empty state",
                path.display(),
                log.display()
            ));
        }
        tracing::warn!(
            path = %path.display(),
            "the state file was cut off during its creation (it never held a change); creating it again"
        );
        std::fs::remove_file(path).map_err(|e| e.to_string())?;
    }
    let db = Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| e.to_string())?;
    // the file's entry (new or re-made) and the directory's own entry
    sync_dir(dir).map_err(|e| format!("syncing {}: {e}", dir.display()))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent).map_err(|e| format!("syncing {}: {e}", parent.display()))?;
    }
    Ok(db)
}

/// Whether `path` is a non-empty file whose magic number redb never wrote.
fn half_made(path: &Path) -> io::Result<bool> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut magic = [0u8; MAGIC_LEN];
    let mut got = 0;
    while got < MAGIC_LEN {
        match file.read(&mut magic[got..])? {
            0 => break,
            n => got += n,
        }
    }
    // an empty file is redb's own "new" case; a short one is not redb's
    Ok(got == MAGIC_LEN && magic.iter().all(|b| *b == 0))
}

/// The directory that holds the file at `path` (a bare file name's parent
/// is "", the working directory).
pub(crate) fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// fsync a directory, making the entries created in it durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use crate::tests::put;
    use crate::{Op, Store};
    use std::io::Write;

    /// What a power cut between redb's two initialisation steps leaves:
    /// the file at its first size, its header written without the magic
    /// number. Made here from a complete new file with the magic zeroed.
    fn half_made_file(path: &std::path::Path) {
        let real = path.with_extension("complete");
        drop(redb::Database::create(&real).unwrap());
        let mut bytes = std::fs::read(&real).unwrap();
        bytes[..super::MAGIC_LEN].fill(0);
        std::fs::File::create(path)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        std::fs::remove_file(&real).unwrap();
    }

    #[test]
    fn a_file_cut_off_during_its_creation_is_created_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        half_made_file(&path);
        let s = Store::open(&path, 1, &["t"]).unwrap();
        assert!(s.load("t").unwrap().is_empty());
        s.submit(vec![put("a", "1")]).wait().unwrap();
        drop(s);
        let s = Store::open(&path, 1, &["t"]).unwrap();
        assert_eq!(s.load("t").unwrap(), vec![(b"a".to_vec(), b"1".to_vec())]);
    }

    #[test]
    fn a_file_with_logs_whose_header_is_gone_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let s = Store::open(&path, 1, &["t"]).unwrap();
        s.submit(vec![put("a", "1")]).wait().unwrap();
        drop(s);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[..super::MAGIC_LEN].fill(0);
        std::fs::write(&path, &bytes).unwrap();
        let err = Store::open(&path, 1, &["t"]).err().unwrap().to_string();
        assert!(err.contains("damaged") && err.contains(".wal"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "a damaged file is left as it is"
        );
    }

    #[test]
    fn a_grown_file_of_zeros_is_created_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
        let s = Store::open(&path, 1, &["t"]).unwrap();
        assert!(s.load("t").unwrap().is_empty());
    }

    #[test]
    fn a_file_that_is_not_redb_is_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        std::fs::write(&path, b"something else entirely").unwrap();
        assert!(Store::open(&path, 1, &["t"]).is_err());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"something else entirely",
            "a file that is not a half-made one is left alone"
        );
    }

    #[test]
    fn state_dirs_are_created_nested() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/s.redb");
        let s = Store::open(&path, 1, &["t"]).unwrap();
        s.submit(vec![
            put("x", "1"),
            Op::Delete {
                table: "t",
                key: b"x".to_vec(),
            },
            put("y", "2"),
        ])
        .wait()
        .unwrap();
        drop(s);
        assert!(path.is_file(), "no state file in the nested dirs");
        let s = Store::open(&path, 1, &["t"]).unwrap();
        assert_eq!(s.load("t").unwrap(), vec![(b"y".to_vec(), b"2".to_vec())]);
    }
}
