//! Restores RTP sequence order for the camera stream, so a frame whose packets arrive out of
//! order (or whose lost packet is retransmitted after a NACK) is still recorded whole.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a hole in the sequence is waited for before it is declared lost: long enough for a
/// NACK round trip on a poor connection, short enough not to hold much video in memory.
const MAX_WAIT: Duration = Duration::from_millis(250);

/// How many packets are held behind a hole at most (a large key frame is ~100 packets).
const MAX_HELD: usize = 512;

/// What comes out of a [`PacketOrder`], in sequence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ordered<P> {
    /// The next packet of the stream.
    Packet(P),
    /// One or more packets before the next one are lost for good.
    Gap,
}

/// A small reorder buffer keyed by RTP sequence number.
///
/// In-order packets pass straight through; packets behind a hole wait until the hole is
/// filled, [`MAX_WAIT`] passes (measured on arrival times, which are an input), or
/// [`MAX_HELD`] packets queue up. Late duplicates of packets already passed are dropped.
#[derive(Debug)]
pub(crate) struct PacketOrder<P> {
    /// Extended (wrap-free) sequence number of the next packet to release.
    next: Option<u64>,
    /// Highest extended sequence number seen, the reference for unwrapping the next one.
    highest: u64,
    held: BTreeMap<u64, (Instant, P)>,
}

impl<P> PacketOrder<P> {
    pub fn new() -> Self {
        PacketOrder {
            next: None,
            highest: 0,
            held: BTreeMap::new(),
        }
    }

    /// Takes a packet that arrived at `arrival`; returns what can now be released, in order.
    pub fn push(&mut self, sequence: u16, arrival: Instant, packet: P) -> Vec<Ordered<P>> {
        let extended = match self.next {
            None => {
                // Start far from zero so sequence numbers just below the first never underflow.
                let first = (1u64 << 32) + u64::from(sequence);
                self.next = Some(first);
                self.highest = first;
                first
            }
            Some(_) => {
                let delta = i64::from(sequence.wrapping_sub(self.highest as u16) as i16);
                let extended = self.highest.saturating_add_signed(delta);
                self.highest = self.highest.max(extended);
                extended
            }
        };
        let mut released = Vec::new();
        if self.next.is_some_and(|next| extended < next) {
            return released;
        }
        self.held.entry(extended).or_insert((arrival, packet));
        self.release(arrival, &mut released);
        released
    }

    fn release(&mut self, now: Instant, released: &mut Vec<Ordered<P>>) {
        loop {
            let Some(next) = self.next else { return };
            if let Some((_, packet)) = self.held.remove(&next) {
                released.push(Ordered::Packet(packet));
                self.next = Some(next + 1);
                continue;
            }
            let Some((&first_held, (oldest_arrival, _))) = self.held.first_key_value() else {
                return;
            };
            let waited_too_long = now.saturating_duration_since(*oldest_arrival) >= MAX_WAIT;
            if !waited_too_long && self.held.len() < MAX_HELD {
                return;
            }
            released.push(Ordered::Gap);
            self.next = Some(first_held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(released: Vec<Ordered<u16>>) -> Vec<Option<u16>> {
        released
            .into_iter()
            .map(|item| match item {
                Ordered::Packet(p) => Some(p),
                Ordered::Gap => None,
            })
            .collect()
    }

    #[test]
    fn in_order_packets_pass_straight_through_across_the_wrap() {
        let mut order = PacketOrder::new();
        let t = Instant::now();
        let mut out = Vec::new();
        for seq in [65533u16, 65534, 65535, 0, 1] {
            out.extend(packets(order.push(seq, t, seq)));
        }
        assert_eq!(
            out,
            vec![Some(65533), Some(65534), Some(65535), Some(0), Some(1)]
        );
    }

    #[test]
    fn a_swapped_pair_is_put_back_in_order() {
        let mut order = PacketOrder::new();
        let t = Instant::now();
        assert_eq!(packets(order.push(10, t, 10)), vec![Some(10)]);
        assert_eq!(packets(order.push(12, t, 12)), vec![]);
        assert_eq!(packets(order.push(11, t, 11)), vec![Some(11), Some(12)]);
        // A duplicate of a released packet is dropped.
        assert_eq!(packets(order.push(11, t, 11)), vec![]);
    }

    #[test]
    fn a_hole_becomes_a_gap_after_the_wait() {
        let mut order = PacketOrder::new();
        let t = Instant::now();
        order.push(1, t, 1);
        assert_eq!(packets(order.push(3, t, 3)), vec![]);
        assert_eq!(
            packets(order.push(4, t + Duration::from_millis(100), 4)),
            vec![]
        );
        // The hole at 2 has now been waited for long enough.
        assert_eq!(
            packets(order.push(5, t + MAX_WAIT, 5)),
            vec![None, Some(3), Some(4), Some(5)]
        );
        // A retransmission of 2 arriving after that is too late.
        assert_eq!(packets(order.push(2, t + MAX_WAIT, 2)), vec![]);
        assert_eq!(packets(order.push(6, t + MAX_WAIT, 6)), vec![Some(6)]);
    }

    #[test]
    fn too_many_held_packets_force_a_gap() {
        let mut order = PacketOrder::new();
        let t = Instant::now();
        order.push(0, t, 0);
        let mut out = Vec::new();
        for seq in 2..(2 + MAX_HELD as u16) {
            out.extend(packets(order.push(seq, t, seq)));
        }
        assert_eq!(out.first(), Some(&None));
        assert_eq!(out.len(), MAX_HELD + 1);
        assert_eq!(out.last(), Some(&Some(1 + MAX_HELD as u16)));
    }
}
