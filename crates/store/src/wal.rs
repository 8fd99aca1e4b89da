//! The write-ahead log that makes a batch durable with one page write and
//! one fdatasync, instead of a redb commit (several page writes, about
//! twice the latency on the same disk: `make bench BENCH=store`).
//!
//! The store keeps two logs and writes one at a time; each log holds one
//! epoch (a number that grows by one per log switch).
//!
//! A log is a file of bounded size whose blocks are written with zeros
//! ahead of the records (a megabyte at a time, as the first epoch grows
//! it), so that an append overwrites allocated blocks and fdatasync has no
//! metadata to write; a fresh log costs nothing at start-up. Pages 0 and 1 hold two copies of the header (its epoch); records
//! start at page 2, each at a page boundary so that writing one never
//! rewrites a page of an earlier, acknowledged record. A record carries the
//! epoch, its sequence number and a CRC: the valid records of an epoch are
//! the run of consecutive sequence numbers from 0 whose CRC holds; a torn
//! last record (never acknowledged) ends the run, and records left from an
//! older epoch never match.
//!
//! Each log file has a salt, a random number chosen when the file is made
//! and kept in its header; every record's CRC covers it, so a record left
//! by an earlier life of the file (or another store's log copied in) never
//! replays, even where its epoch and sequence number match. A record that
//! fails its CRC ends the log only if nothing valid follows it: a torn
//! write can only be the last one, so a bad record followed by a valid one
//! of the same epoch is corruption, and opening fails rather than drop
//! acknowledged changes. So does a record naming a table the opener does
//! not know (a downgrade to a release without that table): the remedy is
//! to run the release that wrote it, never to drop its changes.
//!
//! A log's header has two slots, used in turn by the epochs it receives
//! (which step by two, the other log taking the odd ones out), so that a
//! torn header write leaves the previous header readable. See
//! [`crate::Store`] for how the two logs and the checkpoints fit together.

use crate::Op;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const PAGE: u64 = 4096;
/// Size bound of a log file: 2046 single-page records.
pub(crate) const LOG_BYTES: u64 = 8 << 20;
/// Zeros written ahead of the records when the file grows.
const GROW: u64 = 1 << 20;
const FIRST_RECORD: u64 = 2 * PAGE;
/// Headers without a salt, written by releases before salts; their
/// records' CRCs cover no salt. Read, never written.
const HEADER_MAGIC_UNSALTED: &[u8; 8] = b"irs-wal1";
const HEADER_MAGIC: &[u8; 8] = b"irs-wal2";
/// magic (8), epoch (8), salt (8), crc (4)
const HEADER_LEN: usize = 28;
const RECORD_MAGIC: &[u8; 4] = b"irsR";
/// magic (4), epoch (8), seq (8), payload length (4), crc (4)
const RECORD_HEAD: usize = 28;
const PUT: u8 = 1;
const DELETE: u8 = 2;

/// The open log: where the next record goes.
pub(crate) struct Log {
    file: File,
    path: PathBuf,
    epoch: u64,
    /// The file's salt (`None`: an unsalted log of an earlier release,
    /// until its next epoch gives it one).
    salt: Option<u64>,
    seq: u64,
    next: u64,
    /// Bytes of the file known written (zeros or records).
    filled: u64,
}

impl Log {
    /// The payload of record `seq` of the current epoch if it is whole at
    /// `at` (magic, epoch, sequence number, length and salted CRC).
    fn record_at(&self, at: u64, seq: u64, len: u64) -> io::Result<Option<Vec<u8>>> {
        if at + RECORD_HEAD as u64 > len {
            return Ok(None);
        }
        let mut head = [0u8; RECORD_HEAD];
        self.file.read_exact_at(&mut head, at)?;
        let payload_len = u64::from(u32_at(&head, 20));
        if &head[..4] != RECORD_MAGIC
            || u64_at(&head, 4) != self.epoch
            || u64_at(&head, 12) != seq
            || at + RECORD_HEAD as u64 + payload_len > len
        {
            return Ok(None);
        }
        let mut payload = vec![0u8; payload_len as usize];
        self.file
            .read_exact_at(&mut payload, at + RECORD_HEAD as u64)?;
        let crc = u32_at(&head, 24);
        Ok((record_crc(self.salt, &head[4..24], &payload) == crc).then_some(payload))
    }

    /// The sequence number of a whole record of the current epoch, later
    /// than `seq`, anywhere after `at`.
    fn valid_record_after(&self, at: u64, seq: u64, len: u64) -> io::Result<Option<u64>> {
        let mut page = at + PAGE;
        while page + RECORD_HEAD as u64 <= len {
            let mut head = [0u8; RECORD_HEAD];
            self.file.read_exact_at(&mut head, page)?;
            let later = u64_at(&head, 12);
            if &head[..4] == RECORD_MAGIC
                && u64_at(&head, 4) == self.epoch
                && later > seq
                && self.record_at(page, later, len)?.is_some()
            {
                return Ok(Some(later));
            }
            page += PAGE;
        }
        Ok(None)
    }

    /// Opens the log at `path` (creating it if missing) and returns it with
    /// the changes of its current epoch, in order, for the caller to apply
    /// before it starts a new epoch in it ([`Log::start_epoch`]). `tables`
    /// maps logged table names back to the caller's names; a name outside
    /// it is an error.
    pub(crate) fn open(path: &Path, tables: &[&'static str]) -> io::Result<(Log, Vec<Op>)> {
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        let mut log = Log {
            file,
            path: path.to_path_buf(),
            epoch: 0,
            salt: None,
            seq: 0,
            next: FIRST_RECORD,
            filled: len.min(LOG_BYTES) / PAGE * PAGE,
        };
        let Some((epoch, salt)) = log.read_header(len)? else {
            // new, or a crash during creation: no record was acknowledged;
            // epoch 0 until [`Log::start_epoch`] writes the file
            return Ok((log, Vec::new()));
        };
        log.epoch = epoch;
        log.salt = salt;
        let ops = log.replay(len, tables)?;
        Ok((log, ops))
    }

    /// Appends `ops` as one record and makes it durable. `Ok(false)`: no
    /// room left in this epoch (nothing written; checkpoint, then retry or
    /// commit the ops another way).
    pub(crate) fn append<'a>(&mut self, ops: impl Iterator<Item = &'a Op>) -> io::Result<bool> {
        let mut record = vec![0u8; RECORD_HEAD];
        for op in ops {
            encode(op, &mut record);
        }
        let payload_len = record.len() - RECORD_HEAD;
        let padded = (record.len() as u64).div_ceil(PAGE) * PAGE;
        let end = self.next + padded;
        if end > LOG_BYTES {
            return Ok(false);
        }
        if end > self.filled {
            // the record's own fdatasync makes the new size durable too
            let to = (end + GROW).min(LOG_BYTES);
            self.file
                .write_all_at(&vec![0u8; (to - self.filled) as usize], self.filled)?;
            self.filled = to;
        }
        record[..4].copy_from_slice(RECORD_MAGIC);
        record[4..12].copy_from_slice(&self.epoch.to_le_bytes());
        record[12..20].copy_from_slice(&self.seq.to_le_bytes());
        record[20..24].copy_from_slice(&(payload_len as u32).to_le_bytes());
        let crc = record_crc(self.salt, &record[4..24], &record[RECORD_HEAD..]);
        record[24..28].copy_from_slice(&crc.to_le_bytes());
        record.resize(padded as usize, 0);
        self.file.write_all_at(&record, self.next)?;
        self.file.sync_data()?;
        self.next += padded;
        self.seq += 1;
        Ok(true)
    }

    /// Whether records were appended since the epoch began.
    pub(crate) fn has_records(&self) -> bool {
        self.seq > 0
    }

    /// Empties the log into epoch `epoch` (greater than any epoch either
    /// log has held). Call only once everything logged in it is durable
    /// elsewhere (a checkpoint's redb commit).
    pub(crate) fn start_epoch(&mut self, epoch: u64) -> io::Result<()> {
        if self.epoch == 0 {
            return self.create(epoch);
        }
        if self.salt.is_none() {
            self.salt = Some(new_salt());
        }
        self.write_header(epoch)?;
        self.file.sync_data()?;
        self.epoch = epoch;
        self.seq = 0;
        self.next = FIRST_RECORD;
        Ok(())
    }

    /// The epoch the log holds (0: none yet).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The log file (for error messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes an empty log of `epoch` (both header pages); durable,
    /// directory entry included, before any record is written.
    fn create(&mut self, epoch: u64) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.write_all_at(&[0u8; 2 * PAGE as usize], 0)?;
        self.epoch = epoch;
        self.salt = Some(new_salt());
        self.seq = 0;
        self.next = FIRST_RECORD;
        self.filled = FIRST_RECORD;
        self.write_header(epoch)?;
        self.file.sync_all()?;
        crate::file::sync_dir(crate::file::dir_of(&self.path))?;
        Ok(())
    }

    fn write_header(&self, epoch: u64) -> io::Result<()> {
        let mut page = vec![0u8; PAGE as usize];
        page[..8].copy_from_slice(HEADER_MAGIC);
        page[8..16].copy_from_slice(&epoch.to_le_bytes());
        page[16..24].copy_from_slice(&self.salt.unwrap_or_default().to_le_bytes());
        let crc = crc32fast::hash(&page[..24]);
        page[24..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all_at(&page, slot(epoch) * PAGE)
    }

    /// The newest valid header's epoch and salt, if any.
    fn read_header(&self, len: u64) -> io::Result<Option<(u64, Option<u64>)>> {
        let mut newest: Option<(u64, Option<u64>)> = None;
        for i in 0..2u64 {
            if (i + 1) * PAGE > len {
                break;
            }
            let mut h = [0u8; HEADER_LEN];
            self.file.read_exact_at(&mut h, i * PAGE)?;
            let found = if &h[..8] == HEADER_MAGIC && crc32fast::hash(&h[..24]) == u32_at(&h, 24) {
                (u64_at(&h, 8), Some(u64_at(&h, 16)))
            } else if &h[..8] == HEADER_MAGIC_UNSALTED
                && crc32fast::hash(&h[..16]) == u32_at(&h, 16)
            {
                (u64_at(&h, 8), None)
            } else {
                continue;
            };
            if slot(found.0) == i && newest.is_none_or(|(n, _)| found.0 > n) {
                newest = Some(found);
            }
        }
        Ok(newest)
    }

    /// The ops of the current epoch's valid records; leaves `next`/`seq`
    /// after them.
    fn replay(&mut self, len: u64, tables: &[&'static str]) -> io::Result<Vec<Op>> {
        let mut ops = Vec::new();
        let mut at = FIRST_RECORD;
        let mut seq = 0u64;
        while at + RECORD_HEAD as u64 <= len {
            let Some(payload) = self.record_at(at, seq, len)? else {
                // the end of the run: a torn last write (never
                // acknowledged), or corruption if a valid record follows
                if let Some(later) = self.valid_record_after(at, seq, len)? {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: record {seq} of epoch {} is damaged but record {later} after it is whole: the log is corrupt, not torn; acknowledged changes would be lost",
                            self.path.display(),
                            self.epoch
                        ),
                    ));
                }
                break;
            };
            let payload_len = payload.len() as u64;
            decode(&payload, tables, &mut ops).map_err(|what| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("record {seq} of epoch {}: {what}", self.epoch),
                )
            })?;
            at += (RECORD_HEAD as u64 + payload_len).div_ceil(PAGE) * PAGE;
            seq += 1;
        }
        self.next = at;
        self.seq = seq;
        Ok(ops)
    }
}

/// A salt for a new log file: 8 bytes of the kernel's randomness, or, where
/// that cannot be read, the process's hash seed mixed with the time (a salt
/// need only differ from the file's earlier lives, not be secret).
fn new_salt() -> u64 {
    let mut b = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|f| f.read_exact_at(&mut b, 0))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// The header slot of `epoch`: a log receives every other epoch, so its
/// successive epochs alternate between the two slots.
fn slot(epoch: u64) -> u64 {
    (epoch / 2) % 2
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fn record_crc(salt: Option<u64>, head: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    if let Some(salt) = salt {
        h.update(&salt.to_le_bytes());
    }
    h.update(head);
    h.update(payload);
    h.finalize()
}

/// kind (1), table name length (1), name, key length (4), key, and for a
/// put, value length (4), value.
fn encode(op: &Op, out: &mut Vec<u8>) {
    let (kind, table, key, value) = match op {
        Op::Put { table, key, value } => (PUT, table, key, Some(value)),
        Op::Delete { table, key } => (DELETE, table, key, None),
    };
    out.push(kind);
    // table names are the owners' constants, far below 256 bytes
    out.push(table.len() as u8);
    out.extend_from_slice(table.as_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    if let Some(value) = value {
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
}

fn decode(mut b: &[u8], tables: &[&'static str], ops: &mut Vec<Op>) -> Result<(), String> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if b.len() < n {
            return Err("truncated op".into());
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    fn take_len(b: &mut &[u8]) -> Result<usize, String> {
        let l = take(b, 4)?;
        Ok(u32_at(l, 0) as usize)
    }
    while !b.is_empty() {
        let kind = take(&mut b, 1)?[0];
        let name_len = take(&mut b, 1)?[0] as usize;
        let name = take(&mut b, name_len)?;
        let table = *tables
            .iter()
            .find(|t| t.as_bytes() == name)
            .ok_or_else(|| format!("unknown table {:?}", String::from_utf8_lossy(name)))?;
        let key_len = take_len(&mut b)?;
        let key = take(&mut b, key_len)?.to_vec();
        ops.push(match kind {
            PUT => {
                let value_len = take_len(&mut b)?;
                let value = take(&mut b, value_len)?.to_vec();
                Op::Put { table, key, value }
            }
            DELETE => Op::Delete { table, key },
            other => return Err(format!("unknown op kind {other}")),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
