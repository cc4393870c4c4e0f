//! The real run: an image's own DHCP client and sshd, run on this machine's kernel.
//!
//! [`SCRIPT`] (sh, run as root) creates two network namespaces joined by a veth pair, starts a
//! real dnsmasq in one, and in the other, inside new mount and pid namespaces, mounts the image
//! tree read-only (a bind mount) with its own /proc, /dev (tmpfs with a new devpts instance),
//! /run and /tmp, and runs the image's DHCP client (dhclient, BusyBox udhcpc or dhcpcd) until it
//! holds a lease, then the image's sshd on the leased address with a generated host key. It
//! prints `ready`, and hostcert logs in with ssh2 and a generated key (through `busybox nc` in
//! the server namespace), asks for a PTY and runs a command. When hostcert closes the script's
//! stdin the script tears everything down (processes by pid, namespaces, the veth pair, its
//! folder) and reports what, if anything, was left. Mounts live only in the image's mount
//! namespace and end with it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::facts::FactValue;

/// How long the whole run may take.
const TIMEOUT: Duration = Duration::from_secs(90);

/// The tools the run needs on the host, with their Debian packages.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("dnsmasq", "dnsmasq-base"),
    ("unshare", "util-linux"),
    ("busybox", "busybox-static"),
    ("ssh-keygen", "openssh-client"),
];

/// Why a real run cannot happen here (not root, no namespaces), or `None` when it can. Such a
/// run is skipped with the reason, never passed.
pub(super) fn cannot_run_here() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some(
            "a real run needs root on the host (namespaces, veth pairs, mounts)".to_owned(),
        );
    }
    if !std::path::Path::new("/proc/self/ns/net").exists() {
        return Some("this kernel has no network namespaces".to_owned());
    }
    None
}

/// The prefix of the veth interfaces of a real run: `hc<pid>s` and `hc<pid>c`, followed by the
/// run's number for a process's later runs (an interface name has at most 15 bytes, and
/// dnsmasq's log lines that are evidence name it).
pub(crate) const LINK_PREFIX: &str = "hc";

/// The script of a real run, started in its own process group (a Ctrl-C on the terminal reaches
/// hostcert, which tears the run down, not the script's processes one by one), with the lines it
/// prints.
struct Script {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    started: Instant,
    /// Whether hostcert asked it to stop because a signal interrupted the run.
    stopped: bool,
}

impl Script {
    /// The next line the script prints, or `None` when it has closed its output or the time
    /// is up. When a signal interrupts the run, the script is told to tear down (its stdin
    /// closed, SIGTERM) and its last lines are still read.
    fn next_line(&mut self) -> Option<String> {
        loop {
            if !self.stopped && crate::interrupt::requested().is_some() {
                self.stop();
            }
            let left = TIMEOUT.saturating_sub(self.started.elapsed());
            if left.is_zero() {
                return None;
            }
            match self.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(line) => return Some(line),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn stop(&mut self) {
        self.stopped = true;
        drop(self.child.stdin.take());
        crate::interrupt::send(self.child.id(), rustix::process::Signal::TERM, false);
    }
}

/// Runs the image tree at `tree` for real. The record has `dhcp-client`, `lease`, `dhcp-secs`,
/// `sshd-secs`, `login` (`ok` or why not), `pty`, `command`, `seccomp-sandbox` (`engaged`,
/// `not engaged: LINE`, `unknown`), `sandbox-log`, `dhcp-log`, `total-secs` and `teardown`
/// (`ok` or what was left).
///
/// Everything it makes is named for this process ([`crate::temp`]): the namespaces
/// `hostcert-<pid>-<n>-srv` and `-img`, the veth pair `hc<pid>s`/`c` (`hc<pid>s<n>` past the
/// first run), and its folder
/// `hostcert-<pid>-live-*` under TMPDIR; `hostcert clean` removes them if hostcert is killed
/// before its script tore them down.
pub(super) fn run(tree: &std::path::Path) -> Result<FactValue, String> {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    for (tool, package) in TOOLS {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Err(format!(
                "a real run needs `{tool}` on the host: apt-get install {package}"
            ));
        }
    }
    if let Some(reason) = crate::interrupt::reason() {
        return Err(reason);
    }
    let started = Instant::now();
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let pid = std::process::id();
    let namespaces = format!("{}{pid}-{n}", crate::temp::PREFIX);
    let run_number = if n == 0 { String::new() } else { n.to_string() };
    let links = [
        format!("{LINK_PREFIX}{pid}s{run_number}"),
        format!("{LINK_PREFIX}{pid}c{run_number}"),
    ];
    // `HOSTCERT_LIVE_RUN_DENY_SECCOMP=1` simulates a host that refuses seccomp filters for the
    // image's sshd (hostcert-probe deny-seccomp, as recipes/sshd-noseccomp-wrapper.sh does).
    let deny = match std::env::var_os("HOSTCERT_LIVE_RUN_DENY_SECCOMP") {
        Some(v) if v == "1" => super::probe_program::locate_beside_hostcert()?
            .display()
            .to_string(),
        _ => String::new(),
    };
    let work = crate::temp::folder("live")
        .map_err(|e| format!("cannot make a temporary folder: {e}"))?
        .keep();
    // An interrupted run waits for this teardown before it writes its report.
    let _teardown = crate::interrupt::Teardown::start();
    let spawned = Command::new("sh")
        .args(["-c", SCRIPT, "hostcert-live-run"])
        .env("TREE", tree)
        .env("WORK", &work)
        .env("NS", &namespaces)
        .env("IF_S", &links[0])
        .env("IF_C", &links[1])
        .env("DENY_SECCOMP", deny)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            let _ = crate::temp::remove_folder(&work);
            return Err(format!("cannot start the run: {error}"));
        }
    };
    // A second Ctrl-C sends the script's group SIGTERM: it tears down on its own.
    let _group = crate::interrupt::ProcessGroup::register(child.id());
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let stdout = child.stdout.take();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        if let Some(stdout) = stdout {
            for line in BufReader::new(stdout.take(1 << 20)).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        }
    });
    let stderr = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(stderr) = stderr {
            let _ = stderr.take(64 * 1024).read_to_string(&mut text);
        }
        text
    });
    let mut script = Script {
        child,
        lines: lines_rx,
        started,
        stopped: false,
    };
    // Phase one: until `ready` (or the script ends).
    let mut ready = false;
    while let Some(line) = script.next_line() {
        if line == "ready" {
            ready = true;
            break;
        }
        if let Some((key, value)) = line.split_once('=') {
            fields.insert(key.to_owned(), value.to_owned());
        }
    }
    if ready && !script.stopped {
        let login_started = Instant::now();
        match login(&fields) {
            Ok((pty, output)) => {
                fields.insert("login".to_owned(), "ok".to_owned());
                fields.insert("pty".to_owned(), pty);
                fields.insert("command".to_owned(), output);
            }
            Err(reason) => {
                fields.insert("login".to_owned(), format!("failed: {reason}"));
            }
        }
        fields.insert(
            "login-secs".to_owned(),
            format!("{:.2}", login_started.elapsed().as_secs_f64()),
        );
    }
    // Phase two: closing stdin tells the script to tear down.
    drop(script.child.stdin.take());
    while let Some(line) = script.next_line() {
        if let Some((key, value)) = line.split_once('=') {
            fields.insert(key.to_owned(), value.to_owned());
        }
    }
    let status = wait_or_kill(&mut script.child, started);
    let _ = reader.join();
    let errors = stderr_reader.join().unwrap_or_default();
    let folder = crate::temp::remove_folder(&work);
    if !fields.contains_key("teardown") {
        return Err(format!(
            "the run did not finish ({status}); the host may keep network namespaces named {namespaces}-* (`hostcert clean` removes them): {}",
            errors.trim()
        ));
    }
    if let Err(reason) = folder {
        fields.insert("teardown".to_owned(), format!("left: {reason}"));
    }
    if script.stopped {
        return Err(format!(
            "{}; teardown {}",
            crate::interrupt::reason().unwrap_or_else(|| "interrupted".to_owned()),
            fields["teardown"]
        ));
    }
    if !ready {
        let error = fields
            .entry("error".to_owned())
            .or_insert_with(|| errors.trim().to_owned())
            .clone();
        fields
            .entry("login".to_owned())
            .or_insert_with(|| format!("not attempted: {error}"));
    }
    fields.insert(
        "total-secs".to_owned(),
        format!("{:.2}", started.elapsed().as_secs_f64()),
    );
    for key in [
        "lease",
        "login",
        "pty",
        "command",
        "seccomp-sandbox",
        "sandbox-log",
        "dhcp-client",
        "dhcp-log",
        "dhcp-secs",
    ] {
        fields
            .entry(key.to_owned())
            .or_insert_with(|| "none".to_owned());
    }
    Ok(FactValue::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k, FactValue::Text(v)))
            .collect(),
    ))
}

fn wait_or_kill(child: &mut Child, started: Instant) -> String {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.to_string(),
            Ok(None) if started.elapsed() > TIMEOUT + Duration::from_secs(10) => {
                // The whole group: dnsmasq and the image's processes too.
                crate::interrupt::send(child.id(), rustix::process::Signal::KILL, true);
                let _ = child.kill();
                let _ = child.wait();
                return "killed after the time limit".to_owned();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(error) => return error.to_string(),
        }
    }
}

/// Logs in to the image's sshd with ssh2 through `busybox nc` in the server namespace, asks for
/// a PTY and runs a command. Returns the PTY and the command's output.
fn login(fields: &BTreeMap<String, String>) -> Result<(String, String), String> {
    let get = |key: &str| {
        fields
            .get(key)
            .cloned()
            .ok_or_else(|| format!("the run reported no {key}"))
    };
    let (namespace, lease, work) = (get("server-netns")?, get("lease")?, get("work")?);
    let address = lease.split('/').next().unwrap_or_default().to_owned();
    // nc's stdin and stdout are one end of a socket pair and ssh2 holds the other: no pipes,
    // so no SIGPIPE when either side goes away.
    let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    let theirs_out = theirs.try_clone().map_err(|e| e.to_string())?;
    let mut nc = Command::new("ip")
        .args(["netns", "exec", &namespace, "busybox", "nc", &address, "22"])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs_out)))
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start busybox nc: {e}"))?;
    // A signal ends the login at once: the socket is shut, and ssh2 sees the end of the stream.
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let finished = std::sync::Arc::clone(&finished);
        let socket = ours.try_clone().map_err(|e| e.to_string())?;
        std::thread::spawn(move || {
            while !finished.load(std::sync::atomic::Ordering::SeqCst) {
                if crate::interrupt::requested().is_some() {
                    let _ = socket.shutdown(std::net::Shutdown::Both);
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let result = (|| {
        let mut session = ssh2::Session::new().map_err(|e| e.message().to_owned())?;
        session.set_timeout(20_000);
        session.set_tcp_stream(ours.try_clone().map_err(|e| e.to_string())?);
        session
            .handshake()
            .map_err(|e| format!("handshake: {}", e.message()))?;
        let key = std::path::Path::new(&work).join("client_ed25519");
        session
            .userauth_pubkey_file("root", None, &key, None)
            .map_err(|e| format!("authentication: {}", e.message()))?;
        let mut channel = session
            .channel_session()
            .map_err(|e| format!("session: {}", e.message()))?;
        channel
            .request_pty("xterm", None, None)
            .map_err(|e| format!("PTY request: {}", e.message()))?;
        channel
            .exec("tty; echo HOSTCERT_LOGIN_OK uid=$(id -u); exit 0")
            .map_err(|e| format!("exec: {}", e.message()))?;
        let mut output = String::new();
        channel
            .read_to_string(&mut output)
            .map_err(|e| format!("reading the command's output: {e}"))?;
        let _ = channel.wait_close();
        let _ = session.disconnect(None, "hostcert done", None);
        let output = output.replace('\r', "");
        let pty = output
            .lines()
            .find(|l| l.starts_with("/dev/pts/"))
            .map(str::to_owned)
            .ok_or_else(|| format!("no PTY in the session: {}", output.trim()))?;
        if !output.contains("HOSTCERT_LOGIN_OK uid=0") {
            return Err(format!("the command did not run: {}", output.trim()));
        }
        let command = output
            .lines()
            .filter(|l| l.starts_with("/dev/pts/") || l.starts_with("HOSTCERT_LOGIN_OK"))
            .collect::<Vec<_>>()
            .join(" | ");
        Ok((pty, command))
    })();
    finished.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watcher.join();
    let _ = ours.shutdown(std::net::Shutdown::Both);
    let _ = nc.kill();
    let _ = nc.wait();
    result
}

/// The run itself. Environment: TREE (the image tree), WORK (its empty folder, under TMPDIR),
/// NS (the prefix of its network namespaces), IF_S and IF_C (its veth pair's ends). Prints `key=value` lines, `ready` once the image's sshd listens, and
/// after stdin closes or on SIGINT, SIGTERM, SIGHUP or SIGPIPE (hostcert gone), the teardown's
/// result.
const SCRIPT: &str = r#"
set -u
NS_S="$NS-srv"; NS_I="$NS-img"
NET="10.213.$(( $$ % 200 + 20 ))"
DNSMASQ_PID=""; IMAGE_PID=""
now() { date +%s.%N; }
secs() { awk "BEGIN { printf \"%.2f\", $2 - $1 }"; }
cleanup() {
  trap '' INT TERM HUP PIPE
  touch "$WORK/stop"
  if [ -n "$IMAGE_PID" ]; then
    for i in $(seq 1 50); do kill -0 "$IMAGE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$IMAGE_PID" 2>/dev/null; wait "$IMAGE_PID" 2>/dev/null
  fi
  [ -n "$DNSMASQ_PID" ] && kill "$DNSMASQ_PID" 2>/dev/null && wait "$DNSMASQ_PID" 2>/dev/null
  ip netns del "$NS_S" 2>/dev/null; ip netns del "$NS_I" 2>/dev/null
  left=""
  ip netns list 2>/dev/null | grep -q "^$NS-" && left="$left namespaces"
  ip link show "$IF_S" >/dev/null 2>&1 && left="$left veth"
  for p in $DNSMASQ_PID $IMAGE_PID; do kill -0 "$p" 2>/dev/null && left="$left pid-$p"; done
  grep -q "$WORK" /proc/self/mountinfo && left="$left mounts"
  rm -rf "$WORK"
  [ -e "$WORK" ] && left="$left folder"
  if [ -z "$left" ]; then echo "teardown=ok"; else echo "teardown=left:$left"; fi
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP; trap 'exit 141' PIPE
fail() { echo "error=$*"; exit 1; }
echo "work=$WORK"; echo "server-netns=$NS_S"; echo "image-netns=$NS_I"
t0=$(now)
ip netns add "$NS_S" && ip netns add "$NS_I" || fail "cannot create network namespaces"
ip link add "$IF_S" type veth peer name "$IF_C" || fail "cannot create a veth pair"
ip link set "$IF_S" netns "$NS_S"; ip link set "$IF_C" netns "$NS_I"
ip -n "$NS_S" link set lo up; ip -n "$NS_I" link set lo up
ip -n "$NS_S" addr add "$NET.1/24" dev "$IF_S"; ip -n "$NS_S" link set "$IF_S" up
ip netns exec "$NS_S" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
  --interface="$IF_S" --bind-interfaces --except-interface=lo \
  --dhcp-range="$NET.100,$NET.150,255.255.255.0,1h" \
  --dhcp-leasefile="$WORK/dnsmasq.leases" --pid-file="$WORK/dnsmasq.pid" \
  --no-ping --log-dhcp --log-facility="$WORK/dnsmasq.log" &
DNSMASQ_PID=$!
ssh-keygen -q -t ed25519 -N '' -C hostcert-live-host -f "$WORK/host_ed25519" || fail "ssh-keygen failed"
ssh-keygen -q -t ed25519 -N '' -C hostcert-live-client -f "$WORK/client_ed25519" || fail "ssh-keygen failed"
if [ -x "$TREE/sbin/dhclient" ] || [ -x "$TREE/usr/sbin/dhclient" ]; then CLIENT=dhclient
elif [ -x "$TREE/bin/busybox" ] || [ -x "$TREE/usr/bin/busybox" ]; then CLIENT=udhcpc
elif [ -x "$TREE/usr/sbin/dhcpcd" ] || [ -x "$TREE/sbin/dhcpcd" ]; then CLIENT=dhcpcd
else fail "the image has no DHCP client (dhclient, busybox udhcpc, dhcpcd)"; fi
echo "dhcp-client=$CLIENT"
# Both ends up before the first DISCOVER, or it is lost and costs the client a retransmit.
ip -n "$NS_I" link set "$IF_C" up
for i in $(seq 1 50); do
  ip -n "$NS_S" link show "$IF_S" | grep -q LOWER_UP && ip netns exec "$NS_S" ss -lun | grep -q ':67 ' && break
  sleep 0.1
done
# The image's side: new mount and pid namespaces inside its network namespace.
cat > "$WORK/image.sh" <<'IMAGE'
set -u
R="$WORK/root"; mkdir -p "$R"
mount --make-rprivate / 2>/dev/null
mount --bind "$TREE" "$R" && mount -o remount,bind,ro "$R" || { echo "mount failed" > "$WORK/image.err"; exit 1; }
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read name major minor <<EOF
$n
EOF
  mknod -m 666 "$R/dev/$name" c "$major" "$minor"
done
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
[ -d "$R/var/lib/dhcp" ] && mount -t tmpfs tmpfs "$R/var/lib/dhcp"
mkdir -p "$R/run/sshd" "$R/run/hostcert"; chmod 755 "$R/run/sshd"
cp "$WORK/host_ed25519" "$WORK/client_ed25519.pub" "$R/run/hostcert/"
cp "$WORK/client_ed25519.pub" "$R/run/hostcert/authorized_keys"
cat > "$R/run/hostcert/dhcp-script" <<'SCRIPT'
#!/bin/sh
# dhclient passes reason/new_ip_address/new_subnet_mask; udhcpc passes $1/ip/mask.
case "${reason:-$1}" in
  PREINIT|deconfig) ip link set dev "$interface" up ;;
  BOUND|RENEW|REBIND|REBOOT) ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
  bound|renew) ip addr add "$ip/${mask:-24}" dev "$interface" ;;
esac
exit 0
SCRIPT
chmod 755 "$R/run/hostcert/dhcp-script"
PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH
dhcp() {
  case "$CLIENT" in
    dhclient) exec chroot "$R" dhclient -d -1 -v -sf /run/hostcert/dhcp-script -pf /run/hostcert/dhclient.pid -lf /run/hostcert/dhclient.leases "$IF_C" ;;
    udhcpc) exec chroot "$R" busybox udhcpc -i "$IF_C" -f -n -t 5 -T 2 -s /run/hostcert/dhcp-script ;;
    dhcpcd) exec chroot "$R" dhcpcd -B -1 -4 --script /run/hostcert/dhcp-script "$IF_C" ;;
  esac
}
# The client's exit status tells the other side to stop waiting for a lease that cannot come.
( dhcp > "$WORK/dhcp.log" 2>&1 & echo $! > "$WORK/dhcp.pid"; wait $!; echo $? > "$WORK/dhcp.status" ) &
for i in $(seq 1 300); do
  [ -s "$WORK/lease" ] && break
  [ -e "$WORK/stop" ] && break
  sleep 0.1
done
WRAP=""
if [ -n "$DENY_SECCOMP" ]; then
  cp "$DENY_SECCOMP" "$R/run/hostcert/hostcert-probe"
  WRAP="/run/hostcert/hostcert-probe deny-seccomp --"
fi
if [ -s "$WORK/lease" ]; then
  sshd() {
    exec chroot "$R" $WRAP /usr/sbin/sshd -D -e -f /dev/null -o ListenAddress="$(cut -d/ -f1 "$WORK/lease"):22" \
      -o HostKey=/run/hostcert/host_ed25519 -o AuthorizedKeysFile=/run/hostcert/authorized_keys \
      -o PubkeyAuthentication=yes -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no \
      -o UsePAM=no -o PermitRootLogin=prohibit-password -o StrictModes=no \
      -o PidFile=/run/hostcert/sshd.pid -o LogLevel=DEBUG3
  }
  ( sshd 2> "$WORK/sshd.log" & echo $! > "$WORK/sshd.pid"; wait $!; echo $? > "$WORK/sshd.status" ) &
fi
while [ ! -e "$WORK/stop" ]; do sleep 0.1; done
kill $(cat "$WORK/sshd.pid" 2>/dev/null) $(cat "$WORK/dhcp.pid" 2>/dev/null) 2>/dev/null
wait
IMAGE
td=$(now)
WORK="$WORK" TREE="$TREE" CLIENT="$CLIENT" IF_C="$IF_C" DENY_SECCOMP="$DENY_SECCOMP" \
  ip netns exec "$NS_I" unshare --mount --pid --fork --kill-child sh "$WORK/image.sh" &
IMAGE_PID=$!
lease=""
for i in $(seq 1 300); do
  lease=$(ip -n "$NS_I" -4 -o addr show dev "$IF_C" 2>/dev/null | awk '{print $4}')
  [ -n "$lease" ] && break
  kill -0 "$IMAGE_PID" 2>/dev/null || break
  [ -s "$WORK/dhcp.status" ] && break
  sleep 0.1
done
if [ -z "$lease" ]; then
  echo "dhcp-log=$(tail -c 600 "$WORK/dhcp.log" 2>/dev/null | tr '\n' '|')"
  if [ -s "$WORK/dhcp.status" ]; then fail "the image's $CLIENT exited with status $(cat "$WORK/dhcp.status") without a lease"; fi
  fail "no lease from dnsmasq within 30 s"
fi
echo "lease=$lease"; echo "$lease" > "$WORK/lease"
echo "dhcp-secs=$(secs "$td" "$(now)")"
echo "dhcp-log=$(grep -hE 'DHCP(DISCOVER|OFFER|REQUEST|ACK)' "$WORK/dnsmasq.log" "$WORK/dhcp.log" 2>/dev/null | sed -E 's/^.*dnsmasq-dhcp\[[0-9]+\]: [0-9]+ /dnsmasq: /' | head -8 | tr '\n' '|')"
ts=$(now)
addr="${lease%/*}"
for i in $(seq 1 100); do
  ip netns exec "$NS_I" ss -ltn 2>/dev/null | grep -q "$addr:22 " && break
  [ -s "$WORK/sshd.status" ] && break
  sleep 0.1
done
ip netns exec "$NS_I" ss -ltn 2>/dev/null | grep -q "$addr:22 " || { echo "sshd-log=$(tail -c 800 "$WORK/sshd.log" 2>/dev/null | tr '\n' '|')"; fail "the image's sshd did not listen on $addr:22: $(tail -c 300 "$WORK/sshd.log" 2>/dev/null | tr '\n' ' ')"; }
echo "sshd-secs=$(secs "$ts" "$(now)")"
echo "setup-secs=$(secs "$t0" "$td")"
echo ready
# hostcert logs in now; it closes stdin when done.
cat > /dev/null
sleep 0.2
if grep -q 'attaching seccomp filter program' "$WORK/sshd.log" && ! grep -q 'prctl(PR_SET_SECCOMP)' "$WORK/sshd.log"; then
  echo "seccomp-sandbox=engaged"
elif grep -q 'prctl(PR_SET_SECCOMP)' "$WORK/sshd.log"; then
  echo "seccomp-sandbox=not engaged: $(grep -m1 'prctl(PR_SET_SECCOMP)' "$WORK/sshd.log" | tr -d '\r')"
else
  echo "seccomp-sandbox=unknown"
fi
echo "sandbox-log=$(grep -E 'ssh_sandbox|Accepted publickey|Allocating pty' "$WORK/sshd.log" | head -8 | tr -d '\r' | tr '\n' '|')"
"#;
