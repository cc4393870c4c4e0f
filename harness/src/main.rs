//! The `hostcert` binary: everything happens in `hostcert::cli`.

fn main() -> std::process::ExitCode {
    // `hostcert run --list | head` must end quietly, as other command-line tools do, rather than
    // panic on the closed pipe.
    sigpipe::reset();
    hostcert::cli::main()
}
