//! `hostcert-probe`: the only program hostcert runs on a host. It exercises, each in a child
//! process of its own (this program run again with `--one NAME`), the kernel interfaces an
//! image's sshd and DHCP client use, and prints one `NAME=RESULT` line for each:
//!
//! - `ok`: it worked;
//! - `not-allowed: errno EPERM (1)`: the kernel has it but this process may not use it;
//! - `unsupported: errno ENOSYS (38)`: the kernel does not have it;
//! - `failed: ...`: anything else, with the errno or what went wrong.
//!
//! `clock-sync` is the one reading that exercises nothing: adjtimex(2) without mode bits, `ok`
//! when the kernel's status lacks STA_UNSYNC, `failed: unsynchronised ...` when it has it.
//!
//! Nothing is changed on the host: every socket, PTY and namespace is the child's and goes away
//! with it. `hostcert-probe deny-seccomp -- PROGRAM ARGS...` runs a program on a simulated host
//! that refuses seccomp filters (prctl(PR_SET_SECCOMP) fails with EINVAL, seccomp(2) with
//! ENOSYS), as the reference recipe sshd-noseccomp-wrapper.sh does; tests use it.

use std::io::Write;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Bumped when a name or the meaning of a result changes.
const PROBE_VERSION: &str = "2";

/// One test: `Ok("ok")` (or a value), or `Err` with the result words.
type Test = fn() -> Result<String, String>;

/// Every test, in output order.
const TESTS: &[(&str, Test)] = &[
    ("sandbox-sequence", sandbox_sequence),
    ("seccomp-action-errno", seccomp_action_errno),
    ("seccomp-actions", seccomp_actions),
    ("af-packet", af_packet),
    ("so-attach-filter", so_attach_filter),
    ("openpty", openpty),
    ("tiocgptpeer", tiocgptpeer),
    ("unix-fd-passing", unix_fd_passing),
    ("netlink-route", netlink_route),
    ("getrandom", getrandom),
    ("unshare-net", || unshare(libc::CLONE_NEWNET)),
    ("unshare-mount", || unshare(libc::CLONE_NEWNS)),
    ("clock-sync", clock_sync),
];

/// How long one child may take.
const CHILD_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => run_all(),
        Some("--one") => {
            let Some((_, test)) = TESTS
                .iter()
                .find(|(name, _)| Some(*name) == args.get(1).map(String::as_str))
            else {
                eprintln!("hostcert-probe: unknown test");
                return ExitCode::from(2);
            };
            let line = match test() {
                Ok(text) => text,
                Err(text) => text,
            };
            println!("{line}");
            ExitCode::SUCCESS
        }
        Some("deny-seccomp") if args.get(1).map(String::as_str) == Some("--") && args.len() > 2 => {
            deny_seccomp_and_exec(&args[2..])
        }
        Some("--version") => {
            println!("hostcert-probe {PROBE_VERSION}");
            ExitCode::SUCCESS
        }
        Some(_) => {
            eprintln!("usage: hostcert-probe [--one TEST | deny-seccomp -- PROGRAM ARGS...]");
            ExitCode::from(2)
        }
    }
}

/// Runs every test in its own child and prints the results.
fn run_all() -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => {
            eprintln!("hostcert-probe: cannot find itself: {error}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "probe-version={PROBE_VERSION}");
    let _ = writeln!(out, "arch={}", std::env::consts::ARCH);
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let _ = writeln!(out, "euid={euid}");
    for (name, _) in TESTS {
        let result = run_child(&exe, name);
        let _ = writeln!(out, "{name}={}", result.replace('\n', " "));
    }
    ExitCode::SUCCESS
}

fn run_child(exe: &std::path::Path, name: &str) -> String {
    let mut child = match Command::new(exe)
        .args(["--one", name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => return format!("failed: cannot start a child: {error}"),
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut text = String::new();
                if let Some(mut stdout) = child.stdout.take() {
                    use std::io::Read;
                    let _ = (&mut stdout).take(4096).read_to_string(&mut text);
                }
                let text = text.trim().to_owned();
                return if !text.is_empty() {
                    text
                } else {
                    use std::os::unix::process::ExitStatusExt;
                    match status.signal() {
                        Some(libc::SIGSYS) => {
                            "failed: killed by SIGSYS (a seccomp filter)".to_owned()
                        }
                        Some(signal) => format!("failed: killed by signal {signal}"),
                        None => format!("failed: exited with {status} and no result"),
                    }
                };
            }
            Ok(None) if started.elapsed() > CHILD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return format!("failed: no answer within {} s", CHILD_TIMEOUT.as_secs());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(error) => return format!("failed: {error}"),
        }
    }
}

/// The last error as a result word: `not-allowed` for EPERM and EACCES, `unsupported` for the
/// errnos that mean the kernel lacks the interface.
fn errno_result(what: &str) -> String {
    let error = std::io::Error::last_os_error();
    let code = error.raw_os_error().unwrap_or(0);
    let class = match code {
        libc::EPERM | libc::EACCES => "not-allowed",
        libc::ENOSYS
        | libc::EINVAL
        | libc::EAFNOSUPPORT
        | libc::EPROTONOSUPPORT
        | libc::ENOTTY
        | libc::ENOENT
        | libc::EOPNOTSUPP => "unsupported",
        _ => "failed",
    };
    format!("{class}: {what}: errno {} ({code})", errno_name(code))
}

fn errno_name(code: i32) -> &'static str {
    match code {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTTY => "ENOTTY",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EMFILE => "EMFILE",
        libc::EBADF => "EBADF",
        _ => "E?",
    }
}

// ---- seccomp, as OpenSSH's sandbox-seccomp-filter.c uses it ----

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_KILL_THREAD: u32 = 0;
const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
/// `offsetof(struct seccomp_data, nr)`, `arch` and `args[0]` (its low half on little-endian).
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_ARG0: u32 = 16;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: u32 = 0;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: BPF_JEQ_K,
        jt,
        jf,
        k,
    }
}

/// Installs a filter with prctl(PR_SET_SECCOMP), as sshd does.
fn install(filter: &mut [libc::sock_filter]) -> Result<(), String> {
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prog points at `filter`, which outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno_result("prctl(PR_SET_SECCOMP)"))
    }
}

fn no_new_privs() -> Result<(), String> {
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno_result("prctl(PR_SET_NO_NEW_PRIVS)"))
    }
}

/// sshd's sandbox, in its order: rlimits, PR_SET_NO_NEW_PRIVS, a filter that first checks the
/// audit architecture.
fn sandbox_sequence() -> Result<String, String> {
    for resource in [libc::RLIMIT_FSIZE, libc::RLIMIT_NOFILE, libc::RLIMIT_NPROC] {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(resource, &zero) } != 0 {
            return Err(errno_result("setrlimit"));
        }
    }
    no_new_privs()?;
    let mut filter = [
        stmt(BPF_LD_W_ABS, DATA_ARCH),
        jump(AUDIT_ARCH, 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
    ];
    install(&mut filter)?;
    Ok("ok".to_owned())
}

/// A filter that answers getppid with ENOTTY: the errno action works when getppid then fails
/// with exactly that.
fn seccomp_action_errno() -> Result<String, String> {
    no_new_privs()?;
    let mut filter = [
        stmt(BPF_LD_W_ABS, DATA_NR),
        jump(libc::SYS_getppid as u32, 0, 1),
        stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::ENOTTY as u32),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
    ];
    install(&mut filter)?;
    // SAFETY: getppid through syscall(2) takes no arguments.
    let rc = unsafe { libc::syscall(libc::SYS_getppid) };
    let code = std::io::Error::last_os_error().raw_os_error();
    if rc == -1 && code == Some(libc::ENOTTY) {
        Ok("ok".to_owned())
    } else {
        Err(format!(
            "failed: the filter's errno was not returned (getppid gave {rc})"
        ))
    }
}

/// The actions seccomp(SECCOMP_GET_ACTION_AVAIL) reports, space-separated.
fn seccomp_actions() -> Result<String, String> {
    let mut available = Vec::new();
    for (name, action) in [
        ("kill-process", SECCOMP_RET_KILL_PROCESS),
        ("kill-thread", SECCOMP_RET_KILL_THREAD),
        ("trap", SECCOMP_RET_TRAP),
        ("errno", SECCOMP_RET_ERRNO),
        ("trace", SECCOMP_RET_TRACE),
        ("log", SECCOMP_RET_LOG),
        ("allow", SECCOMP_RET_ALLOW),
    ] {
        // SAFETY: the action word is read by the kernel and outlives the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_GET_ACTION_AVAIL,
                0,
                &action as *const u32,
            )
        };
        if rc == 0 {
            available.push(name);
        } else if available.is_empty() && name == "kill-process" {
            let code = std::io::Error::last_os_error().raw_os_error();
            if code != Some(libc::EOPNOTSUPP) {
                return Err(errno_result("seccomp(SECCOMP_GET_ACTION_AVAIL)"));
            }
        }
    }
    Ok(available.join(" "))
}

// ---- DHCP clients: AF_PACKET and classic BPF ----

fn packet_socket() -> Result<i32, String> {
    let protocol = (libc::ETH_P_ALL as u16).to_be() as i32;
    // SAFETY: socket with integer arguments.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, protocol) };
    if fd < 0 {
        Err(errno_result("socket(AF_PACKET, SOCK_RAW)"))
    } else {
        Ok(fd)
    }
}

fn af_packet() -> Result<String, String> {
    packet_socket().map(|_| "ok".to_owned())
}

/// dhclient's Linux packet filter attaches a classic BPF program; this one accepts nothing.
fn so_attach_filter() -> Result<String, String> {
    let fd = packet_socket()?;
    let mut filter = [stmt(BPF_RET_K, 0)];
    let prog = libc::sock_fprog {
        len: 1,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prog and its filter outlive the call; the kernel copies them.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &prog as *const libc::sock_fprog as *const libc::c_void,
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok("ok".to_owned())
    } else {
        Err(errno_result("setsockopt(SO_ATTACH_FILTER)"))
    }
}

// ---- sshd: PTYs and descriptor passing ----

fn open_ptmx() -> Result<i32, String> {
    let path = c"/dev/ptmx";
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
    if fd < 0 {
        return Err(errno_result("open(/dev/ptmx)"));
    }
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int.
    if unsafe { libc::ioctl(fd, libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(errno_result("ioctl(TIOCSPTLCK)"));
    }
    Ok(fd)
}

fn openpty() -> Result<String, String> {
    let fd = open_ptmx()?;
    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int.
    if unsafe { libc::ioctl(fd, libc::TIOCGPTN, &mut number) } != 0 {
        return Err(errno_result("ioctl(TIOCGPTN)"));
    }
    let path = format!("/dev/pts/{number}\0");
    // SAFETY: a NUL-terminated path.
    let peer = unsafe {
        libc::open(
            path.as_ptr() as *const libc::c_char,
            libc::O_RDWR | libc::O_NOCTTY,
        )
    };
    if peer < 0 {
        return Err(errno_result("open(/dev/pts/N)"));
    }
    Ok("ok".to_owned())
}

fn tiocgptpeer() -> Result<String, String> {
    let fd = open_ptmx()?;
    // SAFETY: TIOCGPTPEER takes open flags and returns a descriptor.
    let peer = unsafe { libc::ioctl(fd, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY) };
    if peer < 0 {
        Err(errno_result("ioctl(TIOCGPTPEER)"))
    } else {
        Ok("ok".to_owned())
    }
}

/// Passes a descriptor over a socket pair with SCM_RIGHTS, as sshd's monitor does.
fn unix_fd_passing() -> Result<String, String> {
    let mut pair = [0i32; 2];
    // SAFETY: socketpair writes two descriptors into `pair`.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr()) } != 0 {
        return Err(errno_result("socketpair(AF_UNIX)"));
    }
    let sent_fd: i32 = 0;
    let mut byte = [b'x'];
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr() as *mut libc::c_void,
        iov_len: 1,
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives sendmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer has room for one header and one int (CMSG_SPACE).
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut i32, sent_fd);
    }
    // SAFETY: msg is fully set up.
    if unsafe { libc::sendmsg(pair[0], &msg, 0) } != 1 {
        return Err(errno_result("sendmsg(SCM_RIGHTS)"));
    }
    let mut back = [0u8; 1];
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: back.as_mut_ptr() as *mut libc::c_void,
        iov_len: 1,
    };
    // SAFETY: as above, for recvmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    // SAFETY: msg points at buffers that outlive the call.
    if unsafe { libc::recvmsg(pair[1], &mut msg, 0) } != 1 {
        return Err(errno_result("recvmsg(SCM_RIGHTS)"));
    }
    // SAFETY: the kernel filled the control buffer; CMSG_FIRSTHDR checks its length.
    let received = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            None
        } else {
            Some(std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const i32))
        }
    };
    match received {
        Some(fd) if fd >= 0 => Ok("ok".to_owned()),
        _ => Err("failed: no descriptor arrived".to_owned()),
    }
}

// ---- rtnetlink ----

/// Sends an RTM_GETLINK dump request and reads the first answer.
fn netlink_route() -> Result<String, String> {
    // SAFETY: socket with integer arguments.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(errno_result("socket(AF_NETLINK, NETLINK_ROUTE)"));
    }
    // struct nlmsghdr (16 bytes) + struct ifinfomsg (16 bytes).
    let mut request = [0u8; 32];
    request[0..4].copy_from_slice(&32u32.to_ne_bytes());
    request[4..6].copy_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    request[6..8].copy_from_slice(&flags.to_ne_bytes());
    request[8..12].copy_from_slice(&1u32.to_ne_bytes());
    request[16] = libc::AF_UNSPEC as u8;
    // SAFETY: the request buffer outlives the call.
    let sent = unsafe {
        libc::send(
            fd,
            request.as_ptr() as *const libc::c_void,
            request.len(),
            0,
        )
    };
    if sent != request.len() as isize {
        return Err(errno_result("send(RTM_GETLINK)"));
    }
    let mut answer = vec![0u8; 65536];
    // SAFETY: the answer buffer outlives the call.
    let received = unsafe {
        libc::recv(
            fd,
            answer.as_mut_ptr() as *mut libc::c_void,
            answer.len(),
            0,
        )
    };
    if received < 16 {
        return Err(errno_result("recv(RTM_GETLINK)"));
    }
    let kind = u16::from_ne_bytes([answer[4], answer[5]]);
    if kind == libc::RTM_NEWLINK || kind == libc::NLMSG_DONE as u16 {
        Ok("ok".to_owned())
    } else {
        Err(format!("failed: unexpected netlink answer type {kind}"))
    }
}

fn getrandom() -> Result<String, String> {
    let mut buffer = [0u8; 16];
    // SAFETY: the buffer is 16 bytes long.
    let rc = unsafe { libc::getrandom(buffer.as_mut_ptr() as *mut libc::c_void, 16, 0) };
    if rc == 16 {
        Ok("ok".to_owned())
    } else {
        Err(errno_result("getrandom"))
    }
}

/// Whether the kernel considers the system clock synchronised: adjtimex(2) with no mode bits
/// only reads, and STA_UNSYNC in its status says no NTP daemon has disciplined the clock (the
/// kernel sets it at boot and when maxerror reaches 16 s).
fn clock_sync() -> Result<String, String> {
    // SAFETY: a zeroed timex with modes 0 asks adjtimex to change nothing and fill it in.
    let mut timex: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `timex` is a valid, writable timex.
    let state = unsafe { libc::adjtimex(&mut timex) };
    if state < 0 {
        return Err(errno_result("adjtimex"));
    }
    if timex.status & libc::STA_UNSYNC != 0 || state == libc::TIME_ERROR {
        Err(format!(
            "failed: unsynchronised (adjtimex status {:#x} has STA_UNSYNC, maxerror {} us)",
            timex.status, timex.maxerror
        ))
    } else {
        Ok("ok".to_owned())
    }
}

fn unshare(flags: i32) -> Result<String, String> {
    // SAFETY: unshare with flags; only this child process is moved.
    if unsafe { libc::unshare(flags) } == 0 {
        Ok("ok".to_owned())
    } else {
        Err(errno_result("unshare"))
    }
}

/// Installs a filter that refuses seccomp filters (prctl(PR_SET_SECCOMP) gives EINVAL,
/// seccomp(2) gives ENOSYS), then runs the program: a host without seccomp filter support, as
/// far as that program can tell.
fn deny_seccomp_and_exec(argv: &[String]) -> ExitCode {
    if let Err(reason) = no_new_privs() {
        eprintln!("hostcert-probe deny-seccomp: {reason}");
        return ExitCode::from(1);
    }
    let mut filter = [
        stmt(BPF_LD_W_ABS, DATA_NR),
        jump(libc::SYS_seccomp as u32, 0, 1),
        stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        jump(libc::SYS_prctl as u32, 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
        stmt(BPF_LD_W_ABS, DATA_ARG0),
        jump(libc::PR_SET_SECCOMP as u32, 0, 1),
        stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::EINVAL as u32),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
    ];
    if let Err(reason) = install(&mut filter) {
        eprintln!("hostcert-probe deny-seccomp: {reason}");
        return ExitCode::from(1);
    }
    use std::os::unix::process::CommandExt;
    let error = Command::new(&argv[0]).args(&argv[1..]).exec();
    eprintln!(
        "hostcert-probe deny-seccomp: cannot run {}: {error}",
        argv[0]
    );
    ExitCode::from(127)
}
