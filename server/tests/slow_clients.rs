//! Slow and abusive clients: headers that never finish, bodies that trickle, and more
//! connections than one client may hold, while a normal client is still served.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{PASSWORD, spawn_app_with};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `server` from the loopback address `from`.
async fn connect_from(from: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// Whether the server has closed `stream` (EOF or reset) within `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0; 256];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A response (e.g. 408) before the close is fine: keep reading to the end.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_capped_per_client_and_cut_off_while_others_are_served() {
    let app = spawn_app_with(&[
        "--header-timeout-secs",
        "2",
        "--max-connections-per-ip",
        "20",
    ])
    .await;
    // 40 connections from one address, each sending a request line and then trickling.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut stream = connect_from("127.0.0.2", app.addr).await;
        stream
            .write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Checked all at once, well before the header deadline.
    let checks = slow
        .iter_mut()
        .map(|stream| closed_by_server(stream, Duration::from_millis(100)));
    let refused = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .filter(|closed| *closed)
        .count();
    assert_eq!(refused, 20, "one client holds at most its 20 connections");

    // Meanwhile, someone else registers and signs in as usual.
    let normal = reqwest::Client::builder()
        .local_address("127.0.0.3".parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let registered = normal
        .post(app.url("/api/register"))
        .json(&json!({"username": "ann", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let signed_in = normal
        .post(app.url("/api/login"))
        .json(&json!({"username": "ann", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);

    // The trickling ones are cut off once their headers are overdue, trickle as they may.
    let mut still_open = 0;
    for stream in &mut slow {
        let _ = stream.write_all(b"X-Slow: 1\r\n").await;
        if !closed_by_server(stream, Duration::from_secs(3)).await {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, 0,
        "a client that never finishes its headers is disconnected"
    );
}

#[tokio::test]
async fn a_body_that_trickles_is_answered_408_in_json() {
    let app = spawn_app_with(&["--request-timeout-secs", "1"]).await;
    let mut stream = connect_from("127.0.0.2", app.addr).await;
    stream
        .write_all(
            b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"username\":",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0; 1024];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a trickling body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"request_timeout\""), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_request_in_flight_finish() {
    let mut app = spawn_app_with(&[]).await;
    assert_eq!(app.register("ann").await.status, StatusCode::CREATED);
    // A login is mostly its password hash: start one, then stop the server at once.
    let login = app
        .client
        .post(app.url("/api/login"))
        .json(&json!({"username": "ann", "password": PASSWORD}))
        .send();
    let in_flight = tokio::spawn(login);
    tokio::time::sleep(Duration::from_millis(5)).await;
    app.shut_down().await;
    let answered = in_flight
        .await
        .unwrap()
        .expect("the login in flight was answered");
    assert_eq!(answered.status(), StatusCode::OK);
    assert!(
        TcpStream::connect(app.addr).await.is_err(),
        "no new connection is accepted after shutdown"
    );
}
