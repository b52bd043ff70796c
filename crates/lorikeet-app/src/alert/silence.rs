//! Timers for `device_silent` rules: which devices have been silent longer than
//! their rule allows, found without looking at every device on every tick.
//!
//! Each (rule, device) pair in scope has at most one deadline in a min-heap: the
//! device's last uplink plus the rule's time. An uplink only records the time
//! (one map write); the heap entry is corrected lazily when it comes due — if the
//! device was heard since, the entry moves to the new deadline. So the work per
//! tick is proportional to the deadlines that pass, and the work per uplink is
//! constant, whatever the number of devices.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use lorikeet_lorawan::Eui64;
use uuid::Uuid;

/// Which devices a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every device of the tenant.
    Tenant(Uuid),
    /// Every device of the application.
    Application(Uuid),
}

/// A deadline that passed: the device has been silent for at least the rule's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silent {
    /// The rule.
    pub rule_id: Uuid,
    /// The device.
    pub dev_eui: Eui64,
    /// Its last uplink.
    pub last_seen: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Rule {
    scope: Scope,
    after: TimeDelta,
    /// Bumped when the rule changes, so deadlines of the old version are ignored.
    generation: u32,
}

/// A deadline: when, the rule, the rule's generation, the device.
type Deadline = Reverse<(DateTime<Utc>, Uuid, u32, Eui64)>;

#[derive(Debug, Clone, Copy)]
struct Device {
    application_id: Uuid,
    last_seen: DateTime<Utc>,
}

/// The silence timers of every `device_silent` rule.
#[derive(Debug, Default)]
pub struct SilenceTracker {
    rules: HashMap<Uuid, Rule>,
    devices: HashMap<Eui64, Device>,
    /// Application → tenant, for tenant-wide rules.
    tenants: HashMap<Uuid, Uuid>,
    heap: BinaryHeap<Deadline>,
    /// The (rule, device) pairs with a deadline in the heap.
    scheduled: HashSet<(Uuid, Eui64)>,
    /// Heap entries popped so far (work done, for tests and metrics).
    pub popped: u64,
}

impl SilenceTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        SilenceTracker::default()
    }

    /// How many devices it knows.
    pub fn devices(&self) -> usize {
        self.devices.len()
    }

    /// How many deadlines are pending.
    pub fn pending(&self) -> usize {
        self.heap.len()
    }

    /// Tells which tenant an application belongs to.
    pub fn set_tenant(&mut self, application_id: Uuid, tenant_id: Uuid) {
        self.tenants.insert(application_id, tenant_id);
    }

    fn in_scope(&self, scope: Scope, application_id: Uuid) -> bool {
        match scope {
            Scope::Application(a) => a == application_id,
            Scope::Tenant(t) => self.tenants.get(&application_id) == Some(&t),
        }
    }

    /// Adds or changes a rule: every known device in its scope gets a deadline.
    pub fn upsert_rule(&mut self, rule_id: Uuid, scope: Scope, after: TimeDelta) {
        let generation = self.rules.get(&rule_id).map_or(0, |r| r.generation + 1);
        self.rules.insert(
            rule_id,
            Rule {
                scope,
                after,
                generation,
            },
        );
        self.scheduled.retain(|(r, _)| *r != rule_id);
        let due: Vec<(Eui64, DateTime<Utc>)> = self
            .devices
            .iter()
            .filter(|(_, d)| self.in_scope(scope, d.application_id))
            .map(|(e, d)| (*e, d.last_seen + after))
            .collect();
        for (dev_eui, at) in due {
            self.heap.push(Reverse((at, rule_id, generation, dev_eui)));
            self.scheduled.insert((rule_id, dev_eui));
        }
    }

    /// Removes a rule; its deadlines are dropped as they come due.
    pub fn remove_rule(&mut self, rule_id: Uuid) {
        self.rules.remove(&rule_id);
        self.scheduled.retain(|(r, _)| *r != rule_id);
    }

    /// The rules it tracks.
    pub fn rule_ids(&self) -> impl Iterator<Item = &Uuid> {
        self.rules.keys()
    }

    /// The device was heard at `at` (an uplink). Later times win; an earlier one
    /// (a late copy) changes nothing.
    pub fn seen(&mut self, dev_eui: Eui64, application_id: Uuid, at: DateTime<Utc>) {
        let d = self.devices.entry(dev_eui).or_insert(Device {
            application_id,
            last_seen: at,
        });
        d.application_id = application_id;
        if at > d.last_seen {
            d.last_seen = at;
        }
        let last_seen = d.last_seen;
        if self.rules.is_empty() {
            return;
        }
        // Only pairs without a deadline need one (a new device, or one whose alert
        // fired); the others are corrected when they come due.
        let add: Vec<(Uuid, u32, TimeDelta)> = self
            .rules
            .iter()
            .filter(|(id, r)| {
                !self.scheduled.contains(&(**id, dev_eui)) && self.in_scope(r.scope, application_id)
            })
            .map(|(id, r)| (*id, r.generation, r.after))
            .collect();
        for (id, generation, after) in add {
            self.heap
                .push(Reverse((last_seen + after, id, generation, dev_eui)));
            self.scheduled.insert((id, dev_eui));
        }
    }

    /// The application a known device was last heard in.
    pub fn application_of(&self, dev_eui: Eui64) -> Option<Uuid> {
        self.devices.get(&dev_eui).map(|d| d.application_id)
    }

    /// Forgets a device (deleted).
    pub fn forget(&mut self, dev_eui: Eui64) {
        self.devices.remove(&dev_eui);
    }

    /// The (rule, device) pairs whose silence passed the rule's time by `now`. Each
    /// is reported once; the pair gets a new deadline with the device's next
    /// uplink.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Silent> {
        let mut out = Vec::new();
        while let Some(Reverse((at, rule_id, generation, dev_eui))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            self.popped += 1;
            let Some(rule) = self.rules.get(&rule_id) else {
                continue;
            };
            if rule.generation != generation {
                continue;
            }
            let Some(dev) = self.devices.get(&dev_eui).copied() else {
                self.scheduled.remove(&(rule_id, dev_eui));
                continue;
            };
            if !self.in_scope(rule.scope, dev.application_id) {
                self.scheduled.remove(&(rule_id, dev_eui));
                continue;
            }
            let deadline = dev.last_seen + rule.after;
            if deadline > now {
                self.heap
                    .push(Reverse((deadline, rule_id, generation, dev_eui)));
                continue;
            }
            self.scheduled.remove(&(rule_id, dev_eui));
            out.push(Silent {
                rule_id,
                dev_eui,
                last_seen: dev.last_seen,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn eui(n: u64) -> Eui64 {
        Eui64(n.to_be_bytes())
    }

    #[test]
    fn fires_once_after_the_silence_and_again_after_the_next_silence() {
        let (app, rule) = (Uuid::from_u128(1), Uuid::from_u128(9));
        let mut s = SilenceTracker::new();
        s.seen(eui(1), app, t(0));
        s.upsert_rule(rule, Scope::Application(app), TimeDelta::seconds(60));
        assert!(s.due(t(59)).is_empty());
        s.seen(eui(1), app, t(30)); // heard again: deadline moves to 90
        assert!(s.due(t(60)).is_empty(), "the deadline moved");
        assert!(s.due(t(89)).is_empty());
        let d = s.due(t(90));
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].rule_id, d[0].dev_eui, d[0].last_seen),
            (rule, eui(1), t(30))
        );
        assert!(s.due(t(1000)).is_empty(), "reported once");
        // The device speaks: a new deadline.
        s.seen(eui(1), app, t(1000));
        assert_eq!(s.due(t(1060)).len(), 1);
    }

    #[test]
    fn scopes_rule_changes_and_removal() {
        let (tenant, a1, a2) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let (r1, r2) = (Uuid::from_u128(10), Uuid::from_u128(11));
        let mut s = SilenceTracker::new();
        s.set_tenant(a1, tenant);
        s.seen(eui(1), a1, t(0));
        s.seen(eui(2), a2, t(0)); // a2 belongs to no known tenant
        s.upsert_rule(r1, Scope::Tenant(tenant), TimeDelta::seconds(10));
        s.upsert_rule(r2, Scope::Application(a2), TimeDelta::seconds(20));
        let mut d = s.due(t(30));
        d.sort_by_key(|x| x.dev_eui);
        assert_eq!(
            d.iter().map(|x| (x.rule_id, x.dev_eui)).collect::<Vec<_>>(),
            vec![(r1, eui(1)), (r2, eui(2))]
        );
        // A changed rule starts over; the old deadlines are ignored.
        s.seen(eui(1), a1, t(40));
        s.upsert_rule(r1, Scope::Tenant(tenant), TimeDelta::seconds(100));
        assert!(s.due(t(60)).is_empty());
        assert_eq!(s.due(t(140)).len(), 1);
        // A removed rule reports nothing.
        s.seen(eui(2), a2, t(200));
        s.remove_rule(r2);
        assert!(s.due(t(1000)).is_empty());
        // A forgotten device neither.
        s.seen(eui(1), a1, t(1000));
        s.forget(eui(1));
        assert!(s.due(t(5000)).is_empty());
    }

    #[test]
    fn work_per_tick_follows_the_deadlines_not_the_devices() {
        let app = Uuid::from_u128(1);
        let rule = Uuid::from_u128(2);
        let n: u64 = 100_000;
        let offset = |i: u64| i64::try_from(i % 600).unwrap();
        let mut s = SilenceTracker::new();
        s.upsert_rule(rule, Scope::Application(app), TimeDelta::seconds(3600));
        for i in 0..n {
            s.seen(eui(i), app, t(offset(i)));
        }
        assert_eq!(s.pending(), 100_000);
        // Every device talks every 10 minutes. During the first hour no deadline
        // passes: the ticks touch no entry at all.
        for step in 1..=5 {
            for i in 0..n {
                s.seen(eui(i), app, t(step * 600 + offset(i)));
            }
            for second in (step * 600..step * 600 + 600).step_by(5) {
                assert!(s.due(t(second)).is_empty());
            }
        }
        assert_eq!(s.popped, 0, "no deadline passed, no work");
        // Later an entry is moved (lazily) when its deadline passes, which is at most
        // once per (rule time - uplink interval) = 50 minutes: twice in these 70.
        for step in 6..=12 {
            for i in 0..n {
                s.seen(eui(i), app, t(step * 600 + offset(i)));
            }
            for second in (step * 600..step * 600 + 600).step_by(5) {
                assert!(s.due(t(second)).is_empty());
            }
        }
        assert!(s.popped <= 2 * n, "{} corrections in 70 minutes", s.popped);
        // One device goes quiet: exactly it is reported, an hour after its last uplink.
        let before = s.popped;
        for step in 13..=20 {
            for i in 1..n {
                s.seen(eui(i), app, t(step * 600 + offset(i)));
            }
        }
        assert!(s.due(t(12 * 600 + 3599)).is_empty());
        let d = s.due(t(12 * 600 + 3600));
        assert_eq!(
            d.iter().map(|x| x.dev_eui).collect::<Vec<_>>(),
            vec![eui(0)]
        );
        assert!(s.popped - before <= n);
        assert_eq!(s.devices(), 100_000);
    }
}
