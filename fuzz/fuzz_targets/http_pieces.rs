//! A request stream must get the same answers from the real connection (`src/conn.rs`) however
//! it is cut into reads, however slowly the client reads the answers (partial writes, spill
//! buffers) and however the clock moves: the same bytes, and the same ending.
//!
//! Input: 4 bytes of read sizes, 2 of client read sizes, 2 of clock steps (each used in turn;
//! 0 = everything), then the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyapi_fuzz::http::HEAD_MAX;
use tinyapi_fuzz::{run, Plan, WHOLE};

/// Bytes at the start of the input that choose the plan.
const PLAN: usize = 8;
/// Longest stream tried: enough for a full buffer after some pipelined requests.
const STREAM_MAX: usize = 3 * HEAD_MAX;

fuzz_target!(|data: &[u8]| {
    if data.len() < PLAN {
        return;
    }
    let (plan, stream) = data.split_at(PLAN);
    let stream = &stream[..stream.len().min(STREAM_MAX)];
    let plan = Plan {
        reads: &plan[..4],
        rooms: &plan[4..6],
        steps: &plan[6..8],
    };
    let pieces = run(stream, false, &plan);
    let mut whole = run(stream, false, &WHOLE);
    if whole.sent != pieces.sent && !pieces.exit {
        // /healthcheck reports uptime in seconds: a second may have ended between the runs.
        whole = run(stream, false, &WHOLE);
    }
    let same = if pieces.exit {
        // /panic ends the process after one send, which a slow client may take in part.
        whole.exit && whole.sent.starts_with(&pieces.sent)
    } else {
        pieces == whole
    };
    if !same {
        panic!(
            "the plan {:?} changes the answers to {:?}\n\
             all at once: {:?} {:?}\n\
             in pieces:   {:?} {:?}",
            data[..PLAN].to_vec(),
            String::from_utf8_lossy(stream),
            whole.exit,
            String::from_utf8_lossy(&whole.sent),
            pieces.exit,
            String::from_utf8_lossy(&pieces.sent),
        );
    }
});
