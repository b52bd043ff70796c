//! JavaScript payload formatters in QuickJS.
//!
//! [`JsEngine`] is single-threaded and synchronous: it owns a bounded cache of
//! loaded scripts, one QuickJS runtime and context per script, and runs
//! `decodeUplink`/`encodeDownlink` in them under the [`CodecLimits`]. The
//! [`crate::Codecs`] pool runs one engine per worker thread.
//!
//! Scripts are cached per scope (the device profile) and source, so profiles with the
//! same source, in one tenant or two, never share a runtime or its globals. Globals a
//! script keeps between calls stay within its profile, and even there are not
//! dependable: each worker thread has its own runtime.
//!
//! Why one runtime per script and not one per worker with a context per script:
//! QuickJS's memory limit, interrupt handler and out-of-memory state belong to
//! the runtime, so a per-script runtime makes a memory bomb in one tenant's
//! script unable to starve another's, and lets us throw a broken runtime away
//! without touching the others. A runtime with its context costs about 100 KB.

mod convert;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rquickjs::{
    context::EvalOptions, convert::Coerced, Array, Context, Ctx, Object, Runtime, Value,
};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::{CodecError, CodecLimits, Decoded, DownlinkInput, Encoded, Stage, UplinkInput};
use convert::{as_function, describe, to_js, ConvError, ToJson};
pub use convert::{MAX_DEPTH, MAX_OUTPUT_BYTES};

/// File name scripts are compiled under; it shows in stack traces (`codec.js:3:7`).
const FILE_NAME: &str = "codec.js";

/// The `Buffer` that ChirpStack codecs expect. Compiling it costs about 0.45 ms
/// and 50 KB per runtime, so it is compiled on the first use of `Buffer`.
const PRELUDE: &str = include_str!("prelude.js");

/// Installs `Buffer` as a global accessor that evaluates the prelude source on
/// first read; assigning `Buffer` (a script's own) replaces it without loading.
const LAZY_BUFFER: &str = r#"(function (source) {
  var indirectEval = eval;
  Object.defineProperty(globalThis, "Buffer", {
    configurable: true,
    get: function () { indirectEval(source); return globalThis.Buffer; },
    set: function (value) {
      Object.defineProperty(globalThis, "Buffer", { value: value, writable: true, configurable: true });
    }
  });
})"#;

/// Longest `bytes` array `encodeDownlink` may return (far above any LoRaWAN payload;
/// the network server checks the real per-data-rate maximum).
const MAX_DOWNLINK_BYTES: usize = 1 << 16;

/// Longest message (exception text, one warning or error) kept, in bytes: they end
/// up in log events, which must stay small whatever the script throws.
const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest stack trace kept, in bytes.
const MAX_STACK_BYTES: usize = 4096;
/// Most `warnings` or `errors` entries kept; the rest are summarised.
const MAX_MESSAGES: usize = 32;

/// Cut `s` to at most `max` bytes on a character boundary, marking the cut.
fn clip(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// The time budget of the call in progress, shared with the interrupt handler.
#[derive(Debug, Default)]
struct Deadline {
    at: Cell<Option<Instant>>,
    fired: Cell<bool>,
}

impl Deadline {
    fn arm(&self, limit: Duration) {
        self.at.set(Instant::now().checked_add(limit));
        self.fired.set(false);
    }

    fn disarm(&self) {
        self.at.set(None);
    }

    /// Has the budget run out? For our own loops; does not mark the run as interrupted.
    fn passed(&self) -> bool {
        self.at.get().is_some_and(|at| Instant::now() >= at)
    }

    /// The interrupt handler: QuickJS calls it every few thousand operations, and
    /// `true` raises an uncatchable "interrupted" error. Once fired it stays fired
    /// until re-armed, so `finally` blocks cannot resume the script.
    fn interrupt(&self) -> bool {
        if !self.fired.get() && self.passed() {
            self.fired.set(true);
        }
        self.fired.get()
    }
}

/// A loaded script: its runtime, its context, and the deadline its interrupt handler reads.
struct Script {
    // Field order is drop order: the context goes before the runtime.
    context: Context,
    runtime: Runtime,
    deadline: Rc<Deadline>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script").finish_non_exhaustive()
    }
}

/// A cache slot: a loaded script, or the deterministic error loading it gave.
#[derive(Debug)]
enum Slot {
    Ready(Script),
    Broken(CodecError),
}

#[derive(Debug)]
struct Entry {
    slot: Slot,
    last_used: u64,
}

/// Which entry points a script defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptInfo {
    /// It defines `decodeUplink`.
    pub decode_uplink: bool,
    /// It defines `encodeDownlink`.
    pub encode_downlink: bool,
}

/// A failure seen inside the context, before it is classified.
enum Failure {
    /// A value was thrown; `void` when it was `null`/`undefined`, which QuickJS
    /// throws when memory ran out while building the error itself.
    Thrown {
        name: Option<String>,
        message: String,
        stack: Option<String>,
        void: bool,
        null: bool,
    },
    /// An allocation failed in a native call.
    Allocation,
    /// The deadline passed while we were driving the job queue.
    TimedOut,
    /// Anything already classified.
    Codec(CodecError),
}

/// The single-threaded JavaScript codec engine (not `Send`: QuickJS runtimes stay
/// on the thread that made them). Use [`crate::Codecs`] from async code.
#[derive(Debug)]
pub struct JsEngine {
    limits: CodecLimits,
    scripts: HashMap<[u8; 32], Entry>,
    clock: u64,
}

impl JsEngine {
    /// An engine with an empty script cache.
    pub fn new(limits: CodecLimits) -> Self {
        JsEngine {
            limits,
            scripts: HashMap::new(),
            clock: 0,
        }
    }

    /// How many scripts are cached (loaded or known broken).
    pub fn cached_scripts(&self) -> usize {
        self.scripts.len()
    }

    /// Run `decodeUplink(input)` of `script`, loading it first if it is not cached.
    pub fn decode_uplink(
        &mut self,
        script: &str,
        input: &UplinkInput,
    ) -> Result<Decoded, CodecError> {
        self.decode_uplink_in(0, script, input)
    }

    /// [`JsEngine::decode_uplink`] in the runtime of `scope` (see
    /// [`crate::CodecConfig::JavaScript`]): the same source in two scopes runs in two
    /// runtimes, with separate globals.
    pub fn decode_uplink_in(
        &mut self,
        scope: u128,
        script: &str,
        input: &UplinkInput,
    ) -> Result<Decoded, CodecError> {
        self.with_script(scope, script, Stage::DecodeUplink, |ctx, deadline| {
            let arg = uplink_arg(ctx, input)?;
            let ret = call_entry_point(ctx, deadline, Stage::DecodeUplink, arg)?;
            parse_decoded(ctx, ret)
        })
    }

    /// Run `encodeDownlink(input)` of `script`, loading it first if it is not cached.
    pub fn encode_downlink(
        &mut self,
        script: &str,
        input: &DownlinkInput,
    ) -> Result<Encoded, CodecError> {
        self.encode_downlink_in(0, script, input)
    }

    /// [`JsEngine::encode_downlink`] in the runtime of `scope`.
    pub fn encode_downlink_in(
        &mut self,
        scope: u128,
        script: &str,
        input: &DownlinkInput,
    ) -> Result<Encoded, CodecError> {
        self.with_script(scope, script, Stage::EncodeDownlink, |ctx, deadline| {
            let arg = downlink_arg(ctx, input)?;
            let ret = call_entry_point(ctx, deadline, Stage::EncodeDownlink, arg)?;
            parse_encoded(ctx, ret, input.f_port)
        })
    }

    /// Load `script` (or find it cached) and report its entry points: lets the API
    /// reject a broken script when a device profile is saved, not at the first uplink.
    pub fn check(&mut self, script: &str) -> Result<ScriptInfo, CodecError> {
        self.with_script(0, script, Stage::Load, |ctx, _| {
            Ok(ScriptInfo {
                decode_uplink: entry_point(ctx, Stage::DecodeUplink)?.is_some(),
                encode_downlink: entry_point(ctx, Stage::EncodeDownlink)?.is_some(),
            })
        })
    }

    /// Find or load the script, run `f` in its context under the time limit, and
    /// throw the runtime away when the run left it in doubt.
    fn with_script<T>(
        &mut self,
        scope: u128,
        source: &str,
        stage: Stage,
        f: impl for<'js> FnOnce(&Ctx<'js>, &Deadline) -> Result<T, Failure>,
    ) -> Result<T, CodecError> {
        // One runtime per (scope, source): identical scripts of two profiles (or
        // tenants) never share globals.
        let mut hash = Sha256::new();
        hash.update(scope.to_be_bytes());
        hash.update(source.as_bytes());
        let key: [u8; 32] = hash.finalize().into();
        self.clock += 1;
        let clock = self.clock;
        if !self.scripts.contains_key(&key) {
            let slot = match load(source, &self.limits) {
                Ok(script) => Slot::Ready(script),
                // Engine failures (no runtime could be made) may pass; retry them.
                Err(e @ CodecError::Engine { .. }) => return Err(e),
                // A script that does not load will not load next time either:
                // remember the error rather than recompile (or spin for the whole
                // time limit at the top level) on every uplink.
                Err(e) => Slot::Broken(e),
            };
            self.evict_to(self.limits.max_cached_scripts.saturating_sub(1));
            self.scripts.insert(
                key,
                Entry {
                    slot,
                    last_used: clock,
                },
            );
        }
        let Some(entry) = self.scripts.get_mut(&key) else {
            return Err(CodecError::Engine {
                reason: "script cache lost an entry".into(),
            });
        };
        entry.last_used = clock;
        let script = match &entry.slot {
            Slot::Ready(script) => script,
            Slot::Broken(e) => return Err(e.clone()),
        };
        let (result, healthy) = run(script, stage, &self.limits, f);
        if !healthy {
            self.scripts.remove(&key);
        }
        result
    }

    /// Drop least recently used scripts until at most `n` remain.
    fn evict_to(&mut self, n: usize) {
        while self.scripts.len() > n {
            let Some(oldest) = self
                .scripts
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            else {
                return;
            };
            self.scripts.remove(&oldest);
        }
    }
}

/// Create a runtime and context for `source` and run its top level.
fn load(source: &str, limits: &CodecLimits) -> Result<Script, CodecError> {
    let engine_err = |e: rquickjs::Error| CodecError::Engine {
        reason: e.to_string(),
    };
    let runtime = Runtime::new().map_err(engine_err)?;
    runtime.set_memory_limit(limits.memory_bytes);
    runtime.set_max_stack_size(limits.stack_bytes);
    let deadline = Rc::new(Deadline::default());
    let handler_deadline = Rc::clone(&deadline);
    runtime.set_interrupt_handler(Some(Box::new(move || handler_deadline.interrupt())));
    let context = Context::full(&runtime).map_err(engine_err)?;
    let script = Script {
        context,
        runtime,
        deadline,
    };
    let (result, healthy) = run(&script, Stage::Load, limits, |ctx, _| {
        install_buffer(ctx).map_err(|e| match thrown(ctx, e) {
            // Not the script's fault, unless the limits leave no room for the basics.
            Failure::Thrown { message, .. } => Failure::Codec(CodecError::Engine {
                reason: format!("prelude failed: {message}"),
            }),
            other => other,
        })?;
        let mut options = EvalOptions::default();
        options.global = true;
        // Sloppy mode, as ChirpStack evaluates: old codecs assign undeclared variables.
        options.strict = false;
        options.backtrace_barrier = true;
        options.filename = Some(FILE_NAME.into());
        let _: Value = ctx
            .eval_with_options(source, options)
            .map_err(|e| thrown(ctx, e))?;
        Ok(())
    });
    result?;
    if !healthy {
        return Err(CodecError::Engine {
            reason: "the script left work pending after loading".into(),
        });
    }
    Ok(script)
}

/// Define the lazy global `Buffer` (see [`LAZY_BUFFER`]).
fn install_buffer(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let install: rquickjs::Function = ctx.eval(LAZY_BUFFER)?;
    install.call::<_, ()>((PRELUDE,))
}

/// Run `f` under the deadline, then drain the job queue (promise callbacks) under
/// the same deadline. Returns the result and whether the runtime is still sound.
fn run<T>(
    script: &Script,
    stage: Stage,
    limits: &CodecLimits,
    f: impl for<'js> FnOnce(&Ctx<'js>, &Deadline) -> Result<T, Failure>,
) -> (Result<T, CodecError>, bool) {
    script.deadline.arm(limits.time);
    let deadline = &script.deadline;
    let outcome = script.context.with(|ctx| {
        let outcome = f(&ctx, deadline);
        while !deadline.passed() {
            match run_job(&ctx) {
                Job::Idle => break,
                Job::Ran => {}
                // Out of memory (or interrupted) in a callback nobody awaits still
                // means this runtime hit its limits.
                Job::Fatal(failure) => return outcome.and(Err(failure)),
            }
        }
        outcome
    });
    let jobs_left = script.runtime.is_job_pending();
    // Interrupted, or promise jobs still queued when the budget ran out.
    let timed_out = deadline.fired.get() || (jobs_left && deadline.passed());
    script.deadline.disarm();
    let usage = script.runtime.memory_usage();
    let memory_exhausted =
        usage.malloc_size.saturating_mul(4) >= usage.malloc_limit.saturating_mul(3);

    let result = match outcome {
        _ if timed_out => Err(CodecError::Timeout {
            stage,
            limit: limits.time,
        }),
        Err(Failure::TimedOut) => Err(CodecError::Timeout {
            stage,
            limit: limits.time,
        }),
        Ok(v) => Ok(v),
        Err(Failure::Allocation) => Err(out_of_memory(stage, limits)),
        // QuickJS throws `null` when it cannot even allocate the error object for an
        // out-of-memory condition. By the time we look, unwinding has usually freed
        // the bomb's memory, so `null` itself is the evidence; a script that throws
        // `null` on purpose is reported as out of memory too (documented).
        Err(Failure::Thrown {
            void: true,
            null: true,
            ..
        }) => Err(out_of_memory(stage, limits)),
        Err(Failure::Thrown { void: true, .. }) if memory_exhausted => {
            Err(out_of_memory(stage, limits))
        }
        Err(Failure::Thrown {
            name,
            message,
            stack,
            ..
        }) => Err(classify_thrown(stage, name, message, stack, limits)),
        Err(Failure::Codec(e)) => Err(e),
    };
    let healthy = !jobs_left
        && !matches!(
            result,
            Err(CodecError::Timeout { .. }
                | CodecError::OutOfMemory { .. }
                | CodecError::Engine { .. })
        );
    (result, healthy)
}

fn out_of_memory(stage: Stage, limits: &CodecLimits) -> CodecError {
    CodecError::OutOfMemory {
        stage,
        limit_bytes: limits.memory_bytes,
    }
}

fn classify_thrown(
    stage: Stage,
    name: Option<String>,
    message: String,
    stack: Option<String>,
    limits: &CodecLimits,
) -> CodecError {
    match name.as_deref() {
        Some("InternalError") if message == "out of memory" => out_of_memory(stage, limits),
        Some("SyntaxError") if stage == Stage::Load => {
            let (line, column) = stack.as_deref().map_or((None, None), first_location);
            CodecError::Syntax {
                message,
                line,
                column,
            }
        }
        Some(name) if !name.is_empty() => CodecError::Exception {
            stage,
            message: format!("{name}: {message}"),
            stack,
        },
        _ => CodecError::Exception {
            stage,
            message,
            stack,
        },
    }
}

/// Line and column of the first `codec.js:LINE:COL` in a QuickJS stack trace.
fn first_location(stack: &str) -> (Option<u32>, Option<u32>) {
    let marker = format!("{FILE_NAME}:");
    let Some(start) = stack.find(&marker) else {
        return (None, None);
    };
    let mut parts = stack[start + marker.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    let line = parts.next().flatten();
    let column = parts.next().flatten();
    (line, column)
}

/// Turn a QuickJS error into a [`Failure`], taking the pending exception if any.
fn thrown(ctx: &Ctx<'_>, e: rquickjs::Error) -> Failure {
    match e {
        rquickjs::Error::Exception => {
            let v = ctx.catch();
            let void =
                v.is_null() || v.is_undefined() || v.type_of() == rquickjs::Type::Uninitialized;
            if void {
                return Failure::Thrown {
                    name: None,
                    message: v.type_name().to_owned(),
                    stack: None,
                    void,
                    null: v.is_null(),
                };
            }
            if let Some(s) = v.as_string() {
                return Failure::Thrown {
                    name: None,
                    message: clip(
                        s.to_string().unwrap_or_else(|_| "string".into()),
                        MAX_MESSAGE_BYTES,
                    ),
                    stack: None,
                    void,
                    null: false,
                };
            }
            match v.as_exception() {
                Some(ex) => {
                    let name = ex
                        .get::<_, Option<Coerced<String>>>("name")
                        .ok()
                        .flatten()
                        .map(|c| c.0);
                    Failure::Thrown {
                        name,
                        message: clip(ex.message().unwrap_or_default(), MAX_MESSAGE_BYTES),
                        stack: ex
                            .stack()
                            .filter(|s| !s.is_empty())
                            .map(|s| clip(s, MAX_STACK_BYTES)),
                        void,
                        null: false,
                    }
                }
                None => Failure::Thrown {
                    name: None,
                    message: clip(describe(v), MAX_MESSAGE_BYTES),
                    stack: None,
                    void,
                    null: false,
                },
            }
        }
        rquickjs::Error::Allocation => Failure::Allocation,
        e => Failure::Codec(CodecError::Engine {
            reason: e.to_string(),
        }),
    }
}

fn conv_failure(ctx: &Ctx<'_>, e: ConvError, stage: Stage, what: &'static str) -> Failure {
    match e {
        ConvError::Js(e) => thrown(ctx, e),
        ConvError::TooDeep => Failure::Codec(CodecError::TooLarge {
            what,
            reason: format!("nested deeper than {MAX_DEPTH} levels (or cyclic)"),
        }),
        ConvError::TooBig => Failure::Codec(CodecError::TooLarge {
            what,
            reason: format!("more than {MAX_OUTPUT_BYTES} bytes"),
        }),
        ConvError::BadString => Failure::Codec(CodecError::InvalidReturn {
            stage,
            reason: "a string is not valid Unicode (lone surrogate)".into(),
        }),
    }
}

/// The script's function for `stage`: a global property (function declarations,
/// `var`), or a global `let`/`const` binding, which is not a property of `globalThis`.
fn entry_point<'js>(
    ctx: &Ctx<'js>,
    stage: Stage,
) -> Result<Option<rquickjs::Function<'js>>, Failure> {
    let name = stage.name();
    let v: Value = ctx.globals().get(name).map_err(|e| thrown(ctx, e))?;
    if let Some(f) = as_function(&v) {
        return Ok(Some(f));
    }
    let v: Value = ctx
        .eval(format!("typeof {name} === 'function' ? {name} : undefined"))
        .map_err(|e| thrown(ctx, e))?;
    Ok(as_function(&v))
}

/// Call the entry point with one argument; a returned promise is awaited by
/// running the job queue until it settles (or the deadline interrupts it).
fn call_entry_point<'js>(
    ctx: &Ctx<'js>,
    deadline: &Deadline,
    stage: Stage,
    arg: Value<'js>,
) -> Result<Value<'js>, Failure> {
    let Some(f) = entry_point(ctx, stage)? else {
        return Err(Failure::Codec(CodecError::MissingFunction {
            function: stage,
        }));
    };
    let ret: Value = f.call((arg,)).map_err(|e| thrown(ctx, e))?;
    let Some(promise) = ret.as_promise() else {
        return Ok(ret);
    };
    loop {
        if let Some(result) = promise.result::<Value>() {
            return result.map_err(|e| thrown(ctx, e));
        }
        if deadline.passed() {
            return Err(Failure::TimedOut);
        }
        match run_job(ctx) {
            Job::Ran => {}
            Job::Fatal(failure) => return Err(failure),
            Job::Idle => {
                return Err(Failure::Codec(CodecError::InvalidReturn {
                    stage,
                    reason: "returned a promise that never settles".into(),
                }))
            }
        }
    }
}

/// What running one promise job did.
enum Job {
    /// The queue was empty.
    Idle,
    /// A job ran (and maybe threw: its promise carries that).
    Ran,
    /// A job ran out of memory or was interrupted.
    Fatal(Failure),
}

/// Run one queued promise job, taking the exception it may leave behind.
fn run_job(ctx: &Ctx<'_>) -> Job {
    if !ctx.execute_pending_job() {
        return Job::Idle;
    }
    let exception = ctx.catch();
    if exception.is_null() {
        return Job::Fatal(Failure::Allocation);
    }
    if let Some(ex) = exception.as_exception() {
        match ex.message().as_deref() {
            Some("out of memory") => return Job::Fatal(Failure::Allocation),
            Some("interrupted") => return Job::Fatal(Failure::TimedOut),
            _ => {}
        }
    }
    Job::Ran
}

fn millis_since_epoch(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as f64,
        Err(e) => -(e.duration().as_millis() as f64),
    }
}

fn variables_object<'js>(
    ctx: &Ctx<'js>,
    variables: &std::collections::BTreeMap<String, String>,
) -> rquickjs::Result<Object<'js>> {
    let obj = Object::new(ctx.clone())?;
    for (k, v) in variables {
        obj.set(k.as_str(), v.as_str())?;
    }
    Ok(obj)
}

/// `{bytes, fPort, recvTime, variables}`: bytes a plain array of numbers, recvTime a `Date`.
fn uplink_arg<'js>(ctx: &Ctx<'js>, input: &UplinkInput) -> Result<Value<'js>, Failure> {
    let build = || -> rquickjs::Result<Value<'js>> {
        let bytes = Array::new(ctx.clone())?;
        for (i, b) in input.bytes.iter().enumerate() {
            bytes.set(i, i32::from(*b))?;
        }
        let date: Value = ctx.globals().get("Date")?;
        let Some(date) = date.as_constructor() else {
            return Err(rquickjs::Exception::throw_type(
                ctx,
                "global Date is not a constructor",
            ));
        };
        let recv_time: Value = date.construct((millis_since_epoch(input.recv_time),))?;
        let obj = Object::new(ctx.clone())?;
        obj.set("bytes", bytes)?;
        obj.set("fPort", i32::from(input.f_port))?;
        obj.set("recvTime", recv_time)?;
        obj.set("variables", variables_object(ctx, &input.variables)?)?;
        Ok(obj.into_value())
    };
    build().map_err(|e| thrown(ctx, e))
}

/// `{data, variables}`, plus `fPort` when the downlink was queued with one.
fn downlink_arg<'js>(ctx: &Ctx<'js>, input: &DownlinkInput) -> Result<Value<'js>, Failure> {
    let data = to_js(ctx, &input.object, 0)
        .map_err(|e| conv_failure(ctx, e, Stage::EncodeDownlink, "input"))?;
    let build = || -> rquickjs::Result<Value<'js>> {
        let obj = Object::new(ctx.clone())?;
        obj.set("data", data)?;
        obj.set("variables", variables_object(ctx, &input.variables)?)?;
        if let Some(f_port) = input.f_port {
            obj.set("fPort", i32::from(f_port))?;
        }
        Ok(obj.into_value())
    };
    build().map_err(|e| thrown(ctx, e))
}

/// The returned value as a plain object (not an array, function or primitive).
fn result_object<'js>(stage: Stage, ret: &Value<'js>) -> Result<Object<'js>, Failure> {
    match ret.as_object() {
        Some(obj) if !ret.is_array() && !ret.is_function() => Ok(obj.clone()),
        _ => Err(Failure::Codec(CodecError::InvalidReturn {
            stage,
            reason: format!("expected an object, got {}", ret.type_name()),
        })),
    }
}

/// A list of messages (`errors`, `warnings`): absent → empty; a string → one; an
/// array → each element, strings as they are and anything else as JSON.
fn messages<'js>(
    ctx: &Ctx<'js>,
    obj: &Object<'js>,
    stage: Stage,
    field: &str,
) -> Result<Vec<String>, Failure> {
    let v: Value = obj.get(field).map_err(|e| thrown(ctx, e))?;
    if v.is_undefined() || v.is_null() {
        return Ok(Vec::new());
    }
    let json = ToJson::new()
        .convert(v)
        .map_err(|e| conv_failure(ctx, e, stage, "output"))?;
    let items = match json {
        None => Vec::new(),
        Some(Json::String(s)) => vec![Json::String(s)],
        Some(Json::Array(items)) => items,
        Some(_) => {
            return Err(Failure::Codec(CodecError::InvalidReturn {
                stage,
                reason: format!("`{field}` must be an array of strings"),
            }))
        }
    };
    let total = items.len();
    let mut out: Vec<String> = items
        .into_iter()
        .take(MAX_MESSAGES)
        .map(|item| match item {
            Json::String(s) => clip(s, MAX_MESSAGE_BYTES),
            other => clip(other.to_string(), MAX_MESSAGE_BYTES),
        })
        .collect();
    if total > MAX_MESSAGES {
        out.push(format!("… and {} more", total - MAX_MESSAGES));
    }
    Ok(out)
}

fn check_errors<'js>(
    ctx: &Ctx<'js>,
    obj: &Object<'js>,
    stage: Stage,
) -> Result<Vec<String>, Failure> {
    let errors = messages(ctx, obj, stage, "errors")?;
    if !errors.is_empty() {
        return Err(Failure::Codec(CodecError::ScriptErrors { stage, errors }));
    }
    messages(ctx, obj, stage, "warnings")
}

fn parse_decoded<'js>(ctx: &Ctx<'js>, ret: Value<'js>) -> Result<Decoded, Failure> {
    let stage = Stage::DecodeUplink;
    let obj = result_object(stage, &ret)?;
    let warnings = check_errors(ctx, &obj, stage)?;
    let data: Value = obj.get("data").map_err(|e| thrown(ctx, e))?;
    let invalid = |reason: String| Failure::Codec(CodecError::InvalidReturn { stage, reason });
    if data.is_undefined() {
        return Err(invalid("`data` is missing".into()));
    }
    let type_name = data.type_name();
    match ToJson::new()
        .convert(data)
        .map_err(|e| conv_failure(ctx, e, stage, "output"))?
    {
        Some(object @ Json::Object(_)) => Ok(Decoded { object, warnings }),
        Some(_) | None => Err(invalid(format!(
            "`data` must be an object, got {type_name}"
        ))),
    }
}

fn parse_encoded<'js>(
    ctx: &Ctx<'js>,
    ret: Value<'js>,
    f_port: Option<u8>,
) -> Result<Encoded, Failure> {
    let stage = Stage::EncodeDownlink;
    let obj = result_object(stage, &ret)?;
    let warnings = check_errors(ctx, &obj, stage)?;
    let js = |e| thrown(ctx, e);

    let bytes_value: Value = obj.get("bytes").map_err(js)?;
    let Some(array) = bytes_value
        .as_object()
        .filter(|_| !bytes_value.is_function())
    else {
        return Err(Failure::Codec(CodecError::InvalidReturn {
            stage,
            reason: format!("`bytes` must be an array, got {}", bytes_value.type_name()),
        }));
    };
    let len: Value = array.get("length").map_err(js)?;
    let len = len.as_number().unwrap_or(-1.0);
    if !(0.0..=MAX_DOWNLINK_BYTES as f64).contains(&len) || len.fract() != 0.0 {
        return Err(Failure::Codec(CodecError::InvalidReturn {
            stage,
            reason: format!("`bytes` must be an array of at most {MAX_DOWNLINK_BYTES} numbers"),
        }));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    for index in 0..len as usize {
        let item: Value = array.get(index as u32).map_err(js)?;
        match item.as_number() {
            Some(n) if n.fract() == 0.0 && (0.0..=255.0).contains(&n) => bytes.push(n as u8),
            _ => {
                return Err(Failure::Codec(CodecError::InvalidByte {
                    index,
                    value: describe(item),
                }))
            }
        }
    }

    let port: Value = obj.get("fPort").map_err(js)?;
    let f_port = if port.is_undefined() || port.is_null() {
        f_port
    } else {
        match port.as_number() {
            Some(n) if n.fract() == 0.0 && (1.0..=223.0).contains(&n) => Some(n as u8),
            _ => {
                return Err(Failure::Codec(CodecError::InvalidFPort {
                    value: describe(port),
                }))
            }
        }
    };
    Ok(Encoded {
        bytes,
        f_port,
        warnings,
    })
}
