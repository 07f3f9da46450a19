//! The guest's own processes.

use crate::{Child, host};

/// This guest's processes, running and recently ended, in start order.
///
/// Only processes this guest started are listed; the host keeps every
/// guest's processes apart.
pub fn list() -> Vec<Child> {
    host::list().into_iter().map(Child::listed).collect()
}
