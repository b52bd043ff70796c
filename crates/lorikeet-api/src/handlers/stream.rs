//! Live events as Server-Sent Events: `GET /api/v1/devices/{devEui}/events/stream`
//! and `GET /api/v1/applications/{id}/events/stream`. Each SSE event is named after
//! the event type and carries the same JSON as the webhook; nothing is stored per
//! client beyond its broadcast buffer.

use std::convert::Infallible;
use std::time::Duration;

use futures_util::stream;
use lorikeet_lorawan::Eui64;
use tokio::sync::broadcast;
use uuid::Uuid;
use warp::sse::Event;
use warp::Reply;

use super::Ctx;
use crate::error::ApiError;
use crate::{LiveEvent, Out};

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
}

pub(super) async fn device(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    ctx.device(dev_eui).await?;
    Ok(respond(ctx, Filter::Device(dev_eui)))
}

pub(super) async fn application(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let id = ctx.id_param("application")?;
    ctx.application(id).await?;
    Ok(respond(ctx, Filter::Application(id)))
}

fn respond(ctx: &Ctx<'_>, filter: Filter) -> Out {
    let rx = ctx.state.live.subscribe();
    let events = stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) if filter.matches(&e) => {
                    let ev = Event::default().event(e.kind).data(&*e.body);
                    return Some((Ok::<_, Infallible>(ev), rx));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    metrics::counter!("lorikeet_api_stream_lagged_total").increment(n);
                    let ev = Event::default()
                        .event("lagged")
                        .data(format!("{{\"missed\":{n}}}"));
                    return Some((Ok(ev), rx));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
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
