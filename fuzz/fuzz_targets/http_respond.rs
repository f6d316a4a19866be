//! Arbitrary bytes as the contents of one connection's read buffer: every complete request is
//! answered in order and each answer is held to the contract of `http::respond` (see `check` in
//! fuzz/src/lib.rs). Each input runs twice: serving, and draining with the largest
//! `/healthcheck` counters (the longest body there is). The real connection (`src/conn.rs`),
//! given the same bytes at once, must send exactly the checked answers (unless `/healthcheck`
//! is asked for: the connection reads the server's own counters).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyapi_fuzz::http::{Context, Health, HEAD_MAX};
use tinyapi_fuzz::{answers, find, max_counters, run, small_counters, DATE, WHOLE};

fuzz_target!(|data: &[u8]| {
    // No more than the server's read buffer holds.
    let data = &data[..data.len().min(HEAD_MAX)];
    let mut firsts = Vec::new();
    for (draining, counters) in [
        (false, small_counters as fn() -> Health),
        (true, max_counters),
    ] {
        let ctx = Context {
            date: DATE,
            draining,
            health: &counters,
        };
        let t = answers(data, &ctx);
        if draining {
            assert!(
                t.verdicts.len() <= 1,
                "draining, yet a second request was answered"
            );
        } else if find(data, b"/healthcheck").is_none() {
            // (A /healthcheck answer differs: the connection reads the server's own counters.)
            let conn = run(data, false, &WHOLE);
            assert!(
                conn.sent == t.output,
                "the connection sent {:?}, the checked answers are {:?}",
                String::from_utf8_lossy(&conn.sent),
                String::from_utf8_lossy(&t.output)
            );
        }
        firsts.push(t.verdicts.first().map(|v| v.status));
    }
    // Draining changes only the verdict, and the status of /healthcheck.
    assert!(
        firsts[0] == firsts[1] || (firsts[0], firsts[1]) == (Some(200), Some(503)),
        "first status {:?} serving, {:?} draining",
        firsts[0],
        firsts[1]
    );
});
