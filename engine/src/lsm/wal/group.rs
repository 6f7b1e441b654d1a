//! Leader-based group commit: the committers write the log themselves.
//!
//! ## Protocol
//! [`Group::submit`] queues a request (under the caller's commit lock: it never blocks
//! and never awaits) and returns a [`WalWait`]. A waiter that finds the log idle — the
//! segment's [`Writer`] not held by another leader — and work queued becomes the
//! *leader*: it takes the writer and every queued request, writes the queued records with
//! one write and one `sync_data` on its own task, answers them in submission order (each
//! record's hook, then its waiter), puts the writer back, and wakes a waiter still queued
//! to lead the next batch. A lone committer so writes and syncs its own record with no
//! hand-off to another thread (the design before D28 passed every record to a writer
//! task, which passed the fsync to a blocking pool: four thread hand-offs per commit);
//! concurrent committers share each fsync. At most one leader holds the writer, so
//! batches are written, synced and answered in submission order: the ordering promise
//! of [`super`] holds as before.
//!
//! ## Nobody left to lead
//! A queued request whose waiter is not waiting — dropped (a cancelled commit), or not
//! awaited yet (a rotation, awaited later by the flush task) — must still be written:
//! the log's *standby* task, spawned on open, leads when the writer is released with no
//! queued waiter parked, and when an unanswered waiter is dropped. It holds the group
//! weakly, so dropping the last handle ends it.
//!
//! ## Cancellation
//! A leader dropped mid-batch puts the writer and the unanswered requests back at the
//! head of the queue. The writer's end offset moves only after a batch's fsync returned,
//! so the next leader rewrites the same bytes at the same offset and syncs again: a write
//! or fsync cut short by cancellation is redone, never skipped. A batch is answered in
//! one synchronous step after its fsync, so it is never half answered.

use super::{io_err, WalError};
use sim_runtime::sync::lock;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::Notify;

/// Called with a record's outcome, in submission order, before its waiter is answered.
/// The database advances its visibility watermark here, so that a committer that stops
/// waiting (cancelled) cannot hold it back.
pub type Hook = Box<dyn FnOnce(&Result<(), WalError>) + Send>;

/// Most scheduler yields a leader spends letting a batch fill (see [`Leader::gather`]).
const GATHER_YIELDS: usize = 4;

/// What a waiter asked for.
pub(super) enum Request {
    Append { record: Vec<u8>, hook: Option<Hook> },
    Rotate { path: PathBuf },
    Close,
}

struct Queued {
    req: Request,
    ticket: Arc<Ticket>,
}

/// One request's answer and its waiter's wake-up.
#[derive(Default)]
struct Ticket {
    outcome: Mutex<Option<Result<(), WalError>>>,
    /// The waiter is parked in [`WalWait::wait`]. Written under the group's lock, so a
    /// releasing leader's hand-off and a waiter going to sleep cannot miss each other.
    parked: AtomicBool,
    wake: Notify,
}

impl Ticket {
    fn answer(&self, result: Result<(), WalError>) {
        let mut outcome = lock(&self.outcome);
        // Each request is answered once: a batch is answered whole or, when its leader
        // is dropped, requeued unanswered.
        debug_assert!(outcome.is_none(), "a WAL request answered twice");
        *outcome = Some(result);
        drop(outcome);
        self.wake.notify_one();
    }

    fn answered(&self) -> bool {
        lock(&self.outcome).is_some()
    }
}

/// The open segment: only the leader holding it writes.
pub(super) struct Writer {
    file: sim_fs::File,
    path: PathBuf,
    dir: Arc<sim_fs::FailStopDir>,
    /// Where the next batch goes: the end of the records synced so far.
    end: u64,
    /// The file's synced length: zeros from `end` to here (see the log's
    /// preallocation).
    allocated: u64,
    /// Bytes of zeros to keep ahead of the records; 0: none.
    preallocate: u64,
    poisoned: Option<String>,
}

impl Writer {
    /// Opens (creating if needed) the segment at `path` for appending after its valid
    /// records. Creating the file syncs its directory; `always_sync_dir` syncs it even if
    /// the file existed (a rotation redone after a cancelled one may find the file
    /// created but its directory entry not yet durable).
    pub(super) async fn open(
        path: &Path,
        dir: Arc<sim_fs::FailStopDir>,
        preallocate: u64,
        always_sync_dir: bool,
    ) -> Result<Writer, WalError> {
        let existed = sim_fs::exists(path).await.map_err(|e| io_err(path, e))?;
        let file = sim_fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(path)
            .await
            .map_err(|e| io_err(path, e))?;
        if !existed || always_sync_dir {
            dir.sync().await.map_err(|e| io_err(path, e))?;
        }
        let end = file.len().await.map_err(|e| io_err(path, e))?;
        Ok(Writer {
            file,
            path: path.to_path_buf(),
            dir,
            end,
            allocated: end,
            preallocate,
            poisoned: None,
        })
    }

    /// One write and one fsync for `buf` (whole records), after the synced ones. When
    /// the records would run past the preallocated zeros, the write carries the next
    /// stretch of zeros too. Returns the bytes written (records and zeros).
    async fn write_batch(&mut self, buf: &[u8]) -> Result<u64, WalError> {
        if let Some(reason) = &self.poisoned {
            return Err(WalError::Poisoned(reason.clone()));
        }
        let overflow = || io_err(&self.path, std::io::Error::other("segment offset overflow"));
        let records_end = self
            .end
            .checked_add(buf.len() as u64)
            .ok_or_else(overflow)?;
        let mut extended = None;
        if self.preallocate > 0 && records_end > self.allocated {
            let target = records_end
                .checked_add(self.preallocate)
                .ok_or_else(overflow)?;
            let mut with_zeros = Vec::with_capacity((target - self.end) as usize);
            with_zeros.extend_from_slice(buf);
            with_zeros.resize((target - self.end) as usize, 0);
            extended = Some((with_zeros, target));
        }
        let bytes = extended.as_ref().map_or(buf, |(b, _)| b.as_slice());
        let result = async {
            self.file
                .write_all_at(bytes, self.end)
                .await
                .map_err(|e| io_err(&self.path, e))?;
            if !crate::canary::enabled(crate::canary::Canary::SkipWalFsync) {
                self.file
                    .sync_data()
                    .await
                    .map_err(|e| io_err(&self.path, e))?;
            }
            Ok::<(), WalError>(())
        }
        .await;
        match &result {
            Ok(()) => {
                self.end = records_end;
                if let Some((_, target)) = extended {
                    self.allocated = target;
                }
                // With preallocation, synced zeros always lie ahead of the records.
                debug_assert!(self.preallocate == 0 || self.allocated >= self.end);
            }
            Err(e) => self.poison(e),
        }
        result.map(|()| bytes.len() as u64)
    }

    /// Cuts the segment back to its records (durably), dropping the preallocated
    /// zeros: before it becomes an older, fully synced segment, and on close.
    async fn cut_preallocation(&mut self) -> Result<(), WalError> {
        if let Some(reason) = &self.poisoned {
            return Err(WalError::Poisoned(reason.clone()));
        }
        if self.allocated <= self.end {
            return Ok(());
        }
        let result = async {
            self.file
                .set_len(self.end)
                .await
                .map_err(|e| io_err(&self.path, e))?;
            self.file
                .sync_all()
                .await
                .map_err(|e| io_err(&self.path, e))
        }
        .await;
        match &result {
            Ok(()) => self.allocated = self.end,
            Err(e) => self.poison(e),
        }
        result
    }

    fn poison(&mut self, e: &WalError) {
        // Fail-stop: never retry an fsync and carry on (the kernel may have dropped the
        // dirty pages it failed to write).
        self.poisoned = Some(e.to_string());
        tracing::error!(path = %self.path.display(), error = %e, "wal poisoned");
    }

    /// Switches to a new segment at `path` (everything before is synced already).
    async fn rotate(&mut self, path: &Path) -> Result<(), WalError> {
        self.cut_preallocation().await?;
        match Writer::open(path, self.dir.clone(), self.preallocate, true).await {
            Ok(next) => {
                *self = next;
                Ok(())
            }
            Err(e) => {
                self.poison(&e);
                Err(e)
            }
        }
    }
}

struct GroupState {
    /// Requests not yet taken by a leader, in submission order.
    queue: VecDeque<Queued>,
    /// The open segment; `None` while a leader holds it.
    writer: Option<Writer>,
    /// A close was processed: nothing more is accepted or written.
    stopped: bool,
    /// Requests in the last batch (the gathering target).
    last_batch: usize,
}

/// The shared state of one log.
pub(super) struct Group {
    state: Mutex<GroupState>,
    /// Wakes the standby task.
    standby: Arc<Notify>,
    /// Bytes written to segments since the log opened (records and preallocated
    /// zeros; a counter for benchmarks, not part of any decision).
    written: AtomicU64,
}

impl Drop for Group {
    fn drop(&mut self) {
        // The standby holds the group weakly: this wakes it to find it gone and exit.
        self.standby.notify_one();
    }
}

impl Group {
    /// Starts the group (and its standby task) on an open segment.
    pub(super) fn start(writer: Writer) -> Arc<Group> {
        let standby = Arc::new(Notify::new());
        let group = Arc::new(Group {
            state: Mutex::new(GroupState {
                queue: VecDeque::new(),
                writer: Some(writer),
                stopped: false,
                last_batch: 0,
            }),
            standby: standby.clone(),
            written: AtomicU64::new(0),
        });
        sim_runtime::task::spawn_named(
            "wal.standby",
            standby_loop(Arc::downgrade(&group), standby),
        );
        group
    }

    /// Bytes written to segments since the log opened.
    pub(super) fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Queues `req`; the order of calls is the order in the log.
    pub(super) fn submit(self: &Arc<Self>, req: Request) -> Result<WalWait, WalError> {
        let mut st = lock(&self.state);
        if st.stopped {
            return Err(WalError::Stopped);
        }
        let ticket = Arc::new(Ticket::default());
        st.queue.push_back(Queued {
            req,
            ticket: ticket.clone(),
        });
        Ok(WalWait {
            group: self.clone(),
            ticket,
            armed: true,
        })
    }

    /// Takes the writer and leads, if the log is idle and has work.
    fn try_lead(self: &Arc<Self>, st: &mut GroupState) -> Option<Leader> {
        if st.stopped || st.queue.is_empty() {
            return None;
        }
        let writer = st.writer.take()?;
        Some(Leader {
            group: self.clone(),
            writer: Some(writer),
            batch: VecDeque::new(),
        })
    }

    /// Gives the writer back with what is still unanswered (at the head of the queue, in
    /// order) and makes sure someone leads the next batch.
    fn release(&self, writer: Option<Writer>, unanswered: VecDeque<Queued>) {
        let mut st = lock(&self.state);
        if writer.is_some() {
            debug_assert!(st.writer.is_none(), "two leaders held the WAL writer");
            st.writer = writer;
        }
        for q in unanswered.into_iter().rev() {
            st.queue.push_front(q);
        }
        if st.stopped {
            // Nothing queued after a close is written (its hook is dropped unrun: the
            // record never reached the log).
            for q in st.queue.drain(..) {
                q.ticket.answer(Err(WalError::Stopped));
            }
            self.standby.notify_one();
            return;
        }
        if st.queue.is_empty() {
            return;
        }
        match st
            .queue
            .iter()
            .find(|q| q.ticket.parked.load(Ordering::Relaxed))
        {
            Some(q) => q.ticket.wake.notify_one(),
            None => self.standby.notify_one(),
        }
    }
}

/// A leader: holds the writer and the batch it took. Dropping it (cancelled or done)
/// releases both.
struct Leader {
    group: Arc<Group>,
    writer: Option<Writer>,
    /// Requests taken and not yet answered, in submission order.
    batch: VecDeque<Queued>,
}

impl Drop for Leader {
    fn drop(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        self.group.release(self.writer.take(), batch);
    }
}

impl Leader {
    /// Lets the committers the previous batch woke queue their next records before this
    /// batch goes to disk. With one fsync in flight, N concurrent committers otherwise
    /// settle into two cohorts that alternate (one waits on the disk while the other
    /// prepares), so each fsync carries about N/2 records (D27). It waits only after a
    /// batch of more than one record (a lone committer pays nothing), at most
    /// [`GATHER_YIELDS`] yields, and stops once the queue is twice the last batch.
    async fn gather(group: &Group) {
        for _ in 0..GATHER_YIELDS {
            {
                let st = lock(&group.state);
                if st.last_batch <= 1 || st.queue.len() >= st.last_batch.saturating_mul(2) {
                    return;
                }
            }
            tokio::task::yield_now().await;
        }
    }

    /// Takes everything queued and writes it: appends with one write and one fsync per
    /// run of appends, rotations and a close in line.
    async fn run(mut self) {
        Leader::gather(&self.group).await;
        {
            let mut st = lock(&self.group.state);
            self.batch.extend(st.queue.drain(..));
            st.last_batch = self.batch.len();
        }
        while let Some(front) = self.batch.front() {
            let Some(writer) = self.writer.as_mut() else {
                return;
            };
            match &front.req {
                Request::Append { .. } => {
                    let mut n = 0;
                    let mut buf = Vec::new();
                    for q in &self.batch {
                        let Request::Append { record, .. } = &q.req else {
                            break;
                        };
                        buf.extend_from_slice(record);
                        n += 1;
                    }
                    // The pair of recovery's `decode_records`: the batch is whole
                    // records, every one of them read back.
                    debug_assert_eq!(
                        crate::framing::decode_records(&buf),
                        (
                            self.batch
                                .iter()
                                .take(n)
                                .filter_map(|q| match &q.req {
                                    Request::Append { record, .. } =>
                                        Some(record[crate::framing::HEADER_BYTES..].to_vec()),
                                    _ => None,
                                })
                                .collect::<Vec<_>>(),
                            buf.len() as u64
                        )
                    );
                    let result = writer.write_batch(&buf).await.map(|bytes| {
                        self.group.written.fetch_add(bytes, Ordering::Relaxed);
                    });
                    // No await from here to the last answer: a batch is answered whole.
                    for q in self.batch.drain(..n) {
                        if let Request::Append {
                            hook: Some(hook), ..
                        } = q.req
                        {
                            hook(&result);
                        }
                        q.ticket.answer(result.clone());
                    }
                }
                Request::Rotate { path } => {
                    let path = path.clone();
                    let result = writer.rotate(&path).await;
                    if let Some(q) = self.batch.pop_front() {
                        q.ticket.answer(result);
                    }
                }
                Request::Close => {
                    // A poisoned log closes too; its segment is recovery's business.
                    let result = match writer.cut_preallocation().await {
                        Err(e) if !matches!(e, WalError::Poisoned(_)) => Err(e),
                        _ => Ok(()),
                    };
                    lock(&self.group.state).stopped = true;
                    if let Some(q) = self.batch.pop_front() {
                        q.ticket.answer(result);
                    }
                    for q in self.batch.drain(..) {
                        q.ticket.answer(Err(WalError::Stopped));
                    }
                }
            }
        }
    }
}

/// Leads when nobody else will (see the module doc).
async fn standby_loop(group: Weak<Group>, poke: Arc<Notify>) {
    loop {
        poke.notified().await;
        let Some(group) = group.upgrade() else {
            return;
        };
        let leader = {
            let mut st = lock(&group.state);
            if st.stopped {
                return;
            }
            group.try_lead(&mut st)
        };
        if let Some(leader) = leader {
            leader.run().await;
        }
    }
}

/// The outcome of a submitted request, to be awaited. Dropping it unanswered leaves the
/// request queued: it is still written (by another waiter or the standby task).
pub struct WalWait {
    group: Arc<Group>,
    ticket: Arc<Ticket>,
    /// Not yet answered through [`WalWait::wait`].
    armed: bool,
}

impl std::fmt::Debug for WalWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalWait")
            .field("answered", &self.ticket.answered())
            .finish()
    }
}

impl WalWait {
    /// Waits for the request to be done, leading batches while the log is idle.
    pub async fn wait(mut self) -> Result<(), WalError> {
        loop {
            if let Some(result) = lock(&self.ticket.outcome).take() {
                self.armed = false;
                return result;
            }
            let leader = {
                let mut st = lock(&self.group.state);
                let leader = self.group.try_lead(&mut st);
                self.ticket
                    .parked
                    .store(leader.is_none(), Ordering::Relaxed);
                leader
            };
            match leader {
                Some(leader) => leader.run().await,
                None => self.ticket.wake.notified().await,
            }
        }
    }
}

impl Drop for WalWait {
    fn drop(&mut self) {
        if !self.armed || self.ticket.answered() {
            return;
        }
        let st = lock(&self.group.state);
        self.ticket.parked.store(false, Ordering::Relaxed);
        if st.writer.is_some() && !st.queue.is_empty() {
            // Idle with work and this waiter gone: the standby writes it. (If a leader
            // holds the writer, its release finds a parked waiter or the standby.)
            self.group.standby.notify_one();
        }
    }
}
