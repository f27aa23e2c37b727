//! State that the components of one service build share: what one component makes and
//! another takes, looked up by type and name (the `catalog` exporter takes the summaries of
//! the `metadata` processors it names). One [`Shared`] per build, passed to every component
//! in its [`crate::BuildContext`]: two builds (two services in one process, tests side by
//! side) never see each other's state, and nothing is process-wide.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

type Entries = HashMap<(TypeId, String), Arc<dyn Any + Send + Sync>>;

/// A map from (type, name) to a shared value; cloning it shares the same map.
#[derive(Clone, Default)]
pub struct Shared {
    entries: Arc<Mutex<Entries>>,
}

impl Shared {
    /// An empty map (the engine makes one per service build).
    pub fn new() -> Self {
        Self::default()
    }

    /// The `T` named `name`, made with `make` if there is none yet; every later call with
    /// the same type and name gets the same value.
    pub fn get_or_insert_with<T: Any + Send + Sync>(
        &self,
        name: &str,
        make: impl FnOnce() -> T,
    ) -> Arc<T> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries
            .entry((TypeId::of::<T>(), name.to_string()))
            .or_insert_with(|| Arc::new(make()));
        Arc::clone(entry)
            .downcast::<T>()
            .expect("entries are keyed by their own type")
    }

    /// The `T` named `name`, if one was made.
    pub fn get<T: Any + Send + Sync>(&self, name: &str) -> Option<Arc<T>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(&(TypeId::of::<T>(), name.to_string()))?;
        Some(
            Arc::clone(entry)
                .downcast::<T>()
                .expect("entries are keyed by their own type"),
        )
    }

    /// Whether `other` is this same map (a clone of it), not merely an equal one.
    pub fn same(&self, other: &Shared) -> bool {
        Arc::ptr_eq(&self.entries, &other.entries)
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.entries.lock().map(|e| e.len()).unwrap_or(0);
        f.debug_struct("Shared").field("entries", &n).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_type_and_name() {
        let shared = Shared::new();
        let a = shared.get_or_insert_with("metadata/a", || 1u32);
        let again = shared.get_or_insert_with("metadata/a", || 2u32);
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(*again, 1);
        // Another name, or another type under the same name, is another value.
        assert_eq!(*shared.get_or_insert_with("metadata/b", || 3u32), 3);
        assert_eq!(*shared.get_or_insert_with("metadata/a", || 4u64), 4);
        assert_eq!(shared.get::<u32>("metadata/a").as_deref(), Some(&1));
        assert!(shared.get::<u32>("metadata/c").is_none());
        assert!(shared.get::<i8>("metadata/a").is_none());
    }

    #[test]
    fn clones_share_separate_maps_do_not() {
        let shared = Shared::new();
        let clone = shared.clone();
        clone.get_or_insert_with("x", || String::from("made by the clone"));
        assert_eq!(
            shared.get::<String>("x").as_deref().map(String::as_str),
            Some("made by the clone")
        );
        assert!(shared.same(&clone));
        let other = Shared::new();
        assert!(other.get::<String>("x").is_none());
        assert!(!shared.same(&other));
    }
}
