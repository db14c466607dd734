//! The single timer scheduler of a SWIM node.
//!
//! foca asks for timer events with a delay; they must come back in deadline order. One task
//! holds every pending timer in one queue and sleeps until the earliest deadline; one sleep task
//! per timer would let the runtime reorder events under load (foca's issue #26).

use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Pending timers ordered by deadline, ties by submission order. Pure data structure.
#[derive(Debug)]
pub struct TimerQueue<T> {
    pending: BTreeMap<(Instant, u64), T>,
    seq: u64,
}

impl<T> Default for TimerQueue<T> {
    fn default() -> Self {
        TimerQueue {
            pending: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<T> TimerQueue<T> {
    /// Adds `event`, due at `deadline`.
    pub fn push(&mut self, deadline: Instant, event: T) {
        self.seq += 1;
        self.pending.insert((deadline, self.seq), event);
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.keys().next().map(|(deadline, _)| *deadline)
    }

    /// Removes and returns every event due at or before `now`, in order.
    pub fn pop_due(&mut self, now: Instant) -> Vec<T> {
        let mut due = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        due
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Spawns the scheduler: `(delay, event)` pairs sent to the returned sender come back on
/// `deliver` when due. The task ends when either side closes.
pub fn spawn_scheduler<T: Send + 'static>(
    deliver: mpsc::UnboundedSender<T>,
) -> (mpsc::UnboundedSender<(Duration, T)>, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Duration, T)>();
    let task = tokio::spawn(async move {
        let mut queue = TimerQueue::default();
        loop {
            let sleep_until = queue.next_deadline();
            tokio::select! {
                request = rx.recv() => match request {
                    Some((delay, event)) => queue.push(Instant::now() + delay, event),
                    None => return,
                },
                _ = async {
                    match sleep_until {
                        Some(deadline) => tokio::time::sleep_until(deadline).await,
                        None => std::future::pending::<()>().await,
                    }
                } => {
                    for event in queue.pop_due(Instant::now()) {
                        if deliver.send(event).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    (tx, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_then_submission_order() {
        let start = Instant::now();
        let mut q = TimerQueue::default();
        q.push(start + Duration::from_millis(20), "c");
        q.push(start + Duration::from_millis(10), "a");
        q.push(start + Duration::from_millis(10), "b");
        q.push(start + Duration::from_millis(30), "d");
        assert_eq!(
            q.pop_due(start + Duration::from_millis(5)),
            Vec::<&str>::new()
        );
        assert_eq!(
            q.pop_due(start + Duration::from_millis(20)),
            vec!["a", "b", "c"]
        );
        assert_eq!(q.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn scheduler_delivers_in_order() {
        let (out_tx, mut out_rx) = mpsc::unbounded_channel();
        let (tx, task) = spawn_scheduler(out_tx);
        tx.send((Duration::from_millis(30), 3)).unwrap();
        tx.send((Duration::from_millis(10), 1)).unwrap();
        tx.send((Duration::from_millis(20), 2)).unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(out_rx.recv().await.unwrap());
        }
        assert_eq!(got, vec![1, 2, 3]);
        drop(tx);
        task.await.unwrap();
    }
}
