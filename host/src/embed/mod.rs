//! The embedding layer: the [`Runtime`](runtime::Runtime) that loads and
//! runs `wasi:cli/command` components with the capability linked, the
//! instance pool, the compiled-component cache and the compiler choice.
//!
//! The top layer: it may import every other one.

pub(crate) mod cache;
pub(crate) mod compiler;
pub(crate) mod guest_limits;
pub(crate) mod pool;
pub(crate) mod runtime;
