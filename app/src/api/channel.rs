//! The push channel's client: while the tab is active, one WebSocket that the server uses
//! to say the moment this UID ends (browser only).
//!
//! The UID goes in the first message, never in the URL. A dropped channel is not a sign-out:
//! the connection banner shows, and the channel reconnects with capped exponential backoff
//! and jitter, then says hello again (so a tab superseded meanwhile learns it then).

use std::time::Duration;

use futures::future::{Either, select};
use futures::{SinkExt, StreamExt};
use gloo_net::websocket::Message;
use gloo_net::websocket::futures::WebSocket;
use leptos::task::spawn_local;

use super::transport::{from_tagged_json, to_json};
use super::{TabUid, ended, is_current};
use crate::contract::{CHANNEL_PATH, ChannelEvent, ChannelRequest};
use crate::session::Session;

/// The first retry's delay; each failure doubles it, up to [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// Keeps a channel open for `uid` for as long as it is the tab's current UID.
pub(super) fn open(session: Session, uid: TabUid) {
    spawn_local(async move {
        let mut failures = 0;
        while is_current(&uid) {
            match connect(session, &uid).await {
                Closed::Ended => return,
                Closed::Dropped { was_active } => {
                    if !is_current(&uid) {
                        return;
                    }
                    session.set_channel_down(true);
                    if was_active {
                        failures = 0;
                    }
                }
            }
            sleep(backoff(failures)).await;
            failures += 1;
        }
    });
}

enum Closed {
    /// The server said the UID ended (and the tab now shows why): do not reconnect.
    Ended,
    /// Anything else: the network, a restart, a refusal of the hello's channel.
    Dropped { was_active: bool },
}

async fn connect(session: Session, uid: &TabUid) -> Closed {
    let dropped = Closed::Dropped { was_active: false };
    let Some(url) = channel_url() else {
        return dropped;
    };
    let Ok(socket) = WebSocket::open(&url) else {
        return dropped;
    };
    let (mut outgoing, mut incoming) = socket.split();
    let hello = ChannelRequest::Hello { uid: uid.0.clone() };
    let Some(hello) = to_json(&hello) else {
        return dropped;
    };
    // The hello waits for the socket to open; a socket that closes before opening never
    // wakes that wait, so its close (on the incoming side) must end it too.
    let sending = std::pin::pin!(outgoing.send(Message::Text(hello)));
    let closing = std::pin::pin!(incoming.next());
    match select(sending, closing).await {
        Either::Left((Ok(()), _)) => {}
        Either::Left((Err(_), _)) | Either::Right(_) => return dropped,
    }
    let mut was_active = false;
    while let Some(message) = incoming.next().await {
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Bytes(_)) => continue,
            Err(_) => break,
        };
        match from_tagged_json(&text, ChannelEvent::from_tagged) {
            Some(ChannelEvent::Active(_)) => {
                was_active = true;
                if is_current(uid) {
                    session.set_channel_down(false);
                }
            }
            Some(ChannelEvent::Ended(error)) => {
                ended(session, uid, error);
                return Closed::Ended;
            }
            // A message this build does not know (a newer server): not ours to act on.
            None => {}
        }
    }
    Closed::Dropped { was_active }
}

/// `ws://` or `wss://` and this page's host: the channel is same-origin.
fn channel_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = match location.protocol().ok()?.as_str() {
        "https:" => "wss",
        _ => "ws",
    };
    Some(format!(
        "{scheme}://{}{CHANNEL_PATH}",
        location.host().ok()?
    ))
}

/// The wait before retry number `failures + 1`: doubling from [`FIRST_WAIT`], capped, and
/// spread by a random factor in [0.5, 1) so that tabs dropped together do not return together.
fn backoff(failures: u32) -> Duration {
    let doubled = FIRST_WAIT.saturating_mul(1 << failures.min(16));
    doubled
        .min(LONGEST_WAIT)
        .mul_f64(0.5 + js_sys::Math::random() / 2.0)
}

async fn sleep(duration: Duration) {
    let (done, wait) = futures::channel::oneshot::channel::<()>();
    leptos::prelude::set_timeout(
        move || {
            let _ = done.send(());
        },
        duration,
    );
    let _ = wait.await;
}
