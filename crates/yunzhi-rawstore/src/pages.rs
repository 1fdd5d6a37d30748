//! A day file's integer columns decoded page by page, straight from the
//! page bytes, for the statistics.
//!
//! Parquet's Arrow reader zero-fills a batch-sized buffer per column,
//! decodes into it and copies the result into an array; for the fleet
//! analysis that bookkeeping cost more than the decoding itself. The
//! statistics need only plain integers from pages this crate wrote itself,
//! all DELTA_BINARY_PACKED (see `dayfile.rs`), so they are decoded here, a
//! few thousand values at a time, into buffers that stay in the
//! processor's cache.
//!
//! Only data pages of format v2 without nulls are decoded here; the caller
//! checks a column chunk's statistics for nulls first and reads a chunk
//! with any through the Arrow reader instead. Anything else on a page is
//! refused as malformed rather than guessed at.

use std::path::Path;

use parquet::basic::Encoding;
use parquet::column::page::{Page, PageReader};

use crate::error::{Error, Result};

/// An integer a column holds: `INT32` or `INT64`.
pub(crate) trait Int: Copy + Default {
    /// The value whose low bits are `v` (wrapping, as the encoding's
    /// arithmetic is defined to wrap in the column's width).
    fn wrap(v: i64) -> Self;
}

impl Int for i32 {
    fn wrap(v: i64) -> i32 {
        v as i32
    }
}

impl Int for i64 {
    fn wrap(v: i64) -> i64 {
        v
    }
}

/// One column chunk being read, page after page.
pub(crate) struct Column<'p> {
    pages: Box<dyn PageReader>,
    path: &'p Path,
    name: &'static str,
    /// The page being read, and where its values start.
    page: Option<Page>,
    values_at: usize,
    decoder: Decoder,
}

enum Decoder {
    /// No page yet.
    None,
    /// Boxed: its buffer of unpacked values is large, and a page is long.
    Delta(Box<Delta>),
}

impl<'p> Column<'p> {
    pub(crate) fn new(pages: Box<dyn PageReader>, path: &'p Path, name: &'static str) -> Column<'p> {
        Column { pages, path, name, page: None, values_at: 0, decoder: Decoder::None }
    }

    fn malformed(&self, what: impl std::fmt::Display) -> Error {
        Error::Malformed { path: self.path.into(), what: format!("column {}: {what}", self.name) }
    }

    /// Sets `out` to the column's next `n` values (its buffer reused: only
    /// growth past its length is zero-filled first).
    pub(crate) fn read_next<T: Int>(&mut self, out: &mut Vec<T>, n: usize) -> Result<()> {
        out.resize(n, T::default());
        self.read_into(out)
    }

    /// Fills `out` with the column's next values.
    pub(crate) fn read_into<T: Int>(&mut self, out: &mut [T]) -> Result<()> {
        let mut done = 0;
        while done < out.len() {
            let got = match (&self.page, &mut self.decoder) {
                (Some(page), Decoder::Delta(d)) => {
                    d.read_into(&page.buffer()[self.values_at..], &mut out[done..])
                }
                _ => Ok(0),
            };
            let got = got.map_err(|what| self.malformed(what))?;
            done += got;
            if got == 0 {
                self.next_page()?;
            }
        }
        Ok(())
    }

    fn next_page(&mut self) -> Result<()> {
        let page = self
            .pages
            .get_next_page()
            .map_err(|cause| Error::Parquet { action: "read a page of", path: self.path.into(), cause })?
            .ok_or_else(|| self.malformed("fewer values than rows"))?;
        let Page::DataPageV2 {
            ref buf,
            num_values,
            encoding,
            num_nulls,
            def_levels_byte_len,
            rep_levels_byte_len,
            ..
        } = page
        else {
            return Err(
                self.malformed(format!("a {:?} page where a data page v2 was expected", page.page_type()))
            );
        };
        if num_nulls != 0 {
            return Err(self.malformed("a null on a page of a chunk whose statistics count none"));
        }
        let values_at = (def_levels_byte_len + rep_levels_byte_len) as usize;
        let bytes = buf.get(values_at..).ok_or_else(|| self.malformed("levels run past the page"))?;
        self.decoder = match encoding {
            Encoding::DELTA_BINARY_PACKED => Decoder::Delta(Box::new(
                Delta::start(bytes, num_values as usize).map_err(|what| self.malformed(what))?,
            )),
            other => {
                return Err(
                    self.malformed(format!("encoding {other} where DELTA_BINARY_PACKED was expected"))
                );
            }
        };
        self.values_at = values_at;
        self.page = Some(page);
        Ok(())
    }
}

/// Packed numbers are unpacked 32 at a time: a miniblock holds a multiple
/// of 32 values, and 32 numbers of any width fill whole bytes.
const GROUP: usize = 32;

/// The state of a DELTA_BINARY_PACKED page (Parquet's `Encodings.md`):
///
/// ```text
/// header: block size, miniblocks per block, value count (ULEB128), first value (zigzag ULEB128)
/// block:  min delta (zigzag ULEB128), one bit width per miniblock (1 byte each), the miniblocks
/// ```
///
/// Each value is the previous one plus the block's min delta plus its
/// miniblock's next packed number (little-endian, least significant bit
/// first), wrapping in the column's width. A miniblock's bytes are always
/// whole: it holds a multiple of 32 values, padded at the page's end.
struct Delta {
    per_mini: usize,
    minis: usize,
    /// Values not yet unpacked.
    left: usize,
    last: i64,
    min_delta: i64,
    /// Where the block's miniblock bit widths are on the page (one byte each).
    widths_at: usize,
    /// The miniblock being read, and values of it not yet unpacked.
    mini: usize,
    mini_left: usize,
    width: u32,
    /// Byte offset of the next packed group, or of the next block once a
    /// block's miniblocks are used up.
    at: usize,
    /// Unpacked values not yet handed out: `group[next..len]`.
    group: [i64; GROUP],
    next: usize,
    len: usize,
}

impl Delta {
    fn start(bytes: &[u8], page_values: usize) -> Result<Delta, String> {
        let mut at = 0;
        let block = uleb(bytes, &mut at)? as usize;
        let minis = uleb(bytes, &mut at)? as usize;
        let count = uleb(bytes, &mut at)? as usize;
        let first = zigzag(uleb(bytes, &mut at)?);
        if minis == 0 || block == 0 || !block.is_multiple_of(minis) || !(block / minis).is_multiple_of(GROUP)
        {
            return Err(format!("a delta block of {block} values in {minis} miniblocks"));
        }
        if count != page_values {
            return Err(format!("a delta header of {count} values on a page of {page_values}"));
        }
        let mut d = Delta {
            per_mini: block / minis,
            minis,
            left: count.saturating_sub(1),
            last: first,
            min_delta: 0,
            widths_at: 0,
            mini: minis,
            mini_left: 0,
            width: 0,
            at,
            group: [0; GROUP],
            next: 0,
            len: usize::from(count > 0),
        };
        d.group[0] = first;
        Ok(d)
    }

    /// Fills `out` with the page's next values; returns how many (fewer
    /// than asked once the page is used up, 0 once it is).
    ///
    /// Whole groups are unpacked straight into `out`: this loop runs once
    /// per 32 values of every column a scan reads, so it is kept to the
    /// miniblock bookkeeping and the unpacking itself.
    #[inline]
    fn read_into<T: Int>(&mut self, bytes: &[u8], out: &mut [T]) -> Result<usize, String> {
        let n = out.len();
        let mut done = 0;
        if self.next < self.len {
            // What is left of a group handed out in part.
            let k = n.min(self.len - self.next);
            for (o, &v) in out[..k].iter_mut().zip(&self.group[self.next..self.next + k]) {
                *o = T::wrap(v);
            }
            self.next += k;
            done = k;
        }
        while done < n && self.left > 0 {
            if self.mini_left == 0 && self.mini + 1 >= self.minis {
                // At a block's start: as many whole blocks as are wanted.
                done = self.whole_blocks(bytes, out, done)?;
                if done == n || self.left == 0 {
                    break;
                }
            }
            if self.left >= GROUP && n - done >= GROUP {
                // A whole group, straight into `out`.
                self.unpack_next(bytes, &mut out[done..done + GROUP])?;
                self.left -= GROUP;
                done += GROUP;
            } else {
                // Part of a group wanted, or the page's last: keep it here.
                let mut group = [0i64; GROUP];
                self.unpack_next(bytes, &mut group)?;
                self.group = group;
                self.len = self.left.min(GROUP);
                self.left -= self.len;
                let k = (n - done).min(self.len);
                for (o, &v) in out[done..done + k].iter_mut().zip(&self.group[..k]) {
                    *o = T::wrap(v);
                }
                self.next = k;
                done += k;
            }
        }
        Ok(done)
    }

    /// From a block's start, unpacks whole blocks into `out` from `done`
    /// on while a whole block is wanted and left; returns where it stopped.
    /// Most of a page is read here, its state in locals. It stops at a
    /// block's start, so the block's min delta and widths need not be
    /// kept: whatever reads on parses the next block's header itself.
    #[inline]
    fn whole_blocks<T: Int>(
        &mut self,
        bytes: &[u8],
        out: &mut [T],
        mut done: usize,
    ) -> Result<usize, String> {
        let block = self.per_mini * self.minis;
        let (mut at, mut last) = (self.at, self.last);
        while self.left >= block && out.len() - done >= block {
            let min_delta = zigzag(uleb(bytes, &mut at)?);
            let widths = at;
            at += self.minis;
            for m in 0..self.minis {
                let width =
                    usize::from(*bytes.get(widths + m).ok_or("a delta block header runs past the page")?);
                if width > 64 {
                    return Err(format!("a miniblock {width} bits wide"));
                }
                let end = at + self.per_mini * width / 8;
                if end > bytes.len() {
                    return Err("a miniblock runs past the page".into());
                }
                for _ in 0..self.per_mini / GROUP {
                    let deltas = Deltas { last, step: min_delta };
                    last = unpack(&bytes[at..], width, deltas, &mut out[done..done + GROUP]);
                    at += GROUP * width / 8;
                    done += GROUP;
                }
            }
            self.left -= block;
        }
        (self.at, self.last) = (at, last);
        Ok(done)
    }

    /// Unpacks the next 32 numbers into the 32 values of `out` (past the
    /// page's last value they are padding) and moves past them.
    fn unpack_next<T: Int>(&mut self, bytes: &[u8], out: &mut [T]) -> Result<(), String> {
        if self.mini_left == 0 {
            self.next_miniblock(bytes)?;
        }
        let width = self.width as usize;
        let end = self.at + GROUP * width / 8;
        if end > bytes.len() {
            return Err("a miniblock runs past the page".into());
        }
        self.last = unpack(&bytes[self.at..], width, Deltas { last: self.last, step: self.min_delta }, out);
        self.at = end;
        self.mini_left -= GROUP;
        Ok(())
    }

    #[inline]
    fn next_miniblock(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.mini + 1 < self.minis {
            // The previous miniblock was unpacked to its end: `at` is at this one.
            self.mini += 1;
        } else {
            let mut at = self.at;
            self.min_delta = zigzag(uleb(bytes, &mut at)?);
            if at + self.minis > bytes.len() {
                return Err("a delta block header runs past the page".into());
            }
            self.widths_at = at;
            self.at = at + self.minis;
            self.mini = 0;
        }
        let width = u32::from(bytes[self.widths_at + self.mini]);
        if width > 64 {
            return Err(format!("a miniblock {width} bits wide"));
        }
        self.width = width;
        self.mini_left = self.per_mini;
        Ok(())
    }
}

/// How packed numbers become values: each is the previous value plus
/// `step` (the block's min delta) plus the number, wrapping.
#[derive(Clone, Copy)]
struct Deltas {
    last: i64,
    step: i64,
}

impl Deltas {
    #[inline(always)]
    fn next(&mut self, packed: u64) -> i64 {
        self.last = self.last.wrapping_add(self.step).wrapping_add(packed as i64);
        self.last
    }
}

/// Unpacks 32 numbers of `width` bits (least significant bit first) from
/// the start of `packed`, which holds at least `4 * width` bytes, writes
/// the values they make to `out` (32 of them) and returns the last.
#[inline]
fn unpack<T: Int>(packed: &[u8], width: usize, deltas: Deltas, out: &mut [T]) -> i64 {
    // One copy of the loop per width, so that every shift and offset is a
    // constant the compiler can fold: unpacking is most of the decoding.
    macro_rules! widths {
        ($($w:literal)*) => {
            match width {
                0 => unpack_none(deltas, out),
                $($w => unpack_width::<$w, T>(packed, deltas, out),)*
                _ => unpack_wide(packed, width, deltas, out),
            }
        };
    }
    widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28
        29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56)
}

/// [`unpack`] of numbers `W` bits wide, `W` at most 56: every number then
/// lies within the 8 bytes from its first byte.
#[inline]
fn unpack_width<const W: usize, T: Int>(packed: &[u8], deltas: Deltas, out: &mut [T]) -> i64 {
    let bytes = GROUP * W / 8;
    match packed.get(..bytes + 8) {
        // Room for a whole word at every number's first byte: read in place.
        Some(window) => unpack_window::<W, T>(window, deltas, out),
        // The page's last group: read from a padded copy.
        None => {
            let mut padded = [0u8; 8 * GROUP + 16];
            padded[..bytes].copy_from_slice(&packed[..bytes]);
            unpack_window::<W, T>(&padded[..bytes + 8], deltas, out)
        }
    }
}

/// The loop of [`unpack_width`], written out: with `W` known, each
/// number's byte offset and shift are constants, so a value costs a load,
/// a shift, a mask and two adds.
#[inline(always)]
fn unpack_window<const W: usize, T: Int>(window: &[u8], mut deltas: Deltas, out: &mut [T]) -> i64 {
    let out = &mut out[..GROUP];
    let mask = (1u64 << W) - 1;
    macro_rules! numbers {
        ($($j:literal)*) => {
            $(out[$j] = T::wrap(deltas.next((u64::from_le_bytes(word_at(window, $j * W / 8)) >> ($j * W % 8)) & mask));)*
        };
    }
    numbers!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
    deltas.last
}

/// [`unpack`] of numbers 0 bits wide: each value is the previous plus the
/// block's min delta. Common (a host's id repeated over its rows, readings
/// taken at a steady interval), and worth its own loop: written as
/// multiples of the step, the values do not wait on each other as a
/// running sum's do, and the loop is vectorised.
#[inline(always)]
fn unpack_none<T: Int>(deltas: Deltas, out: &mut [T]) -> i64 {
    for (j, v) in out[..GROUP].iter_mut().enumerate() {
        *v = T::wrap(deltas.last.wrapping_add(deltas.step.wrapping_mul(j as i64 + 1)));
    }
    deltas.last.wrapping_add(deltas.step.wrapping_mul(GROUP as i64))
}

/// [`unpack`] of numbers 57 to 64 bits wide, which may straddle nine bytes.
fn unpack_wide<T: Int>(packed: &[u8], width: usize, mut deltas: Deltas, out: &mut [T]) -> i64 {
    let mut padded = [0u8; 8 * GROUP + 16];
    let bytes = GROUP * width / 8;
    padded[..bytes].copy_from_slice(&packed[..bytes]);
    let mask = if width >= 64 { u64::MAX } else { (1u64 << width) - 1 };
    for (j, v) in out[..GROUP].iter_mut().enumerate() {
        let bit = j * width;
        let lo = u128::from(u64::from_le_bytes(word_at(&padded, bit / 8)));
        let hi = u128::from(u64::from_le_bytes(word_at(&padded, bit / 8 + 8)));
        *v = T::wrap(deltas.next((((hi << 64) | lo) >> (bit % 8)) as u64 & mask));
    }
    deltas.last
}

#[inline]
fn word_at(bytes: &[u8], at: usize) -> [u8; 8] {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    w
}

fn uleb(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or("a number runs past the page")?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("a number longer than ten bytes".into())
}

fn zigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::{WriterProperties, WriterVersion};
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    /// Columns that test every corner of the encoding: constant runs (zero
    /// bit widths), small and huge deltas up to 64 bits wide, wrapping.
    fn columns(n: usize) -> (Vec<i32>, Vec<i64>, Vec<i64>) {
        let mut rng = 0x853c_49e6_748f_ea9bu64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let small: Vec<i32> =
            (0..n).map(|i| if i % 1000 < 300 { 7 } else { (next() % 10_001) as i32 - 50 }).collect();
        let wide: Vec<i64> = (0..n)
            .map(|i| match i % 500 {
                0..100 => 42,
                100..200 => next() as i64,
                _ => (next() % 3_000_000_000) as i64,
            })
            .collect();
        let times: Vec<i64> = (0..n as i64).map(|i| 1_764_000_000_000 + i * 300_000).collect();
        (small, wide, times)
    }

    #[test]
    fn values_come_back_in_any_chunk_size_across_pages_blocks_and_miniblocks() {
        let n = 10_000;
        let (small, wide, times) = columns(n);
        let schema = Arc::new(Schema::new(vec![
            Field::new("small", DataType::Int32, true),
            Field::new("wide", DataType::Int64, true),
            Field::new("times", DataType::Int64, false),
        ]));
        let props = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_dictionary_enabled(false)
            .set_encoding(Encoding::DELTA_BINARY_PACKED)
            // Pages of a few hundred rows, cut at odd places.
            .set_data_page_row_count_limit(700)
            .set_write_batch_size(333)
            .build();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.parquet");
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(&path).expect("create"), schema.clone(), Some(props))
                .expect("writer");
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(small.clone())),
            Arc::new(Int64Array::from(wide.clone())),
            Arc::new(Int64Array::from(times.clone())),
        ];
        w.write(&RecordBatch::try_new(schema, cols).expect("batch")).expect("write");
        w.close().expect("close");

        let reader = SerializedFileReader::try_from(path.as_path()).expect("open");
        let group = reader.get_row_group(0).expect("row group");
        for chunk in [1, 31, 32, 33, 777, 4096, n] {
            let column = |i: usize| Column::new(group.get_column_page_reader(i).expect("pages"), &path, "t");
            let (mut a, mut b, mut c) = (column(0), column(1), column(2));
            let (mut got_a, mut got_b, mut got_c) = (Vec::<i32>::new(), Vec::<i64>::new(), Vec::<i64>::new());
            fn more<T: Int>(col: &mut Column<'_>, got: &mut Vec<T>, k: usize) {
                let start = got.len();
                got.resize(start + k, T::default());
                col.read_into(&mut got[start..]).expect("values");
            }
            let mut done = 0;
            while done < n {
                let k = chunk.min(n - done);
                more(&mut a, &mut got_a, k);
                more(&mut b, &mut got_b, k);
                more(&mut c, &mut got_c, k);
                done += k;
            }
            assert_eq!(got_a, small, "chunks of {chunk}");
            assert_eq!(got_b, wide, "chunks of {chunk}");
            assert_eq!(got_c, times, "chunks of {chunk}");
            assert!(a.read_into(&mut [0i32; 1]).is_err(), "no value past the last row");
        }
    }

    #[test]
    fn numbers_are_unpacked_least_significant_bit_first_across_bytes() {
        let plain = Deltas { last: 0, step: 0 };
        // 3-bit numbers 1..=7 then 0, packed: 001 010 011 100 101 110 111 000, four times.
        let eight = [0b1101_0001u8, 0b0101_1000, 0b0001_1111];
        let packed: Vec<u8> = eight.iter().cycle().take(12).copied().collect();
        let mut out = [0i64; GROUP];
        unpack(&packed, 3, plain, &mut out);
        // Values are running sums of the numbers: 1, 3, 6, 10, ...
        assert_eq!(out[..8], [1, 3, 6, 10, 15, 21, 28, 28]);
        assert_eq!(out[31], 4 * 28);
        // Each value adds the block's min delta too; width 0 adds only that.
        unpack(&[], 0, Deltas { last: 100, step: -3 }, &mut out);
        assert_eq!((out[0], out[31]), (97, 100 - 3 * 32));
        // The widest numbers straddle nine bytes; sums wrap.
        unpack(&[0xff; 8 * GROUP], 64, plain, &mut out);
        assert_eq!((out[0], out[1]), (-1, -2));
        let mut packed = vec![0u8; 4 * 57];
        packed[7] = 0x80; // bit 63: the second 57-bit number's bit 6
        unpack(&packed, 57, plain, &mut out);
        assert_eq!((out[0], out[1], out[31]), (0, 1 << 6, 1 << 6));
    }

    #[test]
    fn zigzag_numbers_alternate_in_sign() {
        assert_eq!([0, 1, 2, 3, 4].map(zigzag), [0, -1, 1, -2, 2]);
        assert_eq!(zigzag(u64::MAX), i64::MIN);
        let mut at = 0;
        assert_eq!(uleb(&[0xe5, 0x8e, 0x26], &mut at), Ok(624_485));
        assert_eq!(at, 3);
    }
}
