//! The `trailmill` command: everything is in the library ([`trailmill_cli::main`]).

fn main() -> std::process::ExitCode {
    trailmill_cli::main()
}
