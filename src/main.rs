//! The tinyapi executable. Everything lives in the library: its `sys` module provides the
//! entry point the kernel starts (`tinyapi_start`, see src/sys/start.rs) and the panic handler.
#![no_std]
#![no_main]

extern crate tinyapi;
