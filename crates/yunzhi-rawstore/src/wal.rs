//! The write-ahead log: what makes an `append` durable before its day is sealed.
//!
//! The log is a folder of segment files `NNNNNNNNNNNN.wal`, numbered in the
//! order they were started. A segment is an 8-byte magic followed by frames:
//!
//! ```text
//! payload length: u32 LE | CRC-32 (IEEE) of the payload: u32 LE | payload
//! payload = rows × 48 bytes (see `Row::encode`)
//! ```
//!
//! New segments are `YZRWAL02`. A `YZRWAL01` segment (rows of 44 bytes,
//! without the connections accepted) written by an earlier build is still
//! replayed, its rows' connections not counted.
//!
//! One `append` is one frame, written with one `write` and made durable with
//! `fdatasync`, so a crash leaves either the whole call or a torn last frame,
//! which the checksum (or a length running past the end) exposes. A reader
//! stops at the first bad frame: frames are only ever added at the end, so
//! nothing acknowledged can lie behind it. A writer that fails mid-frame
//! abandons its segment and the next append starts a fresh one, so no good
//! frame ever follows a torn one.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Result, io};
use crate::row::{ENCODED_LEN, ENCODED_LEN_V1, Row};

const MAGIC: &[u8; 8] = b"YZRWAL02";
const MAGIC_V1: &[u8; 8] = b"YZRWAL01";
const FRAME_HEADER: usize = 8;
/// Frames are capped so a corrupt length cannot make a reader allocate wildly.
const MAX_FRAME_BYTES: usize = 256 << 20;
/// The most rows one `append` (one frame) may carry.
pub(crate) const MAX_FRAME_ROWS: usize = MAX_FRAME_BYTES / ENCODED_LEN;

/// The file name of segment `seq`.
pub(crate) fn segment_name(seq: u64) -> String {
    format!("{seq:012}.wal")
}

/// The sequence number in a segment's file name, if it is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// An open segment that appends go to.
pub(crate) struct SegmentWriter {
    file: File,
    path: PathBuf,
    /// Bytes of the magic and complete, synced frames.
    len: u64,
}

impl SegmentWriter {
    /// Starts segment `seq` in `dir`, durable (file and directory entry) before it returns.
    pub(crate) fn create(dir: &Path, seq: u64) -> Result<SegmentWriter> {
        let path = dir.join(segment_name(seq));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io("create WAL segment", &path))?;
        file.write_all(MAGIC).map_err(io("write the header of WAL segment", &path))?;
        file.sync_all().map_err(io("sync WAL segment", &path))?;
        sync_dir(dir)?;
        Ok(SegmentWriter { file, path, len: MAGIC.len() as u64 })
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Writes one frame whose payload is `frame[FRAME_HEADER..]` (the caller
    /// leaves the first 8 bytes for the header, see [`begin_frame`]) and waits
    /// until it is on disk.
    pub(crate) fn append_frame(&mut self, frame: &mut [u8]) -> Result<()> {
        let payload_len = frame.len() - FRAME_HEADER;
        let crc = crc32fast::hash(&frame[FRAME_HEADER..]);
        frame[..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        frame[4..FRAME_HEADER].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all(frame).map_err(io("append to WAL segment", &self.path))?;
        self.file.sync_data().map_err(io("sync WAL segment", &self.path))?;
        self.len += frame.len() as u64;
        Ok(())
    }
}

/// Clears `buf` and reserves room for a frame header; rows are then encoded after it.
pub(crate) fn begin_frame(buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&[0; FRAME_HEADER]);
}

/// What reading a segment found.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// Bytes of the magic and the good frames.
    pub(crate) valid_len: u64,
    /// Whether bytes after the good frames were ignored (a torn or corrupt tail).
    pub(crate) torn: bool,
}

/// Reads a segment's first `limit` bytes (all of it if `None`).
pub(crate) fn read_segment(path: &Path, limit: Option<u64>) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(io("open WAL segment", path))?;
    let mut data = Vec::new();
    match limit {
        Some(n) => file.take(n).read_to_end(&mut data),
        None => (&file).read_to_end(&mut data),
    }
    .map_err(io("read WAL segment", path))?;
    Ok(data)
}

/// Calls `on_row` for every row of every good frame in a segment's bytes.
pub(crate) fn decode_segment(data: &[u8], mut on_row: impl FnMut(Row)) -> Decoded {
    let row_len = match data.get(..MAGIC.len()) {
        Some(m) if m == MAGIC => ENCODED_LEN,
        Some(m) if m == MAGIC_V1 => ENCODED_LEN_V1,
        // A crash while the segment was being created: it holds nothing acknowledged.
        _ => return Decoded { valid_len: 0, torn: !data.is_empty() },
    };
    let mut at = MAGIC.len();
    loop {
        let rest = &data[at..];
        if rest.is_empty() {
            return Decoded { valid_len: at as u64, torn: false };
        }
        let Some(payload) = frame_payload(rest, row_len) else {
            return Decoded { valid_len: at as u64, torn: true };
        };
        for chunk in payload.chunks_exact(row_len) {
            if let Ok(bytes) = <&[u8; ENCODED_LEN]>::try_from(chunk) {
                on_row(Row::decode(bytes));
            } else if let Ok(bytes) = <&[u8; ENCODED_LEN_V1]>::try_from(chunk) {
                on_row(Row::decode_v1(bytes));
            }
        }
        at += FRAME_HEADER + payload.len();
    }
}

/// The payload of the frame at the start of `rest`, if the frame is whole,
/// holds whole rows of `row_len` bytes, and its checksum holds.
fn frame_payload(rest: &[u8], row_len: usize) -> Option<&[u8]> {
    let header = rest.get(..FRAME_HEADER)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_FRAME_BYTES || !len.is_multiple_of(row_len) {
        return None;
    }
    let payload = rest.get(FRAME_HEADER..FRAME_HEADER + len)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// Makes a directory's entries (new, renamed or removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync directory", dir))
}

/// Removes a file, treating "already gone" as done.
pub(crate) fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("delete", path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: i64) -> Row {
        Row { resource_id: i, at_ms: i * 60_000, cpu_pct: i as f32, ..Row::default() }
    }

    fn frame_of(rows: &[Row]) -> Vec<u8> {
        let mut buf = Vec::new();
        begin_frame(&mut buf);
        rows.iter().for_each(|r| r.encode(&mut buf));
        buf
    }

    #[test]
    fn frames_written_to_a_segment_read_back_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = SegmentWriter::create(dir.path(), 1).expect("create");
        w.append_frame(&mut frame_of(&[row(1), row(2)])).expect("append");
        w.append_frame(&mut frame_of(&[row(3)])).expect("append");
        let data = read_segment(&dir.path().join(segment_name(1)), None).expect("read");
        let mut seen = Vec::new();
        let d = decode_segment(&data, |r| seen.push(r.resource_id));
        assert_eq!(seen, [1, 2, 3]);
        assert!(!d.torn);
        assert_eq!(d.valid_len, w.len());
    }

    #[test]
    fn a_frame_whose_length_runs_past_the_end_is_not_read() {
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&frame_with_crc(&[row(1)]));
        let whole = data.len();
        data.extend_from_slice(&frame_with_crc(&[row(2), row(3)]));
        data.truncate(data.len() - 5);
        let mut seen = Vec::new();
        let d = decode_segment(&data, |r| seen.push(r.resource_id));
        assert_eq!(seen, [1]);
        assert!(d.torn);
        assert_eq!(d.valid_len, whole as u64);
    }

    fn frame_with_crc(rows: &[Row]) -> Vec<u8> {
        let mut f = frame_of(rows);
        let len = f.len() - FRAME_HEADER;
        let crc = crc32fast::hash(&f[FRAME_HEADER..]);
        f[..4].copy_from_slice(&(len as u32).to_le_bytes());
        f[4..8].copy_from_slice(&crc.to_le_bytes());
        f
    }

    #[test]
    fn a_segment_of_the_first_format_is_replayed_without_connections_accepted() {
        let rows = [Row { accepted: Some(3), ..row(1) }, Row { accepted: Some(4), ..row(2) }];
        let mut payload = Vec::new();
        for r in &rows {
            let mut one = Vec::new();
            r.encode(&mut one);
            payload.extend_from_slice(&one[..ENCODED_LEN_V1]);
        }
        let mut data = MAGIC_V1.to_vec();
        data.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        data.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        data.extend_from_slice(&payload);
        let mut seen = Vec::new();
        let d = decode_segment(&data, |r| seen.push(r));
        assert!(!d.torn);
        assert_eq!(d.valid_len, data.len() as u64);
        assert_eq!(seen, rows.map(|r| Row { accepted: None, ..r }));
    }

    #[test]
    fn segment_names_sort_in_sequence_order_and_parse_back() {
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert!(segment_name(9) < segment_name(10));
        assert_eq!(parse_segment_name("42.wal"), None);
        assert_eq!(parse_segment_name("000000000042.tmp"), None);
    }
}
