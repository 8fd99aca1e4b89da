//! Unit tests of the store: order, replay at open, oversize batches and a
//! crash after one, empty submissions, schema, locking, permissions.

use super::*;

/// A put to table "t" (shared with the log's tests).
pub(crate) fn put(k: &str, v: &str) -> Op {
    Op::Put {
        table: "t",
        key: k.as_bytes().to_vec(),
        value: v.as_bytes().to_vec(),
    }
}

#[test]
fn changes_survive_reopen_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let s = Store::open(&path, 1, &["t"]).unwrap();
        s.submit(vec![put("a", "1"), put("b", "2")]).wait().unwrap();
        s.submit(vec![
            put("a", "3"),
            Op::Delete {
                table: "t",
                key: b"b".to_vec(),
            },
        ])
        .wait()
        .unwrap();
    }
    let s = Store::open(&path, 1, &["t"]).unwrap();
    assert_eq!(s.load("t").unwrap(), vec![(b"a".to_vec(), b"3".to_vec())]);
    assert_eq!(s.schema().unwrap(), 1);
}

#[test]
fn logged_changes_without_a_checkpoint_are_replayed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let s = Store::open(&path, 1, &["t"]).unwrap();
        s.submit(vec![put("a", "1")]).wait().unwrap();
    }
    // what a process killed after logging, before its checkpoint, leaves
    {
        // after a clean close the newer log is empty and active; the
        // older one still holds the checkpointed put (replayed again
        // at open, harmlessly)
        let mut logs = open_logs(&path, &["t"]).unwrap();
        let (mut log, newest) = logs.pop().unwrap();
        assert!(newest.is_empty(), "close switches logs");
        assert_eq!(logs[0].1, vec![put("a", "1")]);
        let delete_a = Op::Delete {
            table: "t",
            key: b"a".to_vec(),
        };
        assert!(log.append([put("b", "2"), delete_a].iter()).unwrap());
        assert!(log.append([put("c", "3")].iter()).unwrap());
    }
    let s = Store::open(&path, 1, &["t"]).unwrap();
    let rows = vec![
        (b"b".to_vec(), b"2".to_vec()),
        (b"c".to_vec(), b"3".to_vec()),
    ];
    assert_eq!(s.load("t").unwrap(), rows);
    // replayed into redb and the log emptied: a second open agrees
    drop(s);
    let logs = open_logs(&path, &["t"]).unwrap();
    assert!(logs[1].1.is_empty(), "the open started a new epoch");
    assert_eq!(
        Store::open(&path, 1, &["t"]).unwrap().load("t").unwrap(),
        rows
    );
}

#[test]
fn a_batch_larger_than_a_log_is_not_undone_by_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let value = "v".repeat(1000);
    {
        let s = Store::open(&path, 1, &["t"]).unwrap();
        s.submit(vec![put("k", "old")]).wait().unwrap();
        // ~10 MB in one submission: more than a log holds
        let mut big: Vec<Op> = (0..10_000)
            .map(|i| put(&format!("f{i:05}"), &value))
            .collect();
        big.push(put("k", "new"));
        s.submit(big).wait().unwrap();
        s.submit(vec![put("z", "after")]).wait().unwrap();
        // stop as a crash would: no checkpoint at close
        s.failed.store(true, Ordering::Release);
    }
    let s = Store::open(&path, 1, &["t"]).unwrap();
    let rows: std::collections::BTreeMap<_, _> = s.load("t").unwrap().into_iter().collect();
    assert_eq!(rows.len(), 10_002);
    assert_eq!(rows[&b"k".to_vec()], b"new");
    assert_eq!(rows[&b"z".to_vec()], b"after");
}

/// A crash right after a batch larger than a log went into redb: the
/// older log must not hold records of an earlier epoch then, or the
/// replay at open undoes the batch (here: brings back keys it deleted,
/// as a released pool's addresses would come back reserved for ever).
#[test]
fn a_crash_after_a_batch_larger_than_a_log_replays_nothing_older() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let value = "v".repeat(1000);
    let delete = |k: &str| Op::Delete {
        table: "t",
        key: k.as_bytes().to_vec(),
    };
    {
        let s = Store::open(&path, 1, &["t"]).unwrap();
        s.submit(vec![put("a", "1"), put("b", "2")]).wait().unwrap();
        let mut big: Vec<Op> = (0..10_000)
            .map(|i| put(&format!("f{i:05}"), &value))
            .collect();
        big.push(delete("a"));
        big.push(delete("b"));
        *crate::committer::crash_point::AFTER_OVERSIZE_WRITE
            .lock()
            .unwrap() = Some(path.clone());
        s.submit(big).wait().unwrap();
        assert!(s.failed(), "the crash point was not reached");
    }
    let s = Store::open(&path, 1, &["t"]).unwrap();
    let rows: std::collections::BTreeMap<_, _> = s.load("t").unwrap().into_iter().collect();
    assert_eq!(rows.len(), 10_000, "deleted keys came back");
    assert!(!rows.contains_key(b"a".as_slice()) && !rows.contains_key(b"b".as_slice()));
}

/// An empty submission is answered only once every change submitted
/// before it is durable: a repeated request answered from memory must
/// not get ahead of the first copy's commit.
#[test]
fn an_empty_submission_waits_for_the_commits_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let s = Store::open(&path, 1, &["t"]).unwrap();
    for round in 0..200 {
        let first = s.submit(vec![put("k", &round.to_string())]);
        let mut first = first.0;
        s.submit(Vec::new()).wait().unwrap();
        assert!(
            matches!(first.try_recv(), Ok(Ok(()))),
            "round {round}: the empty submission resolved before the change before it"
        );
    }
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    drop(Store::open(&path, 3, &["t"]).unwrap());
    let err = Store::open(&path, 2, &["t"]).err().unwrap();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema {
                found: 3,
                supported: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(Store::open(&path, 4, &["t"]).is_ok());
}

#[test]
fn second_open_of_a_live_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let _live = Store::open(&path, 1, &["t"]).unwrap();
    assert!(Store::open(&path, 1, &["t"]).is_err());
}

#[test]
fn file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let _s = Store::open(&path, 1, &["t"]).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.redb"), 1, &["t"]).unwrap());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.submit(vec![put(&format!("k{i:03}"), "v")])
                .durable()
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.load("t").unwrap().len(), 200);
}

#[test]
fn closed_store_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("s.redb"), 1, &["t"]).unwrap();
    s.close();
    assert!(matches!(
        s.submit(vec![put("a", "1")]).wait(),
        Err(StoreError::Closed)
    ));
}

#[test]
fn each_durable_write_is_reported_to_the_observer_and_empty_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("s.redb"), 1, &["t"]).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    s.observe_commits(Arc::new(move |c: CommitRecord| {
        record.lock().unwrap().push(c.changes)
    }));
    s.submit(vec![put("a", "1"), put("b", "2")]).wait().unwrap();
    s.submit(Vec::new()).wait().unwrap();
    s.submit(vec![put("c", "3")]).wait().unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![2, 1]);
}
