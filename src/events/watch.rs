//! Live tailing of run shards: `watch(run_id, cursor, callback)` / `end_watch`.
//!
//! Stock SQLite watches `<run_id>.db` for modifications, which a writer keeping its connection
//! open (the core's pool, or WAL mode in general) only produces at checkpoints. This watcher
//! polls instead: one thread per store, waking every [`POLL`] (or at once when a watch is
//! added), reads each watched run's rows after that watch's cursor, and hands them to the
//! watch's handler in id order. A watch's cursor only moves forward, past what its handler was
//! given, so every event is delivered once and in order. The GIL is only taken to call handlers.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{Cursor, Events};

/// How often watched shards are read.
pub const POLL: Duration = Duration::from_millis(50);
/// Rows handed to a handler per call; a longer backlog is delivered over several calls.
const BATCH: i64 = 1000;

/// Receives a watched run's new `(storage id, event)` rows, oldest first.
pub trait Handler: Send + Sync + 'static {
    fn deliver(&self, rows: Vec<(i64, String)>);
}

struct Watch<H> {
    run_id: String,
    /// The last storage id delivered (-1: none yet).
    cursor: i64,
    handler: Arc<H>,
}

struct State<H> {
    watches: HashMap<u64, Watch<H>>,
    next_token: u64,
    stop: bool,
    /// Set when a watch was added: poll now rather than after the sleep.
    wake: bool,
    /// Whether the polling thread is alive; only changed under the lock, so a watch added while
    /// the thread is deciding to end is never left without one.
    running: bool,
    /// The process `running` refers to: a forked child has no polling thread.
    pid: u32,
}

struct Shared<H> {
    state: Mutex<State<H>>,
    signal: Condvar,
}

pub struct Watcher<H: Handler> {
    events: Arc<Events>,
    shared: Arc<Shared<H>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<H: Handler> Watcher<H> {
    pub fn new(events: Arc<Events>) -> Self {
        Watcher {
            events,
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    watches: HashMap::new(),
                    next_token: 1,
                    stop: false,
                    wake: false,
                    running: false,
                    pid: std::process::id(),
                }),
                signal: Condvar::new(),
            }),
            thread: Mutex::new(None),
        }
    }

    /// Start delivering `run_id`'s events after `cursor` (a storage id, -1 for all) to
    /// `handler`; returns the token `end_watch` takes.
    pub fn watch(&self, run_id: String, cursor: i64, handler: H) -> u64 {
        let (token, spawn) = {
            let mut state = self.shared.state.lock();
            state.stop = false;
            let token = state.next_token;
            state.next_token += 1;
            state.watches.insert(
                token,
                Watch {
                    run_id,
                    cursor,
                    handler: Arc::new(handler),
                },
            );
            state.wake = true;
            let pid = std::process::id();
            let spawn = !state.running || state.pid != pid;
            state.running = true;
            state.pid = pid;
            (token, spawn)
        };
        self.shared.signal.notify_all();
        if spawn {
            let mut thread = self.thread.lock();
            // A previous thread has marked itself stopped and only returns (or it was the
            // parent's, before a fork): its handle is dropped, detaching it.
            let events = self.events.clone();
            let shared = self.shared.clone();
            *thread = Some(
                std::thread::Builder::new()
                    .name("dagster-rs-watch".into())
                    .spawn(move || poll_loop(&events, &shared))
                    .expect("spawning the event watcher thread"),
            );
        }
        token
    }

    /// Stop a watch; a delivery to it already under way completes. Returns whether it existed.
    pub fn end_watch(&self, token: u64) -> bool {
        self.shared.state.lock().watches.remove(&token).is_some()
    }

    /// Number of live watches.
    pub fn len(&self) -> usize {
        self.shared.state.lock().watches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// End every watch and join the thread. Must not be called with the GIL held while a
    /// handler may be waiting for it.
    pub fn stop(&self) {
        let ours = {
            let mut state = self.shared.state.lock();
            state.stop = true;
            state.watches.clear();
            state.pid == std::process::id()
        };
        self.shared.signal.notify_all();
        if let Some(thread) = self.thread.lock().take() {
            // A thread of the parent of a fork does not exist here and cannot be joined.
            if ours {
                let _ = thread.join();
            }
        }
    }
}

fn poll_loop<H: Handler>(events: &Events, shared: &Shared<H>) {
    loop {
        let pending: Vec<(u64, String, i64, Arc<H>)> = {
            let mut state = shared.state.lock();
            if !state.wake && !state.stop {
                shared.signal.wait_for(&mut state, POLL);
            }
            state.wake = false;
            if state.stop || state.watches.is_empty() {
                // An idle watcher ends; the next watch starts a new thread.
                state.running = false;
                return;
            }
            state
                .watches
                .iter()
                .map(|(t, w)| (*t, w.run_id.clone(), w.cursor, w.handler.clone()))
                .collect()
        };
        for (token, run_id, cursor, handler) in pending {
            let rows = match events.records_for_run(
                &run_id,
                Cursor::StorageId(cursor),
                &[],
                Some(BATCH),
                true,
            ) {
                Ok(rows) => rows,
                // A shard that cannot be read now (being created, locked past the busy timeout)
                // is read again at the next poll, from the same cursor.
                Err(_) => continue,
            };
            let Some(last) = rows.last().map(|r| r.0) else {
                continue;
            };
            {
                let mut state = shared.state.lock();
                match state.watches.get_mut(&token) {
                    Some(w) => w.cursor = last,
                    None => continue,
                }
                if state.stop {
                    state.running = false;
                    return;
                }
            }
            handler.deliver(rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventRow;
    use crate::store::Durability;

    struct Collect(Arc<Mutex<Vec<i64>>>);

    impl Handler for Collect {
        fn deliver(&self, rows: Vec<(i64, String)>) {
            self.0.lock().extend(rows.into_iter().map(|r| r.0));
        }
    }

    fn row(run_id: &str, n: u32) -> EventRow {
        EventRow {
            run_id: run_id.into(),
            event: format!("{{\"n\": {n}}}"),
            dagster_event_type: Some("ENGINE_EVENT".into()),
            timestamp: "2026-01-01 00:00:00.000000".into(),
            ..Default::default()
        }
    }

    #[test]
    fn every_event_once_in_order_after_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let events = Arc::new(Events::new(dir.path(), Durability::Off));
        events.store_events(&[row("r", 1), row("r", 2)]).unwrap();
        let watcher = Watcher::new(events.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let token = watcher.watch("r".into(), 1, Collect(seen.clone()));
        let other = Arc::new(Mutex::new(Vec::new()));
        watcher.watch("other".into(), -1, Collect(other.clone()));
        for n in 3..=40 {
            events.store_events(&[row("r", n)]).unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while seen.lock().len() < 39 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(*seen.lock(), (2..=40).collect::<Vec<i64>>());
        assert!(other.lock().is_empty());
        assert!(watcher.end_watch(token));
        events.store_events(&[row("r", 41)]).unwrap();
        std::thread::sleep(POLL * 4);
        assert_eq!(seen.lock().len(), 39);
        watcher.stop();
        assert!(watcher.is_empty());
    }
}
