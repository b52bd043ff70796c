//! Which claimed delivery runs next: one lane per integration, round-robin between
//! lanes. Pure bookkeeping (no I/O, no clock), tested on its own.
//!
//! - A lane holds at most `per_lane + lane_queue` rows (in flight + waiting); rows
//!   offered beyond that are refused and stay in the database, so a slow endpoint's
//!   backlog never fills memory or takes room from other integrations.
//! - At most `per_lane` requests of one lane run at once, and only one while the
//!   lane is failing (a dead endpoint gets one probe at a time, not a volley of
//!   timeouts); at most `global` over all lanes.
//! - Free global slots go to the lanes in turn, so a busy integration cannot take
//!   them all while another one waits.

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

/// Consecutive failures after which a lane sends one request at a time.
pub(crate) const FAILING_STREAK: u32 = 3;

/// The limits, from `[webhook]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Requests in flight over all lanes.
    pub global: usize,
    /// Requests in flight per lane.
    pub per_lane: usize,
    /// Rows waiting per lane beyond those in flight.
    pub lane_queue: usize,
    /// Rows held in memory over all lanes (waiting + in flight).
    pub hold: usize,
}

/// How a started delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 2xx.
    Delivered,
    /// Any failure.
    Failed,
    /// Not attempted (e.g. its lease ran short): says nothing about the endpoint.
    Skipped,
}

#[derive(Debug)]
struct Lane<T> {
    queue: VecDeque<T>,
    in_flight: usize,
    failures: u32,
    in_ready: bool,
}

impl<T> Lane<T> {
    fn limit(&self, per_lane: usize) -> usize {
        if self.failures >= FAILING_STREAK {
            1
        } else {
            per_lane
        }
    }
}

/// The lanes.
#[derive(Debug)]
pub(crate) struct Scheduler<T> {
    limits: Limits,
    lanes: HashMap<Uuid, Lane<T>>,
    ready: VecDeque<Uuid>,
    in_flight: usize,
    held: usize,
}

impl<T> Scheduler<T> {
    pub(crate) fn new(limits: Limits) -> Self {
        Scheduler {
            limits,
            lanes: HashMap::new(),
            ready: VecDeque::new(),
            in_flight: 0,
            held: 0,
        }
    }

    /// Rows that may still be taken in (how many to claim at most).
    pub(crate) fn room(&self) -> usize {
        self.limits.hold.saturating_sub(self.held)
    }

    /// Requests running.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Rows held (waiting and running).
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Rows the lane could still take (0 when memory is full).
    pub(crate) fn lane_free(&self, lane_id: Uuid) -> usize {
        let cap = self.limits.per_lane + self.limits.lane_queue;
        let used = self
            .lanes
            .get(&lane_id)
            .map_or(0, |l| l.queue.len() + l.in_flight);
        cap.saturating_sub(used).min(self.room())
    }

    /// Takes a row into its lane, or gives it back when the lane (or memory) is full.
    pub(crate) fn offer(&mut self, lane_id: Uuid, item: T) -> Result<(), T> {
        if self.held >= self.limits.hold {
            return Err(item);
        }
        let cap = self.limits.per_lane + self.limits.lane_queue;
        let lane = self.lanes.entry(lane_id).or_insert_with(|| Lane {
            queue: VecDeque::new(),
            in_flight: 0,
            failures: 0,
            in_ready: false,
        });
        if lane.queue.len() + lane.in_flight >= cap {
            return Err(item);
        }
        lane.queue.push_back(item);
        self.held += 1;
        if !lane.in_ready {
            lane.in_ready = true;
            self.ready.push_back(lane_id);
        }
        Ok(())
    }

    /// The next row to send, taking lanes in turn; `None` when every global slot is
    /// busy or no lane may start anything.
    pub(crate) fn next(&mut self) -> Option<(Uuid, T)> {
        if self.in_flight >= self.limits.global {
            return None;
        }
        while let Some(lane_id) = self.ready.pop_front() {
            let per_lane = self.limits.per_lane;
            let Some(lane) = self.lanes.get_mut(&lane_id) else {
                continue;
            };
            if lane.queue.is_empty() || lane.in_flight >= lane.limit(per_lane) {
                // Put back in turn when a request of it finishes.
                lane.in_ready = false;
                continue;
            }
            let Some(item) = lane.queue.pop_front() else {
                lane.in_ready = false;
                continue;
            };
            lane.in_flight += 1;
            self.in_flight += 1;
            if !lane.queue.is_empty() && lane.in_flight < lane.limit(per_lane) {
                self.ready.push_back(lane_id);
            } else {
                lane.in_ready = false;
            }
            return Some((lane_id, item));
        }
        None
    }

    /// A row handed out by [`Scheduler::next`] is done.
    pub(crate) fn finish(&mut self, lane_id: Uuid, outcome: Outcome) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.held = self.held.saturating_sub(1);
        let per_lane = self.limits.per_lane;
        let Some(lane) = self.lanes.get_mut(&lane_id) else {
            return;
        };
        lane.in_flight = lane.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Delivered => lane.failures = 0,
            Outcome::Failed => lane.failures = lane.failures.saturating_add(1),
            Outcome::Skipped => {}
        }
        if lane.queue.is_empty() && lane.in_flight == 0 && lane.failures == 0 {
            // Forget idle, healthy lanes: memory follows the active integrations.
            self.lanes.remove(&lane_id);
            return;
        }
        if !lane.in_ready && !lane.queue.is_empty() && lane.in_flight < lane.limit(per_lane) {
            lane.in_ready = true;
            self.ready.push_back(lane_id);
        }
    }

    /// Removes the waiting rows of a lane (its integration was deleted or changed);
    /// rows in flight finish normally.
    pub(crate) fn drain_lane(&mut self, lane_id: Uuid) -> Vec<T> {
        let Some(lane) = self.lanes.get_mut(&lane_id) else {
            return Vec::new();
        };
        let out: Vec<T> = lane.queue.drain(..).collect();
        self.held = self.held.saturating_sub(out.len());
        out
    }

    /// Whether the lane is failing (one request at a time).
    pub(crate) fn is_failing(&self, lane_id: Uuid) -> bool {
        self.lanes
            .get(&lane_id)
            .is_some_and(|l| l.failures >= FAILING_STREAK)
    }

    /// Forgets the failure streak of a lane (e.g. its settings changed).
    pub(crate) fn reset_failures(&mut self, lane_id: Uuid) {
        if let Some(lane) = self.lanes.get_mut(&lane_id) {
            lane.failures = 0;
            if !lane.in_ready && !lane.queue.is_empty() {
                lane.in_ready = true;
                self.ready.push_back(lane_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            global: 4,
            per_lane: 2,
            lane_queue: 1,
            hold: 8,
        }
    }

    fn start_all(s: &mut Scheduler<u32>) -> Vec<(Uuid, u32)> {
        std::iter::from_fn(|| s.next()).collect()
    }

    #[test]
    fn lane_capacity_is_in_flight_plus_queue() {
        let mut s = Scheduler::new(limits());
        let a = Uuid::from_u128(1);
        assert!(s.offer(a, 1).is_ok());
        assert!(s.offer(a, 2).is_ok());
        assert!(s.offer(a, 3).is_ok());
        assert_eq!(s.offer(a, 4), Err(4), "2 in flight + 1 waiting");
        let started = start_all(&mut s);
        assert_eq!(started, vec![(a, 1), (a, 2)], "per-lane limit 2");
        assert_eq!(s.offer(a, 4), Err(4), "still 2 running + 1 waiting");
        s.finish(a, Outcome::Delivered);
        assert_eq!(s.next(), Some((a, 3)));
        assert_eq!(s.lane_free(a), 1);
        assert!(s.offer(a, 4).is_ok());
        assert_eq!(s.lane_free(a), 0);
        assert_eq!(s.lane_free(Uuid::from_u128(9)), 3);
        assert_eq!(s.held(), 3);
    }

    #[test]
    fn a_saturated_lane_leaves_global_slots_to_others() {
        let mut s = Scheduler::new(limits());
        let (slow, fast) = (Uuid::from_u128(1), Uuid::from_u128(2));
        for i in 0..3 {
            s.offer(slow, i).unwrap();
        }
        assert_eq!(start_all(&mut s).len(), 2);
        // The slow lane is full; the fast one still gets in and runs.
        assert!(s.offer(slow, 9).is_err());
        s.offer(fast, 10).unwrap();
        s.offer(fast, 11).unwrap();
        assert_eq!(start_all(&mut s), vec![(fast, 10), (fast, 11)]);
        assert_eq!(s.in_flight(), 4);
        // Global limit reached: nothing more starts until something finishes.
        s.offer(fast, 12).unwrap();
        assert_eq!(s.next(), None);
        s.finish(fast, Outcome::Delivered);
        assert_eq!(s.next(), Some((fast, 12)));
    }

    #[test]
    fn free_slots_go_round_robin() {
        let mut s = Scheduler::new(Limits {
            global: 1,
            per_lane: 1,
            lane_queue: 10,
            hold: 100,
        });
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        for i in 0..5 {
            s.offer(a, i).unwrap();
        }
        for i in 100..102 {
            s.offer(b, i).unwrap();
        }
        let mut order = Vec::new();
        while let Some((lane, item)) = s.next() {
            order.push(item);
            s.finish(lane, Outcome::Delivered);
        }
        assert_eq!(order, vec![0, 100, 1, 101, 2, 3, 4]);
        assert_eq!(s.held(), 0);
        assert_eq!(s.room(), 100);
    }

    #[test]
    fn a_failing_lane_sends_one_at_a_time_until_it_recovers() {
        let mut s = Scheduler::new(Limits {
            global: 10,
            per_lane: 3,
            lane_queue: 10,
            hold: 100,
        });
        let a = Uuid::from_u128(1);
        for i in 0..10 {
            s.offer(a, i).unwrap();
        }
        assert_eq!(start_all(&mut s).len(), 3);
        for _ in 0..3 {
            s.finish(a, Outcome::Failed);
        }
        assert!(s.is_failing(a));
        assert_eq!(start_all(&mut s).len(), 1, "one probe");
        s.finish(a, Outcome::Skipped);
        assert!(s.is_failing(a), "a skipped row proves nothing");
        assert_eq!(start_all(&mut s).len(), 1);
        s.finish(a, Outcome::Delivered);
        assert!(!s.is_failing(a));
        assert_eq!(start_all(&mut s).len(), 3, "back to full speed");
    }

    #[test]
    fn hold_limit_and_draining() {
        let mut s = Scheduler::new(Limits {
            global: 1,
            per_lane: 1,
            lane_queue: 100,
            hold: 3,
        });
        let a = Uuid::from_u128(1);
        for i in 0..3 {
            s.offer(a, i).unwrap();
        }
        assert_eq!(s.room(), 0);
        assert_eq!(s.offer(Uuid::from_u128(2), 9), Err(9));
        assert_eq!(s.next(), Some((a, 0)));
        assert_eq!(s.drain_lane(a), vec![1, 2]);
        assert_eq!(s.held(), 1);
        s.finish(a, Outcome::Delivered);
        assert_eq!(s.held(), 0);
        assert_eq!(s.next(), None);
    }
}
