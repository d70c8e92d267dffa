//! Per-direction TCP sequence tracking: the Zeek-style size (sequence span,
//! retransmissions counted once, peer ACKs extend the span), the bytes actually
//! seen (union of segment ranges), and from both the bytes never captured
//! (`missed_bytes`). 32-bit wraparound is handled by unwrapping every sequence
//! and acknowledgement number relative to the last one of the same space.

/// Union of half-open ranges `[start, end)`, sorted and disjoint. Bounded: past
/// `MAX_RANGES` the two closest ranges are joined (the gap between them is then
/// counted as seen, so `missed_bytes` can only be under-, never over-stated).
#[derive(Clone, Debug, Default)]
pub struct RangeSet {
    r: Vec<(i64, i64)>,
    pub capped: bool,
}

const MAX_RANGES: usize = 512;

impl RangeSet {
    pub fn insert(&mut self, s: i64, e: i64) {
        if e <= s {
            return;
        }
        // Fast path: in-order append or extension of the last range.
        if let Some(last) = self.r.last_mut() {
            if s >= last.0 && s <= last.1 {
                if e > last.1 {
                    last.1 = e;
                }
                return;
            }
            if s > last.1 {
                self.r.push((s, e));
                self.cap();
                return;
            }
        } else {
            self.r.push((s, e));
            return;
        }
        // General case: insert and merge overlapping/adjacent neighbours.
        let i = self.r.partition_point(|x| x.1 < s);
        let mut j = i;
        let mut ns = s;
        let mut ne = e;
        while j < self.r.len() && self.r[j].0 <= ne {
            ns = ns.min(self.r[j].0);
            ne = ne.max(self.r[j].1);
            j += 1;
        }
        self.r.splice(i..j, std::iter::once((ns, ne)));
        self.cap();
    }

    fn cap(&mut self) {
        if self.r.len() <= MAX_RANGES {
            return;
        }
        self.capped = true;
        let mut best = 1;
        let mut gap = i64::MAX;
        for k in 1..self.r.len() {
            let g = self.r[k].0 - self.r[k - 1].1;
            if g < gap {
                gap = g;
                best = k;
            }
        }
        self.r[best - 1].1 = self.r[best].1;
        self.r.remove(best);
    }

    /// Bytes covered inside `[lo, hi)`.
    pub fn covered(&self, lo: i64, hi: i64) -> u64 {
        let mut n = 0i64;
        for &(s, e) in &self.r {
            let a = s.max(lo);
            let b = e.min(hi);
            if b > a {
                n += b - a;
            }
        }
        n as u64
    }

    pub fn ranges(&self) -> &[(i64, i64)] {
        &self.r
    }
}

/// One direction's sequence space. Relative sequence 0 is the SYN (or, without a
/// SYN, one before the first byte seen), so data starts at relative 1.
#[derive(Clone, Debug, Default)]
pub struct SeqSpace {
    pub started: bool,
    ref_raw: u32,
    ref_rel: i64,
    /// Highest relative sequence one past any segment (SYN and FIN count one).
    pub max_end: i64,
    /// Highest relative ACK the peer sent for this space (0 = none).
    pub peer_ack: i64,
    pub ranges: RangeSet,
    pub fin_seen: bool,
    pub syn_seen: bool,
}

impl SeqSpace {
    fn rel(&mut self, raw: u32) -> i64 {
        let r = self.ref_rel + i64::from(raw.wrapping_sub(self.ref_raw) as i32);
        if r > self.ref_rel {
            self.ref_raw = raw;
            self.ref_rel = r;
        }
        r
    }

    /// A segment sent in this direction.
    pub fn segment(&mut self, seq: u32, len: u64, syn: bool, fin: bool) {
        if !self.started {
            self.started = true;
            // With a SYN its sequence number is relative 0; otherwise pretend a SYN
            // one before this segment (as Zeek does for partial connections).
            self.ref_raw = if syn { seq } else { seq.wrapping_sub(1) };
            self.ref_rel = 0;
        }
        let s = self.rel(seq);
        let data_start = if syn { s + 1 } else { s };
        let data_end = data_start + len as i64;
        if len > 0 {
            // Bytes before the start of the space (retransmissions of data we never saw start) are ignored.
            self.ranges.insert(data_start.max(1), data_end.max(1));
        }
        let end = data_end + i64::from(fin);
        if end > self.max_end {
            self.max_end = end;
        }
        if end > self.ref_rel {
            // Keep the reference near the highest sequence seen.
            self.ref_raw = self.ref_raw.wrapping_add((end - self.ref_rel) as u32);
            self.ref_rel = end;
        }
        self.syn_seen |= syn;
        self.fin_seen |= fin;
    }

    /// An ACK the peer sent that acknowledges this direction's bytes.
    pub fn ack(&mut self, ack: u32) {
        if !self.started {
            return;
        }
        let a = self.rel(ack);
        // An ACK more than 2^31 ahead or before the start is nonsense; ignore it.
        if a > 0 && a > self.peer_ack && a - self.max_end.max(0) < (1i64 << 31) {
            self.peer_ack = a;
        }
    }

    /// Zeek's endpoint size: max(last seq, peer ack) - start, minus the SYN and FIN octets.
    pub fn size(&self) -> u64 {
        if !self.started {
            return 0;
        }
        let mut size = self.max_end.max(self.peer_ack);
        if size > 0 {
            size -= 1;
        }
        if self.fin_seen && size > 0 {
            size -= 1;
        }
        size.max(0) as u64
    }

    /// Payload bytes seen at least once within the span.
    pub fn unique(&self) -> u64 {
        let size = self.size() as i64;
        self.ranges.covered(1, 1 + size)
    }

    /// Bytes inside the span never seen in the capture.
    pub fn missed(&self) -> u64 {
        self.size().saturating_sub(self.unique())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmission_counted_once_and_gap_missed() {
        // The anchors.md example: 10 x 1000 B, one segment retransmitted twice,
        // one segment missing from the capture; the peer ACKs everything.
        let mut s = SeqSpace::default();
        s.segment(1000, 0, true, false);
        let mut seq = 1001u32;
        for i in 0..10 {
            if i != 6 {
                s.segment(seq, 1000, false, false);
            }
            if i == 3 {
                s.segment(seq, 1000, false, false);
                s.segment(seq, 1000, false, false);
            }
            seq += 1000;
        }
        s.ack(seq);
        assert_eq!(s.size(), 10_000);
        assert_eq!(s.unique(), 9_000);
        assert_eq!(s.missed(), 1_000);
    }

    #[test]
    fn wraparound() {
        let mut s = SeqSpace::default();
        let isn = u32::MAX - 1500;
        s.segment(isn, 0, true, false);
        let mut seq = isn.wrapping_add(1);
        for _ in 0..4 {
            s.segment(seq, 1000, false, false);
            seq = seq.wrapping_add(1000);
        }
        s.segment(seq, 0, false, true);
        assert_eq!(s.size(), 4000);
        assert_eq!(s.missed(), 0);
    }

    #[test]
    fn partial_connection_without_syn() {
        let mut s = SeqSpace::default();
        s.segment(5000, 100, false, false);
        s.segment(5100, 100, false, false);
        assert_eq!(s.size(), 200);
        assert_eq!(s.unique(), 200);
    }

    #[test]
    fn ranges_are_bounded() {
        let mut r = RangeSet::default();
        for i in 0..10_000i64 {
            r.insert(i * 10, i * 10 + 5);
        }
        assert!(r.ranges().len() <= MAX_RANGES);
        assert!(r.capped);
    }
}
