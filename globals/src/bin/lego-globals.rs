//! `lego-globals --listen ADDR --state DIR`: the global managers. Serves
//! until killed; everything it decided durably is in DIR, so a restart
//! (even after `kill -9`) carries on where it was.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use lego_globals::server::Server;
use lego_globals::state::State;
use lego_globals::store::Store;

#[derive(Parser, Debug)]
#[command(
    name = "lego-globals",
    version,
    about = "Lego's global managers: components register here; runs and vNodes are placed here."
)]
struct Args {
    /// The address to serve on (host:port; port 0 picks one, shown at start).
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// The directory of the managers' durable state (made if missing).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Copies of each memory component's memory: 2 gives each one a
    /// backup (another memory component) as soon as one is up; the
    /// processors send every change to both, and a run goes on when one
    /// of them dies.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    copies: u8,
    /// error, warn, info, debug or trace.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    log_level: log::LevelFilter,
}

fn main() {
    let args = Args::parse();
    env_logger::Builder::new()
        .filter_level(args.log_level)
        .format_target(false)
        .init();
    if let Err(e) = run(&args) {
        eprintln!("lego-globals: {e}");
        std::process::exit(1);
    }
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Store(#[from] lego_globals::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

fn run(args: &Args) -> Result<(), Error> {
    let (store, loaded) = Store::open(&args.state)?;
    let state = State::restore(
        loaded.components,
        loaded.vnodes,
        loaded.grants,
        Instant::now(),
    )
    .with_copies(args.copies);
    let listener = TcpListener::bind(&args.listen).map_err(|source| Error::Listen {
        addr: args.listen.clone(),
        source,
    })?;
    let (components, vnodes) = state.counts();
    let server = Server::new(listener, state, store);
    let addr = server
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| args.listen.clone());
    log::info!(
        "serving on {addr}; state in {} ({components} component(s) known, down until they \
         register; {vnodes} vNode(s))",
        args.state.display()
    );
    server.run();
    Ok(())
}
