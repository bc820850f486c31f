//! `lego-globals`: the global managers (the daemon that components
//! register with and that places runs and vNodes) and `lego`, the user's
//! tool. Both speak the control plane of [`lego_control`] over
//! [`conn::Conn`].
//!
//! - [`state`]: what the managers know and decide (no I/O);
//! - [`store`]: the decisions that survive a restart (redb);
//! - [`server`]: the managers' TCP service;
//! - [`client`]: requests to the managers; [`processor`]: to a processor;
//! - [`rack`]: the embedded rack's files and processes;
//! - [`render`]: status and process tables for the terminal;
//! - [`tool`]: the `lego` subcommands.

pub mod client;
pub mod conn;
pub mod processor;
pub mod rack;
pub mod render;
pub mod server;
pub mod state;
pub mod store;
pub mod tool;
