use std::process::ExitCode;

fn main() -> ExitCode {
    tributary::cli::main()
}
