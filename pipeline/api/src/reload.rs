//! Things that can be reloaded in place without dropping data (policy files, WASM modules),
//! registered by the components that own them and reloaded together on SIGHUP.
//!
//! A component registers a weak handle; once the component is gone the entry is skipped and
//! pruned. [`reload_all`] runs every live entry on the calling thread (it reads files and may
//! compile modules: call it off the async workers).

use std::sync::{Arc, Mutex, Weak};

/// One thing that can be reloaded in place.
pub trait Reloadable: Send + Sync {
    /// What is reloaded, for the log line (e.g. `processors.wasm/x: plugins/x.wasm`).
    fn describe(&self) -> String;
    /// Reloads from the source if it changed. `Ok(true)`: the new version is in force;
    /// `Ok(false)`: nothing changed; `Err`: the new version was refused and the old one
    /// stays in force, with why.
    fn reload(&self) -> Result<bool, String>;
}

/// The outcome of reloading one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// [`Reloadable::describe`] of the entry.
    pub what: String,
    /// [`Reloadable::reload`]'s answer.
    pub result: Result<bool, String>,
}

fn entries() -> &'static Mutex<Vec<Weak<dyn Reloadable>>> {
    static ENTRIES: Mutex<Vec<Weak<dyn Reloadable>>> = Mutex::new(Vec::new());
    &ENTRIES
}

/// Registers `entry` until it is dropped.
pub fn register(entry: &Arc<dyn Reloadable>) {
    let mut list = entries().lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|w| w.strong_count() > 0);
    list.push(Arc::downgrade(entry));
}

/// Reloads every registered entry still alive, in registration order.
pub fn reload_all() -> Vec<ReloadOutcome> {
    let live: Vec<Arc<dyn Reloadable>> = {
        let mut list = entries().lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|w| w.strong_count() > 0);
        list.iter().filter_map(Weak::upgrade).collect()
    };
    live.iter()
        .map(|e| ReloadOutcome {
            what: e.describe(),
            result: e.reload(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, Result<bool, String>);
    impl Reloadable for Fixed {
        fn describe(&self) -> String {
            self.0.to_string()
        }
        fn reload(&self) -> Result<bool, String> {
            self.1.clone()
        }
    }

    #[test]
    fn reloads_live_entries_and_forgets_dropped_ones() {
        let a: Arc<dyn Reloadable> = Arc::new(Fixed("reload-test-a", Ok(true)));
        let b: Arc<dyn Reloadable> = Arc::new(Fixed("reload-test-b", Err("bad".into())));
        register(&a);
        register(&b);
        let mine = |o: &Vec<ReloadOutcome>| {
            o.iter()
                .filter(|x| x.what.starts_with("reload-test-"))
                .cloned()
                .collect::<Vec<_>>()
        };
        let got = mine(&reload_all());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].result, Ok(true));
        assert_eq!(got[1].result, Err("bad".to_string()));
        drop(a);
        let got = mine(&reload_all());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].what, "reload-test-b");
    }
}
