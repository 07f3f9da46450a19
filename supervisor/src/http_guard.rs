//! What every request to the loopback HTTP endpoints must show before it
//! is answered.
//!
//! - A `Host` header naming the listen address itself (its IP literal or
//!   `localhost`, with its port). A web page that rebinds its own domain
//!   name to 127.0.0.1 sends its own name as `Host`, so a browser can never
//!   read these endpoints on a page's behalf (DNS rebinding).
//! - For `/daemons`, when `[serve] token_file` is set, `Authorization:
//!   Bearer TOKEN` with that file's token. Tokens are compared through
//!   their BLAKE3 hashes, whose comparison takes constant time, so the
//!   time of a refusal tells nothing about how much of a guess was right.

use hyper::header::{AUTHORIZATION, HOST, HeaderMap};
use hyper::http::uri::Authority;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The shortest token accepted.
pub const MIN_TOKEN_BYTES: usize = 16;
/// The longest token accepted.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// A bearer token, kept only as its hash (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(blake3::Hash);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

/// Why a token file was refused.
#[derive(Debug, thiserror::Error)]
#[error("token file {}: {problem}", .path.display())]
pub struct TokenError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: String,
}

impl BearerToken {
    /// Reads the token from `path`: a regular file that group and others
    /// cannot read, holding one line of [`MIN_TOKEN_BYTES`] to
    /// [`MAX_TOKEN_BYTES`] visible ASCII characters (surrounding
    /// whitespace is ignored).
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let fail = |problem: String| TokenError {
            path: path.to_path_buf(),
            problem,
        };
        let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
        if !meta.is_file() {
            return Err(fail("not a regular file".into()));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(fail(format!(
                "mode {mode:04o} lets group or others read the token (chmod 600)"
            )));
        }
        let mut text = Vec::new();
        file.take(MAX_TOKEN_BYTES as u64 + 64)
            .read_to_end(&mut text)
            .map_err(|e| fail(e.to_string()))?;
        Self::parse(text.trim_ascii()).map_err(fail)
    }

    /// A token from its bytes, checked as [`from_file`](Self::from_file)
    /// checks a file's content.
    pub fn parse(token: &[u8]) -> Result<Self, String> {
        if !(MIN_TOKEN_BYTES..=MAX_TOKEN_BYTES).contains(&token.len()) {
            return Err(format!(
                "the token must be {MIN_TOKEN_BYTES} to {MAX_TOKEN_BYTES} bytes, not {}",
                token.len()
            ));
        }
        if !token.iter().all(u8::is_ascii_graphic) {
            return Err("the token must be visible ASCII characters, one line".into());
        }
        Ok(Self(blake3::hash(token)))
    }

    /// Whether `given` is this token, in time independent of where they
    /// differ (`blake3::Hash` compares in constant time).
    pub fn matches(&self, given: &[u8]) -> bool {
        blake3::hash(given) == self.0
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `Host` header, or more than one.
    NoHost,
    /// A `Host` (or absolute-form authority) that is not the listen
    /// address.
    WrongHost(String),
    /// `/daemons` without `Authorization: Bearer …`.
    NoToken,
    /// `/daemons` with another token.
    WrongToken,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoHost => f.write_str("exactly one Host header is required"),
            Refusal::WrongHost(h) => write!(f, "Host `{h}` is not this server's address"),
            Refusal::NoToken => f.write_str("/daemons needs `Authorization: Bearer TOKEN`"),
            Refusal::WrongToken => f.write_str("the bearer token is wrong"),
        }
    }
}

/// The checks for one listening socket.
#[derive(Debug, Clone)]
pub struct HttpGuard {
    local: SocketAddr,
    token: Option<BearerToken>,
}

/// The paths a token protects.
const TOKEN_PATHS: &[&str] = &["/daemons"];

impl HttpGuard {
    /// Checks for requests to `local` (the bound address, its port
    /// resolved); `token`, if any, protects `/daemons`.
    pub fn new(local: SocketAddr, token: Option<BearerToken>) -> Self {
        Self { local, token }
    }

    /// Checks one request's path, headers and, for an absolute-form
    /// request target, its authority.
    pub fn check(
        &self,
        path: &str,
        headers: &HeaderMap,
        authority: Option<&Authority>,
    ) -> Result<(), Refusal> {
        let mut hosts = headers.get_all(HOST).iter();
        let (Some(host), None) = (hosts.next(), hosts.next()) else {
            return Err(Refusal::NoHost);
        };
        let host = host.to_str().map_err(|_| Refusal::NoHost)?;
        if !self.names_us(host) {
            return Err(Refusal::WrongHost(host.chars().take(200).collect()));
        }
        if let Some(a) = authority
            && !self.names_us(a.as_str())
        {
            return Err(Refusal::WrongHost(a.as_str().chars().take(200).collect()));
        }
        match &self.token {
            Some(token) if TOKEN_PATHS.contains(&path) => {
                let given = headers
                    .get(AUTHORIZATION)
                    .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
                    .ok_or(Refusal::NoToken)?;
                if token.matches(given) {
                    Ok(())
                } else {
                    Err(Refusal::WrongToken)
                }
            }
            _ => Ok(()),
        }
    }

    /// Whether `host` (a `Host` header value) names the listen address:
    /// its IP literal or `localhost`, and its port (which may be left out
    /// only when it is 80).
    fn names_us(&self, host: &str) -> bool {
        let Ok(authority) = host.parse::<Authority>() else {
            return false;
        };
        if authority.as_str() != host || host.contains('@') {
            return false;
        }
        let port_ok = match authority.port_u16() {
            Some(p) => p == self.local.port(),
            None => self.local.port() == 80 && !host.ends_with(':'),
        };
        let name = authority.host();
        let name_ok = name.eq_ignore_ascii_case("localhost")
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip == self.local.ip());
        port_ok && name_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&hyper::header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    fn guard(token: Option<&str>) -> HttpGuard {
        HttpGuard::new(
            "127.0.0.1:8686".parse().expect("addr"),
            token.map(|t| BearerToken::parse(t.as_bytes()).expect("token")),
        )
    }

    #[test]
    fn http_guard_host_good() {
        let g = guard(None);
        for host in ["127.0.0.1:8686", "localhost:8686", "LOCALHOST:8686"] {
            assert_eq!(g.check("/health", &headers(&[(&HOST, host)]), None), Ok(()));
        }
        let v6 = HttpGuard::new("[::1]:9000".parse().expect("addr"), None);
        assert_eq!(
            v6.check("/", &headers(&[(&HOST, "[::1]:9000")]), None),
            Ok(())
        );
    }

    #[test]
    fn http_guard_host_bad() {
        let g = guard(None);
        for host in [
            "evil.example:8686",
            "127.0.0.1",
            "127.0.0.1:8687",
            "127.0.0.2:8686",
            "localhost.:8686",
            "localhost.evil.example:8686",
            "user@127.0.0.1:8686",
            "127.0.0.1:8686/x",
            "[::1]:8686",
            "",
        ] {
            assert!(
                matches!(
                    g.check("/health", &headers(&[(&HOST, host)]), None),
                    Err(Refusal::WrongHost(_))
                ),
                "{host:?}"
            );
        }
        assert_eq!(
            g.check("/health", &HeaderMap::new(), None),
            Err(Refusal::NoHost)
        );
        let two = headers(&[(&HOST, "127.0.0.1:8686"), (&HOST, "127.0.0.1:8686")]);
        assert_eq!(g.check("/health", &two, None), Err(Refusal::NoHost));
        let absolute: Authority = "evil.example:8686".parse().expect("authority");
        assert!(matches!(
            g.check(
                "/health",
                &headers(&[(&HOST, "127.0.0.1:8686")]),
                Some(&absolute)
            ),
            Err(Refusal::WrongHost(_))
        ));
    }

    #[test]
    fn http_guard_token_bad() {
        let g = guard(Some("0123456789abcdef-secret"));
        let host = (&HOST, "127.0.0.1:8686");
        assert_eq!(g.check("/health", &headers(&[host]), None), Ok(()));
        assert_eq!(
            g.check("/daemons", &headers(&[host]), None),
            Err(Refusal::NoToken)
        );
        let wrong = headers(&[host, (&AUTHORIZATION, "Bearer 0123456789abcdef-secreT")]);
        assert_eq!(g.check("/daemons", &wrong, None), Err(Refusal::WrongToken));
        let basic = headers(&[host, (&AUTHORIZATION, "Basic 0123456789abcdef-secret")]);
        assert_eq!(g.check("/daemons", &basic, None), Err(Refusal::NoToken));
        let good = headers(&[host, (&AUTHORIZATION, "Bearer 0123456789abcdef-secret")]);
        assert_eq!(g.check("/daemons", &good, None), Ok(()));
        assert!(BearerToken::parse(b"short").is_err());
        assert!(BearerToken::parse(b"0123456789abcdef with space").is_err());
        assert_eq!(
            format!(
                "{:?}",
                BearerToken::parse(b"0123456789abcdef").expect("token")
            ),
            "BearerToken(..)"
        );
    }
}
