//! `hostcert-probe`, the probe program hostcert runs on live hosts (see the `hostcert-probe`
//! crate in `probe/`). It is a binary of the `hostcert` package so that every build of hostcert
//! puts it beside `hostcert`, where hostcert finds it; its unsafe code stays in `probe/`.

fn main() -> std::process::ExitCode {
    hostcert_probe::main()
}
