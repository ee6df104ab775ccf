//! Accepting connections, with the limits a public server needs against slow and abusive
//! clients: a deadline for each request's headers, a cap on open connections in all and per
//! client address, and graceful shutdown. (`axum::serve` offers none of the first three.)

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::http::client_key;
use crate::proxies::TrustedProxies;

/// How long in-flight requests may take to finish once shutdown has begun.
const DRAIN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Limits {
    /// The time a client has to send a request's headers.
    pub header_timeout: Duration,
    pub max_connections: usize,
    /// Per client IP; trusted proxies, which carry many clients' connections, are exempt.
    pub max_connections_per_ip: usize,
    pub trusted_proxies: TrustedProxies,
}

/// Open connections, in all and per client key.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// A connection's place in [`Open`], given back when the connection ends.
struct Place {
    open: Arc<Mutex<Open>>,
    /// `None`: not counted per client (a trusted proxy).
    client: Option<IpAddr>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        open.total -= 1;
        let Some(client) = self.client else { return };
        if let Some(n) = open.per_client.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                open.per_client.remove(&client);
            }
        }
    }
}

fn lock(open: &Mutex<Open>) -> std::sync::MutexGuard<'_, Open> {
    // Counters only: a poisoned lock still holds usable numbers.
    open.lock().unwrap_or_else(|p| p.into_inner())
}

/// A place for a connection from `peer`, if the limits leave one.
fn take_place(open: &Arc<Mutex<Open>>, peer: IpAddr, limits: &Limits) -> Option<Place> {
    let client = (!limits.trusted_proxies.contains(peer)).then(|| client_key(peer));
    let mut counts = lock(open);
    let mine = client.map_or(0, |c| counts.per_client.get(&c).copied().unwrap_or(0));
    if counts.total >= limits.max_connections || mine >= limits.max_connections_per_ip {
        return None;
    }
    counts.total += 1;
    if let Some(client) = client {
        *counts.per_client.entry(client).or_default() += 1;
    }
    Some(Place {
        open: Arc::clone(open),
        client,
    })
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish (at most [`DRAIN`]). Each request carries its peer's [`ConnectInfo`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let open = Arc::new(Mutex::new(Open::default()));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused_logged = false;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, usually: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(place) = take_place(&open, peer.ip(), &limits) else {
            if !refused_logged {
                tracing::warn!(client = %peer.ip(), "connection limit reached: refusing connections");
                refused_logged = true;
            }
            drop(stream);
            continue;
        };
        refused_logged = false;
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are the client's (reset, bad request line, header timeout).
            let _ = connection.await;
            drop(place);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some requests were still running after {DRAIN:?}; stopping anyway");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_capped_in_all_and_per_client_and_given_back() {
        let open = Arc::new(Mutex::new(Open::default()));
        let limits = Limits {
            header_timeout: Duration::from_secs(1),
            max_connections: 3,
            max_connections_per_ip: 2,
            trusted_proxies: TrustedProxies::default(),
        };
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = take_place(&open, a, &limits).unwrap();
        let _second = take_place(&open, a, &limits).unwrap();
        assert!(take_place(&open, a, &limits).is_none(), "per client");
        let _third = take_place(&open, b, &limits).unwrap();
        assert!(take_place(&open, b, &limits).is_none(), "in all");
        drop(first);
        assert!(
            take_place(&open, a, &limits).is_some(),
            "a closed connection frees its place"
        );
    }

    #[test]
    fn a_trusted_proxy_is_capped_only_in_all() {
        let open = Arc::new(Mutex::new(Open::default()));
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let limits = Limits {
            header_timeout: Duration::from_secs(1),
            max_connections: 4,
            max_connections_per_ip: 1,
            trusted_proxies: TrustedProxies::new(["10.0.0.0/8".parse().unwrap()]),
        };
        let places: Vec<_> = (0..4).map(|_| take_place(&open, proxy, &limits)).collect();
        assert!(
            places.iter().all(Option::is_some),
            "many clients behind one proxy"
        );
        assert!(take_place(&open, proxy, &limits).is_none(), "in all");
        drop(places);
        let direct: IpAddr = "192.0.2.1".parse().unwrap();
        let _held = take_place(&open, direct, &limits).unwrap();
        assert!(
            take_place(&open, direct, &limits).is_none(),
            "others stay capped per IP"
        );
    }
}
