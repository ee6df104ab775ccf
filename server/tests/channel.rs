//! The push channel (`/api/channel`) over a real WebSocket, as a tab would use it.

mod common;

use std::time::Duration;

use common::{
    CHROME, FIREFOX, Seen, app_with, expect_active, expect_ended, hello, next_seen, spawn_app,
    spawn_app_with,
};
use reqwest::StatusCode;
use solotab::registry::MAX_WATCHES_PER_UID;
use tokio_tungstenite::tungstenite;

/// Nothing arrives (no event, no close) for a while.
async fn stays_open(channel: &mut common::Channel) -> bool {
    next_seen(channel, Duration::from_millis(300))
        .await
        .is_none()
}

#[tokio::test]
async fn a_takeover_ends_the_old_channel_at_once_and_leaves_the_new_one_open() {
    let app = app_with("ann").await;
    let old = app.login_as("ann", CHROME).await;
    let mut old_channel = app.channel_for(&old).await;
    expect_active(&mut old_channel).await;

    let new = app.login_as("ann", FIREFOX).await;
    let ended = expect_ended(&mut old_channel, "superseded").await;
    assert_eq!(ended["user_agent"], FIREFOX);
    assert_eq!(ended["ip"], "127.0.0.1");
    let me = app.get_with_uid("/api/me", &new).await;
    assert_eq!(ended["superseded_at"], me.body["issued_at"]);
    // The same body the HTTP 401 carries.
    let refused = app.get_with_uid("/api/me", &old).await;
    assert_eq!(ended["message"], refused.body["message"]);

    let mut new_channel = app.channel_for(&new).await;
    expect_active(&mut new_channel).await;
    assert!(stays_open(&mut new_channel).await);
}

#[tokio::test]
async fn logout_ends_the_channel_with_logged_out() {
    let app = app_with("ann").await;
    let uid = app.login_as("ann", CHROME).await;
    let mut channel = app.channel_for(&uid).await;
    expect_active(&mut channel).await;
    let reply = app
        .call(reqwest::Method::POST, "/api/logout", Some(&uid))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    expect_ended(&mut channel, "logged_out").await;
}

#[tokio::test]
async fn a_hello_with_a_uid_that_is_not_active_is_answered_ended_with_its_code() {
    let app = app_with("ann").await;
    let superseded = app.login_as("ann", CHROME).await;
    let logged_out = app.login_as("ann", CHROME).await;
    app.call(reqwest::Method::POST, "/api/logout", Some(&logged_out))
        .await;
    let unknown = "6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10";
    for (uid, code) in [
        (superseded.as_str(), "superseded"),
        (logged_out.as_str(), "logged_out"),
        (unknown, "unknown_uid"),
        ("6F1C1F44-3B1E-4B8E-9A53-2F6F1D1B9E10", "malformed_uid"),
        ("", "malformed_uid"),
    ] {
        let mut channel = app.channel_for(uid).await;
        let ended = expect_ended(&mut channel, code).await;
        if code == "superseded" {
            assert!(ended["superseded_at"].is_string());
        }
    }
    assert_eq!(app.state.registry.watched(), 0);
}

#[tokio::test]
async fn a_foreign_or_missing_origin_is_refused_before_the_upgrade() {
    let app = spawn_app().await;
    for origin in [Some("http://evil.example"), Some("null"), None] {
        match app.open_channel(origin).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{origin:?}");
                let body: serde_json::Value =
                    serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
                assert_eq!(body["error"], "cross_site");
            }
            other => panic!("{origin:?}: expected a 403, got {other:?}"),
        }
    }
    // A plain GET from the right origin is told to upgrade, in JSON.
    let reply = app
        .send(
            app.client
                .get(app.url("/api/channel"))
                .header("origin", app.origin()),
        )
        .await;
    reply.assert_error(StatusCode::UPGRADE_REQUIRED, "upgrade_required");
}

#[tokio::test]
async fn a_channel_without_a_hello_is_closed_after_five_seconds() {
    let app = spawn_app().await;
    let mut silent = app.open_channel(Some(&app.origin())).await.unwrap();
    let started = std::time::Instant::now();
    let seen = next_seen(&mut silent, Duration::from_secs(8)).await;
    assert!(matches!(seen, Some(Seen::Closed(1008))), "{seen:?}");
    assert!(started.elapsed() >= Duration::from_millis(4_500));

    // A first message that is not a hello is refused at once.
    let mut rude = app.open_channel(Some(&app.origin())).await.unwrap();
    use futures_util::SinkExt;
    rude.send(tungstenite::Message::text(r#"{"type":"subscribe"}"#))
        .await
        .unwrap();
    let seen = next_seen(&mut rude, Duration::from_secs(2)).await;
    assert!(matches!(seen, Some(Seen::Closed(1008))), "{seen:?}");
}

#[tokio::test]
async fn one_uid_may_hold_only_a_few_channels() {
    let app = app_with("ann").await;
    let uid = app.login_as("ann", CHROME).await;
    let mut open = Vec::new();
    for _ in 0..MAX_WATCHES_PER_UID {
        let mut channel = app.channel_for(&uid).await;
        expect_active(&mut channel).await;
        open.push(channel);
    }
    let mut extra = app.channel_for(&uid).await;
    let seen = next_seen(&mut extra, Duration::from_secs(2)).await;
    assert!(matches!(seen, Some(Seen::Closed(1008))), "{seen:?}");
    // Every channel of the UID is told when it ends.
    app.login_as("ann", FIREFOX).await;
    for channel in &mut open {
        expect_ended(channel, "superseded").await;
    }
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_closed_and_a_live_one_is_not() {
    let app = spawn_app_with(&["--ping-secs", "1"]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    let uid = app.login_as("ann", CHROME).await;

    let mut live = app.channel_for(&uid).await;
    expect_active(&mut live).await;
    let mut deaf = app.channel_for(&uid).await;
    expect_active(&mut deaf).await;

    // `live` reads (and so answers pings); `deaf` reads nothing for 3.5 s.
    let started = std::time::Instant::now();
    assert!(
        next_seen(&mut live, Duration::from_millis(3_500))
            .await
            .is_none()
    );
    let seen = next_seen(&mut deaf, Duration::from_secs(1)).await;
    assert!(
        matches!(seen, Some(Seen::Closed(1008))),
        "{seen:?} after {:?}",
        started.elapsed()
    );
    assert!(stays_open(&mut live).await);
}

#[tokio::test]
async fn shutdown_closes_every_channel_with_server_restarting() {
    let mut app = app_with("ann").await;
    let uid = app.login_as("ann", CHROME).await;
    let mut channel = app.channel_for(&uid).await;
    expect_active(&mut channel).await;
    app.shut_down().await;
    let seen = next_seen(&mut channel, Duration::from_secs(5)).await;
    assert!(matches!(seen, Some(Seen::Closed(1012))), "{seen:?}");
    assert_eq!(app.state.channels.open(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_logins_with_their_channels_open_leave_exactly_one_channel() {
    let app = std::sync::Arc::new(app_with("ann").await);
    let tabs: Vec<_> = (0..64)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let uid = app.login_as("ann", CHROME).await;
                let mut channel = app.open_channel(Some(&app.origin())).await.unwrap();
                hello(&mut channel, &uid).await;
                channel
            })
        })
        .collect();
    let mut channels = Vec::new();
    for tab in tabs {
        channels.push(tab.await.unwrap());
    }
    // Each channel either was ended (at its hello, or pushed later) or is the one survivor.
    let mut ended = 0;
    let mut open = 0;
    for channel in &mut channels {
        loop {
            match next_seen(channel, Duration::from_secs(2)).await {
                Some(Seen::Event(e)) if e["type"] == "active" => continue,
                Some(Seen::Event(e)) => {
                    // Past the history bound, the oldest are forgotten: `unknown_uid`.
                    assert!(
                        e["error"] == "superseded" || e["error"] == "unknown_uid",
                        "{e}"
                    );
                    ended += 1;
                    assert!(matches!(
                        next_seen(channel, Duration::from_secs(2)).await,
                        Some(Seen::Closed(1000))
                    ));
                    break;
                }
                Some(Seen::Closed(code)) => panic!("closed with {code} without ended"),
                None => {
                    open += 1;
                    break;
                }
            }
        }
    }
    assert_eq!((open, ended), (1, 63));
    assert_eq!(app.state.registry.watched(), 1);
}

#[tokio::test]
async fn hostile_frames_close_the_channel_and_never_disturb_another() {
    use futures_util::SinkExt;
    let app = app_with("ann").await;
    assert_eq!(app.register("bob").await.status, StatusCode::CREATED);
    let bob = app.login_as("bob", FIREFOX).await;
    let mut bobs_channel = app.channel_for(&bob).await;
    expect_active(&mut bobs_channel).await;

    let hostile: Vec<tungstenite::Message> = vec![
        tungstenite::Message::binary(vec![0u8, 159, 146, 150]),
        tungstenite::Message::text("not json at all"),
        tungstenite::Message::text(r#"{"type":"hello"}"#),
        tungstenite::Message::text(r#"{"type":"hello","uid":42}"#),
        tungstenite::Message::text(format!(
            r#"{{"type":"hello","uid":"{}"}}"#,
            "a".repeat(2000)
        )),
        tungstenite::Message::text("x".repeat(1024 * 1024)),
    ];
    for message in hostile {
        let mut channel = app.open_channel(Some(&app.origin())).await.unwrap();
        let _ = channel.send(message).await;
        let seen = next_seen(&mut channel, Duration::from_secs(3)).await;
        assert!(
            matches!(seen, Some(Seen::Closed(_))),
            "a hostile first frame must close the channel: {seen:?}"
        );
    }

    // A second hello on an active channel changes nothing: it is still bob's, and still told.
    let ann = app.login_as("ann", CHROME).await;
    let mut anns_channel = app.channel_for(&ann).await;
    expect_active(&mut anns_channel).await;
    hello(&mut anns_channel, &bob).await;
    assert!(stays_open(&mut anns_channel).await);
    app.login_as("ann", FIREFOX).await;
    expect_ended(&mut anns_channel, "superseded").await;
    // Another account's takeover never reaches bob's channel.
    assert!(stays_open(&mut bobs_channel).await);
    assert_eq!(app.state.registry.watched(), 1);
}
