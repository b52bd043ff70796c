//! The batched writer: every persistent change of the hot path goes through one task
//! that groups them into transactions (group commit), so the uplink path never waits
//! on a database round trip and the database sees a few large commits instead of
//! thousands of small ones.

use std::sync::Arc;
use std::time::Duration;

use lorikeet_storage::{Storage, WriteOp};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tracing::{error, warn};

/// Most ops in one transaction.
pub const MAX_BATCH: usize = 4_096;
/// How long the first op of a batch waits for company.
pub const BATCH_WINDOW: Duration = Duration::from_millis(10);

/// Runs until every sender is dropped, then flushes what is left and returns.
/// `committed` is notified after each batch, so the webhook worker looks at the
/// new events as soon as they are visible instead of at its next poll.
pub async fn run(
    storage: Arc<dyn Storage>,
    mut rx: mpsc::Receiver<WriteOp>,
    committed: Arc<Notify>,
) {
    let mut batch: Vec<WriteOp> = Vec::with_capacity(MAX_BATCH);
    let mut closed = false;
    while !closed {
        match rx.recv().await {
            Some(op) => batch.push(op),
            None => break,
        }
        let deadline = Instant::now() + BATCH_WINDOW;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(op)) => batch.push(op),
                Ok(None) => {
                    closed = true;
                    break;
                }
                Err(_) => break,
            }
        }
        commit(&*storage, &mut batch).await;
        committed.notify_one();
    }
    commit(&*storage, &mut batch).await;
    committed.notify_one();
}

/// Writes `batch` in one transaction, retrying while the database is unavailable.
/// A batch that keeps failing for another reason is written op by op, so one bad op
/// cannot hold back everything else; an op that fails on its own is logged and counted.
async fn commit(storage: &dyn Storage, batch: &mut Vec<WriteOp>) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len();
    let mut delay = Duration::from_millis(50);
    let mut failures = 0;
    loop {
        let started = std::time::Instant::now();
        match storage.apply(batch).await {
            Ok(()) => {
                metrics::counter!("lorikeet_storage_ops_written_total").increment(n as u64);
                metrics::histogram!("lorikeet_storage_batch_size").record(n as f64);
                metrics::histogram!("lorikeet_storage_batch_seconds")
                    .record(started.elapsed().as_secs_f64());
                batch.clear();
                return;
            }
            Err(e) if e.is_transient() => {
                warn!(
                    ops = n,
                    "database unavailable, retrying the batch in {delay:?}: {e}"
                );
            }
            Err(e) => {
                failures += 1;
                if failures >= 3 {
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
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn one_by_one(storage: &dyn Storage, ops: Vec<WriteOp>) {
    for op in ops {
        let mut delay = Duration::from_millis(50);
        let mut failures = 0;
        loop {
            match storage.apply(std::slice::from_ref(&op)).await {
                Ok(()) => break,
                Err(e) if e.is_transient() => {}
                Err(e) => {
                    failures += 1;
                    if failures >= 3 {
                        error!(?op, "write dropped after repeated failures: {e}");
                        metrics::counter!("lorikeet_storage_ops_dropped_total").increment(1);
                        break;
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}
