//! Which processes exist, and who owns each. A guest sees only the records
//! of its own session; ended records are evicted oldest first when a new one
//! needs room.

use crate::error::CallError;
use crate::managed::ManagedProcess;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Managed processes by owner, in start order.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    by_owner: Mutex<HashMap<String, Owned>>,
}

/// One owner's records, indexed by id, with their buffer total kept so a
/// start checks its quotas without walking every record.
#[derive(Debug, Default)]
struct Owned {
    list: Vec<Arc<ManagedProcess>>,
    by_id: HashMap<String, Arc<ManagedProcess>>,
    bytes: u64,
}

impl Owned {
    fn push(&mut self, process: Arc<ManagedProcess>) {
        self.bytes += process.buffered_capacity();
        self.by_id
            .insert(process.facts().id.clone(), Arc::clone(&process));
        self.list.push(process);
    }

    fn remove_at(&mut self, at: usize) -> Arc<ManagedProcess> {
        let process = self.list.remove(at);
        self.bytes -= process.buffered_capacity();
        self.by_id.remove(&process.facts().id);
        process
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Owned>> {
        self.by_owner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes room for one more record of `owner` whose buffers take
    /// `bytes`: evicts the oldest ended records while the owner holds
    /// `max_entries` records or more than `max_bytes` of buffers with the
    /// new one.
    pub(crate) fn reserve(
        &self,
        owner: &str,
        max_entries: usize,
        bytes: u64,
        max_bytes: u64,
    ) -> Result<(), CallError> {
        if bytes > max_bytes {
            return Err(CallError::LimitReached(format!(
                "buffers of {bytes} bytes exceed max_buffered_bytes = {max_bytes}"
            )));
        }
        let mut map = self.lock();
        let Some(owned) = map.get_mut(owner) else {
            return Ok(());
        };
        loop {
            let held = owned.bytes;
            let over_entries = owned.list.len() >= max_entries;
            let over_bytes = held + bytes > max_bytes;
            if !over_entries && !over_bytes {
                return Ok(());
            }
            let Some(oldest_ended) = owned.list.iter().position(|p| p.has_ended()) else {
                return Err(CallError::LimitReached(if over_entries {
                    format!(
                        "{} process records held, all running (max_registry_entries = {max_entries})",
                        owned.list.len()
                    )
                } else {
                    format!(
                        "running processes hold {held} buffer bytes; {bytes} more exceed max_buffered_bytes = {max_bytes}"
                    )
                }));
            };
            owned.remove_at(oldest_ended).discard();
        }
    }

    /// Adds a record.
    pub(crate) fn insert(&self, process: Arc<ManagedProcess>) {
        let owner = process.facts().owner.clone();
        self.lock().entry(owner).or_default().push(process);
    }

    /// The record `id` if `owner` owns it.
    pub(crate) fn get(&self, owner: &str, id: &str) -> Option<Arc<ManagedProcess>> {
        self.lock().get(owner)?.by_id.get(id).cloned()
    }

    /// The ids `owner` holds, in start order.
    pub(crate) fn ids(&self, owner: &str) -> Vec<String> {
        self.lock()
            .get(owner)
            .map(|o| o.list.iter().map(|p| p.facts().id.clone()).collect())
            .unwrap_or_default()
    }

    /// How many of `owner`'s processes are still running.
    pub(crate) fn live(&self, owner: &str) -> usize {
        self.lock()
            .get(owner)
            .map(|o| o.list.iter().filter(|p| !p.has_ended()).count())
            .unwrap_or(0)
    }

    /// Removes an ended record.
    pub(crate) fn remove(&self, owner: &str, id: &str) -> Result<(), CallError> {
        let mut map = self.lock();
        let owned = map
            .get_mut(owner)
            .ok_or_else(|| CallError::NotFound(id.to_string()))?;
        let at = owned
            .list
            .iter()
            .position(|p| p.facts().id == id)
            .ok_or_else(|| CallError::NotFound(id.to_string()))?;
        if !owned.list[at].has_ended() {
            return Err(CallError::Invalid(format!(
                "process `{id}` is still running"
            )));
        }
        owned.remove_at(at).discard();
        Ok(())
    }

    /// Takes every record of `owner` out of the registry.
    pub(crate) fn take_owner(&self, owner: &str) -> Vec<Arc<ManagedProcess>> {
        self.lock()
            .remove(owner)
            .map(|o| o.list)
            .unwrap_or_default()
    }

    /// Takes every record out of the registry.
    pub(crate) fn take_all(&self) -> Vec<Arc<ManagedProcess>> {
        self.lock().drain().flat_map(|(_, o)| o.list).collect()
    }

    /// A copy of every record, for the embedding host.
    pub(crate) fn all(&self) -> Vec<Arc<ManagedProcess>> {
        self.lock()
            .values()
            .flat_map(|o| o.list.iter().cloned())
            .collect()
    }
}
