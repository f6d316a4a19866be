//! The tinyapi executable. Everything lives in the library: its `sys` module provides the C
//! `main` that musl's start-up code calls, and the panic handler.
#![no_std]
#![no_main]

extern crate tinyapi;
