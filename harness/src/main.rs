//! The `hostcert` binary: everything happens in `hostcert::cli`.

fn main() -> std::process::ExitCode {
    hostcert::cli::main()
}
