//! [`Codecs`]: the async, `Send + Sync` face of the codecs.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;

use tokio::sync::oneshot;

use crate::js::{JsEngine, ScriptInfo};
use crate::{
    cayenne, CodecConfig, CodecError, CodecLimits, Decoded, DownlinkInput, Encoded, SetupError,
    UplinkInput,
};

/// Jobs that may wait per worker before callers are made to wait for queue space.
const QUEUE_PER_WORKER: usize = 256;

/// Native stack a worker needs on top of the JavaScript stack limit (our frames,
/// QuickJS's C frames below its last stack check).
const WORKER_STACK_MARGIN: usize = 2 << 20;

type Reply<T> = oneshot::Sender<Result<T, CodecError>>;

/// A unit of work for a JavaScript worker.
enum Job {
    Decode(u128, String, UplinkInput, Reply<Decoded>),
    Encode(u128, String, DownlinkInput, Reply<Encoded>),
    Check(String, Reply<ScriptInfo>),
}

#[derive(Debug)]
struct Inner {
    jobs: flume::Sender<Job>,
    limits: CodecLimits,
}

/// The codec service: decode uplinks and encode downlinks with a device profile's codec.
///
/// A cheap, `Clone + Send + Sync` handle. Cayenne LPP runs inline on the calling
/// task (it is a few microseconds of pure Rust). JavaScript goes over a bounded
/// queue to `limits.workers` dedicated threads; each owns a [`JsEngine`] whose
/// QuickJS runtimes never leave that thread (rquickjs runtimes are `!Send`
/// without its `parallel` feature, and a thread per engine needs no locking).
/// Any idle worker takes the next job, so one slow script delays only the job it
/// runs; the price is that a script is compiled once per worker that sees it.
/// The reply comes back on a oneshot channel, so callers await without blocking
/// a tokio thread and without `spawn_blocking`. When the queue is full, callers
/// wait for room (back-pressure) instead of failing.
///
/// The workers stop when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Codecs {
    inner: Arc<Inner>,
}

impl Codecs {
    /// Validate the limits and start the JavaScript worker threads.
    pub fn new(limits: CodecLimits) -> Result<Self, SetupError> {
        limits.validate()?;
        let (tx, rx) = flume::bounded(QUEUE_PER_WORKER.saturating_mul(limits.workers));
        for i in 0..limits.workers {
            let rx = rx.clone();
            let worker_limits = limits.clone();
            thread::Builder::new()
                .name(format!("lorikeet-codec-{i}"))
                .stack_size(limits.stack_bytes.saturating_add(WORKER_STACK_MARGIN))
                .spawn(move || worker(&rx, worker_limits))?;
        }
        Ok(Codecs {
            inner: Arc::new(Inner { jobs: tx, limits }),
        })
    }

    /// The limits the workers run with.
    pub fn limits(&self) -> &CodecLimits {
        &self.inner.limits
    }

    /// Decode an uplink's payload into the up event's `object`.
    ///
    /// `Ok(None)` when the profile has no codec: that is a normal outcome (the
    /// uplink is delivered with `data` only), not an error to log.
    pub async fn decode_uplink(
        &self,
        codec: &CodecConfig,
        input: UplinkInput,
    ) -> Result<Option<Decoded>, CodecError> {
        match codec {
            CodecConfig::None => Ok(None),
            CodecConfig::CayenneLpp => Ok(Some(Decoded {
                object: cayenne::decode(&input.bytes)?,
                warnings: Vec::new(),
            })),
            CodecConfig::JavaScript { script, scope } => self
                .submit(|reply| Job::Decode(*scope, script.clone(), input, reply))
                .await
                .map(Some),
        }
    }

    /// Encode a downlink queued as an object into its FRMPayload.
    ///
    /// [`CodecError::NoCodec`] when the profile has no codec: the caller asked for
    /// something that cannot be done, and should refuse the queue item.
    pub async fn encode_downlink(
        &self,
        codec: &CodecConfig,
        input: DownlinkInput,
    ) -> Result<Encoded, CodecError> {
        match codec {
            CodecConfig::None => Err(CodecError::NoCodec),
            CodecConfig::CayenneLpp => Ok(Encoded {
                bytes: cayenne::encode(&input.object)?,
                f_port: input.f_port,
                warnings: Vec::new(),
            }),
            CodecConfig::JavaScript { script, scope } => {
                self.submit(|reply| Job::Encode(*scope, script.clone(), input, reply))
                    .await
            }
        }
    }

    /// Load a script and report which entry points it defines, so a device
    /// profile with a broken script can be refused when it is saved.
    pub async fn check_script(&self, script: &str) -> Result<ScriptInfo, CodecError> {
        self.submit(|reply| Job::Check(script.to_owned(), reply))
            .await
    }

    async fn submit<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, CodecError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .jobs
            .send_async(job(reply))
            .await
            .map_err(|_| CodecError::Unavailable)?;
        answer.await.map_err(|_| CodecError::Unavailable)?
    }
}

/// A worker: take jobs until every [`Codecs`] handle is gone.
fn worker(jobs: &flume::Receiver<Job>, limits: CodecLimits) {
    let mut engine = JsEngine::new(limits.clone());
    while let Ok(job) = jobs.recv() {
        let panicked = match job {
            Job::Decode(scope, script, input, reply) => serve(&mut engine, reply, |e| {
                e.decode_uplink_in(scope, &script, &input)
            }),
            Job::Encode(scope, script, input, reply) => serve(&mut engine, reply, |e| {
                e.encode_downlink_in(scope, &script, &input)
            }),
            Job::Check(script, reply) => serve(&mut engine, reply, |e| e.check(&script)),
        };
        if panicked {
            // Nothing in the engine should panic; if something did, start from a
            // clean cache rather than trust runtimes a panic unwound through.
            engine = JsEngine::new(limits.clone());
        }
    }
}

/// Run one job and answer it; returns whether it panicked.
fn serve<T>(
    engine: &mut JsEngine,
    reply: Reply<T>,
    f: impl FnOnce(&mut JsEngine) -> Result<T, CodecError>,
) -> bool {
    if reply.is_closed() {
        // The caller gave up (its future was dropped): skip the work.
        return false;
    }
    match catch_unwind(AssertUnwindSafe(|| f(engine))) {
        Ok(result) => {
            let _ = reply.send(result);
            false
        }
        Err(_) => {
            let _ = reply.send(Err(CodecError::Engine {
                reason: "a codec worker panicked".into(),
            }));
            true
        }
    }
}
