//! Shared helpers for the black-box tests: run the release binary on port 0, talk to it over
//! loopback with plain sockets, and check exact bytes, exit codes and log lines.
//!
//! Every wait is bounded: sockets carry read and write timeouts, and loops that poll the child
//! have a deadline. A [`Server`] kills its process on drop, so a failing test leaves nothing
//! running.
//!
//! - [`target`]: which build runs (`TINYAPI_TEST_TARGET`), how to launch it, emulation.
//! - [`server`]: a running [`Server`], its output, signals and exit; one-shot [`run`]s.
//! - [`client`]: [`Client`] connections and the requests they send.
//! - [`expect`]: expected responses and their normalisation.
//! - [`procfs`]: readers of /proc.

// Each test binary compiles all of this module and uses only part of it.
#![allow(dead_code)]

pub mod client;
pub mod expect;
pub mod procfs;
pub mod server;
pub mod target;

pub use client::*;
pub use expect::*;
pub use procfs::*;
pub use server::*;
pub use target::*;

use std::time::Duration;

/// Generous bound for anything that should happen "at once" (a response, a start-up line).
/// Only reached when something is broken; a noisy machine stays far below it.
pub const PATIENCE: Duration = Duration::from_secs(10);
