//! Frame counters: the full 32-bit value behind the 16 bits a frame carries.
//!
//! Devices count frames with 32-bit counters but send only the low 16 bits
//! (LoRaWAN 1.0.4 §4.3.1.5, 1.1 §4.3.1.5). The receiver reconstructs the full
//! value as the *smallest* counter that is larger than the last accepted one and
//! ends in the received 16 bits, and accepts it only if it is at most `max_gap`
//! ahead:
//!
//! ```text
//! accepted  ⇔  0 < candidate − last_accepted ≤ max_gap
//! ```
//!
//! With no frame accepted yet in the session, `last_accepted` is `None` and counts
//! as −1 (the first counter is 0), so the candidate is the wire value itself and is
//! accepted when it is below `max_gap`.
//!
//! What is *not* accepted, with `last = last_accepted`:
//! - **retransmission**: the wire value equals `last` mod 2^16. A device repeats a
//!   frame with the same counter (NbTrans > 1, or an unacknowledged confirmed
//!   uplink); [`check_f_cnt`] reports it separately so the caller can treat it as a
//!   duplicate rather than an attack.
//! - **replay or too far ahead**: any other wire value whose candidate lies more
//!   than `max_gap` ahead. A frame from the past and one from too far in the future
//!   look the same modulo 2^16, so both are refused.
//! - **exhausted**: `last` is `u32::MAX`, or the candidate would pass it; the
//!   session must be renewed (rejoin).
//!
//! **Rollover** of the 16-bit wire value is handled: when the wire value is below
//! the low 16 bits of `last + 1`, the candidate is in the next 65 536 block, e.g.
//! last `0x0000_FFFE`, wire `0x0001` gives `0x0001_0001` (two frames lost).
//!
//! `max_gap` larger than 65 536 accepts every value except a retransmission.
//! LoRaWAN 1.0.x calls the limit MAX_FCNT_GAP (16 384); 1.0.4 and 1.1 dropped the
//! constant, but a bound stays useful against replays.

/// The LoRaWAN 1.0.x MAX_FCNT_GAP.
pub const MAX_FCNT_GAP: u32 = 16384;

/// How a received 16-bit counter relates to the last accepted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FCntCheck {
    /// A new frame with this full counter; `skipped` counters were never seen.
    Next {
        /// The reconstructed 32-bit counter.
        f_cnt: u32,
        /// How many counter values lie between the last accepted one and this one.
        skipped: u32,
    },
    /// The same counter as the last accepted frame.
    Retransmission {
        /// The last accepted counter.
        f_cnt: u32,
    },
    /// An old counter replayed, or one more than `max_gap` ahead.
    OutOfWindow {
        /// The counter it would be if taken as ahead.
        candidate: u32,
    },
    /// The counter space is used up; the device must rejoin.
    Exhausted,
}

/// Classifies a received 16-bit counter; see the module documentation.
pub fn check_f_cnt(last_accepted: Option<u32>, wire: u16, max_gap: u32) -> FCntCheck {
    let next: u32 = match last_accepted {
        None => 0,
        Some(last) => {
            // The low 16 bits of `last`; truncation intended.
            if wire == last as u16 {
                return FCntCheck::Retransmission { f_cnt: last };
            }
            match last.checked_add(1) {
                Some(n) => n,
                None => return FCntCheck::Exhausted,
            }
        }
    };
    let mut candidate = (next & 0xffff_0000) | u32::from(wire);
    if candidate < next {
        candidate = match candidate.checked_add(0x1_0000) {
            Some(c) => c,
            None => return FCntCheck::Exhausted,
        };
    }
    let skipped = candidate - next;
    // `skipped < max_gap` is `candidate - last <= max_gap` without the −1 of `None`.
    if skipped < max_gap {
        FCntCheck::Next {
            f_cnt: candidate,
            skipped,
        }
    } else {
        FCntCheck::OutOfWindow { candidate }
    }
}

/// The full 32-bit counter of a new frame, or `None` for a retransmission, a
/// replay, a jump beyond `max_gap` or an exhausted counter (see the module
/// documentation; [`check_f_cnt`] tells these apart).
pub fn reconstruct_f_cnt(last_accepted: Option<u32>, wire: u16, max_gap: u32) -> Option<u32> {
    match check_f_cnt(last_accepted, wire, max_gap) {
        FCntCheck::Next { f_cnt, .. } => Some(f_cnt),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_frame_of_a_session() {
        assert_eq!(reconstruct_f_cnt(None, 0, MAX_FCNT_GAP), Some(0));
        assert_eq!(reconstruct_f_cnt(None, 16383, MAX_FCNT_GAP), Some(16383));
        assert_eq!(reconstruct_f_cnt(None, 16384, MAX_FCNT_GAP), None);
        assert_eq!(
            check_f_cnt(None, 5, MAX_FCNT_GAP),
            FCntCheck::Next {
                f_cnt: 5,
                skipped: 5
            }
        );
    }

    #[test]
    fn in_order_and_with_losses() {
        assert_eq!(reconstruct_f_cnt(Some(0), 1, MAX_FCNT_GAP), Some(1));
        assert_eq!(reconstruct_f_cnt(Some(10), 20, MAX_FCNT_GAP), Some(20));
        // The gap bound is inclusive: exactly max_gap ahead is accepted.
        assert_eq!(
            reconstruct_f_cnt(Some(10), 10 + 16384, MAX_FCNT_GAP),
            Some(16394)
        );
        assert_eq!(reconstruct_f_cnt(Some(10), 10 + 16385, MAX_FCNT_GAP), None);
        assert_eq!(
            check_f_cnt(Some(10), 12, MAX_FCNT_GAP),
            FCntCheck::Next {
                f_cnt: 12,
                skipped: 1
            }
        );
    }

    #[test]
    fn retransmission_and_replay() {
        assert_eq!(
            check_f_cnt(Some(7), 7, MAX_FCNT_GAP),
            FCntCheck::Retransmission { f_cnt: 7 }
        );
        assert_eq!(reconstruct_f_cnt(Some(7), 7, MAX_FCNT_GAP), None);
        // Older counters are replays: as "ahead" they would be ~65 530 away.
        assert_eq!(
            check_f_cnt(Some(7), 6, MAX_FCNT_GAP),
            FCntCheck::OutOfWindow {
                candidate: 0x1_0006
            }
        );
        assert_eq!(reconstruct_f_cnt(Some(0x1_0007), 0, MAX_FCNT_GAP), None);
        // Retransmission is recognised across the upper bits too.
        assert_eq!(
            check_f_cnt(Some(0x5_0007), 7, MAX_FCNT_GAP),
            FCntCheck::Retransmission { f_cnt: 0x5_0007 }
        );
    }

    #[test]
    fn sixteen_bit_rollover() {
        assert_eq!(
            reconstruct_f_cnt(Some(0xffff), 0, MAX_FCNT_GAP),
            Some(0x1_0000)
        );
        assert_eq!(
            reconstruct_f_cnt(Some(0xfffe), 1, MAX_FCNT_GAP),
            Some(0x1_0001)
        );
        assert_eq!(
            reconstruct_f_cnt(Some(0x2_fff0), 0x0010, MAX_FCNT_GAP),
            Some(0x3_0010)
        );
        // A rollover that skips more than the gap is refused.
        assert_eq!(reconstruct_f_cnt(Some(0xc000), 0x0001, MAX_FCNT_GAP), None);
    }

    #[test]
    fn exhausted_counter() {
        assert_eq!(
            check_f_cnt(Some(u32::MAX), 0, MAX_FCNT_GAP),
            FCntCheck::Exhausted
        );
        assert_eq!(
            check_f_cnt(Some(0xffff_fff0), 0x0001, MAX_FCNT_GAP),
            FCntCheck::Exhausted
        );
        assert_eq!(
            reconstruct_f_cnt(Some(0xffff_fff0), 0xffff, MAX_FCNT_GAP),
            Some(u32::MAX)
        );
    }

    #[test]
    fn gap_edge_cases() {
        // max_gap 0 accepts nothing; 1 accepts only the next counter.
        assert_eq!(reconstruct_f_cnt(Some(3), 4, 0), None);
        assert_eq!(reconstruct_f_cnt(Some(3), 4, 1), Some(4));
        assert_eq!(reconstruct_f_cnt(Some(3), 5, 1), None);
        // A gap beyond 2^16 accepts everything but a retransmission.
        assert_eq!(reconstruct_f_cnt(Some(7), 6, u32::MAX), Some(0x1_0006));
        assert_eq!(reconstruct_f_cnt(Some(7), 7, u32::MAX), None);
    }

    #[test]
    fn exhaustive_window_property() {
        // For every wire value after a fixed last counter, acceptance matches the rule:
        // the accepted wire values are exactly those of last+1 ..= last+max_gap.
        for last in [0u32, 0x7fff, 0xffff, 0x1_2345, 0xfffe_ffff, 0xffff_f000] {
            let mut expected = vec![None; 1 << 16];
            for c in (1..=MAX_FCNT_GAP).filter_map(|d| last.checked_add(d)) {
                expected[usize::from(c as u16)] = Some(c);
            }
            for wire in 0..=u16::MAX {
                assert_eq!(
                    reconstruct_f_cnt(Some(last), wire, MAX_FCNT_GAP),
                    expected[usize::from(wire)],
                    "last {last:#x} wire {wire:#x}"
                );
            }
        }
    }
}
