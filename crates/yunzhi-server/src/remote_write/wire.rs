//! Reads a remote-write `WriteRequest` in place: every series' labels and
//! samples are handed out as slices borrowing the decompressed bytes, with
//! no allocation per series. A request is read twice (checked when it
//! arrives, assembled later), and a busy site sends millions of samples a
//! minute, each with its series' full label set, so this is the ingest
//! path's hottest loop.
//!
//! The wire format is protobuf's: a key varint (`field << 3 | wire type`)
//! before each field; length-delimited fields (type 2) for messages and
//! strings, 64-bit (type 1) for the sample's `double`, varints (type 0) for
//! its `int64` timestamp. Unknown fields are skipped, as protobuf readers
//! must (remote-write 1.0 senders may add exemplars and histograms).

/// One series of a request, borrowed from it: its labels' names and
/// values as sent (UTF-8, checked when the request arrived).
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub labels: &'a [(&'a [u8], &'a [u8])],
    /// `(timestamp in ms, value)`, as sent.
    pub samples: &'a [(i64, f64)],
}

impl<'a> Series<'a> {
    /// The value of label `name` (`None` too for a value that is not UTF-8).
    pub fn label(&self, name: &str) -> Option<&'a str> {
        let (_, v) = self.labels.iter().find(|(n, _)| *n == name.as_bytes())?;
        std::str::from_utf8(v).ok()
    }
}

/// Calls `f` with every series of the `WriteRequest` in `buf`; stops at
/// the first malformed byte (a label that is not UTF-8 included) and says
/// what it was. Returns the samples read.
pub fn for_each_series(buf: &[u8], f: impl FnMut(Series<'_>)) -> Result<usize, String> {
    walk(buf, Utf8::Check, f)
}

/// [`for_each_series`] of a request already read through it when it
/// arrived: its labels' UTF-8 is not checked again. Checking every label
/// of every series was an eighth of the ingest path's CPU, and the
/// assembler reads only a few labels' values ([`Series::label`] checks
/// those it hands out).
pub fn for_each_checked_series(buf: &[u8], f: impl FnMut(Series<'_>)) -> Result<usize, String> {
    walk(buf, Utf8::Checked, f)
}

#[derive(Clone, Copy, PartialEq)]
enum Utf8 {
    Check,
    Checked,
}

fn walk<'a>(buf: &'a [u8], utf8: Utf8, mut f: impl FnMut(Series<'_>)) -> Result<usize, String> {
    let mut labels: Vec<(&'a [u8], &'a [u8])> = Vec::with_capacity(16);
    let mut samples: Vec<(i64, f64)> = Vec::with_capacity(4);
    let mut total = 0;
    let mut r = Reader { buf, pos: 0 };
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, LEN) => {
                let series = r.bytes()?;
                labels.clear();
                samples.clear();
                read_series(series, utf8, &mut labels, &mut samples)?;
                total += samples.len();
                f(Series { labels: &labels, samples: &samples });
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(total)
}

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

fn read_series<'a>(
    buf: &'a [u8],
    utf8: Utf8,
    labels: &mut Vec<(&'a [u8], &'a [u8])>,
    samples: &mut Vec<(i64, f64)>,
) -> Result<(), String> {
    let mut r = Reader { buf, pos: 0 };
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, LEN) => {
                let (name, value) = read_label(r.bytes()?)?;
                if utf8 == Utf8::Check {
                    check_utf8(name, "label name")?;
                    check_utf8(value, "label value")?;
                }
                labels.push((name, value));
            }
            (2, LEN) => samples.push(read_sample(r.bytes()?)?),
            _ => r.skip(wire)?,
        }
    }
    Ok(())
}

fn read_label(buf: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (mut name, mut value): (&[u8], &[u8]) = (&[], &[]);
    let mut r = Reader { buf, pos: 0 };
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, LEN) => name = r.bytes()?,
            (2, LEN) => value = r.bytes()?,
            _ => r.skip(wire)?,
        }
    }
    Ok((name, value))
}

fn read_sample(buf: &[u8]) -> Result<(i64, f64), String> {
    let (mut ts, mut value) = (0, 0.0);
    let mut r = Reader { buf, pos: 0 };
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, I64) => value = f64::from_le_bytes(r.fixed()?),
            // int64 travels as its two's-complement varint.
            (2, VARINT) => ts = r.varint()? as i64,
            _ => r.skip(wire)?,
        }
    }
    Ok((ts, value))
}

fn check_utf8(b: &[u8], what: &str) -> Result<(), String> {
    // Label names and values are nearly always ASCII: one cheap pass.
    if b.is_ascii() || std::str::from_utf8(b).is_ok() {
        Ok(())
    } else {
        Err(format!("a {what} is not UTF-8"))
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        // Keys, lengths of labels and most of a sample's fields fit one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("the message ends inside a number")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("a number runs past ten bytes".into())
    }

    fn key(&mut self) -> Result<(u64, u8), String> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or("a field runs past its message")?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.varint()?).map_err(|_| "a field's length is too large")?;
        self.take(n)
    }

    fn fixed(&mut self) -> Result<[u8; 8], String> {
        let b = self.take(8)?;
        Ok([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    fn skip(&mut self, wire: u8) -> Result<(), String> {
        match wire {
            VARINT => self.varint().map(drop),
            I64 => self.take(8).map(drop),
            LEN => self.bytes().map(drop),
            I32 => self.take(4).map(drop),
            other => Err(format!("wire type {other} is not used by remote-write")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Label, Sample, TimeSeries, WriteRequest};
    use super::*;

    fn request() -> WriteRequest {
        let label = |n: &str, v: &str| Label { name: n.into(), value: v.into() };
        WriteRequest {
            timeseries: vec![
                TimeSeries {
                    labels: vec![label("__name__", "node_load1"), label("instance", "web-01:9100")],
                    samples: vec![Sample { value: 0.25, timestamp: 1_780_000_000_000 }],
                },
                TimeSeries {
                    labels: vec![label("__name__", "up"), label("job", "节点")],
                    samples: vec![
                        Sample { value: 1.0, timestamp: -5 },
                        Sample { value: f64::NAN, timestamp: 1_780_000_060_000 },
                    ],
                },
            ],
        }
    }

    #[test]
    fn every_series_reads_back_as_prost_wrote_it() {
        let buf = prost::Message::encode_to_vec(&request());
        let mut seen = Vec::new();
        let total = for_each_series(&buf, |s| {
            let labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(n, v)| {
                    (String::from_utf8(n.to_vec()).unwrap(), String::from_utf8(v.to_vec()).unwrap())
                })
                .collect();
            seen.push((labels, s.samples.to_vec()));
        })
        .expect("well formed");
        assert_eq!(total, 3);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0[1], ("instance".to_owned(), "web-01:9100".to_owned()));
        assert_eq!(seen[0].1, vec![(1_780_000_000_000, 0.25)]);
        assert_eq!(seen[1].0[1].1, "节点");
        assert_eq!(seen[1].1[0], (-5, 1.0));
        assert!(seen[1].1[1].1.is_nan());
    }

    #[test]
    fn fields_it_does_not_know_are_skipped() {
        // Field 3 (metadata) of the request and field 3 (exemplars) of a series.
        let mut buf = prost::Message::encode_to_vec(&request());
        buf.extend_from_slice(&[(3 << 3) | 2, 2, 0x08, 0x01]);
        assert_eq!(for_each_series(&buf, |_| {}), Ok(3));
    }

    #[test]
    fn a_truncated_or_garbled_request_is_refused_with_the_reason() {
        let buf = prost::Message::encode_to_vec(&request());
        let cut = &buf[..buf.len() - 3];
        assert!(for_each_series(cut, |_| {}).unwrap_err().contains("past"));
        assert!(for_each_series(&[0x0b], |_| {}).unwrap_err().contains("wire type 3"));
        let mut bad_utf8 = prost::Message::encode_to_vec(&request());
        let at = bad_utf8.windows(4).position(|w| w == b"node").expect("the name");
        bad_utf8[at] = 0xff;
        assert!(for_each_series(&bad_utf8, |_| {}).unwrap_err().contains("UTF-8"));
    }
}
