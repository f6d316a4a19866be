//! A request stream that arrives in arbitrary read-sized pieces must get exactly the answers it
//! gets when it arrives all at once: the same response bytes and the same verdicts.
//!
//! Input: the first `SIZES` bytes choose the read sizes, used in turn (0 = as much as the buffer
//! takes, n = n bytes); the rest is the stream. Both runs go through the server's buffer rules
//! (`serve` in fuzz/src/lib.rs), so every answer is also held to the contract of `http::respond`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyapi_fuzz::http::{Context, HEAD_MAX};
use tinyapi_fuzz::{serve, small_counters, DATE, FILL};

/// Bytes at the start of the input that choose the read sizes.
const SIZES: usize = 4;
/// Longest stream tried: enough for a full buffer after some pipelined requests.
const STREAM_MAX: usize = 3 * HEAD_MAX;

fuzz_target!(|data: &[u8]| {
    if data.len() < SIZES {
        return;
    }
    let (sizes, stream) = data.split_at(SIZES);
    let stream = &stream[..stream.len().min(STREAM_MAX)];
    let ctx = Context {
        date: DATE,
        draining: false,
        health: &small_counters,
    };
    let whole = serve(stream, &ctx, |_| FILL);
    let pieces = serve(stream, &ctx, |i| match sizes[i % SIZES] {
        0 => FILL,
        n => n as usize,
    });
    if pieces != whole {
        panic!(
            "read sizes {sizes:?} change the answers to {:?}\n\
             all at once: {:?} {:?}\n\
             in pieces:   {:?} {:?}",
            String::from_utf8_lossy(stream),
            whole.verdicts,
            String::from_utf8_lossy(&whole.output),
            pieces.verdicts,
            String::from_utf8_lossy(&pieces.output),
        );
    }
});
