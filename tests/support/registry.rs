//! Real registries and hostile ones: Debian's `docker-registry` (CNCF distribution 2.8) on
//! 127.0.0.1 with TLS from a CA made with openssl and htpasswd (bcrypt) authentication, its
//! storage and config in the test's folder; a static HTTP server (python3's http.server) for
//! lookaside signatures; and a fake registry whose every answer a test chooses (wrong digests,
//! lying lengths, endless bodies, 401 loops, redirects), recording the requests it got. Each
//! stops exactly the process or thread it started when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::image::tool as run;
use super::{free_port, require};

/// The registry user's password: tests search every output for it.
pub const PASSWORD: &str = "hc-Reg1stry-s3cret";
pub const USER: &str = "tester";

/// A CA and a server certificate for 127.0.0.1 and localhost, made with openssl.
#[derive(Clone)]
pub struct Certificates {
    /// A certs.d-style folder holding `ca.crt`.
    pub ca_dir: PathBuf,
    /// A certs.d-style folder holding `ca.crt` and a client certificate the CA signed
    /// (`client.cert`, `client.key`).
    pub client_dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certificates {
    pub fn make(dir: &Path) -> Certificates {
        require("openssl", "openssl");
        std::fs::create_dir_all(dir).unwrap();
        let ca_dir = dir.join("ca");
        std::fs::create_dir_all(&ca_dir).unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca/ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=hostcert test CA",
        ]);
        run(dir, "openssl", &ca);
        let mut request = vec!["req"];
        request.extend(ec);
        request.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        run(dir, "openssl", &request);
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        run(
            dir,
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca/ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        );
        let client_dir = dir.join("client");
        std::fs::create_dir_all(&client_dir).unwrap();
        let mut request = vec!["req"];
        request.extend(ec);
        request.extend([
            "-keyout",
            "client/client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=hostcert client",
        ]);
        run(dir, "openssl", &request);
        std::fs::write(dir.join("client.cnf"), "extendedKeyUsage=clientAuth\n").unwrap();
        run(
            dir,
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca/ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "client/client.cert",
                "-days",
                "2",
                "-extfile",
                "client.cnf",
            ],
        );
        std::fs::copy(ca_dir.join("ca.crt"), client_dir.join("ca.crt")).unwrap();
        Certificates {
            ca_dir,
            client_dir,
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        }
    }
}

/// One docker-registry on 127.0.0.1.
pub struct Registry {
    pub port: u16,
    pub dir: PathBuf,
    pub certs: Certificates,
    /// A containers-auth.json with the user's credentials.
    pub authfile: PathBuf,
    child: Option<Child>,
}

impl Registry {
    /// Starts a registry with TLS and htpasswd authentication in `dir`.
    pub fn start(dir: &Path) -> Registry {
        Registry::start_with(dir, false)
    }

    /// Starts a registry that also requires a client certificate its CA signed when
    /// `client_certificates` is set.
    pub fn start_with(dir: &Path, client_certificates: bool) -> Registry {
        require("docker-registry", "docker-registry");
        require("htpasswd", "apache2-utils");
        require("skopeo", "skopeo");
        std::fs::create_dir_all(dir).unwrap();
        let certs = Certificates::make(&dir.join("tls"));
        run(dir, "htpasswd", &["-Bbc", "htpasswd", USER, PASSWORD]);
        let authfile = dir.join("auth.json");
        let auth = base64_encode(format!("{USER}:{PASSWORD}").as_bytes());
        for _attempt in 0..5 {
            let port = free_port();
            std::fs::write(
                &authfile,
                format!("{{\"auths\": {{\"127.0.0.1:{port}\": {{\"auth\": \"{auth}\"}}}}}}"),
            )
            .unwrap();
            let config = dir.join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: hostcert-test\n  tls:\n    certificate: {}\n    key: {}\n{}auth:\n  htpasswd:\n    realm: hostcert-test\n    path: {}\n",
                    dir.join("storage").display(),
                    certs.cert.display(),
                    certs.key.display(),
                    if client_certificates {
                        format!("    clientcas:\n      - {}\n", certs.ca_dir.join("ca.crt").display())
                    } else {
                        String::new()
                    },
                    dir.join("htpasswd").display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.join("registry.log")).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry starts");
            let mut registry = Registry {
                port,
                dir: dir.to_owned(),
                certs: certs.clone(),
                authfile: authfile.clone(),
                child: Some(child),
            };
            if registry.wait_listening() {
                return registry;
            }
            registry.stop();
        }
        panic!(
            "docker-registry did not start; see {}",
            dir.join("registry.log").display()
        )
    }

    fn wait_listening(&mut self) -> bool {
        super::wait_listening(self.child.as_mut(), self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `docker://127.0.0.1:PORT/REPO`.
    pub fn docker(&self, repository: &str) -> String {
        format!("docker://{}/{repository}", self.host())
    }

    /// `skopeo copy SOURCE docker://127.0.0.1:PORT/REPO` with the registry's credentials and CA;
    /// `extra` goes before the source (`--all`, `--sign-by FPR`, …).
    pub fn push(&self, source: &str, repository: &str, extra: &[&str]) -> String {
        let authfile = self.authfile.display().to_string();
        let ca = self.certs.ca_dir.display().to_string();
        let destination = self.docker(repository);
        let mut args = vec![
            "copy",
            "--quiet",
            "--dest-authfile",
            &authfile,
            "--dest-cert-dir",
            &ca,
        ];
        args.extend(extra);
        args.push(source);
        args.push(&destination);
        run(&self.dir, "skopeo", &args)
    }

    /// What `skopeo inspect --raw` reads for `image` (a `docker://` address of this registry)
    /// with the registry's credentials and CA: the manifest or index, byte for byte.
    pub fn inspect_raw(&self, image: &str) -> String {
        let authfile = self.authfile.display().to_string();
        let ca = self.certs.ca_dir.display().to_string();
        run(
            &self.dir,
            "skopeo",
            &[
                "inspect",
                "--raw",
                "--authfile",
                &authfile,
                "--cert-dir",
                &ca,
                image,
            ],
        )
    }

    /// The registry's log (its access log lists every request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// How many times the registry sent a blob (GETs answered 200).
    pub fn blob_gets(&self, digest: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| {
                l.contains("\"GET /v2/") && l.contains(&format!("/blobs/{digest} HTTP/1.1\" 200 "))
            })
            .count()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Standard base64, for auth files.
pub fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A static HTTP server on 127.0.0.1 serving a folder (python3's http.server).
pub struct StaticServer {
    pub port: u16,
    child: Child,
}

impl StaticServer {
    pub fn start(dir: &Path) -> StaticServer {
        require("python3", "python3");
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "http.server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        StaticServer { port, child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request a fake server got.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

/// What a fake server answers.
pub enum Reply {
    /// A complete response.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Says `Content-Length: declared`, sends `body` (shorter), closes.
    Lying { declared: u64, body: Vec<u8> },
    /// Sends bytes forever (no length), until the client goes away.
    Endless,
    /// Never answers (until the server stops).
    Hang,
    /// Says the body's real length, then sends it one byte every 400 ms (each read of the
    /// client gets a byte before its timeout), until the client goes away.
    Trickle { body: Vec<u8> },
}

impl Reply {
    pub fn json(status: u16, body: &serde_json::Value, headers: &[(&str, &str)]) -> Reply {
        Reply::Full {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.to_string().into_bytes(),
        }
    }

    pub fn bytes(status: u16, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
        Reply::Full {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body,
        }
    }
}

/// A fake's handler: the request and the fake's own port (for URLs that point back at it).
type Handler = dyn Fn(&Request, u16) -> Reply + Send + Sync;

/// A registry that answers as its handler says, over plain HTTP on 127.0.0.1.
pub struct Fake {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fake {
    pub fn start(handler: impl Fn(&Request, u16) -> Reply + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let requests = requests.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let requests = requests.clone();
                    let handler = handler.clone();
                    let stop = stop.clone();
                    std::thread::spawn(move || serve(stream, port, &*handler, &requests, &stop));
                }
            })
        };
        Fake {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    port: u16,
    handler: &Handler,
    requests: &Mutex<Vec<Request>>,
    stop: &AtomicBool,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or("").to_owned();
        let path = words.next().unwrap_or("").to_owned();
        if !method.chars().all(|c| c.is_ascii_uppercase()) || method.is_empty() {
            // Not HTTP (a TLS handshake): close.
            return;
        }
        let mut authorization = None;
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "authorization" => authorization = Some(value.trim().to_owned()),
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        let _ = reader.read_exact(&mut body);
        let request = Request {
            method,
            path,
            authorization,
            body,
        };
        requests.lock().unwrap().push(request.clone());
        match handler(&request, port) {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for (name, value) in headers {
                    head += &format!("{name}: {value}\r\n");
                }
                head += "\r\n";
                if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&body).is_err() {
                    return;
                }
            }
            Reply::Lying { declared, body } => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\n\r\n");
                let _ = writer.write_all(head.as_bytes());
                let _ = writer.write_all(&body);
                return;
            }
            Reply::Endless => {
                let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                let chunk = vec![b'x'; 64 << 10];
                while !stop.load(Ordering::SeqCst) {
                    if writer.write_all(&chunk).is_err() {
                        return;
                    }
                }
                return;
            }
            Reply::Trickle { body } => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                if writer.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for byte in body {
                    if stop.load(Ordering::SeqCst)
                        || writer.write_all(&[byte]).is_err()
                        || writer.flush().is_err()
                    {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(400));
                }
                return;
            }
            Reply::Hang => {
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
        }
    }
}

/// A podman store of the test's own (vfs driver, its own root, run root and temporary folder):
/// never the machine's default store.
pub struct PodmanStore {
    pub root: PathBuf,
    pub runroot: PathBuf,
    tmp: PathBuf,
}

impl PodmanStore {
    pub fn new(dir: &Path) -> PodmanStore {
        require("podman", "podman");
        let store = PodmanStore {
            root: dir.join("root"),
            runroot: dir.join("run"),
            tmp: dir.join("tmp"),
        };
        for folder in [&store.root, &store.runroot, &store.tmp] {
            std::fs::create_dir_all(folder).unwrap();
        }
        store
    }

    /// Runs podman on this store.
    pub fn podman(&self, at: &Path, args: &[&str]) -> String {
        let root = self.root.display().to_string();
        let runroot = self.runroot.display().to_string();
        let tmp = self.tmp.display().to_string();
        let mut all = vec![
            "--root",
            &root,
            "--runroot",
            &runroot,
            "--tmpdir",
            &tmp,
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ];
        all.extend(args);
        run(at, "podman", &all)
    }

    /// `containers-storage:[vfs@ROOT+RUNROOT]NAME`.
    pub fn address(&self, name: &str) -> String {
        format!(
            "containers-storage:[vfs@{}+{}]{name}",
            self.root.display(),
            self.runroot.display()
        )
    }

    /// Every file of the store with its size and modification time: to show nothing wrote it.
    pub fn listing(&self) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let meta = entry.path().symlink_metadata().unwrap();
                if meta.is_dir() {
                    stack.push(entry.path());
                }
                out.push((entry.path(), meta.len(), meta.modified().unwrap()));
            }
        }
        out.sort();
        out
    }
}
