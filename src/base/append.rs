//! Line logs grow by whole lines only: the event log, a run's audit and transcript,
//! `effectiveness.jsonl`. A `write` that fails part-way (a full disk: `ENOSPC` after some bytes)
//! would leave a partial line, and the next line appended would be glued to it and unreadable,
//! though its writer was told it succeeded. So every append:
//!
//! - holds an exclusive `flock` on the file while it writes, so no other steward process appends
//!   in between (writers are the daemon, `steward run`, the hook processes of a run);
//! - first cuts off a partial last line a writer left (one killed mid-`write`, or one whose
//!   cut-back failed), so the new line starts on a line of its own;
//! - writes, and when that fails, cuts the file back to its length before the write.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use nix::fcntl::{Flock, FlockArg};

/// How far back a partial last line is looked for at a time.
const CHUNK: u64 = 64 * 1024;

/// Appends `bytes` (whole lines, each ending in `\n`) at the end of `file` (opened with
/// `O_APPEND`), whole or not at all.
pub fn whole(file: &File, bytes: &[u8]) -> io::Result<()> {
    all(&[(file, bytes)]).map_err(|(_, e)| e)
}

/// Like [`whole`] for several files at once (one batch of events over two day files): either
/// every file got its lines or none did. Files are locked in the order given; callers give them
/// in one order (sorted paths), so two processes never wait on each other. The error names the
/// index of the file that failed.
pub fn all(parts: &[(&File, &[u8])]) -> Result<(), (usize, io::Error)> {
    let mut locks = Vec::with_capacity(parts.len());
    for (i, (file, _)) in parts.iter().enumerate() {
        locks.push(lock(file).map_err(|e| (i, e))?);
    }
    let mut before = Vec::with_capacity(parts.len());
    for (i, (file, bytes)) in parts.iter().enumerate() {
        let result = end_partial_line(file).and_then(|len| {
            before.push(len);
            let mut w: &File = file;
            w.write_all(bytes)
        });
        if let Err(e) = result {
            // Cut back every file written so far (this one included) to its length before.
            let undone: Vec<io::Result<()>> = parts
                .iter()
                .zip(&before)
                .map(|((f, _), &len)| f.set_len(len))
                .collect();
            let undo = undone.into_iter().find_map(Result::err);
            let e = match undo {
                None => e,
                Some(cut) => io::Error::new(
                    e.kind(),
                    format!(
                        "{e}; the partial line could not be cut off ({cut}): the next append cuts it"
                    ),
                ),
            };
            return Err((i, e));
        }
    }
    drop(locks);
    Ok(())
}

/// An exclusive `flock` on the file's open file description (through a duplicate descriptor,
/// which shares it), released when the guard drops.
fn lock(file: &File) -> io::Result<Flock<File>> {
    Flock::lock(file.try_clone()?, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))
}

/// Cuts a partial last line off (the file must be locked) and returns the file's length then.
fn end_partial_line(file: &File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    if len == 0 || last_byte(file, len)? == b'\n' {
        return Ok(len);
    }
    let whole = last_newline(file, len)?.map_or(0, |at| at + 1);
    file.set_len(whole)?;
    tracing::warn!(
        cut = len - whole,
        "a partial last line was cut off a line log before appending"
    );
    Ok(whole)
}

fn last_byte(file: &File, len: u64) -> io::Result<u8> {
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, len - 1)?;
    Ok(b[0])
}

/// The offset of the last `\n` before `len`, if any.
fn last_newline(file: &File, len: u64) -> io::Result<Option<u64>> {
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let n = usize::try_from(end - start).unwrap_or(buf.len());
        file.read_exact_at(&mut buf[..n], start)?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(Some(start + i as u64));
        }
        end = start;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn open(path: &std::path::Path) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .unwrap()
    }

    #[test]
    fn a_partial_last_line_is_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":").unwrap();
        let f = open(&path);
        whole(&f, b"{\"c\":3}\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"c\":3}\n"
        );
        // A file that is one partial line.
        std::fs::write(&path, "{\"b\":").unwrap();
        whole(&f, b"{\"c\":3}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"c\":3}\n");
    }

    #[test]
    fn a_partial_line_longer_than_a_chunk_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let long = "x".repeat(3 * CHUNK as usize + 17);
        std::fs::write(&path, format!("{{}}\n{long}")).unwrap();
        let f = open(&path);
        whole(&f, b"{\"c\":3}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n{\"c\":3}\n");
    }

    #[test]
    fn a_failed_write_leaves_every_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        std::fs::write(&a, "{}\n").unwrap();
        let fa = open(&a);
        // A file opened read-only: its write fails after `a` was written.
        let b = dir.path().join("b.jsonl");
        std::fs::write(&b, "{}\n").unwrap();
        let fb = File::open(&b).unwrap();
        let err = all(&[(&fa, b"{\"x\":1}\n"), (&fb, b"{\"y\":2}\n")]).unwrap_err();
        assert_eq!(err.0, 1);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "{}\n");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "{}\n");
    }
}
