//! The push channel: a WebSocket per signed-in tab, told at once when its UID ends.
//!
//! The UID never travels in the URL: the channel is opened without it (after a same-origin
//! check) and authenticates with its first message, `{"type":"hello","uid":...}`, which
//! must come within [`HELLO_TIMEOUT_SECS`]. The server answers `active`, then waits on the
//! registry's [`Watch`](crate::registry::Watch) of that UID alone; when it ends, the server
//! sends `ended` with the body a 401 would carry, and closes.
//!
//! Keep-alive: the server pings every `ping_every`; a channel that has sent nothing (pongs
//! included) for two intervals is closed. Shutdown closes every channel with 1012 (server
//! restarting), so tabs reconnect to the next process and stay signed in.

use std::time::Duration;

use app::contract::{ChannelActive, ChannelEvent, ChannelRequest, HELLO_TIMEOUT_SECS, close_code};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRef, State};
use axum::response::Response;
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ApiError, AppState, Disclosure, Observer, SameOrigin, TabRefusal};
use crate::history::History;
use crate::metrics::Metrics;
use crate::registry::{NotAccepted, Refused, Registry, Session, WatchRefused};
use crate::store::EventKind;
use crate::time::UnixMillis;
use crate::uid::Uid;

/// The largest message a tab may send (a hello is under 100 bytes).
const MAX_MESSAGE_BYTES: usize = 1024;

/// The socket's read buffer. tungstenite's default (128 KiB per connection) would make an
/// idle channel cost eight times an idle HTTP connection; messages here are a few hundred
/// bytes at most.
const READ_BUFFER_BYTES: usize = 2 * 1024;

/// Every open channel, so that shutdown can close them all. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Channels {
    ping_every: Duration,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Channels {
    pub fn new(ping_every: Duration) -> Self {
        Self {
            ping_every,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    /// How many channels are open.
    pub fn open(&self) -> usize {
        self.tasks.len()
    }

    /// Closes every channel with "server restarting" and refuses new ones.
    pub fn close_all(&self) {
        self.shutdown.cancel();
        self.tasks.close();
    }

    /// Waits, at most `grace`, for the channels to finish closing.
    pub async fn closed(&self, grace: Duration) {
        let _ = timeout(grace, self.tasks.wait()).await;
    }
}

/// `GET /api/channel`: same-origin only, then upgraded to a WebSocket.
#[utoipa::path(get, path = "/api/channel", tag = "tabs",
    description = "The push channel: a WebSocket. The tab's first message is `{\"type\":\"hello\",\"uid\":...}` (within 5 s); the server answers `{\"type\":\"active\"}` and later `{\"type\":\"ended\",...}` with the body a 401 would carry, then closes.",
    responses(
        (status = 101, description = "Upgraded to a WebSocket."),
        (status = 403, description = "`cross_site`: the request's `Origin` is not this site.", body = app::contract::ErrorBody),
        (status = 426, description = "`upgrade_required`: not a WebSocket upgrade.", body = app::contract::ErrorBody),
    ))]
pub(super) async fn channel(
    State(state): State<AppState>,
    _same_origin: SameOrigin,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|_| ApiError::UpgradeRequired)?;
    let channels = state.channels.clone();
    if channels.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable("the server is shutting down".into()));
    }
    let (registry, disclosure) = (state.registry.clone(), state.disclosure);
    let observer = Observer::from_ref(&state);
    let (history, metrics) = (state.history.clone(), state.metrics.clone());
    Ok(upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        // Few, small messages: write each at once instead of keeping a buffer per channel.
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .on_upgrade(move |socket| {
            let tasks = channels.tasks.clone();
            let record = Record {
                history,
                metrics,
                observer,
            };
            tasks.track_future(serve(socket, registry, channels, disclosure, record))
        }))
}

/// Where a channel records a timeout it tells its tab of.
struct Record {
    history: History,
    metrics: Metrics,
    /// In observe mode an end is counted, not told: the tab goes on as before.
    observer: Observer,
}

/// Why a channel closes, and what the tab is told.
enum Close {
    /// The UID is not (or no longer) active: `ended`, then a normal close.
    Ended(TabRefusal),
    Restarting,
    /// A shared store cannot be read: the tab keeps its UID and reconnects later.
    Unavailable(crate::store::StoreError),
    Policy(&'static str),
    /// The peer went away; nothing to send.
    Gone,
}

async fn serve(
    mut socket: WebSocket,
    registry: Registry,
    channels: Channels,
    disclosure: Disclosure,
    record: Record,
) {
    let close = tokio::select! {
        close = run(&mut socket, &registry, &channels, &record) => close,
        () = channels.shutdown.cancelled() => Close::Restarting,
    };
    let frame = |code, reason: &str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    let goodbye = match close {
        Close::Ended(refusal) => {
            let body = refusal.body(disclosure, UnixMillis::now());
            if super::refusal_log::first_of_its_kind("channel ended") {
                tracing::info!(code = body.error.as_str(), "channel told its tab it ended");
            }
            if let Ok(text) = serde_json::to_string(&ChannelEvent::Ended(body)) {
                let _ = socket.send(Message::Text(text.into())).await;
            }
            frame(close_code::ENDED, "ended")
        }
        Close::Restarting => frame(close_code::RESTARTING, "server restarting"),
        Close::Unavailable(e) => {
            if super::refusal_log::first_of_its_kind("channel store_unavailable") {
                tracing::error!(error = %e, "channel closed: the store failed");
            }
            frame(close_code::TRY_AGAIN_LATER, "store unavailable")
        }
        Close::Policy(reason) => {
            if super::refusal_log::first_of_its_kind("channel refused") {
                tracing::info!(reason, "channel closed");
            }
            frame(close_code::POLICY, reason)
        }
        Close::Gone => {
            tracing::debug!("channel closed by the tab");
            return;
        }
    };
    let _ = socket.send(goodbye).await;
}

async fn run(
    socket: &mut WebSocket,
    registry: &Registry,
    channels: &Channels,
    Record {
        history,
        metrics,
        observer,
    }: &Record,
) -> Close {
    let hello = match timeout(Duration::from_secs(HELLO_TIMEOUT_SECS), socket.recv()).await {
        Err(_) => return Close::Policy("no hello in time"),
        Ok(None | Some(Err(_) | Ok(Message::Close(_)))) => return Close::Gone,
        Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<ChannelRequest>(&text),
        Ok(Some(Ok(_))) => return Close::Policy("the first message must be a hello"),
    };
    let Ok(ChannelRequest::Hello { uid }) = hello else {
        return Close::Policy("the first message must be a hello");
    };
    let Ok(uid) = Uid::parse(&uid) else {
        return Close::Ended(TabRefusal::Malformed);
    };
    let (session, mut watch) = match registry.watch(&uid).await {
        Ok((session, watch)) => (session, Some(watch)),
        // Observe mode: a tab enforcement would have ended is served, and told nothing.
        Err(WatchRefused::Refused(refused))
            if observer.lets_through(&refused).await.unwrap_or(false) =>
        {
            let session = Session {
                account: refused.account.unwrap_or(crate::store::AccountId(0)),
                issued_at: refused.rejection.at().unwrap_or_else(UnixMillis::now),
            };
            (session, None)
        }
        Err(WatchRefused::Refused(refused)) => {
            return Close::Ended(TabRefusal::Rejected(refused.rejection));
        }
        Err(WatchRefused::TooMany) => return Close::Policy("too many channels for this tab"),
        // Not "ended": the tab stays signed in and tries again.
        Err(WatchRefused::Store(e)) => return Close::Unavailable(e),
    };
    let active = ChannelEvent::Active(ChannelActive {
        issued_at: session.issued_at.to_rfc3339(),
    });
    let Ok(active) = serde_json::to_string(&active) else {
        return Close::Gone;
    };
    if socket.send(Message::Text(active.into())).await.is_err() {
        return Close::Gone;
    }
    tracing::debug!(account = session.account.0, "channel open");

    // Timeouts end the tab at a time the registry can tell: wake then, look again (a request
    // may have moved the idle deadline), and tell the tab if it has ended.
    let mut deadline = match registry.deadline(&uid).await {
        Ok(deadline) => deadline,
        Err(NotAccepted::Refused(_)) if watch.is_none() => None,
        Err(NotAccepted::Refused(refused)) => {
            return Close::Ended(TabRefusal::Rejected(refused.rejection));
        }
        Err(NotAccepted::Store(e)) => return Close::Unavailable(e),
    };
    let ping_every = channels.ping_every;
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    loop {
        let ended = async {
            match watch.as_mut() {
                Some(watch) => watch.ended().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            rejection = ended => {
                let refused = Refused {
                    rejection,
                    account: Some(session.account),
                    username: registry.username(session.account),
                };
                // Observe mode let the end through: nothing more is told.
                if observer.lets_through(&refused).await.unwrap_or(false) {
                    (watch, deadline) = (None, None);
                    continue;
                }
                return Close::Ended(TabRefusal::Rejected(refused.rejection));
            }
            () = until(deadline) => match registry.deadline(&uid).await {
                Ok(later) => deadline = later,
                Err(NotAccepted::Refused(refused)) if observer.lets_through(&refused).await.unwrap_or(false) => {
                    deadline = None;
                }
                Err(NotAccepted::Refused(refused)) => {
                    // Timed out: the account's history says so (the tab sends nothing more).
                    let recorded = history.refused(&uid.digest(), &refused, None).await;
                    if recorded == Some(EventKind::Expired) {
                        metrics.expired();
                        tracing::info!(account = refused.username.as_deref(), "tab expired");
                    }
                    return Close::Ended(TabRefusal::Rejected(refused.rejection));
                }
                // The store cannot say: look again shortly (the tab keeps its UID meanwhile).
                Err(NotAccepted::Store(_)) => {
                    deadline = Some(UnixMillis::from_millis(UnixMillis::now().as_millis() + 1000));
                }
            },
            _ = ping.tick() => {
                if heard.elapsed() > ping_every * 2 {
                    return Close::Policy("no answer to pings");
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return Close::Gone;
                }
            }
            message = socket.recv() => match message {
                None | Some(Err(_) | Ok(Message::Close(_))) => return Close::Gone,
                // Pongs, and anything else a tab may send, show it is still there.
                Some(Ok(_)) => heard = Instant::now(),
            },
        }
    }
}

/// Sleeps until `deadline`, or forever if there is none. At least a few milliseconds: the
/// registry's clock is coarse (see `UnixMillis::coarse_now`), so a deadline just reached may
/// need a moment to be seen as passed.
async fn until(deadline: Option<UnixMillis>) {
    match deadline {
        Some(at) => {
            let left = at.as_millis().saturating_sub(UnixMillis::now().as_millis());
            tokio::time::sleep(Duration::from_millis(left.max(20) as u64)).await;
        }
        None => std::future::pending().await,
    }
}
