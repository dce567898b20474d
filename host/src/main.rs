//! The `vestibule` command; see [`vestibule::cli`].

fn main() -> std::process::ExitCode {
    vestibule::cli::main()
}
