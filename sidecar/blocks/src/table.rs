//! A building block's components by name: read on every request without a lock, swapped
//! whole when the lifecycle adds, replaces or removes one.

use std::collections::HashMap;

use arc_swap::ArcSwap;

pub struct Table<T> {
    entries: ArcSwap<HashMap<String, T>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            entries: ArcSwap::from_pointee(HashMap::new()),
        }
    }
}

impl<T: Clone> Table<T> {
    pub fn new(entries: HashMap<String, T>) -> Self {
        Self {
            entries: ArcSwap::from_pointee(entries),
        }
    }

    /// A snapshot of every entry; calls under way keep the one they started with.
    pub fn load(&self) -> arc_swap::Guard<std::sync::Arc<HashMap<String, T>>> {
        self.entries.load()
    }

    pub fn get(&self, name: &str) -> Option<T> {
        self.entries.load().get(name).cloned()
    }

    /// Adds or replaces `name`.
    pub fn upsert(&self, name: &str, entry: T) {
        self.entries.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(name.to_string(), entry.clone());
            next
        });
    }

    /// Removes `name`; returns whether it was there.
    pub fn remove(&self, name: &str) -> bool {
        let mut existed = false;
        self.entries.rcu(|current| {
            let mut next = HashMap::clone(current);
            existed = next.remove(name).is_some();
            next
        });
        existed
    }
}
