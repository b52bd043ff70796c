//! Lorikeet as a library: configuration and the server, so tests and tools can start
//! a complete server in-process (on port 0). The `lorikeet` binary is a thin wrapper.

pub mod config;
pub mod keys;
pub mod prometheus;
pub mod server;

pub use config::Config;
pub use server::{start, Server};
