//! Which compiler turns a component into machine code on a cache miss:
//! Winch, wasmtime's baseline compiler (about four times faster to compile,
//! slower code), Cranelift, its optimizing compiler, or both in tiers.

use std::fmt;
use std::str::FromStr;

/// Which compiler compiles a component that has no usable cache entry
/// ([`RuntimeConfig::compiler`](crate::RuntimeConfig::compiler), the CLI's
/// `--compiler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compiler {
    /// Tiers: a miss compiles with Winch and runs at once, while Cranelift
    /// compiles the same component in a background thread of lower priority
    /// into the cache; the Cranelift entry, once there, is what every later
    /// load uses. Without a cache, for a runtime whose linker the embedder
    /// extended ([`Runtime::linker_mut`](crate::Runtime::linker_mut)), or
    /// where Winch cannot compile a component (a feature it lacks, an
    /// architecture other than x86-64), Cranelift compiles it; the log
    /// says why once.
    #[default]
    Auto,
    /// Winch only: the fastest first run, and baseline code ever after.
    Winch,
    /// Cranelift only: the slowest first run, optimized code.
    Cranelift,
}

impl Compiler {
    /// The name the CLI and the log use: `auto`, `winch` or `cranelift`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Winch => "winch",
            Self::Cranelift => "cranelift",
        }
    }
}

impl fmt::Display for Compiler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A compiler name that is not `auto`, `winch` or `cranelift`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compiler `{0}`: expected auto, winch or cranelift")]
pub struct UnknownCompiler(pub String);

impl FromStr for Compiler {
    type Err = UnknownCompiler;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "auto" => Ok(Self::Auto),
            "winch" => Ok(Self::Winch),
            "cranelift" => Ok(Self::Cranelift),
            other => Err(UnknownCompiler(other.to_owned())),
        }
    }
}

/// The tier that compiled a component: what the first-run line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Winch's baseline code.
    Baseline,
    /// Cranelift's optimized code.
    Optimized,
}

impl Tier {
    /// `baseline (Winch)` or `optimized (Cranelift)`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Baseline => "baseline (Winch)",
            Self::Optimized => "optimized (Cranelift)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiler_names_round_trip_good() {
        for compiler in [Compiler::Auto, Compiler::Winch, Compiler::Cranelift] {
            assert_eq!(compiler.name().parse::<Compiler>(), Ok(compiler));
        }
    }

    #[test]
    fn compiler_unknown_name_bad() {
        let error = "llvm".parse::<Compiler>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown compiler `llvm`: expected auto, winch or cranelift"
        );
    }
}
