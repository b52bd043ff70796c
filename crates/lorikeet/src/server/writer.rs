//! The batched writer: every persistent change of the hot path goes through one task
//! that groups them into transactions (group commit), so the uplink path never waits
//! on a database round trip and the database sees a few large commits instead of
//! thousands of small ones.
//!
//! Commit before send: each producer (the network-server loop, the application
//! task) numbers its writes, and the writer publishes, per producer, the number of
//! the last write it committed. A producer holds back whatever depends on a write —
//! a PULL_RESP on the session or counters it advanced, a live event on its row —
//! until that number has been committed. A producer's writes arrive in the order it
//! queued them and batches commit in order, so "committed up to n" covers every
//! earlier write of that producer, and every write another producer queued before
//! it (the application task queues an event only after the core's writes for it).

use std::sync::Arc;
use std::time::Duration;

use lorikeet_storage::{Storage, WriteOp};
use tokio::sync::{mpsc, watch, Notify};
use tracing::{error, info, warn};

/// Most ops in one transaction.
pub const MAX_BATCH: usize = 4_096;
/// Shortest time between the starts of two commits. An idle server commits a write
/// at once; under load, what arrives meanwhile joins the next batch, so commits stay
/// few and large (each one costs a sync of the log and wakes the webhook worker,
/// the core loop and the application task) while a frame waits at most this plus
/// one commit for the writes it depends on.
pub const COMMIT_PACE: Duration = Duration::from_millis(5);
/// Longest pause between retries while the database is unavailable.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(1);

/// A write and who queued it.
#[derive(Debug)]
pub struct Queued {
    producer: usize,
    seq: u64,
    op: WriteOp,
}

/// One producer's end of the writer's queue. Not `Clone`: its numbering must
/// follow the channel order, so each task owns its own.
#[derive(Debug)]
pub struct Producer {
    tx: mpsc::Sender<Queued>,
    id: usize,
    last: u64,
    committed: watch::Receiver<u64>,
}

impl Producer {
    /// Queues `op` (waiting while the queue is full: backpressure) and returns its
    /// number, or `None` when the writer is gone (shutdown).
    pub async fn send(&mut self, op: WriteOp) -> Option<u64> {
        let seq = self.last + 1;
        let q = Queued {
            producer: self.id,
            seq,
            op,
        };
        self.tx.send(q).await.ok()?;
        self.last = seq;
        Some(seq)
    }

    /// Queues `op` unless the queue is full; returns whether it was queued.
    pub fn try_send(&mut self, op: WriteOp) -> bool {
        let seq = self.last + 1;
        let q = Queued {
            producer: self.id,
            seq,
            op,
        };
        if self.tx.try_send(q).is_ok() {
            self.last = seq;
            true
        } else {
            false
        }
    }

    /// The number of the last write queued (0: none yet).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Whether the write numbered `seq` (and every earlier one) is committed.
    pub fn is_committed(&self, seq: u64) -> bool {
        *self.committed.borrow() >= seq
    }

    /// A receiver that changes whenever more of this producer's writes commit.
    pub fn watch_committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }
}

/// The writer's end of the queue.
#[derive(Debug)]
pub struct Queue {
    rx: mpsc::Receiver<Queued>,
    committed: Vec<watch::Sender<u64>>,
}

/// A queue of `capacity` writes shared by `producers` producers.
pub fn channel(capacity: usize, producers: usize) -> (Vec<Producer>, Queue) {
    let (tx, rx) = mpsc::channel(capacity);
    let mut senders = Vec::with_capacity(producers);
    let mut handles = Vec::with_capacity(producers);
    for id in 0..producers {
        let (c_tx, c_rx) = watch::channel(0);
        senders.push(c_tx);
        handles.push(Producer {
            tx: tx.clone(),
            id,
            last: 0,
            committed: c_rx,
        });
    }
    (
        handles,
        Queue {
            rx,
            committed: senders,
        },
    )
}

/// Runs until every producer is dropped, committing whatever is queued, at most
/// one commit per [`COMMIT_PACE`] (ops that arrive during a commit or its pace
/// form the next batch, so batches grow with the load and an idle server commits
/// at once).
/// `committed` is notified after each batch, so the webhook worker looks at the
/// new events as soon as they are visible instead of at its next poll.
pub async fn run(storage: Arc<dyn Storage>, mut queue: Queue, committed: Arc<Notify>) {
    metrics::gauge!("lorikeet_storage_unavailable").set(0.0);
    let producers = queue.committed.len();
    let mut batch: Vec<WriteOp> = Vec::with_capacity(MAX_BATCH);
    let mut upto = vec![0u64; producers];
    let mut last_start: Option<tokio::time::Instant> = None;
    while let Some(first) = queue.rx.recv().await {
        take(first, &mut batch, &mut upto);
        let ready = last_start.map(|t| t + COMMIT_PACE);
        while batch.len() < MAX_BATCH {
            let next = match ready {
                Some(at) if tokio::time::Instant::now() < at => {
                    match tokio::time::timeout_at(at, queue.rx.recv()).await {
                        Ok(q) => q,
                        Err(_) => continue,
                    }
                }
                _ => queue.rx.try_recv().ok(),
            };
            match next {
                Some(q) => take(q, &mut batch, &mut upto),
                None => break,
            }
        }
        last_start = Some(tokio::time::Instant::now());
        commit(&*storage, &mut batch).await;
        for (tx, n) in queue.committed.iter().zip(&upto) {
            if *n > *tx.borrow() {
                tx.send_replace(*n);
            }
        }
        committed.notify_one();
    }
}

fn take(q: Queued, batch: &mut Vec<WriteOp>, upto: &mut [u64]) {
    if let Some(n) = upto.get_mut(q.producer) {
        *n = (*n).max(q.seq);
    }
    batch.push(q.op);
}

/// Writes `batch` in one transaction. While the database is unavailable (a
/// transient error: connection lost, server shutting down or starting, pool
/// timeout, lock contention) it retries without limit: accepted data is never
/// given up because the database blinked, and meanwhile the queue fills and intake
/// sheds at the gateway edge. A batch that keeps failing for another reason is
/// written op by op, so one bad op cannot hold back everything else; an op that
/// fails on its own is logged and counted.
async fn commit(storage: &dyn Storage, batch: &mut Vec<WriteOp>) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len();
    let mut retry = Retry::new();
    let mut failures = 0;
    loop {
        let started = std::time::Instant::now();
        match storage.apply(batch).await {
            Ok(()) => {
                retry.recovered();
                metrics::counter!("lorikeet_storage_ops_written_total").increment(n as u64);
                metrics::histogram!("lorikeet_storage_batch_size").record(n as f64);
                metrics::histogram!("lorikeet_storage_batch_seconds")
                    .record(started.elapsed().as_secs_f64());
                batch.clear();
                return;
            }
            Err(e) if e.is_transient() => retry.unavailable(n, &e),
            Err(e) => {
                failures += 1;
                if failures >= 3 {
                    retry.recovered();
                    warn!(
                        ops = n,
                        "batch keeps failing ({e}); writing its ops one by one"
                    );
                    one_by_one(storage, std::mem::take(batch)).await;
                    return;
                }
                warn!(ops = n, "batch write failed, retrying: {e}");
            }
        }
        retry.wait().await;
    }
}

async fn one_by_one(storage: &dyn Storage, ops: Vec<WriteOp>) {
    for op in ops {
        let mut retry = Retry::new();
        let mut failures = 0;
        loop {
            match storage.apply(std::slice::from_ref(&op)).await {
                Ok(()) => {
                    retry.recovered();
                    metrics::counter!("lorikeet_storage_ops_written_total").increment(1);
                    break;
                }
                Err(e) if e.is_transient() => retry.unavailable(1, &e),
                Err(e) => {
                    failures += 1;
                    if failures >= 3 {
                        retry.recovered();
                        error!(?op, "write dropped: it fails on its own ({e})");
                        metrics::counter!("lorikeet_storage_ops_dropped_total").increment(1);
                        break;
                    }
                }
            }
            retry.wait().await;
        }
    }
}

/// Backoff and the `lorikeet_storage_unavailable` gauge while a write waits for the
/// database to come back.
struct Retry {
    delay: Duration,
    down_since: Option<std::time::Instant>,
}

impl Retry {
    fn new() -> Self {
        Retry {
            delay: Duration::from_millis(25),
            down_since: None,
        }
    }

    fn unavailable(&mut self, ops: usize, e: &lorikeet_storage::StoreError) {
        metrics::counter!("lorikeet_storage_retries_total").increment(1);
        if self.down_since.is_none() {
            self.down_since = Some(std::time::Instant::now());
            metrics::gauge!("lorikeet_storage_unavailable").set(1.0);
            warn!(
                ops,
                "database unavailable; holding the writes and retrying until it is back: {e}"
            );
        }
    }

    fn recovered(&mut self) {
        if let Some(since) = self.down_since.take() {
            metrics::gauge!("lorikeet_storage_unavailable").set(0.0);
            info!(after = ?since.elapsed(), "database available again; writes resumed");
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(MAX_RETRY_DELAY);
    }
}
