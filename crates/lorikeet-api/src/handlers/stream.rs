//! Live events as Server-Sent Events: `GET /api/v1/devices/{devEui}/events/stream`
//! and `GET /api/v1/applications/{id}/events/stream`. Each SSE event is named after
//! the event type and carries the same JSON as the webhook; nothing is stored per
//! client beyond its broadcast buffer. A stream whose key is revoked, or whose device
//! or application leaves the key's reach, ends with an `unauthorized` event.

use std::convert::Infallible;
use std::time::Duration;

use futures_util::stream;
use lorikeet_lorawan::Eui64;
use tokio::sync::broadcast;
use uuid::Uuid;
use warp::sse::Event;
use warp::Reply;

use lorikeet_storage::Change;
use tokio::sync::watch;

use super::Ctx;
use crate::auth::{Credential, Principal};
use crate::error::ApiError;
use crate::{ApiState, LiveEvent, Out};

/// How often an open stream checks again that its key and resource are still
/// authorised, besides the immediate checks on revocations and moves seen here.
const RECHECK_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Clone, Copy)]
enum Filter {
    Device(Eui64),
    Application(Uuid),
}

impl Filter {
    fn matches(self, e: &LiveEvent) -> bool {
        match self {
            Filter::Device(d) => e.dev_eui == d,
            Filter::Application(a) => e.application_id == a,
        }
    }

    /// Whether `change` may take the stream's resource out of the caller's reach.
    fn concerns(self, change: &Change, application: Uuid) -> bool {
        match (self, change) {
            (Filter::Device(d), Change::DeviceDeleted(x) | Change::DeviceChanged(x)) => *x == d,
            (_, Change::ApplicationDeleted(a) | Change::ApplicationChanged(a)) => *a == application,
            (_, Change::TenantDeleted(_)) => true,
            _ => false,
        }
    }
}

pub(super) async fn device(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    let d = ctx.device(dev_eui).await?;
    Ok(respond(ctx, Filter::Device(dev_eui), d.application_id))
}

pub(super) async fn application(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    Ok(respond(ctx, Filter::Application(id), id))
}

/// What an open stream is allowed to see, checked again while it runs: a revoked key,
/// or a device deleted (or moved to another tenant) ends it with an `unauthorized`
/// event instead of letting it see what its key no longer covers.
struct Guard {
    state: ApiState,
    principal: Principal,
    credential: Credential,
    filter: Filter,
    /// The application the stream's events must come from (a device stream's
    /// device's current application).
    application: Uuid,
}

impl Guard {
    /// `Err(reason)` when the stream must end. A storage error keeps the stream:
    /// the next check decides.
    async fn check(&mut self) -> Result<(), &'static str> {
        let storage = &self.state.storage;
        match &self.credential {
            Credential::AdminToken => {}
            Credential::ApiKey(hash) => match storage.api_key_by_hash(hash).await {
                Ok(Some(k)) if Principal::Tenant(k.tenant_id) == self.principal => {}
                Ok(_) => return Err("the API key was revoked"),
                Err(_) => return Ok(()),
            },
            // A user's rights are those of now: signed out, deleted or with other
            // roles, the stream follows.
            Credential::Session { token_hash, .. } => {
                match storage
                    .user_session(token_hash, lorikeet_storage::now())
                    .await
                {
                    Ok(Some((_, user))) => self.principal = Principal::of_user(&user),
                    Ok(None) => return Err("the session ended"),
                    Err(_) => return Ok(()),
                }
            }
        }
        match self.filter {
            Filter::Device(d) => match storage.get_device(d).await {
                Ok(Some(dev)) if self.principal.can_see(dev.tenant_id) => {
                    self.application = dev.application_id;
                    Ok(())
                }
                Ok(_) => Err("the device was deleted or is no longer in this key's tenant"),
                Err(_) => Ok(()),
            },
            Filter::Application(a) => match storage.get_application(a).await {
                Ok(Some(app)) if self.principal.can_see(app.tenant_id) => Ok(()),
                Ok(_) => Err("the application was deleted or is no longer in this key's tenant"),
                Err(_) => Ok(()),
            },
        }
    }
}

struct Open {
    guard: Guard,
    events: broadcast::Receiver<LiveEvent>,
    changes: broadcast::Receiver<Change>,
    revocations: watch::Receiver<u64>,
    recheck: tokio::time::Interval,
    ended: bool,
}

fn unauthorized(reason: &str) -> Event {
    Event::default()
        .event("unauthorized")
        .data(serde_json::json!({ "reason": reason }).to_string())
}

impl Open {
    /// The next SSE event, `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        loop {
            let recheck = tokio::select! {
                r = self.events.recv() => match r {
                    Ok(e) if self.guard.filter.matches(&e) => {
                        if e.application_id == self.guard.application {
                            return Some(Event::default().event(e.kind).data(&*e.body));
                        }
                        // The device is in another application now: whoever owns it
                        // must still be visible before anything of it is shown.
                        if let Err(why) = self.guard.check().await {
                            self.ended = true;
                            return Some(unauthorized(why));
                        }
                        if e.application_id == self.guard.application {
                            return Some(Event::default().event(e.kind).data(&*e.body));
                        }
                        false
                    }
                    Ok(_) => false,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        metrics::counter!("lorikeet_api_stream_lagged_total").increment(n);
                        return Some(
                            Event::default()
                                .event("lagged")
                                .data(format!("{{\"missed\":{n}}}")),
                        );
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                c = self.changes.recv() => match c {
                    Ok(c) => self.guard.filter.concerns(&c, self.guard.application),
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    // No more change notices (shutdown): the periodic check remains.
                    Err(broadcast::error::RecvError::Closed) => {
                        self.changes = self.guard.state.changes.subscribe();
                        false
                    }
                },
                r = self.revocations.changed() => r.is_ok(),
                _ = self.recheck.tick() => true,
            };
            if recheck {
                if let Err(why) = self.guard.check().await {
                    self.ended = true;
                    return Some(unauthorized(why));
                }
            }
        }
    }
}

fn respond(ctx: &Ctx<'_>, filter: Filter, application: Uuid) -> Out {
    let mut recheck = tokio::time::interval(RECHECK_INTERVAL);
    recheck.reset();
    let open = Open {
        guard: Guard {
            state: ctx.state.clone(),
            principal: ctx.principal.clone(),
            credential: ctx.credential.clone(),
            filter,
            application,
        },
        events: ctx.state.live.subscribe(),
        changes: ctx.state.changes.subscribe(),
        revocations: ctx.state.revocations.subscribe(),
        recheck,
        ended: false,
    };
    // The stream runs as a task of its own (its storage checks are not `Sync`, which
    // warp's SSE body must be) and ends when the client goes away.
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(16);
    tokio::spawn(async move {
        let mut open = open;
        loop {
            let ev = tokio::select! {
                ev = open.next() => ev,
                () = tx.closed() => None,
            };
            let Some(ev) = ev else { break };
            if tx.send(ev).await.is_err() {
                break;
            }
        }
    });
    let events = stream::unfold(rx, |mut rx| async move {
        let ev = rx.recv().await?;
        Some((Ok::<_, Infallible>(ev), rx))
    });
    // Comments every 15 s keep proxies from closing an idle stream.
    let body = warp::sse::keep_alive()
        .interval(Duration::from_secs(15))
        .stream(events);
    let mut r = warp::sse::reply(body).into_response();
    r.headers_mut().insert(
        warp::http::header::CACHE_CONTROL,
        warp::http::HeaderValue::from_static("no-store"),
    );
    Out::Raw(r)
}
