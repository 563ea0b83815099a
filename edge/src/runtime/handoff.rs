//! A latest-wins hand-off between two threads of the live loop (camera → perception, perception →
//! decisions). The producer publishes values; the consumer always takes the newest, and a value
//! replaced before it was taken is *stale*: counted and kept as a spare buffer for the producer, so
//! the steady state allocates nothing. Events (errors, the end of a replay) are never replaced:
//! they queue and come out in publication order relative to the values.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Events kept at most; older ones are dropped (and counted) when a consumer stops draining.
pub const MAX_QUEUED_EVENTS: usize = 64;

/// What [`Handoff::take`] got.
#[derive(Debug, PartialEq)]
pub enum Taken<T, E> {
    /// The newest value.
    Value(T),
    /// The oldest queued event (published before the pending value, if any).
    Event(E),
    /// Nothing arrived within the timeout.
    TimedOut,
    /// The hand-off is closed and drained.
    Closed,
}

struct State<T, E> {
    /// The newest value not yet taken, its sequence number and when it was published.
    newest: Option<(T, u64, Instant)>,
    events: VecDeque<(E, u64)>,
    spares: Vec<T>,
    seq: u64,
    stale: u64,
    dropped_events: u64,
    closed: bool,
}

/// See the module doc.
pub struct Handoff<T, E> {
    state: Mutex<State<T, E>>,
    arrived: Condvar,
}

impl<T, E> Default for Handoff<T, E> {
    fn default() -> Self {
        Handoff {
            state: Mutex::new(State {
                newest: None,
                events: VecDeque::new(),
                spares: Vec::new(),
                seq: 0,
                stale: 0,
                dropped_events: 0,
                closed: false,
            }),
            arrived: Condvar::new(),
        }
    }
}

impl<T, E> Handoff<T, E> {
    fn lock(&self) -> MutexGuard<'_, State<T, E>> {
        // A panicking peer thread is reported by the scope that joins it; the state stays usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes `value` as the newest; the one it replaces (never taken) counts as stale and
    /// becomes a spare.
    pub fn publish(&self, value: T) {
        let mut s = self.lock();
        s.seq += 1;
        let seq = s.seq;
        if let Some((old, _, _)) = s.newest.replace((value, seq, Instant::now())) {
            s.stale += 1;
            s.spares.push(old);
        }
        drop(s);
        self.arrived.notify_all();
    }

    /// Queues an event (never replaced).
    pub fn event(&self, event: E) {
        let mut s = self.lock();
        s.seq += 1;
        let seq = s.seq;
        if s.events.len() >= MAX_QUEUED_EVENTS {
            s.events.pop_front();
            s.dropped_events += 1;
        }
        s.events.push_back((event, seq));
        drop(s);
        self.arrived.notify_all();
    }

    /// Waits at most `timeout` for something, and takes the oldest of: the first queued event, the
    /// newest value.
    pub fn take(&self, timeout: Duration) -> Taken<T, E> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            let event_seq = s.events.front().map(|(_, seq)| *seq);
            let value_seq = s.newest.as_ref().map(|(_, seq, _)| *seq);
            match (event_seq, value_seq) {
                (Some(e), v) if v.is_none_or(|v| e < v) => {
                    return Taken::Event(s.events.pop_front().expect("a queued event").0);
                }
                (_, Some(_)) => return Taken::Value(s.newest.take().expect("a pending value").0),
                _ => {}
            }
            if s.closed {
                return Taken::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Taken::TimedOut;
            }
            s = self.arrived.wait_timeout(s, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Drops the pending value if `stale` says so (counted as stale, kept as a spare).
    pub fn discard_if(&self, stale: impl Fn(&T) -> bool) {
        let mut s = self.lock();
        if s.newest.as_ref().is_some_and(|(v, _, _)| stale(v)) {
            let (old, _, _) = s.newest.take().expect("checked above");
            s.stale += 1;
            s.spares.push(old);
        }
    }

    /// When the pending (newer, untaken) value was published, if there is one.
    pub fn pending_since(&self) -> Option<Instant> {
        self.lock().newest.as_ref().map(|(_, _, at)| *at)
    }

    /// A spare buffer to fill, if any came back.
    pub fn spare(&self) -> Option<T> {
        self.lock().spares.pop()
    }

    /// Gives a taken value back as a spare for the producer.
    pub fn recycle(&self, value: T) {
        self.lock().spares.push(value);
    }

    /// Counts a value the consumer took but did not use because it was too old.
    pub fn recycle_stale(&self, value: T) {
        let mut s = self.lock();
        s.stale += 1;
        s.spares.push(value);
    }

    /// Values replaced or discarded before use, since the start.
    pub fn stale(&self) -> u64 {
        self.lock().stale
    }

    /// Events dropped because the queue was full, since the start.
    pub fn dropped_events(&self) -> u64 {
        self.lock().dropped_events
    }

    /// No more values or events will be taken or published: wakes every waiter. Whatever is
    /// still queued can be taken; then [`Taken::Closed`].
    pub fn close(&self) {
        self.lock().closed = true;
        self.arrived.notify_all();
    }

    /// Whether [`Handoff::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_consumer_gets_the_newest_value_and_replaced_ones_are_stale_spares() {
        let h: Handoff<u32, &str> = Handoff::default();
        for v in 1..=4 {
            h.publish(v);
        }
        assert_eq!(h.take(Duration::ZERO), Taken::Value(4));
        assert_eq!(h.stale(), 3);
        let mut spares: Vec<u32> = std::iter::from_fn(|| h.spare()).collect();
        spares.sort();
        assert_eq!(spares, vec![1, 2, 3], "the replaced buffers come back to the producer");
        assert_eq!(h.take(Duration::from_millis(5)), Taken::TimedOut);
    }

    #[test]
    fn events_keep_their_order_against_the_values_and_are_never_replaced() {
        let h: Handoff<u32, &str> = Handoff::default();
        h.publish(1);
        h.event("corrupt");
        h.event("timeout");
        h.publish(2);
        // The value 1 was replaced by 2, which was published after both events.
        assert_eq!(h.take(Duration::ZERO), Taken::Event("corrupt"));
        assert_eq!(h.take(Duration::ZERO), Taken::Event("timeout"));
        assert_eq!(h.take(Duration::ZERO), Taken::Value(2));
        h.publish(3);
        h.event("end");
        assert_eq!(h.take(Duration::ZERO), Taken::Value(3), "the last frame before the end is used");
        assert_eq!(h.take(Duration::ZERO), Taken::Event("end"));
    }

    #[test]
    fn close_wakes_a_waiting_consumer_after_the_queue_drains() {
        let h: Arc<Handoff<u32, &str>> = Arc::new(Handoff::default());
        h.event("last");
        let h2 = h.clone();
        let t0 = Instant::now();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            h2.close();
        });
        assert_eq!(h.take(Duration::from_secs(5)), Taken::Event("last"));
        assert_eq!(h.take(Duration::from_secs(5)), Taken::Closed);
        assert!(t0.elapsed() < Duration::from_secs(2), "woken by close, not by the timeout");
        closer.join().unwrap();
        assert!(h.is_closed());
    }

    #[test]
    fn a_waiting_consumer_is_woken_by_a_publication() {
        let h: Arc<Handoff<u32, ()>> = Arc::new(Handoff::default());
        let h2 = h.clone();
        let producer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            h2.publish(7);
        });
        assert_eq!(h.take(Duration::from_secs(5)), Taken::Value(7));
        producer.join().unwrap();
    }

    #[test]
    fn discard_and_recycle_count_stale_values() {
        let h: Handoff<u32, ()> = Handoff::default();
        h.publish(10);
        assert!(h.pending_since().is_some());
        h.discard_if(|v| *v < 5);
        assert!(h.pending_since().is_some(), "10 is not older than the limit");
        h.discard_if(|v| *v < 50);
        assert_eq!(h.pending_since(), None);
        assert_eq!(h.stale(), 1);
        h.recycle_stale(11);
        h.recycle(12);
        assert_eq!(h.stale(), 2, "recycle alone is not stale");
        assert_eq!(h.take(Duration::ZERO), Taken::TimedOut);
    }

    #[test]
    fn a_full_event_queue_drops_the_oldest_and_counts_it() {
        let h: Handoff<(), usize> = Handoff::default();
        for i in 0..MAX_QUEUED_EVENTS + 3 {
            h.event(i);
        }
        assert_eq!(h.dropped_events(), 3);
        assert_eq!(h.take(Duration::ZERO), Taken::Event(3));
    }
}
