use clap::Parser;
use smflow::cli::{main_with, Cli, Failure};

fn main() {
    let cli = Cli::parse();
    match main_with(cli) {
        Ok(()) => {}
        Err(Failure::BadInput(msg)) => {
            eprintln!("error: {msg}");
            std::process::exit(2);
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
