//! Snapshots and log compaction (§7).
//!
//! The application owns the state machine, so it supplies the snapshot: after applying
//! through index `i` it calls [`RawNode::snapshot`] with its serialized state at `i`
//! (durably saved by then), and later [`RawNode::compact`] to drop the log up to the
//! snapshot. A leader whose follower needs compacted entries sends its latest snapshot;
//! the follower's Ready then carries it, to persist (it replaces the whole log) and to
//! install into the state machine before applying later entries.

use tracing::{debug, error, info, warn};

use super::replication::ProgressState;
use super::{Body, Error, Index, NodeId, RawNode, Snapshot, Storage};

impl<S: Storage> RawNode<S> {
    /// Records the application's snapshot `data` of its state after applying through
    /// `index` (which must be applied, and newer than the current snapshot).
    pub fn snapshot(&mut self, index: Index, data: Vec<u8>) -> Result<(), Error> {
        if index > self.log.applied {
            return Err(Error::Snapshot(format!(
                "index {index} is beyond the applied index {}",
                self.log.applied
            )));
        }
        let have = self.log.storage.snapshot().meta.index;
        if index <= have {
            return Err(Error::Snapshot(format!(
                "index {index} is not newer than the snapshot at {have}"
            )));
        }
        self.log.storage.create_snapshot(index, data)?;
        // Storage recorded it with the term its log holds at `index`.
        let meta = self.log.storage.snapshot().meta;
        debug_assert_eq!(meta.index, index);
        debug_assert_eq!(Ok(meta.term), self.log.storage.term(index));
        self.debug_check();
        Ok(())
    }

    /// Discards the log up to and including `index`, which must be covered by the
    /// snapshot. Followers that still need those entries will get the snapshot.
    pub fn compact(&mut self, index: Index) -> Result<(), Error> {
        let snap = self.log.storage.snapshot().meta.index;
        if index > snap {
            return Err(Error::Snapshot(format!(
                "cannot compact to {index} past the snapshot at {snap}"
            )));
        }
        self.log.storage.compact(index)?;
        debug_assert!(self.log.storage.first_index() > index);
        self.debug_check();
        Ok(())
    }

    /// The follower's next entry is compacted away: send the latest snapshot.
    pub(crate) fn send_snapshot(&mut self, peer: NodeId) {
        let snapshot = self.log.storage.snapshot().clone();
        if snapshot.meta.index == 0 {
            error!(
                node = self.cfg.id,
                peer, "raft: entries compacted but no snapshot to send"
            );
            return;
        }
        // The snapshot agrees with the log it replaces (where the log still knows the
        // term) and holds nothing from a later term.
        debug_assert!(snapshot.meta.term <= self.term);
        debug_assert!(self
            .log
            .term(snapshot.meta.index)
            .map_or(true, |t| t == snapshot.meta.term));
        let Some(pr) = self
            .leader_state_mut()
            .and_then(|ld| ld.progress.get_mut(&peer))
        else {
            return;
        };
        pr.state = ProgressState::Snapshot {
            index: snapshot.meta.index,
        };
        info!(
            node = self.cfg.id,
            peer,
            index = snapshot.meta.index,
            "raft: sending snapshot"
        );
        sim_runtime::cover!("raft.snapshot_sent_to_lagging_follower");
        self.send(peer, Body::InstallSnapshot { snapshot });
    }

    /// InstallSnapshot receiver (§7, Figure 13).
    pub(crate) fn handle_install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        let meta = snapshot.meta;
        if meta.term > self.term || meta.index == 0 {
            warn!(
                node = self.cfg.id,
                from, "raft: malformed snapshot {}@{}; dropped", meta.index, meta.term
            );
            return;
        }
        if meta.index <= self.log.commit {
            sim_runtime::cover!("raft.snapshot_already_covered");
            debug!(
                node = self.cfg.id,
                from,
                index = meta.index,
                "raft: snapshot already covered"
            );
            let index = self.log.commit;
            self.send(
                from,
                Body::AppendResponse {
                    index,
                    reject: None,
                },
            );
            return;
        }
        if self.log.matches(meta.index, meta.term) {
            // §7: "if an existing log entry has the same index and term as the
            // snapshot's last included entry, retain log entries following it".
            sim_runtime::cover!("raft.snapshot_keeps_matching_log_suffix");
            self.log.commit_to(meta.index);
        } else {
            info!(
                node = self.cfg.id,
                from,
                index = meta.index,
                "raft: installing snapshot"
            );
            // Everything after our commit index may differ from the snapshot's log.
            sim_runtime::cover!("raft.snapshot_installed_on_lagging_follower");
            self.discard_stale_msgs(self.log.commit + 1);
            self.log.restore(snapshot);
            debug_assert_eq!(self.log.last_index(), meta.index);
        }
        // Either way the snapshot's entries are now committed here.
        debug_assert!(self.log.commit >= meta.index);
        self.send(
            from,
            Body::AppendResponse {
                index: meta.index,
                reject: None,
            },
        );
    }
}
