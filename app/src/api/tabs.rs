//! The tabs of one browser tell each other when one signs in (`BroadcastChannel`).
//!
//! A tab that signs in posts `{"type":"taken","at":...}`; the others show the superseded
//! screen at once, even if their push channel is down. The message carries no UID and
//! decides nothing: the tab then asks the server, which confirms (a 401 with the details)
//! or not (the tab stays active, e.g. the other tab signed in to another account).

use std::cell::RefCell;

use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{BroadcastChannel, MessageEvent};

use super::transport::{from_tagged_json, to_json};
use super::{current, is_current, me};
use crate::contract::{TabMessage, Taken};
use crate::session::Session;

const CHANNEL_NAME: &str = "solotab-tabs";

thread_local! {
    static CHANNEL: RefCell<Option<BroadcastChannel>> = const { RefCell::new(None) };
}

/// Starts listening (once per page).
pub(super) fn listen(session: Session) {
    if CHANNEL.with_borrow(Option::is_some) {
        return;
    }
    let Ok(channel) = BroadcastChannel::new(CHANNEL_NAME) else {
        return; // Without BroadcastChannel, the push channel still tells this tab.
    };
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
        let message = event
            .data()
            .as_string()
            .and_then(|text| from_tagged_json(&text, TabMessage::from_tagged));
        if let Some(TabMessage::Taken(Taken { at })) = message {
            taken(session, at);
        }
    });
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The listener lives as long as the page.
    on_message.forget();
    CHANNEL.set(Some(channel));
}

/// Tells the other tabs that this one signed in at `at`.
pub(super) fn announce_taken(at: &str) {
    let message = TabMessage::Taken(Taken { at: at.to_owned() });
    if let Some(text) = to_json(&message) {
        CHANNEL.with_borrow(|channel| {
            if let Some(channel) = channel {
                let _ = channel.post_message(&text.into());
            }
        });
    }
}

/// Another tab signed in at `at`. Only a tab that was active before then is concerned.
fn taken(session: Session, at: String) {
    let (Some(uid), Some(issued_at)) = (current(), session.issued_at_untracked()) else {
        return;
    };
    // Both are the server's RFC 3339 UTC with milliseconds: text order is time order.
    if at <= issued_at {
        return;
    }
    let user_agent = web_sys::window().and_then(|w| w.navigator().user_agent().ok());
    session.supersede(at, user_agent, None);
    spawn_local(async move {
        // A 401 puts the server's account of it on screen; a 200 means it was not ours.
        if let Ok(me) = me(session).await
            && is_current(&uid)
        {
            session.activate(me.username, me.issued_at);
        }
    });
}
