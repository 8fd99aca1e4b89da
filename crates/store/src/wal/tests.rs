//! Unit tests of the log format: replay, epochs, torn and damaged records,
//! salts, unsalted logs of earlier releases, unknown tables.

use super::*;
use crate::tests::put;

fn open(path: &Path) -> (Log, Vec<Op>) {
    Log::open(path, &["t"]).unwrap()
}

/// A new log in epoch 1.
fn fresh(path: &Path) -> Log {
    let (mut log, ops) = open(path);
    assert!(ops.is_empty());
    assert_eq!(log.epoch(), 0);
    log.start_epoch(1).unwrap();
    log
}

#[test]
fn records_of_the_current_epoch_replay_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal");
    let mut log = fresh(&path);
    let del = Op::Delete {
        table: "t",
        key: b"a".to_vec(),
    };
    assert!(log.append([put("a", "1"), put("b", "2")].iter()).unwrap());
    assert!(log.append([del.clone()].iter()).unwrap());
    drop(log);
    let (log, ops) = open(&path);
    assert_eq!(ops, vec![put("a", "1"), put("b", "2"), del]);
    assert_eq!(log.next, FIRST_RECORD + 2 * PAGE);
    // grown ahead of the records, not to its bound
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(len, FIRST_RECORD + PAGE + GROW);
}

#[test]
fn a_new_epoch_hides_older_records_even_after_a_shorter_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal");
    let mut log = fresh(&path);
    for i in 0..5 {
        assert!(log.append([put(&format!("old{i}"), "x")].iter()).unwrap());
    }
    log.start_epoch(3).unwrap();
    assert!(log.append([put("new", "y")].iter()).unwrap());
    drop(log);
    // records 1..5 of the old epoch still sit after the new one
    let (mut log, ops) = open(&path);
    assert_eq!((log.epoch(), ops), (3, vec![put("new", "y")]));
    log.start_epoch(5).unwrap();
    drop(log);
    assert!(open(&path).1.is_empty());
}

#[test]
fn a_torn_last_record_ends_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal");
    let mut log = fresh(&path);
    assert!(log.append([put("a", "1")].iter()).unwrap());
    assert!(log.append([put("b", "2")].iter()).unwrap());
    drop(log);
    // flip a payload byte of the second record
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(b"Z", FIRST_RECORD + PAGE + RECORD_HEAD as u64 + 3)
        .unwrap();
    let (mut log, ops) = open(&path);
    assert_eq!(ops, vec![put("a", "1")]);
    // and the next record overwrites the torn one
    assert!(log.append([put("c", "3")].iter()).unwrap());
    drop(log);
    assert_eq!(open(&path).1, vec![put("a", "1"), put("c", "3")]);
}

#[test]
fn a_torn_header_falls_back_to_the_other_slot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal");
    let mut log = fresh(&path); // epoch 1, slot 0
    assert!(log.append([put("a", "1")].iter()).unwrap());
    log.start_epoch(3).unwrap(); // slot 1
    drop(log);
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(b"garbage!", PAGE).unwrap();
    // epoch 1 again: its record replays (already checkpointed: harmless)
    let (log, ops) = open(&path);
    assert_eq!((log.epoch(), ops), (1, vec![put("a", "1")]));
}

#[test]
fn a_full_log_refuses_and_a_new_epoch_makes_room() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal");
    let mut log = fresh(&path);
    let records = (LOG_BYTES - FIRST_RECORD) / PAGE;
    for i in 0..records {
        assert!(log.append([put(&format!("k{i}"), "v")].iter()).unwrap());
    }
    assert!(!log.append([put("over", "v")].iter()).unwrap());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), LOG_BYTES);
    log.start_epoch(3).unwrap();
    assert!(log.append([put("over", "v")].iter()).unwrap());
}

#[test]
fn a_damaged_record_before_a_whole_one_is_corruption_not_a_tear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal");
    let mut log = fresh(&path);
    for k in ["a", "b", "c"] {
        assert!(log.append([put(k, "1")].iter()).unwrap());
    }
    drop(log);
    // the second of three acknowledged records rots
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(b"Z", FIRST_RECORD + PAGE + RECORD_HEAD as u64 + 3)
        .unwrap();
    let err = Log::open(&path, &["t"]).err().unwrap().to_string();
    assert!(
        err.contains("record 1 of epoch 1 is damaged but record 2 after it is whole"),
        "{err}"
    );
}

#[test]
fn records_of_an_earlier_life_of_the_file_never_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    let mut log = fresh(&old);
    assert!(log.append([put("stale", "1")].iter()).unwrap());
    drop(log);
    // a log made anew in the same epoch, over which the earlier life's
    // record pages lie (a restored or reused file)
    drop(fresh(&new));
    let mut stale = vec![0u8; PAGE as usize];
    let (o, n) = (
        File::open(&old).unwrap(),
        OpenOptions::new().write(true).open(&new).unwrap(),
    );
    o.read_exact_at(&mut stale, FIRST_RECORD).unwrap();
    n.write_all_at(&stale, FIRST_RECORD).unwrap();
    let (log, ops) = open(&new);
    assert_eq!((log.epoch(), ops), (1, vec![]));
}

#[test]
fn an_unsalted_log_of_an_earlier_release_replays_and_gets_a_salt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal");
    // as the release before salts wrote it: epoch 1, one record
    let mut file = vec![0u8; (FIRST_RECORD + PAGE) as usize];
    file[..8].copy_from_slice(HEADER_MAGIC_UNSALTED);
    file[8..16].copy_from_slice(&1u64.to_le_bytes());
    let crc = crc32fast::hash(&file[..16]);
    file[16..20].copy_from_slice(&crc.to_le_bytes());
    let mut record = vec![0u8; RECORD_HEAD];
    encode(&put("a", "1"), &mut record);
    let payload_len = (record.len() - RECORD_HEAD) as u32;
    record[..4].copy_from_slice(RECORD_MAGIC);
    record[4..12].copy_from_slice(&1u64.to_le_bytes());
    record[12..20].copy_from_slice(&0u64.to_le_bytes());
    record[20..24].copy_from_slice(&payload_len.to_le_bytes());
    let crc = record_crc(None, &record[4..24], &record[RECORD_HEAD..]);
    record[24..28].copy_from_slice(&crc.to_le_bytes());
    let at = FIRST_RECORD as usize;
    file[at..at + record.len()].copy_from_slice(&record);
    std::fs::write(&path, &file).unwrap();
    let (mut log, ops) = open(&path);
    assert_eq!((log.epoch(), log.salt, ops), (1, None, vec![put("a", "1")]));
    log.start_epoch(3).unwrap();
    assert!(log.salt.is_some());
    assert!(log.append([put("b", "2")].iter()).unwrap());
    drop(log);
    assert_eq!(open(&path).1, vec![put("b", "2")]);
}

#[test]
fn unknown_tables_are_refused_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal");
    let mut log = fresh(&path);
    assert!(log.append([put("a", "1")].iter()).unwrap());
    drop(log);
    let err = Log::open(&path, &["other"]).err().unwrap();
    assert!(err.to_string().contains("unknown table \"t\""), "{err}");
}
