//! The host's end of the acknowledgement channel: the guest's second serial
//! port, one FIFO for every boot of a run.
//!
//! Invariant: a line counts only if its newline arrived during the boot that
//! began it. A power cut stops the guest anywhere in a line, even between
//! its last JSON byte and its newline; such a line is complete JSON, and if
//! the next boot's first byte ended it, the host would take a dead boot's
//! `Intent` or `Ack` as the new boot's (seen as "a call before the check").
//! So bytes arrive raw, and what is left unterminated when a boot ends is
//! dropped at the start of the next one.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Lines of the current boot, assembled from the FIFO's bytes.
pub struct AckLines {
    chunks: mpsc::Receiver<Vec<u8>>,
    /// Bytes of a line not ended yet.
    partial: Vec<u8>,
    /// Ended lines not taken yet.
    ready: VecDeque<String>,
}

impl AckLines {
    /// A thread reading the FIFO. It is opened read-write, so that opening
    /// never blocks and qemu's closes are no end of file: one reader serves
    /// every boot.
    pub fn open(fifo: &Path) -> Result<AckLines, String> {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(fifo)
            .map_err(|e| format!("opening {}: {e}", fifo.display()))?;
        let (tx, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(AckLines::from_chunks(chunks))
    }

    fn from_chunks(chunks: mpsc::Receiver<Vec<u8>>) -> AckLines {
        AckLines {
            chunks,
            partial: Vec::new(),
            ready: VecDeque::new(),
        }
    }

    /// A new boot begins: whatever an earlier boot left, ended lines and the
    /// start of one, is dropped; returns that start (for the history).
    pub fn new_boot(&mut self) -> Option<String> {
        while let Ok(chunk) = self.chunks.try_recv() {
            self.take(&chunk);
        }
        self.ready.clear();
        let cut_off = std::mem::take(&mut self.partial);
        (!cut_off.is_empty()).then(|| String::from_utf8_lossy(&cut_off).into_owned())
    }

    /// The next line of this boot, waiting at most `quiet` after the last
    /// byte that came (a line being sent is waited for to its end); `None`
    /// when nothing more came in time. `Err` if the reader stopped.
    pub fn next(&mut self, quiet: Duration) -> Result<Option<String>, String> {
        let mut deadline = Instant::now() + quiet;
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Ok(Some(line));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => {
                    self.take(&chunk);
                    deadline = Instant::now() + quiet;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(None),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("the channel reader stopped".into());
                }
            }
        }
    }

    fn take(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&self.partial)
                    .trim_end_matches('\r')
                    .to_string();
                self.partial.clear();
                if !line.is_empty() {
                    self.ready.push_back(line);
                }
            } else {
                self.partial.push(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::from_millis(1);

    #[test]
    fn a_line_ended_only_by_the_next_boot_is_dropped_with_what_the_boot_left() {
        let (tx, rx) = mpsc::channel();
        let mut lines = AckLines::from_chunks(rx);
        tx.send(b"{\"Ack\":\"Done\"}\n{\"Intent\":{\"seq\":9}}".to_vec())
            .unwrap();
        assert_eq!(
            lines.next(NOW).unwrap().as_deref(),
            Some("{\"Ack\":\"Done\"}")
        );
        // cut just before the newline: complete JSON, never ended
        assert_eq!(lines.next(NOW).unwrap(), None);
        tx.send(b"left\n{\"Ack\":\"Don".to_vec()).unwrap();
        assert_eq!(
            lines.new_boot().as_deref(),
            Some("{\"Ack\":\"Don"),
            "the dead boot's unended line"
        );
        // the new guest's first bytes: the newline that ends a cut line, then its own
        tx.send(b"\n\"Started\"\r\n".to_vec()).unwrap();
        assert_eq!(lines.next(NOW).unwrap().as_deref(), Some("\"Started\""));
        assert_eq!(lines.next(NOW).unwrap(), None);
    }

    #[test]
    fn a_line_in_pieces_is_waited_for_to_its_end() {
        let (tx, rx) = mpsc::channel();
        let mut lines = AckLines::from_chunks(rx);
        let sender = std::thread::spawn(move || {
            for piece in [&b"{\"Rea"[..], b"dy\":", b"12}\n"] {
                std::thread::sleep(Duration::from_millis(20));
                tx.send(piece.to_vec()).unwrap();
            }
        });
        assert_eq!(
            lines.next(Duration::from_secs(10)).unwrap().as_deref(),
            Some("{\"Ready\":12}")
        );
        sender.join().unwrap();
        assert!(lines.next(NOW).is_err(), "the sender is gone");
    }
}
