//! One counter node: recover, then serve increments (group commit), reads and gossip
//! until an I/O error stops it.

use crate::store::{Record, Store};
use crate::{Msg, Options, CLUSTER_ID};
use sim_net::{Config, Endpoint};
use sim_runtime::time;
use std::collections::BTreeMap;
use std::io;

/// The node's state: its view of every slot and, per client, the last operation
/// applied.
#[derive(Debug)]
struct State {
    me: usize,
    slots: Vec<u64>,
    last_seq: BTreeMap<u64, u64>,
}

/// An increment received and not yet durable.
#[derive(Debug, Clone, Copy)]
struct Pending {
    client: u64,
    seq: u64,
}

/// Runs node `opts.id` until an I/O error stops it (fail-stop: the error is
/// returned, and whoever supervises the node restarts it, which recovers).
pub async fn run(opts: Options) -> io::Result<()> {
    let (mut store, recovered) = Store::open(&opts.dir, &format!("counter-{}", opts.id)).await?;
    let endpoint = Endpoint::<Msg>::bind(opts.listen(), Config::new(CLUSTER_ID, opts.id)).await?;
    for (i, addr) in opts.peers.iter().enumerate() {
        let id = i as u64 + 1;
        if id != opts.id {
            endpoint.add_peer(id, *addr);
        }
    }
    let me = (opts.id - 1) as usize;
    let mut state = State {
        me,
        slots: vec![0; opts.peers.len()],
        last_seq: recovered.last_seq,
    };
    state.slots[me] = recovered.count;
    sim_runtime::cover!("counter.restart_recovered_increments", recovered.count > 0);
    tracing::info!(
        node = opts.id,
        count = recovered.count,
        cut = recovered.cut_bytes,
        "recovered"
    );
    let mut next_gossip = time::now() + opts.gossip_every;
    let mut next_flush = time::now() + opts.flush_every;
    loop {
        tokio::select! {
            biased;
            _ = time::sleep_until(next_gossip) => {
                next_gossip = time::now() + opts.gossip_every;
                for peer in 1..=opts.peers.len() as u64 {
                    if peer != opts.id {
                        let _ = endpoint.send(peer, Msg::Gossip { slots: state.slots.clone() });
                    }
                }
            }
            _ = time::sleep_until(next_flush), if opts.ack_before_fsync => {
                next_flush = time::now() + opts.flush_every;
                if store.is_dirty() {
                    store.sync().await?;
                }
            }
            (from, msg) = endpoint.recv() => {
                let mut batch = Vec::new();
                handle(&endpoint, &mut state, &mut batch, from, msg);
                // Group commit: everything that is already waiting joins this batch.
                while let Some((from, msg)) = endpoint.try_recv() {
                    handle(&endpoint, &mut state, &mut batch, from, msg);
                }
                commit(&opts, &endpoint, &mut store, &mut state, batch).await?;
            }
        }
    }
}

/// Answers reads, merges gossip, and queues new increments into `batch`.
fn handle(
    endpoint: &Endpoint<Msg>,
    state: &mut State,
    batch: &mut Vec<Pending>,
    from: u64,
    msg: Msg,
) {
    match msg {
        Msg::Incr { seq } if from > crate::CLIENT_ID_BASE => {
            let applied = state.last_seq.get(&from).copied().unwrap_or(0);
            let queued = batch.iter().any(|p| p.client == from && p.seq >= seq);
            if seq > applied && !queued {
                batch.push(Pending { client: from, seq });
            } else if seq == applied {
                // A duplicate of the last operation applied (the network duplicates
                // messages): it is durable, so say so again. Older ones are ignored:
                // their client has moved on.
                sim_runtime::cover!("counter.duplicate_increment_acknowledged_again");
                let _ = endpoint.send(from, Msg::IncrOk { seq });
            }
        }
        Msg::Read { req } => {
            let _ = endpoint.send(
                from,
                Msg::ReadOk {
                    req,
                    slots: state.slots.clone(),
                },
            );
        }
        Msg::Gossip { slots } => {
            for (i, v) in slots.into_iter().enumerate() {
                // Our own slot is decided by our log alone.
                sim_runtime::cover!(
                    "counter.gossip_brings_news",
                    i != state.me && i < state.slots.len() && v > state.slots[i]
                );
                if i != state.me && i < state.slots.len() {
                    state.slots[i] = state.slots[i].max(v);
                }
            }
        }
        Msg::Applied { req } => {
            let last = state.last_seq.iter().map(|(c, s)| (*c, *s)).collect();
            let _ = endpoint.send(from, Msg::AppliedOk { req, last });
        }
        Msg::Incr { .. } | Msg::IncrOk { .. } | Msg::ReadOk { .. } | Msg::AppliedOk { .. } => {}
    }
}

/// Makes `batch` durable, then applies and acknowledges it.
async fn commit(
    opts: &Options,
    endpoint: &Endpoint<Msg>,
    store: &mut Store,
    state: &mut State,
    batch: Vec<Pending>,
) -> io::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut count = state.slots[state.me];
    let records: Vec<Record> = batch
        .iter()
        .map(|p| {
            count += 1;
            Record {
                count,
                client: p.client,
                seq: p.seq,
            }
        })
        .collect();
    store.append(&records).await?;
    if !opts.ack_before_fsync {
        // Durable before anyone hears of it. An error stops the node (fail-stop).
        store.sync().await?;
    }
    // (With the planted bug, the flush timer in `run` syncs later.)
    state.slots[state.me] = count;
    for p in &batch {
        state.last_seq.insert(p.client, p.seq);
        let _ = endpoint.send(p.client, Msg::IncrOk { seq: p.seq });
    }
    Ok(())
}
