//! What a granted program may touch beyond the confinement's defaults: the
//! `fs` and `net` keys of a `[[program]]` entry.
//!
//! ```toml
//! [[program]]
//! name = "curl"
//! fs.read = ["/srv/certs"]        # read (and execute) beneath these
//! fs.write = ["/var/cache/tool"]  # read and write beneath these
//! net.connect = [443]             # TCP ports it may connect to, or "any"
//! net.bind = []                   # TCP ports it may listen on, or "any"
//! ```

use crate::error::PolicyError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The `fs` table of a `[[program]]` entry, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsSpec {
    /// Directories (or files) the program may read and execute beneath.
    #[serde(default)]
    pub read: Vec<String>,
    /// Directories (or files) the program may read and write beneath.
    #[serde(default)]
    pub write: Vec<String>,
}

/// The `net` table of a `[[program]]` entry, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    /// TCP ports the program may connect to, or `"any"`.
    #[serde(default)]
    pub connect: Ports,
    /// TCP ports the program may bind, or `"any"`.
    #[serde(default)]
    pub bind: Ports,
}

/// TCP ports a program may use: a list (empty: none), or every port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "WrittenPorts")]
pub enum Ports {
    /// These ports only.
    List(Vec<u16>),
    /// Every port: written `"any"`, nothing else.
    Any,
}

impl Default for Ports {
    fn default() -> Self {
        Self::List(Vec::new())
    }
}

/// Ports as written: a list, or a word.
#[derive(Deserialize)]
#[serde(untagged)]
enum WrittenPorts {
    List(Vec<u16>),
    Word(String),
}

impl TryFrom<WrittenPorts> for Ports {
    type Error = String;

    fn try_from(written: WrittenPorts) -> Result<Self, String> {
        match written {
            WrittenPorts::List(l) => Ok(Self::List(l)),
            WrittenPorts::Word(w) if w == "any" => Ok(Self::Any),
            WrittenPorts::Word(w) => Err(format!(
                "`{w}` is not a port list; give ports ([443]) or \"any\""
            )),
        }
    }
}

impl Ports {
    /// Whether no port is granted.
    pub fn is_none(&self) -> bool {
        matches!(self, Self::List(l) if l.is_empty())
    }

    /// The ports both grant (the intersection of two gates).
    pub fn intersect(&self, other: &Self) -> Self {
        match (self, other) {
            (Self::Any, x) | (x, Self::Any) => x.clone(),
            (Self::List(a), Self::List(b)) => {
                Self::List(a.iter().copied().filter(|p| b.contains(p)).collect())
            }
        }
    }
}

impl std::fmt::Display for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::List(l) if l.is_empty() => f.write_str("none"),
            Self::List(l) => {
                let shown: Vec<String> = l.iter().map(u16::to_string).collect();
                f.write_str(&shown.join(","))
            }
        }
    }
}

/// What one granted program may touch beyond the defaults, resolved:
/// canonical paths, ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ProgramAccess {
    /// Canonical paths it may read and execute beneath.
    pub read: Vec<PathBuf>,
    /// Canonical paths it may read and write beneath.
    pub write: Vec<PathBuf>,
    /// TCP ports it may connect to.
    pub connect: Ports,
    /// TCP ports it may bind.
    pub bind: Ports,
}

impl ProgramAccess {
    /// Resolves the written `fs` and `net` keys of `program` (paths
    /// relative to `base`, which must exist).
    pub(crate) fn resolve(
        program: &str,
        fs: &FsSpec,
        net: &NetSpec,
        base: &Path,
    ) -> Result<Self, PolicyError> {
        Self::with_paths(fs, net, |key, p| {
            base.join(p).canonicalize().map_err(|e| {
                PolicyError::entry(
                    format!("program `{program}` {key} `{p}`"),
                    format!("cannot resolve it: {e}"),
                )
            })
        })
    }

    /// The `fs` and `net` keys as a manifest declares them: absolute
    /// paths, taken as written (the policy's grant, resolved on this host,
    /// is what they are intersected with).
    pub(crate) fn declared(fs: &FsSpec, net: &NetSpec) -> Result<Self, String> {
        Self::with_paths(fs, net, |key, p| {
            let path = PathBuf::from(p);
            if path.is_absolute() {
                Ok(path.canonicalize().unwrap_or(path))
            } else {
                Err(format!("{key} `{p}` is not an absolute path"))
            }
        })
    }

    /// The keys, each `fs` path made by `path(key, written)`.
    fn with_paths<E>(
        fs: &FsSpec,
        net: &NetSpec,
        path: impl Fn(&str, &str) -> Result<PathBuf, E>,
    ) -> Result<Self, E> {
        let paths = |key: &str, list: &[String]| -> Result<Vec<PathBuf>, E> {
            list.iter().map(|p| path(key, p)).collect()
        };
        Ok(Self {
            read: paths("fs.read", &fs.read)?,
            write: paths("fs.write", &fs.write)?,
            connect: net.connect.clone(),
            bind: net.bind.clone(),
        })
    }

    /// Whether it widens nothing.
    pub fn is_default(&self) -> bool {
        self.read.is_empty()
            && self.write.is_empty()
            && self.connect.is_none()
            && self.bind.is_none()
    }

    /// What both grant: paths granted by both (or beneath one granted by
    /// the other), ports granted by both.
    pub fn intersect(&self, other: &Self) -> Self {
        let paths = |a: &[PathBuf], b: &[PathBuf]| -> Vec<PathBuf> {
            let mut out: Vec<PathBuf> = a
                .iter()
                .filter(|p| b.iter().any(|q| p.starts_with(q)))
                .chain(b.iter().filter(|p| a.iter().any(|q| p.starts_with(q))))
                .cloned()
                .collect();
            out.sort();
            out.dedup();
            out
        };
        Self {
            read: paths(&self.read, &other.read),
            write: paths(&self.write, &other.write),
            connect: self.connect.intersect(&other.connect),
            bind: self.bind.intersect(&other.bind),
        }
    }

    /// A one-line description (`fs.read=… net.connect=…`), for `inspect`
    /// and `grant`; empty when it widens nothing.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let join = |l: &[PathBuf]| {
            l.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        if !self.read.is_empty() {
            parts.push(format!("fs.read={}", join(&self.read)));
        }
        if !self.write.is_empty() {
            parts.push(format!("fs.write={}", join(&self.write)));
        }
        if !self.connect.is_none() {
            parts.push(format!("net.connect={}", self.connect));
        }
        if !self.bind.is_none() {
            parts.push(format!("net.bind={}", self.bind));
        }
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrapper {
        net: NetSpec,
    }

    #[test]
    fn access_ports_parse_good_and_bad() {
        let w: Wrapper = toml::from_str("net.connect = [80, 443]\nnet.bind = \"any\"").unwrap();
        assert_eq!(w.net.connect, Ports::List(vec![80, 443]));
        assert_eq!(w.net.bind, Ports::Any);
        assert!(toml::from_str::<Wrapper>("net.connect = \"all\"").is_err());
        assert!(toml::from_str::<Wrapper>("net.connect = [70000]").is_err());
    }

    #[test]
    fn access_intersection_good() {
        let a = ProgramAccess {
            read: vec!["/srv".into()],
            write: vec!["/var/a".into()],
            connect: Ports::Any,
            bind: Ports::List(vec![8080]),
        };
        let b = ProgramAccess {
            read: vec!["/srv/data".into(), "/etc".into()],
            write: vec![],
            connect: Ports::List(vec![443]),
            bind: Ports::Any,
        };
        let both = a.intersect(&b);
        assert_eq!(both.read, vec![PathBuf::from("/srv/data")]);
        assert!(both.write.is_empty());
        assert_eq!(both.connect, Ports::List(vec![443]));
        assert_eq!(both.bind, Ports::List(vec![8080]));
    }
}
