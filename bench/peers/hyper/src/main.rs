//! The tiny API service on hyper 1 + tokio: `/`, `/alwaysok`, `/healthcheck`, `/panic`.
//! Listens on `LISTEN` (default `0.0.0.0:8080`); SIGTERM exits 0.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

const INDEX: &str = "Index of tinyapi. These aren't the droids you're looking for\n";
const ALWAYSOK: &str = "{ \"status\": \"OK\" }";

struct Stats {
    started: Instant,
    requests: AtomicU64,
    connections: AtomicU64,
}

fn answer(status: StatusCode, kind: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    r
}

async fn handle(req: Request<hyper::body::Incoming>, stats: Arc<Stats>) -> Result<Response<Full<Bytes>>, Infallible> {
    let requests = stats.requests.fetch_add(1, Ordering::Relaxed) + 1;
    const TEXT: &str = "text/plain; charset=utf-8";
    const JSON: &str = "application/json";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(answer(StatusCode::METHOD_NOT_ALLOWED, TEXT, "Method Not Allowed\n".into()));
    }
    Ok(match req.uri().path() {
        "/" => answer(StatusCode::OK, TEXT, INDEX.into()),
        "/alwaysok" => answer(StatusCode::OK, JSON, ALWAYSOK.into()),
        "/healthcheck" => answer(
            StatusCode::OK,
            JSON,
            format!(
                "{{\"status\":\"ok\",\"version\":\"0.1.0\",\"uptime_seconds\":{},\"requests\":{},\"connections\":{}}}",
                stats.started.elapsed().as_secs(),
                requests,
                stats.connections.load(Ordering::Relaxed)
            ),
        ),
        "/panic" => {
            eprintln!("FATAL /panic requested: exiting with status 1");
            std::process::exit(1);
        }
        _ => answer(StatusCode::NOT_FOUND, TEXT, "Not Found\n".into()),
    })
}

#[tokio::main]
async fn main() {
    let addr = std::env::var("LISTEN").unwrap_or_else(|_| "0.0.0.0:8080".into());
    let listener = TcpListener::bind(&addr).await.expect("bind");
    println!("tinyapi-hyper listening on {addr}");
    let stats = Arc::new(Stats { started: Instant::now(), requests: AtomicU64::new(0), connections: AtomicU64::new(0) });
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => continue,
            },
            _ = term.recv() => std::process::exit(0),
        };
        let _ = stream.set_nodelay(true);
        let stats = stats.clone();
        tokio::spawn(async move {
            stats.connections.fetch_add(1, Ordering::Relaxed);
            let service = service_fn(|req| handle(req, stats.clone()));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            stats.connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
