//! Writes of several events in one request: a sink submits each event's part and
//! waits; one task writes what has gathered. It never waits for more: what queued
//! while the previous write ran goes out together, so a quiet integration writes at
//! once and a busy one writes in batches as large as its concurrency allows.
//!
//! Every event of a batch gets the batch's outcome: a failed write is retried by
//! the delivery engine event by event, like any failed delivery.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::error::DeliveryError;

type Reply = oneshot::Sender<Result<(), DeliveryError>>;

/// One batching writer; cheap to clone (clones share the writer task).
pub(crate) struct Batcher<T> {
    max: usize,
    write: Arc<dyn Fn(Vec<T>, Duration) -> WriteFuture + Send + Sync>,
    // Started at the first submit, inside the runtime.
    queue: Arc<OnceLock<mpsc::Sender<(T, Duration, Reply)>>>,
}

/// A write of one batch in progress.
pub(crate) type WriteFuture =
    std::pin::Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send>>;

impl<T> Clone for Batcher<T> {
    fn clone(&self) -> Self {
        Batcher {
            max: self.max,
            write: self.write.clone(),
            queue: self.queue.clone(),
        }
    }
}

impl<T: Send + 'static> Batcher<T> {
    /// A batcher of at most `max` items per `write` (given the first item's timeout).
    pub(crate) fn new(
        max: usize,
        write: impl Fn(Vec<T>, Duration) -> WriteFuture + Send + Sync + 'static,
    ) -> Self {
        Batcher {
            max: max.max(1),
            write: Arc::new(write),
            queue: Arc::new(OnceLock::new()),
        }
    }

    /// Submits one item and waits for the outcome of the write that carried it.
    pub(crate) async fn submit(&self, item: T, timeout: Duration) -> Result<(), DeliveryError> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(self.max * 4);
            tokio::spawn(run(rx, self.max, self.write.clone()));
            tx
        });
        let (reply, outcome) = oneshot::channel();
        queue
            .send((item, timeout, reply))
            .await
            .map_err(|_| DeliveryError::Request("the batch writer stopped".into()))?;
        outcome
            .await
            .unwrap_or_else(|_| Err(DeliveryError::Request("the batch writer stopped".into())))
    }
}

async fn run<T>(
    mut rx: mpsc::Receiver<(T, Duration, Reply)>,
    max: usize,
    write: Arc<dyn Fn(Vec<T>, Duration) -> WriteFuture + Send + Sync>,
) {
    // Ends when every handle (the sink and its sends) is gone.
    while let Some((first, timeout, reply)) = rx.recv().await {
        let mut items = vec![first];
        let mut replies = vec![reply];
        while items.len() < max {
            match rx.try_recv() {
                Ok((item, _, reply)) => {
                    items.push(item);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let outcome = write(items, timeout).await;
        for r in replies {
            // A send whose caller gave up (timed out) has no one to tell.
            let _ = r.send(outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn items_sent_while_a_write_runs_go_out_together() {
        let batches: Arc<Mutex<Vec<Vec<u32>>>> = Arc::default();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (b2, g2) = (batches.clone(), gate.clone());
        let batcher = Batcher::new(3, move |items: Vec<u32>, _| {
            let (b, g) = (b2.clone(), g2.clone());
            Box::pin(async move {
                let fail = items.contains(&99);
                b.lock().expect("lock").push(items);
                // Each write waits for the test to let it through.
                g.acquire().await.expect("open").forget();
                if fail {
                    Err(DeliveryError::Request("refused".into()))
                } else {
                    Ok(())
                }
            })
        });
        let t = Duration::from_secs(1);
        let submit = |n: u32| {
            let b = batcher.clone();
            tokio::spawn(async move { b.submit(n, t).await })
        };
        let first = submit(1);
        while batches.lock().expect("lock").is_empty() {
            tokio::task::yield_now().await;
        }
        // The first write runs (and waits); four more queue behind it.
        let rest: Vec<_> = [2, 3, 99, 5].into_iter().map(submit).collect();
        let queue = batcher.queue.get().expect("started").clone();
        while queue.capacity() > queue.max_capacity() - 4 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(10);
        assert!(first.await.expect("join").is_ok());
        let mut outcomes = Vec::new();
        for r in rest {
            outcomes.push(r.await.expect("join").is_ok());
        }
        let got = batches.lock().expect("lock").clone();
        // 1 alone, then the four that waited in batches of at most 3.
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], vec![1]);
        assert_eq!(got[1].len(), 3, "{got:?}");
        assert_eq!(got.iter().flatten().count(), 5, "{got:?}");
        // Everything in the batch with 99 failed with it; the rest went through.
        for (n, ok) in [2, 3, 99, 5].iter().zip(outcomes) {
            let failed_batch = got.iter().any(|b| b.contains(n) && b.contains(&99));
            assert_eq!(ok, !failed_batch, "{n}: {got:?}");
        }
    }
}
