//! The tiny API service on Rust's standard library alone: `std::net`, a thread per connection,
//! HTTP/1.1 keep-alive. Listens on `LISTEN` (default `0.0.0.0:8080`). std has no signal
//! handling, so SIGTERM takes the default action (as PID 1 in a container: ignored).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const INDEX: &str = "Index of tinyapi. These aren't the droids you're looking for\n";
const ALWAYSOK: &str = "{ \"status\": \"OK\" }";
const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

static REQUESTS: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

fn serve(stream: TcpStream, started: Instant) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    let mut line = String::new();
    loop {
        // Request line, then headers up to the blank line; bodies are not accepted.
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut words = line.split_whitespace();
        let (method, path, version) = (words.next().unwrap_or(""), words.next().unwrap_or(""), words.next().unwrap_or(""));
        let (method, path) = (method.to_string(), path.split('?').next().unwrap_or("").to_string());
        let mut close = version != "HTTP/1.1";
        loop {
            line.clear();
            if input.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if header == "connection: close" {
                close = true;
            } else if header == "connection: keep-alive" {
                close = false;
            }
        }
        let requests = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
        let health;
        let (status, kind, body) = if method != "GET" && method != "HEAD" {
            ("405 Method Not Allowed", TEXT, "Method Not Allowed\n")
        } else {
            match path.as_str() {
                "/" => ("200 OK", TEXT, INDEX),
                "/alwaysok" => ("200 OK", JSON, ALWAYSOK),
                "/healthcheck" => {
                    health = format!(
                        "{{\"status\":\"ok\",\"version\":\"0.1.0\",\"uptime_seconds\":{},\"requests\":{},\"connections\":{}}}",
                        started.elapsed().as_secs(),
                        requests,
                        CONNECTIONS.load(Ordering::Relaxed)
                    );
                    ("200 OK", JSON, health.as_str())
                }
                "/panic" => {
                    eprintln!("FATAL /panic requested: exiting with status 1");
                    std::process::exit(1);
                }
                _ => ("404 Not Found", TEXT, "Not Found\n"),
            }
        };
        let shown = if method == "HEAD" { "" } else { body };
        let connection = if close { "Connection: close\r\n" } else { "" };
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{connection}\r\n{shown}",
            body.len()
        )?;
        if close {
            return Ok(());
        }
    }
}

fn main() {
    let addr = std::env::var("LISTEN").unwrap_or_else(|_| "0.0.0.0:8080".into());
    let listener = TcpListener::bind(&addr).expect("bind");
    println!("tinyapi-std listening on {addr}");
    let started = Instant::now();
    for stream in listener.incoming().flatten() {
        let _ = stream.set_nodelay(true);
        std::thread::spawn(move || {
            CONNECTIONS.fetch_add(1, Ordering::Relaxed);
            let _ = serve(stream, started);
            CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
