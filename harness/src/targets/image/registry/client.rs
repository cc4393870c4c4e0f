//! The HTTP side of the OCI distribution API: one client per image reference, over `ureq` with
//! rustls. It authenticates as Docker and containers/image do: a `401` names a challenge
//! (`WWW-Authenticate`); `Basic` is answered with the credentials of the auth file, `Bearer`
//! with a token from the challenge's realm (asked with those credentials, or with the
//! identity token as an OAuth2 refresh token), and the request is sent again once; a second
//! `401` is an error, never a loop.
//!
//! Redirects are followed by hand (at most [`MAX_REDIRECTS`]): credentials go only to the
//! registry's own origin (scheme, host and port), never to another host (blob storage, a CDN).
//! Timeouts: `--connect-timeout` for each connection, `--gather-timeout` for each response
//! and for each read of a body (a registry that stops sending), and for the whole of each small
//! document; a body that keeps trickling in is cut when a `--gather-timeout` window brings fewer
//! bytes than [`MIN_BYTES_PER_SECOND`] allows ([`MinimumRate`]). Every message is passed through [`Client::redact`], so that no secret, even one
//! a hostile server echoes back, reaches an error, a report or a log.

use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::http::{Response, StatusCode};
use ureq::Body;

use super::super::layout::shorten;
use super::auth::{Credentials, Found};
use super::reference::DockerReference;
use super::RegistryOptions;

/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 5;
/// The largest token response or registry error body read.
const MAX_SMALL_BODY: u64 = 1 << 20;

/// How requests to the registry are authenticated now.
#[derive(Clone)]
enum Auth {
    /// Nothing asked for yet: requests go without credentials.
    Anonymous,
    /// `Authorization: Basic …`.
    Basic(String),
    /// `Authorization: Bearer TOKEN`, from the token service.
    Bearer(String),
}

/// The auth each repository of each registry was last answered with in this run, so that the
/// next client (another gather of the same image) starts with it instead of a `401`.
fn known_auth() -> &'static Mutex<std::collections::HashMap<(String, String), Auth>> {
    static KNOWN: std::sync::OnceLock<Mutex<std::collections::HashMap<(String, String), Auth>>> =
        std::sync::OnceLock::new();
    KNOWN.get_or_init(Default::default)
}

/// A client for one repository of one registry.
pub(crate) struct Client {
    agent: ureq::Agent,
    /// `https` (or `http`, when TLS verification is off and the registry speaks plain HTTP).
    scheme: Mutex<&'static str>,
    host: String,
    repository: String,
    credentials: Option<Found>,
    auth: Mutex<Auth>,
    verify: bool,
    timeout: Duration,
}

/// The slowest a registry may send a blob, averaged over each `--gather-timeout` window: below
/// it, a body that keeps trickling in (a byte just before each read would time out) is cut, so
/// that a hostile or broken registry cannot hold a run however long its blob is.
pub(crate) const MIN_BYTES_PER_SECOND: u64 = 1024;

/// A reader that fails once a window of `window` brought fewer than
/// [`MIN_BYTES_PER_SECOND`] per second (as curl's `--speed-limit` with `--speed-time`).
pub(crate) struct MinimumRate<R> {
    inner: R,
    window: Duration,
    started: Instant,
    received: u64,
}

impl<R> MinimumRate<R> {
    pub(crate) fn new(inner: R, window: Duration) -> MinimumRate<R> {
        MinimumRate {
            inner,
            window,
            started: Instant::now(),
            received: 0,
        }
    }
}

impl<R: Read> Read for MinimumRate<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // A signal ends a fetch within one read, as it ends verifying and unpacking.
        if let Some(reason) = crate::interrupt::reason() {
            return Err(std::io::Error::other(reason));
        }
        let read = self.inner.read(buf)?;
        self.received += read as u64;
        let elapsed = self.started.elapsed();
        if elapsed >= self.window {
            let floor = MIN_BYTES_PER_SECOND.saturating_mul(self.window.as_secs().max(1));
            if self.received < floor && read > 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the registry sent {} bytes in {:.1} seconds, slower than the {} bytes a second a blob must arrive at (averaged over --gather-timeout, {} seconds)",
                        self.received,
                        elapsed.as_secs_f64(),
                        MIN_BYTES_PER_SECOND,
                        self.window.as_secs()
                    ),
                ));
            }
            self.started = Instant::now();
            self.received = 0;
        }
        Ok(read)
    }
}

/// A request that failed: the HTTP status when there was a response, and why.
#[derive(Debug, Clone)]
pub(crate) struct HttpError {
    pub message: String,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl HttpError {
    fn new(message: String) -> HttpError {
        HttpError { message }
    }
}

/// A URL's origin: scheme, lowercased host and port (the default one made explicit).
fn origin(url: &str) -> Option<String> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Some(format!("{scheme}://{host}:{port}"))
}

/// The URL a `Location` names, relative to the URL that answered.
fn resolve_location(base: &str, location: &str) -> Option<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Some(location.to_owned());
    }
    let uri: ureq::http::Uri = base.parse().ok()?;
    let scheme = uri.scheme_str()?;
    let authority = uri.authority()?.as_str();
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let path = uri.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Some(format!("{scheme}://{authority}{dir}{location}"))
}

/// The parameters of a `WWW-Authenticate` challenge: its scheme (lowercased) and its
/// `key="value"` pairs.
fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_owned();
        }
        params.push((key, value));
    }
    (scheme.to_ascii_lowercase(), params)
}

/// Reads a body whole, refusing more than `limit` bytes.
pub(crate) fn read_limited(body: Body, limit: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    body.into_reader()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("the response was cut: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("the response is larger than {limit} bytes"));
    }
    Ok(bytes)
}

impl Client {
    /// `--gather-timeout`: each response, each read of a body, each window of a blob's rate.
    pub(crate) fn gather_timeout(&self) -> Duration {
        self.timeout
    }

    /// A client for the reference's repository; nothing is sent yet.
    pub(crate) fn new(
        reference: &DockerReference,
        options: &RegistryOptions,
        credentials: Option<Found>,
    ) -> Result<Client, String> {
        let host = reference.api_host().to_owned();
        let tls = super::tls::config(&host, options.cert_dir.as_deref(), options.tls_verify)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .https_only(false)
            .user_agent(concat!("hostcert/", env!("CARGO_PKG_VERSION")))
            .accept_encoding(ureq::config::AutoHeaderValue::None)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_resolve(Some(options.connect_timeout))
            .timeout_recv_response(Some(options.gather_timeout))
            .timeout_per_read(Some(options.gather_timeout))
            .timeout_send_request(Some(options.gather_timeout))
            .build()
            .into();
        let auth = known_auth()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(host.clone(), reference.repository.clone()))
            .cloned()
            .unwrap_or(Auth::Anonymous);
        Ok(Client {
            agent,
            scheme: Mutex::new("https"),
            host,
            repository: reference.repository.clone(),
            auth: Mutex::new(auth),
            credentials,
            verify: options.tls_verify,
            timeout: options.gather_timeout,
        })
    }

    /// The registry's base URL.
    fn base(&self) -> String {
        format!(
            "{}://{}",
            *self.scheme.lock().unwrap_or_else(|e| e.into_inner()),
            self.host
        )
    }

    /// `text` with every secret this client knows replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut secrets: Vec<String> = Vec::new();
        if let Some(found) = &self.credentials {
            match &found.credentials {
                Credentials::Basic { password, .. } => {
                    secrets.push(password.clone());
                    secrets.extend(found.credentials.basic_header());
                }
                Credentials::IdentityToken { token } => secrets.push(token.clone()),
            }
        }
        match &*self.auth.lock().unwrap_or_else(|e| e.into_inner()) {
            Auth::Bearer(token) => secrets.push(token.clone()),
            Auth::Basic(header) => secrets.push(header.clone()),
            Auth::Anonymous => {}
        }
        let mut out = text.to_owned();
        for secret in secrets {
            for form in [
                secret.clone(),
                secret.trim_start_matches("Basic ").to_owned(),
            ] {
                if form.len() >= 4 {
                    out = out.replace(&form, "***");
                }
            }
        }
        out
    }

    fn transport_error(&self, what: &str, error: &ureq::Error) -> HttpError {
        let reason = match error {
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => format!(
                "no connection within {} seconds (--connect-timeout)",
                self.timeout_connect_seconds()
            ),
            ureq::Error::Timeout(_) => format!(
                "the registry did not answer within {} seconds (--gather-timeout)",
                self.timeout.as_secs()
            ),
            other => other.to_string(),
        };
        HttpError::new(self.redact(&format!("{what}: {reason}")))
    }

    fn timeout_connect_seconds(&self) -> u64 {
        self.agent
            .config()
            .timeouts()
            .connect
            .map_or(0, |d| d.as_secs())
    }

    /// The error a non-success response stands for, with the registry's own error code and
    /// message when it gives them.
    fn status_error(&self, what: &str, response: Response<Body>) -> HttpError {
        let status = response.status();
        let body = read_limited(response.into_body(), 64 << 10).unwrap_or_default();
        let detail = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.pointer("/errors/0").cloned())
            .map(|e| {
                let code = e.get("code").and_then(Value::as_str).unwrap_or("");
                let message = e.get("message").and_then(Value::as_str).unwrap_or("");
                format!(" ({})", shorten(&format!("{code}: {message}")))
            })
            .unwrap_or_default();
        HttpError {
            message: self.redact(&format!("{what}: HTTP {status}{detail}")),
        }
    }

    /// GETs a path of the registry's API (`/v2/…`) with the auth it needs, following
    /// redirects; `Ok` is a 2xx response.
    pub(crate) fn get(
        &self,
        what: &str,
        path: &str,
        accept: &str,
        small: bool,
    ) -> Result<Response<Body>, HttpError> {
        let mut retried_auth = false;
        let mut switched_scheme = false;
        loop {
            let url = format!("{}{path}", self.base());
            match self.follow(&url, accept, small) {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    if retried_auth {
                        return Err(self.refused(what));
                    }
                    retried_auth = true;
                    let challenge = response
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    self.answer(what, &challenge)?;
                }
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) if response.status().is_redirection() => {
                    return Err(HttpError::new(format!(
                        "{what}: more than {MAX_REDIRECTS} redirects"
                    )))
                }
                Ok(response) => return Err(self.status_error(what, response)),
                Err((error, reached)) => {
                    // Without TLS verification, containers/image also tries plain HTTP.
                    if !self.verify
                        && !reached
                        && !switched_scheme
                        && self.base().starts_with("https:")
                    {
                        switched_scheme = true;
                        *self.scheme.lock().unwrap_or_else(|e| e.into_inner()) = "http";
                        continue;
                    }
                    return Err(self.transport_error(what, &error));
                }
            }
        }
    }

    /// The error for a second `401`.
    fn refused(&self, what: &str) -> HttpError {
        let message = match &self.credentials {
            Some(found) => format!(
                "{what}: HTTP 401 Unauthorized: the registry refused the credentials from {}",
                found.file.display()
            ),
            None => format!(
                "{what}: HTTP 401 Unauthorized: the registry needs credentials and none were found (--authfile, REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json)"
            ),
        };
        HttpError {
            message: self.redact(&message),
        }
    }

    /// Sends one GET and follows redirects; credentials only to the registry's origin. `Err`
    /// carries whether any server answered (for the plain-HTTP fallback).
    fn follow(
        &self,
        start: &str,
        accept: &str,
        small: bool,
    ) -> Result<Response<Body>, (ureq::Error, bool)> {
        let registry = origin(&self.base());
        let mut url = start.to_owned();
        let mut hops = 0;
        loop {
            let mut request = self.agent.get(&url).header("Accept", accept);
            if registry.is_some() && origin(&url) == registry {
                if let Some(header) = self.authorization() {
                    request = request.header("Authorization", header);
                }
            }
            let request = if small {
                request
                    .config()
                    .timeout_per_call(Some(self.timeout))
                    .build()
            } else {
                request
            };
            let response = request.call().map_err(|e| (e, hops > 0))?;
            if !response.status().is_redirection() || hops == MAX_REDIRECTS {
                return Ok(response);
            }
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| resolve_location(&url, l));
            match location {
                Some(next) => url = next,
                None => return Ok(response),
            }
            hops += 1;
        }
    }

    fn authorization(&self) -> Option<String> {
        match &*self.auth.lock().unwrap_or_else(|e| e.into_inner()) {
            Auth::Anonymous => None,
            Auth::Basic(header) => Some(header.clone()),
            Auth::Bearer(token) => Some(format!("Bearer {token}")),
        }
    }

    /// Answers a `401`'s challenge: sets the auth the next request is sent with.
    fn answer(&self, what: &str, challenge: &str) -> Result<(), HttpError> {
        let (scheme, params) = parse_challenge(challenge);
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let auth = match scheme.as_str() {
            "basic" => {
                let header = self
                    .credentials
                    .as_ref()
                    .and_then(|f| f.credentials.basic_header())
                    .ok_or_else(|| self.refused(what))?;
                Auth::Basic(header)
            }
            "bearer" => {
                let realm = param("realm").ok_or_else(|| {
                    HttpError::new(format!("{what}: the registry's Bearer challenge names no realm"))
                })?;
                Auth::Bearer(self.token(what, &realm, param("service").as_deref())?)
            }
            _ => {
                return Err(HttpError {
                    message: self.redact(&format!(
                        "{what}: HTTP 401 Unauthorized with the challenge `{}`, which hostcert does not answer",
                        shorten(challenge)
                    )),
                })
            }
        };
        known_auth()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((self.host.clone(), self.repository.clone()), auth.clone());
        *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = auth;
        Ok(())
    }

    /// Gets a pull token for the repository from a token service.
    fn token(&self, what: &str, realm: &str, service: Option<&str>) -> Result<String, HttpError> {
        let fail = |reason: String| {
            HttpError::new(self.redact(&format!(
                "{what}: token service {}: {reason}",
                shorten(realm)
            )))
        };
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(fail("the realm is not an http(s) URL".to_owned()));
        }
        let scope = format!("repository:{}:pull", self.repository);
        let response = match self.credentials.as_ref().map(|f| &f.credentials) {
            Some(Credentials::IdentityToken { token }) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                    ("client_id", "hostcert"),
                    ("scope", scope.as_str()),
                ];
                if let Some(service) = service {
                    form.push(("service", service));
                }
                self.agent
                    .post(realm)
                    .config()
                    .timeout_per_call(Some(self.timeout))
                    .build()
                    .send_form(form)
            }
            other => {
                let mut request = self.agent.get(realm).query("scope", &scope);
                if let Some(service) = service {
                    request = request.query("service", service);
                }
                if let Some(header) = other.and_then(Credentials::basic_header) {
                    request = request.header("Authorization", header);
                }
                request
                    .config()
                    .timeout_per_call(Some(self.timeout))
                    .build()
                    .call()
            }
        }
        .map_err(|e| fail(self.transport_error("request", &e).message))?;
        if !response.status().is_success() {
            return Err(HttpError {
                message: self.redact(&format!(
                    "{what}: token service {}: HTTP {}{}",
                    shorten(realm),
                    response.status(),
                    if response.status() == StatusCode::UNAUTHORIZED {
                        match &self.credentials {
                            Some(found) => format!(
                                ": it refused the credentials from {}",
                                found.file.display()
                            ),
                            None => ": it needs credentials and none were found".to_owned(),
                        }
                    } else {
                        String::new()
                    }
                )),
            });
        }
        let body = read_limited(response.into_body(), MAX_SMALL_BODY).map_err(fail)?;
        let value: Value =
            serde_json::from_slice(&body).map_err(|_| fail("the answer is not JSON".to_owned()))?;
        value
            .get("token")
            .or_else(|| value.get("access_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned)
            .ok_or_else(|| fail("the answer holds no token".to_owned()))
    }

    /// GETs a URL outside the registry's API (a lookaside signature): no credentials, no
    /// redirect to follow; `Ok(None)` on 404.
    pub(crate) fn get_plain(&self, url: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
        // Redirects are followed (at most MAX_REDIRECTS), as containers/image's HTTP client
        // follows them for a lookaside store; no credentials go anywhere here.
        let mut at = url.to_owned();
        let mut hops = 0;
        let response = loop {
            let response = self
                .agent
                .get(&at)
                .config()
                .timeout_per_call(Some(self.timeout))
                .build()
                .call()
                .map_err(|e| self.transport_error(&at, &e).message)?;
            if !response.status().is_redirection() {
                break response;
            }
            if hops == MAX_REDIRECTS {
                return Err(format!("{url}: more than {MAX_REDIRECTS} redirects"));
            }
            hops += 1;
            at = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|location| resolve_location(&at, location))
                .ok_or_else(|| {
                    format!(
                        "{at}: HTTP {} without a usable Location",
                        response.status().as_u16()
                    )
                })?;
        };
        let url = at.as_str();
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(self.status_error(url, response).message);
        }
        read_limited(response.into_body(), limit)
            .map(Some)
            .map_err(|e| format!("{url}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_with_quoted_commas() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "bearer");
        assert_eq!(
            params,
            [
                ("realm".to_owned(), "https://auth.example/token".to_owned()),
                ("service".to_owned(), "registry.example".to_owned()),
                ("scope".to_owned(), "repository:a/b:pull,push".to_owned()),
            ]
        );
        assert_eq!(parse_challenge("Basic realm=x").0, "basic");
    }

    #[test]
    fn redirects_resolve_and_origins_compare_with_default_ports() {
        assert_eq!(
            resolve_location("https://r.example/v2/a/blobs/x", "/store/x").as_deref(),
            Some("https://r.example/store/x")
        );
        assert_eq!(
            resolve_location("https://r.example/v2/a/blobs/x", "//cdn.example/x").as_deref(),
            Some("https://cdn.example/x")
        );
        assert_eq!(
            origin("https://R.example/x"),
            origin("https://r.example:443/y")
        );
        assert_ne!(origin("https://r.example/x"), origin("http://r.example/x"));
        assert_ne!(
            origin("https://r.example:5000/"),
            origin("https://r.example:5001/")
        );
    }
}
