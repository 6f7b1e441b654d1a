//! The delivery stage of a connection: hands received messages to the inbox; in the
//! simulated world, first applies the network faults (see the `faults` module).

use crate::bounds::Held;
use crate::conn::{push, Close, Shared};
#[cfg(madsim)]
use crate::conn::{spawn_task, trace_msg};
#[cfg(madsim)]
use crate::frame;
use crate::Message;
#[cfg(madsim)]
use sim_runtime::trace::EventKind;
use std::net::SocketAddr;
use std::sync::Arc;

/// Delivers the messages of one connection; in simulation, applies the faults.
pub(crate) struct Sink<M> {
    shared: Arc<Shared<M>>,
    from: u64,
    #[cfg_attr(not(madsim), allow(dead_code))]
    local: SocketAddr,
    #[cfg_attr(not(madsim), allow(dead_code))]
    peer: SocketAddr,
    /// Simulation: releases the message held back for reordering.
    #[cfg(madsim)]
    held: Option<tokio::sync::oneshot::Sender<()>>,
}

impl<M: Message> Sink<M> {
    pub(crate) fn new(
        shared: Arc<Shared<M>>,
        from: u64,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Self {
        Sink {
            shared,
            from,
            local,
            peer,
            #[cfg(madsim)]
            held: None,
        }
    }

    /// Delivers `msg`, decoded from `payload`, holding `held` of the byte budget until
    /// it leaves the inbox.
    #[cfg(not(madsim))]
    pub(crate) async fn accept(
        &mut self,
        payload: Vec<u8>,
        msg: M,
        held: Held,
    ) -> Result<(), Close> {
        let size = payload.len();
        // The decoded message is what waits in the inbox; its bytes go now.
        drop(payload);
        push(&self.shared, self.from, msg, held, size, "").await
    }

    #[cfg(madsim)]
    pub(crate) async fn accept(
        &mut self,
        payload: Vec<u8>,
        msg: M,
        held: Held,
    ) -> Result<(), Close> {
        use crate::faults::{self, Verdict};
        let (src, dst) = (self.peer.ip(), self.local.ip());
        let (from, me, size) = (self.from, self.shared.config.node_id, payload.len());
        if faults::wait_unclogged(src, dst).await {
            trace_msg(EventKind::Fault, from, me, size, " clog held");
        }
        let (dup, delay, reorder) = match faults::decide(src, dst) {
            Verdict::PartitionDrop => {
                trace_msg(EventKind::Drop, from, me, size, " partition");
                return Ok(());
            }
            Verdict::Drop => {
                trace_msg(EventKind::Drop, from, me, size, " random");
                return Ok(());
            }
            Verdict::Reset => {
                trace_msg(EventKind::Drop, from, me, size, " reset");
                return Err(Close::InjectedReset);
            }
            Verdict::Deliver {
                dup,
                delay,
                reorder,
            } => (dup, delay, reorder),
        };
        let copy: Option<M> = if dup {
            trace_msg(EventKind::Fault, from, me, size, " dup");
            frame::decode_value(&payload).ok()
        } else {
            None
        };
        drop(payload);
        if let Some(d) = delay {
            trace_msg(
                EventKind::Fault,
                from,
                me,
                size,
                &format!(" delay {}ns", d.as_nanos()),
            );
            let shared = self.shared.clone();
            spawn_task(&self.shared, "net.delay", async move {
                sim_runtime::time::sleep(d).await;
                deliver_both(&shared, from, msg, held, copy, size, " delayed").await;
            });
            return Ok(());
        }
        if let (Some(window), None) = (reorder, &self.held) {
            sim_runtime::faults::count("net.reorder");
            trace_msg(EventKind::Fault, from, me, size, " reorder hold");
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            self.held = Some(tx);
            let shared = self.shared.clone();
            spawn_task(&self.shared, "net.reorder", async move {
                tokio::select! {
                    biased;
                    _ = rx => {}
                    _ = sim_runtime::time::sleep(window) => {}
                }
                deliver_both(&shared, from, msg, held, copy, size, " reordered").await;
            });
            return Ok(());
        }
        push(&self.shared, from, msg, held, size, "").await?;
        if let Some(copy) = copy {
            push(&self.shared, from, copy, Held::none(), size, " dup").await?;
        }
        if let Some(release) = self.held.take() {
            let _ = release.send(());
        }
        Ok(())
    }
}

/// Delivers a message and its injected duplicate, if any (simulation).
#[cfg(madsim)]
async fn deliver_both<M: Message>(
    shared: &Shared<M>,
    from: u64,
    msg: M,
    held: Held,
    copy: Option<M>,
    size: usize,
    note: &str,
) {
    if push(shared, from, msg, held, size, note).await.is_err() {
        return;
    }
    if let Some(copy) = copy {
        let _ = push(shared, from, copy, Held::none(), size, " dup").await;
    }
}
