//! The legacy HTTP heartbeat view (rollout phases 1 and 2).
//!
//! The orchestrator polls its peers over HTTP; every answer it gets is recorded here, and a
//! peer heard from within [`HEARTBEAT_ALIVE_WINDOW`] counts as alive. In hybrid membership
//! mode the alive peers are the union of this view and SWIM's. Pure logic: callers pass `now`.

use std::collections::BTreeMap;
use std::time::Duration;

/// A peer heard from within this window is alive (the orchestrator's 120 s rule).
pub const HEARTBEAT_ALIVE_WINDOW: Duration = Duration::from_secs(120);

/// Last time each peer was heard from, in seconds on the caller's clock.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatView {
    last_seen: BTreeMap<String, f64>,
}

impl HeartbeatView {
    /// Records a heartbeat from `node_id` at `now` (seconds). Time never goes backwards for a
    /// peer: an older report than the one kept is ignored.
    pub fn record(&mut self, node_id: &str, now: f64) {
        let entry = self.last_seen.entry(node_id.to_string()).or_insert(now);
        if now > *entry {
            *entry = now;
        }
    }

    /// Forgets a peer (it was removed from the cluster).
    pub fn forget(&mut self, node_id: &str) {
        self.last_seen.remove(node_id);
    }

    /// Peers heard from within the window before `now`, sorted.
    pub fn alive_peers(&self, now: f64) -> Vec<String> {
        let window = HEARTBEAT_ALIVE_WINDOW.as_secs_f64();
        self.last_seen
            .iter()
            .filter(|(_, seen)| now - **seen <= window)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// True when `node_id` was heard from within the window before `now`.
    pub fn is_alive(&self, node_id: &str, now: f64) -> bool {
        self.last_seen
            .get(node_id)
            .is_some_and(|seen| now - *seen <= HEARTBEAT_ALIVE_WINDOW.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_applies_and_old_reports_do_not_rewind() {
        let mut v = HeartbeatView::default();
        v.record("a", 100.0);
        v.record("b", 10.0);
        v.record("a", 50.0);
        assert_eq!(v.alive_peers(140.0), vec!["a".to_string()]);
        assert!(v.is_alive("a", 220.0));
        assert!(!v.is_alive("a", 220.5));
        v.forget("a");
        assert_eq!(v.alive_peers(100.0), vec!["b".to_string()]);
    }
}
