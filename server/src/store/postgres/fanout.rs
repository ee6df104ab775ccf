//! Cross-instance fan-out over PostgreSQL's LISTEN/NOTIFY.
//!
//! Every claim and release that ends a UID sends `NOTIFY solotab_ended` with the digest and
//! when and why it ended (see [`FanOut::parse_notice`]) in its own transaction, so the notice goes out exactly when the end commits, and never for an
//! end that rolled back. Each instance keeps one connection listening on the channel and
//! hands each notice to its push channels. Notices sent while that connection is down are
//! lost by PostgreSQL's design, so after every (re)connection the listener first reports
//! [`FanOut::Subscribed`]: the receiver must then re-check every open channel against the
//! store, which tells it whatever it missed.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::store::FanOut;

/// The NOTIFY channel ends are announced on (spelled out in the claim and release SQL too).
pub(super) const CHANNEL: &str = "solotab_ended";

/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Listens on `config`'s database until the receiver is dropped, reconnecting with backoff.
pub(super) fn spawn(mut config: tokio_postgres::Config) -> mpsc::Receiver<FanOut> {
    if config.get_application_name().is_none() {
        config.application_name("solotab-fanout");
    }
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        while !tx.is_closed() {
            match listen(&config, &tx).await {
                // Listened, then lost the connection: try again at once.
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, "store fan-out: cannot listen; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    });
    rx
}

/// One connection's life: LISTEN, report `Subscribed`, forward notices until it ends.
async fn listen(
    config: &tokio_postgres::Config,
    tx: &mpsc::Sender<FanOut>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (notices_tx, mut notices) = mpsc::unbounded_channel();
    // The connection does its I/O only while polled: this task polls it, and passes on
    // what arrives.
    let driver = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(notice)) => {
                    let _ = notices_tx.send(Ok(notice.payload().to_owned()));
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = notices_tx.send(Err(e));
                    return;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    if tx.send(FanOut::Subscribed).await.is_err() {
        driver.abort();
        return Ok(());
    }
    tracing::info!("store fan-out: listening");
    let ended = loop {
        match notices.recv().await {
            Some(Ok(text)) => match FanOut::parse_notice(&text) {
                Some(notice) => {
                    if tx.send(notice).await.is_err() {
                        break Ok(());
                    }
                }
                None => tracing::warn!("store fan-out: ignored a malformed notice"),
            },
            Some(Err(e)) => break Err(e),
            // The connection closed without an error.
            None => break Ok(()),
        }
    };
    driver.abort();
    if let Err(e) = &ended {
        tracing::warn!(error = %e, "store fan-out: connection lost");
    }
    Ok(())
}
