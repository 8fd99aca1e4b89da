//! The log of the kernel's `dm-log-writes` target, read and replayed.
//!
//! Format (drivers/md/dm-log-writes.c, Documentation/admin-guide/
//! device-mapper/log-writes.rst), all little-endian, in units of the data
//! device's logical block size (`sectorsize`): block 0 holds the super
//! (magic, version 1, number of entries, sectorsize); the entries follow
//! from block 1, each one block of header (sector, nr_sectors, flags,
//! data_len; a mark's text follows the header in the same block) and then,
//! unless it is a discard, `nr_sectors` blocks of the data written. The
//! target logs a write when it has completed, and a flush after every write
//! completed before the flush was sent; so every prefix of the log that ends
//! at a flush or FUA entry is a state the disk may hold after a power cut,
//! and a mark (`dmsetup message DEV 0 mark NAME`) says where in that order
//! an event of the program under test happened.

use std::fs::File;
use std::os::unix::fs::FileExt;

const MAGIC: u64 = 0x006a_7366_7773_6872;
/// The entry was sent with REQ_PREFLUSH.
pub const FLUSH: u64 = 1 << 0;
/// The entry was sent with REQ_FUA.
pub const FUA: u64 = 1 << 1;
/// A discard (no data in the log).
pub const DISCARD: u64 = 1 << 2;
/// A mark (its text in `mark`).
pub const MARK: u64 = 1 << 3;

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// First block written (in `sectorsize` units).
    pub sector: u64,
    /// Blocks written.
    pub nr_sectors: u64,
    /// [`FLUSH`], [`FUA`], [`DISCARD`], [`MARK`] (and METADATA, unused here).
    pub flags: u64,
    /// Byte offset of the data in the log device.
    pub data_at: u64,
    /// A mark's text.
    pub mark: Option<String>,
}

impl Entry {
    /// The entry changes the data device (a write or a discard).
    pub fn writes(&self) -> bool {
        self.nr_sectors > 0 && self.flags & MARK == 0
    }
}

/// A whole log.
#[derive(Debug)]
pub struct Log {
    /// The data device's logical block size.
    pub sectorsize: u64,
    /// The entries, in log order.
    pub entries: Vec<Entry>,
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Reads the log on `dev` (a device or an image).
pub fn read(dev: &File) -> Result<Log, String> {
    let mut sup = [0u8; 32];
    dev.read_exact_at(&mut sup, 0)
        .map_err(|e| format!("reading the log's super: {e}"))?;
    if le64(&sup, 0) != MAGIC {
        return Err(format!(
            "the log device holds no dm-log-writes log (magic {:#x})",
            le64(&sup, 0)
        ));
    }
    if le64(&sup, 8) != 1 {
        return Err(format!("dm-log-writes log version {}", le64(&sup, 8)));
    }
    let count = le64(&sup, 16);
    let sectorsize = u64::from(u32::from_le_bytes([sup[24], sup[25], sup[26], sup[27]]));
    if !(512..=65536).contains(&sectorsize) || !sectorsize.is_power_of_two() {
        return Err(format!("dm-log-writes log: sectorsize {sectorsize}"));
    }
    let mut header = vec![0u8; sectorsize as usize];
    let mut at = sectorsize;
    let mut entries = Vec::with_capacity(count as usize);
    for i in 0..count {
        dev.read_exact_at(&mut header, at)
            .map_err(|e| format!("reading log entry {i} at byte {at}: {e}"))?;
        let (sector, nr_sectors, flags, data_len) = (
            le64(&header, 0),
            le64(&header, 8),
            le64(&header, 16),
            le64(&header, 24),
        );
        let mark = if flags & MARK != 0 {
            let len = (data_len as usize).min(header.len() - 32);
            Some(String::from_utf8_lossy(&header[32..32 + len]).into_owned())
        } else {
            None
        };
        entries.push(Entry {
            sector,
            nr_sectors,
            flags,
            data_at: at + sectorsize,
            mark,
        });
        at += sectorsize;
        if flags & DISCARD == 0 {
            at += nr_sectors * sectorsize;
        }
    }
    Ok(Log {
        sectorsize,
        entries,
    })
}

/// A state of the disk worth opening: the first `applied` entries replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Entries replayed (the marks among them say what had happened).
    pub applied: usize,
    /// The entry that made this a point: a flush, a FUA write or a mark
    /// (`None`: the disk before any entry).
    pub after: Option<usize>,
}

/// Every distinct state a cut can leave and a check can tell apart: the
/// disk before the log, after each flush and FUA entry, and at each mark;
/// each taken as late as it can be without another write, so that it
/// counts every mark (acknowledgement) made while the disk held it.
pub fn points(log: &Log) -> Vec<Point> {
    let n = log.entries.len();
    let mut out: Vec<Point> = Vec::new();
    let mut add = |after: Option<usize>| {
        let mut applied = after.map_or(0, |i| i + 1);
        while applied < n && !log.entries[applied].writes() {
            applied += 1;
        }
        if out.last().map(|p| p.applied) != Some(applied) {
            out.push(Point { applied, after });
        }
    };
    add(None);
    for (i, e) in log.entries.iter().enumerate() {
        if e.flags & (FLUSH | FUA | MARK) != 0 {
            add(Some(i));
        }
    }
    out
}

/// Replays a log onto a target device, forward only.
pub struct Replayer<'a> {
    log: &'a Log,
    source: &'a File,
    target: &'a File,
    applied: usize,
    buf: Vec<u8>,
}

impl<'a> Replayer<'a> {
    /// `source` holds `log`; `target` holds what the data device held when
    /// the log began.
    pub fn new(log: &'a Log, source: &'a File, target: &'a File) -> Self {
        Replayer {
            log,
            source,
            target,
            applied: 0,
            buf: Vec::new(),
        }
    }

    /// Writes entries up to (not including) `applied` onto the target and
    /// syncs it.
    pub fn advance_to(&mut self, applied: usize) -> Result<(), String> {
        if applied < self.applied || applied > self.log.entries.len() {
            return Err(format!(
                "replay to entry {applied} from {} of {}",
                self.applied,
                self.log.entries.len()
            ));
        }
        let ss = self.log.sectorsize;
        for (i, e) in self.log.entries[self.applied..applied].iter().enumerate() {
            if !e.writes() {
                continue;
            }
            let len = (e.nr_sectors * ss) as usize;
            self.buf.resize(len, 0);
            if e.flags & DISCARD != 0 {
                // what a discarded range reads as is undefined; zeros is one answer
                self.buf.fill(0);
            } else {
                self.source
                    .read_exact_at(&mut self.buf, e.data_at)
                    .map_err(|err| format!("reading entry {}: {err}", self.applied + i))?;
            }
            self.target
                .write_all_at(&self.buf, e.sector * ss)
                .map_err(|err| format!("replaying entry {}: {err}", self.applied + i))?;
        }
        self.target
            .sync_all()
            .map_err(|e| format!("syncing the replay target: {e}"))?;
        self.applied = applied;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of 512-byte blocks as the target writes it.
    fn log_file(entries: &[(u64, u64, u64, &[u8])]) -> File {
        let mut bytes = vec![0u8; 512];
        bytes[0..8].copy_from_slice(&MAGIC.to_le_bytes());
        bytes[8..16].copy_from_slice(&1u64.to_le_bytes());
        bytes[16..24].copy_from_slice(&(entries.len() as u64).to_le_bytes());
        bytes[24..28].copy_from_slice(&512u32.to_le_bytes());
        for (sector, nr, flags, data) in entries {
            let mut h = vec![0u8; 512];
            h[0..8].copy_from_slice(&sector.to_le_bytes());
            h[8..16].copy_from_slice(&nr.to_le_bytes());
            h[16..24].copy_from_slice(&flags.to_le_bytes());
            if flags & MARK != 0 {
                h[24..32].copy_from_slice(&(data.len() as u64).to_le_bytes());
                h[32..32 + data.len()].copy_from_slice(data);
                bytes.extend(h);
            } else {
                bytes.extend(h);
                if flags & DISCARD == 0 {
                    let mut d = data.to_vec();
                    d.resize((*nr * 512) as usize, 0);
                    bytes.extend(d);
                }
            }
        }
        let path = std::env::temp_dir().join(format!(
            "logwrites-test-{}-{}",
            std::process::id(),
            bytes.len()
        ));
        std::fs::write(&path, &bytes).unwrap();
        let f = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    fn target(blocks: u64) -> File {
        let path = std::env::temp_dir().join(format!("logwrites-target-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.set_len(blocks * 512).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    #[test]
    fn entries_points_and_replay() {
        let log = log_file(&[
            (3, 1, 0, b"first"),    // 0: a write, then its flush
            (0, 0, FLUSH, b""),     // 1
            (0, 0, MARK, b"a0"),    // 2: acknowledged after the flush
            (5, 2, 0, b"second"),   // 3
            (3, 1, DISCARD, b""),   // 4
            (7, 1, FUA, b"commit"), // 5
            (0, 0, MARK, b"dm-log-writes-end"),
        ]);
        let l = read(&log).unwrap();
        assert_eq!(l.sectorsize, 512);
        assert_eq!(l.entries.len(), 7);
        assert_eq!(l.entries[2].mark.as_deref(), Some("a0"));
        assert_eq!(l.entries[5].mark, None);
        assert!(l.entries[4].writes());
        assert!(!l.entries[1].writes());
        // before anything; after the flush, taken past the mark; after the
        // FUA, past the end mark (the end mark adds nothing new)
        assert_eq!(
            points(&l),
            vec![
                Point {
                    applied: 0,
                    after: None
                },
                Point {
                    applied: 3,
                    after: Some(1)
                },
                Point {
                    applied: 7,
                    after: Some(5)
                },
            ]
        );
        let t = target(10);
        let mut r = Replayer::new(&l, &log, &t);
        r.advance_to(3).unwrap();
        let mut b = [0u8; 5];
        t.read_exact_at(&mut b, 3 * 512).unwrap();
        assert_eq!(&b, b"first");
        r.advance_to(7).unwrap();
        t.read_exact_at(&mut b, 3 * 512).unwrap();
        assert_eq!(b, [0; 5], "discarded");
        let mut c = [0u8; 6];
        t.read_exact_at(&mut c, 5 * 512).unwrap();
        assert_eq!(&c, b"second");
        t.read_exact_at(&mut c, 7 * 512).unwrap();
        assert_eq!(&c, b"commit");
        assert!(r.advance_to(2).is_err(), "forward only");
    }

    #[test]
    fn a_device_without_a_log_is_refused() {
        let f = target(4);
        assert!(read(&f).unwrap_err().contains("no dm-log-writes log"));
    }
}
