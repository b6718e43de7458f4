//! Bounded memory of handled event ids, so redelivered events are dropped.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use uuid::Uuid;

/// Default number of remembered ids per subscription.
pub const DEFAULT_SEEN_CAPACITY: usize = 100_000;

/// Ids that a subscription handled or is handling, forgetting the oldest past its capacity.
///
/// A handler claims an id before it runs ([`SeenIds::try_claim`]), so two copies of one event
/// that arrive together run once; a failed handler releases the claim so a retry can run.
#[derive(Debug)]
pub struct SeenIds {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    ids: HashSet<Uuid>,
    order: VecDeque<Uuid>,
}

impl SeenIds {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Records `id`; returns false when it was already recorded (a duplicate).
    pub fn try_claim(&self, id: Uuid) -> bool {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !state.ids.insert(id) {
            return false;
        }
        state.order.push_back(id);
        while state.order.len() > self.capacity {
            if let Some(oldest) = state.order.pop_front() {
                state.ids.remove(&oldest);
            }
        }
        true
    }

    /// Forgets `id`, after its handler failed.
    pub fn release(&self, id: Uuid) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.ids.remove(&id) {
            state.order.retain(|kept| *kept != id);
        }
    }

    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .ids
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for SeenIds {
    fn default() -> Self {
        Self::new(DEFAULT_SEEN_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_eviction() {
        let seen = SeenIds::new(2);
        let [a, b, c] = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];

        assert!(seen.try_claim(a));
        assert!(!seen.try_claim(a));
        assert!(seen.try_claim(b));
        assert!(seen.try_claim(c));
        assert_eq!(seen.len(), 2);
        assert!(
            seen.try_claim(a),
            "the oldest id should have been forgotten"
        );

        seen.release(c);
        assert!(seen.try_claim(c));
    }
}
