//! One reading of one host, and its fixed-width binary form in the WAL.

use crate::hundredths;

/// One per-minute reading of one cloud host.
///
/// Utilisation figures are `f32`: an agent's CPU percentage comes from jiffy
/// counters and its byte rates from one-minute differences, so seven
/// significant digits are more than the reading has, and four bytes instead
/// of eight halve what the columns cost before compression.
///
/// **Precision kept**: the agent sends every figure rounded to hundredths,
/// and the store keeps exactly that: a reading comes back from a scan as the
/// very `f32` appended. Digits finer than a hundredth (from another writer)
/// are rounded away, half away from zero, and `-0.0` comes back as `0.0`.
/// NaN, the infinities and readings beyond what a column holds (a
/// percentage above 21 474 836.47, a byte rate above 10^16 B/s) are kept as
/// missing and come back as NaN. Appends keep what they are given, bit for
/// bit, in the write-ahead log; the rounding applies wherever rows are read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Row {
    /// The platform's id of the cloud host (resource).
    pub resource_id: i64,
    /// When the reading was taken, milliseconds since the Unix epoch (UTC).
    pub at_ms: i64,
    /// CPU busy, 0–100 % of all the host's cores.
    pub cpu_pct: f32,
    /// Memory in use, 0–100 %.
    pub memory_pct: f32,
    /// Disk bytes read per second over the last interval.
    pub disk_read_bps: f32,
    /// Disk bytes written per second over the last interval.
    pub disk_write_bps: f32,
    /// Network bytes received per second over the last interval.
    pub net_rx_bps: f32,
    /// Network bytes sent per second over the last interval.
    pub net_tx_bps: f32,
    /// Logged-in sessions.
    pub sessions: u16,
    /// Listening sockets.
    pub listening: u16,
    /// TCP connections the host accepted over the last interval; `None`
    /// when its sender does not count them (and in rows written before
    /// the store kept them: WAL segments `YZRWAL01`, day files of format 2).
    pub accepted: Option<u32>,
}

/// How a batch's `accepted` column marks a row whose connections were not
/// counted: a count cannot reach it (it is capped one below).
pub const NOT_COUNTED: u32 = u32::MAX;

/// `accepted` as a batch column holds it.
pub(crate) fn accepted_cell(accepted: Option<u32>) -> u32 {
    accepted.map_or(NOT_COUNTED, |n| n.min(NOT_COUNTED - 1))
}

/// A batch column's cell back as `accepted`.
pub(crate) fn accepted_of(cell: u32) -> Option<u32> {
    (cell != NOT_COUNTED).then_some(cell)
}

impl Row {
    /// The row as the store keeps it: each reading to the hundredth (see
    /// the type's documentation).
    pub(crate) fn as_stored(self) -> Row {
        let pct = |v| hundredths::canonical(v, hundredths::PCT_LIMIT);
        let rate = |v| hundredths::canonical(v, hundredths::RATE_LIMIT);
        Row {
            cpu_pct: pct(self.cpu_pct),
            memory_pct: pct(self.memory_pct),
            disk_read_bps: rate(self.disk_read_bps),
            disk_write_bps: rate(self.disk_write_bps),
            net_rx_bps: rate(self.net_rx_bps),
            net_tx_bps: rate(self.net_tx_bps),
            ..self
        }
    }
}

/// Bytes of one row in a WAL frame: 2 × i64, 6 × f32, 2 × u16, u32
/// (connections accepted, [`NOT_COUNTED`] for none), little-endian.
pub(crate) const ENCODED_LEN: usize = 48;
/// Bytes of one row in a segment of the first WAL format, which had no
/// connections accepted.
pub(crate) const ENCODED_LEN_V1: usize = 44;

impl Row {
    /// Appends the fixed-width little-endian form of the row to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.resource_id.to_le_bytes());
        out.extend_from_slice(&self.at_ms.to_le_bytes());
        for v in [
            self.cpu_pct,
            self.memory_pct,
            self.disk_read_bps,
            self.disk_write_bps,
            self.net_rx_bps,
            self.net_tx_bps,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.sessions.to_le_bytes());
        out.extend_from_slice(&self.listening.to_le_bytes());
        out.extend_from_slice(&accepted_cell(self.accepted).to_le_bytes());
    }

    /// Reads a row back from exactly [`ENCODED_LEN`] bytes.
    pub(crate) fn decode(b: &[u8; ENCODED_LEN]) -> Row {
        let (v1, tail) = b.split_at(ENCODED_LEN_V1);
        let cell = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let v1: &[u8; ENCODED_LEN_V1] = v1.try_into().unwrap_or(&[0; ENCODED_LEN_V1]);
        Row { accepted: accepted_of(cell), ..Row::decode_v1(v1) }
    }

    /// Reads a row of the first WAL format back from exactly
    /// [`ENCODED_LEN_V1`] bytes: its connections were not counted.
    pub(crate) fn decode_v1(b: &[u8; ENCODED_LEN_V1]) -> Row {
        let i64_at = |o: usize| {
            i64::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3], b[o + 4], b[o + 5], b[o + 6], b[o + 7]])
        };
        let f32_at = |o: usize| f32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        Row {
            resource_id: i64_at(0),
            at_ms: i64_at(8),
            cpu_pct: f32_at(16),
            memory_pct: f32_at(20),
            disk_read_bps: f32_at(24),
            disk_write_bps: f32_at(28),
            net_rx_bps: f32_at(32),
            net_tx_bps: f32_at(36),
            sessions: u16_at(40),
            listening: u16_at(42),
            accepted: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_survives_encoding_bit_for_bit() {
        let row = Row {
            resource_id: -7,
            at_ms: 1_764_000_000_123,
            cpu_pct: 12.5,
            memory_pct: f32::NAN,
            disk_read_bps: 1e9,
            disk_write_bps: 0.0,
            net_rx_bps: 3.25,
            net_tx_bps: f32::MAX,
            sessions: 3,
            listening: u16::MAX,
            accepted: Some(17),
        };
        for row in [row, Row { accepted: None, ..row }, Row { accepted: Some(0), ..row }] {
            let mut buf = Vec::new();
            row.encode(&mut buf);
            assert_eq!(buf.len(), ENCODED_LEN);
            let back = Row::decode(buf.as_slice().try_into().expect("48 bytes"));
            assert_eq!(back.memory_pct.to_bits(), row.memory_pct.to_bits());
            assert_eq!(Row { memory_pct: 0.0, ..back }, Row { memory_pct: 0.0, ..row });
        }
    }

    #[test]
    fn a_row_of_the_first_wal_format_reads_back_with_its_connections_not_counted() {
        let row = Row { resource_id: 9, at_ms: 60_000, cpu_pct: 1.5, sessions: 2, ..Row::default() };
        let mut buf = Vec::new();
        Row { accepted: Some(5), ..row }.encode(&mut buf);
        let back = Row::decode_v1(buf[..ENCODED_LEN_V1].try_into().expect("44 bytes"));
        assert_eq!(back, Row { accepted: None, ..row });
    }

    #[test]
    fn a_count_of_connections_never_reads_as_not_counted() {
        assert_eq!(accepted_of(accepted_cell(Some(u32::MAX))), Some(u32::MAX - 1));
        assert_eq!(accepted_of(accepted_cell(None)), None);
    }
}
