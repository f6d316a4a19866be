//! Many clients at once, and clients that misbehave or vanish: none of them disturbs the others.

mod common;

use common::*;
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn a_thousand_concurrent_connections_are_all_answered() {
    const N: usize = 1000;
    let limit = raise_nofile();
    assert!(
        limit >= N as u64 + 64,
        "open-file limit {limit} is too low for {N} connections"
    );
    let s = Server::start(&[]);
    // All open at once first...
    let mut clients: Vec<Client> = (0..N).map(|_| s.connect()).collect();
    // ...then a request on each...
    for (i, c) in clients.iter_mut().enumerate() {
        let req = match i % 3 {
            0 => GET_OK.to_string(),
            1 => "GET / HTTP/1.1\r\nHost: test\r\n\r\n".to_string(),
            _ => format!("HEAD /alwaysok?n={i} HTTP/1.1\r\nHost: test\r\n\r\n"),
        };
        c.send(req.as_bytes());
    }
    // ...then every answer.
    for (i, c) in clients.iter_mut().enumerate() {
        let want = match i % 3 {
            0 => alwaysok_response(""),
            1 => index_response(""),
            _ => response("200 OK", "application/json", 18, "", ""),
        };
        assert_eq!(c.normalized(i % 3 == 2), want, "connection {i}");
    }
    let h = s.health();
    assert_eq!(h.connections, N as u64 + 1, "{h:?}");
    assert!(h.requests >= N as u64, "{h:?}");
    // A second round on the same connections: all kept alive.
    for c in clients.iter_mut() {
        c.send(GET_OK.as_bytes());
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(
            c.normalized(false),
            alwaysok_response(""),
            "connection {i}, round 2"
        );
    }
    drop(clients);
    s.wait_connections(1, PATIENCE);
}

#[test]
fn connection_slots_are_reused_across_bursts() {
    // Bursts of growing size, each fully closed before the next: every burst reuses the slots
    // freed by the previous ones and then needs more.
    // (Guards the free list's end marker: mistaken for a slot, it ended the process with 70.)
    let s = Server::start(&["--workers", "1"]);
    for burst in 1..=8 {
        let mut clients: Vec<Client> = (0..burst).map(|_| s.connect()).collect();
        for c in clients.iter_mut() {
            c.send(GET_OK.as_bytes());
        }
        for (i, c) in clients.iter_mut().enumerate() {
            assert_eq!(
                c.normalized(false),
                alwaysok_response(""),
                "burst {burst}, client {i}"
            );
        }
        drop(clients);
        s.wait_connections(1, PATIENCE);
    }
}

#[test]
fn vanishing_clients_do_not_disturb_others() {
    let s = Server::start(&[]);
    // A well-behaved client, open throughout.
    let mut steady = s.connect();
    assert_eq!(steady.exchange(GET_OK), alwaysok_response(""));

    for round in 0..20 {
        // Connect and drop.
        drop(TcpStream::connect(s.addr).unwrap());
        // Half a request, then drop.
        let mut half = s.connect();
        half.send(&GET_OK.as_bytes()[..GET_OK.len() / 2]);
        drop(half);
        // A full request, closed before reading the answer.
        let mut rude = s.connect();
        rude.send(GET_OK.as_bytes());
        drop(rude);
        // Pipelined requests, then a reset (RST) before reading.
        let mut reset = s.connect();
        reset.send(GET_OK.repeat(20).as_bytes());
        set_linger_zero(&reset.stream);
        drop(reset);
        // Half a request, then a reset.
        let mut half_reset = s.connect();
        half_reset.send(b"GET /alwaysok HTTP/1.1\r\nHo");
        set_linger_zero(&half_reset.stream);
        drop(half_reset);
        // Half-closed after a full request: the answer is still delivered.
        let mut half_closed = s.connect();
        half_closed.send(GET_OK.as_bytes());
        half_closed.shutdown_write();
        assert_eq!(
            half_closed.normalized(false),
            alwaysok_response(""),
            "round {round}"
        );

        assert_eq!(
            steady.exchange(GET_OK),
            alwaysok_response(""),
            "round {round}"
        );
        s.assert_serves();
    }
    // Only `steady` and the asking connection remain once the server has noticed the rest.
    s.wait_connections(2, PATIENCE);
    drop(steady);
    s.wait_connections(1, PATIENCE);
}

#[test]
fn a_client_that_does_not_read_its_answers_does_not_stall_others() {
    let s = Server::start(&["--workers", "1"]);
    // Several megabytes of answers requested and never read: the server must queue or drop
    // this client, not block its only worker.
    let mut hog = s.connect();
    let batch = GET_OK.repeat(100);
    let _ = hog
        .stream
        .set_write_timeout(Some(Duration::from_millis(200)));
    for _ in 0..300 {
        if std::io::Write::write_all(&mut hog.stream, batch.as_bytes()).is_err() {
            break; // the server stopped reading from us: fine
        }
    }
    for _ in 0..20 {
        s.assert_serves();
    }
    drop(hog);
    s.wait_connections(1, PATIENCE);
}

#[test]
fn many_short_connections_in_parallel() {
    let s = Server::start(&[]);
    let addr = s.addr;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..100 {
                    let mut c = Client::connect(addr);
                    c.send(b"GET /alwaysok HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
                    assert_eq!(
                        c.normalized(false),
                        alwaysok_response("Connection: close\r\n")
                    );
                    c.expect_closed(PATIENCE);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let h = s.health();
    assert!(h.requests >= 800, "{h:?}");
    s.wait_connections(1, PATIENCE);
}
