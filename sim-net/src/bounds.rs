//! What one peer can hold of a node (D53): the byte budget of received frames, the
//! per-source-IP and total inbound connection counts, and the refusal frame a
//! connector gets when a cap is reached.

use crate::frame::{self, Budget};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// A refusal frame's payload starts with these bytes, then the reason as UTF-8. It can
/// never be taken for a hello, whose payload starts with
/// [`handshake::MAGIC`](crate::handshake::MAGIC).
pub const REFUSAL_MAGIC: [u8; 4] = *b"SBNO";

/// Largest refusal payload (reasons are short sentences).
pub const MAX_REFUSAL_BYTES: usize = 256;

/// The refusal frame (header included) carrying `reason`.
pub(crate) fn refusal_frame(reason: &str) -> Vec<u8> {
    let mut payload = REFUSAL_MAGIC.to_vec();
    let room = MAX_REFUSAL_BYTES - REFUSAL_MAGIC.len();
    let mut cut = reason.len().min(room);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    // Cannot fail: the payload is at most MAX_REFUSAL_BYTES.
    let frame = frame::encode_payload(&payload, MAX_REFUSAL_BYTES).unwrap_or_default();
    // The pair of the connector's `read_hello`: it reads a refusal, not a hello.
    debug_assert!(frame::decode(&frame, MAX_REFUSAL_BYTES)
        .ok()
        .flatten()
        .and_then(|(p, _)| parse_refusal(p))
        .is_some());
    frame
}

/// Writes `frame` (a refusal) to a connection about to be dropped, then lets it close
/// cleanly: our side shut down (FIN), and what the connector already sent (its hello,
/// a TLS ClientHello) read and discarded, a little at a time, until it closes too. A
/// socket closed with unread bytes sends a reset, which can destroy the refusal
/// before the connector reads it. The caller bounds the whole by a timeout.
pub(crate) async fn refuse_politely(
    mut stream: tokio::net::TcpStream,
    frame: &[u8],
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(frame).await?;
    stream.flush().await?;
    stream.shutdown().await?;
    let mut sink = [0u8; 1024];
    // At most 64 KiB drained: a connector that keeps sending is not waited for.
    for _ in 0..64 {
        if stream.read(&mut sink).await? == 0 {
            break;
        }
    }
    Ok(())
}

/// The reason a refusal payload carries, or None if `payload` is not a refusal.
pub fn parse_refusal(payload: &[u8]) -> Option<String> {
    let reason = payload.strip_prefix(&REFUSAL_MAGIC)?;
    Some(String::from_utf8_lossy(reason).into_owned())
}

/// The node-wide budget of bytes held in received frames: from the moment a chunk is
/// requested from a socket until [`Endpoint::recv`](crate::Endpoint::recv) hands the
/// message out.
#[derive(Clone)]
pub(crate) struct ByteBudget(Arc<Semaphore>);

impl ByteBudget {
    pub(crate) fn new(bytes: usize) -> Self {
        ByteBudget(Arc::new(Semaphore::new(bytes)))
    }

    /// A reader's share of the budget, empty at first.
    pub(crate) fn reader(&self) -> ConnBudget {
        ConnBudget {
            sem: self.0.clone(),
            held: 0,
        }
    }

    /// Bytes not held by anyone now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.0.available_permits()
    }
}

/// Bytes one connection's reader holds; given back when dropped.
pub(crate) struct ConnBudget {
    sem: Arc<Semaphore>,
    held: usize,
}

impl ConnBudget {
    /// Hands the bytes of the frame just read to its message.
    pub(crate) fn take(&mut self) -> Held {
        Held {
            sem: Some(self.sem.clone()),
            n: std::mem::take(&mut self.held),
        }
    }
}

impl Budget for ConnBudget {
    async fn reserve(&mut self, n: usize) {
        // A frame is at most max_frame_bytes ≤ u32::MAX, and chunks are smaller.
        let want = u32::try_from(n).unwrap_or(u32::MAX);
        // The semaphore is never closed, so acquiring only waits.
        if let Ok(permit) = self.sem.acquire_many(want).await {
            permit.forget();
            self.held += want as usize;
        }
    }

    fn release(&mut self, n: usize) {
        // A reader releases only bytes it reserved for the frame it is reading.
        debug_assert!(n <= self.held, "release of {n} with {} held", self.held);
        let n = n.min(self.held);
        self.held -= n;
        self.sem.add_permits(n);
    }
}

impl Drop for ConnBudget {
    fn drop(&mut self) {
        self.sem.add_permits(self.held);
    }
}

/// A received message's share of the budget, released when the message leaves the
/// inbox (or is dropped on the way).
pub(crate) struct Held {
    sem: Option<Arc<Semaphore>>,
    n: usize,
}

impl Held {
    /// Nothing held (local deliveries, injected duplicates).
    pub(crate) fn none() -> Self {
        Held { sem: None, n: 0 }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(sem) = &self.sem {
            sem.add_permits(self.n);
        }
    }
}

/// Inbound connections open, in total and per source IP.
#[derive(Default)]
pub(crate) struct InboundCount {
    per_ip: Mutex<BTreeMap<IpAddr, usize>>,
}

impl InboundCount {
    /// Takes a slot for a connection from `ip`, or says which cap refuses it.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<Slot, String> {
        let mut per_ip = sim_runtime::sync::lock(&self.per_ip);
        let total: usize = per_ip.values().sum();
        if total >= max_total {
            return Err(format!(
                "too many inbound connections ({total} open, at most {max_total})"
            ));
        }
        let mine = per_ip.entry(ip).or_insert(0);
        if *mine >= max_per_ip {
            return Err(format!(
                "too many connections from {ip} ({mine} open, at most {max_per_ip})"
            ));
        }
        *mine += 1;
        Ok(Slot {
            count: self.clone(),
            ip,
        })
    }
}

/// An admitted inbound connection's slot; freed when dropped.
pub(crate) struct Slot {
    count: Arc<InboundCount>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per_ip = sim_runtime::sync::lock(&self.count.per_ip);
        // A slot is counted from `admit` until this drop.
        debug_assert!(per_ip.get(&self.ip).is_some_and(|&n| n > 0));
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_refuse_per_ip_then_in_total_and_slots_free() {
        let count = Arc::new(InboundCount::default());
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let s1 = count.admit(a, 3, 2).expect("first");
        let _s2 = count.admit(a, 3, 2).expect("second");
        let why = count
            .admit(a, 3, 2)
            .err()
            .expect("third from a: per-ip cap");
        assert!(why.contains("from 10.0.0.1"), "{why}");
        let _s3 = count.admit(b, 3, 2).expect("b");
        let why = count.admit(b, 3, 2).err().expect("total cap");
        assert!(why.contains("inbound connections"), "{why}");
        drop(s1);
        count.admit(a, 3, 2).expect("a slot was freed");
    }

    /// Polls a future that must be ready at once.
    fn now<F: std::future::Future>(f: F) -> F::Output {
        sim_runtime::task::poll_once(f).expect("ready at once")
    }

    /// Reserved bytes come back when released, when the message holding them goes,
    /// and when the reader goes.
    #[test]
    fn budget_bytes_come_back() {
        let budget = ByteBudget::new(100);
        let mut reader = budget.reader();
        now(reader.reserve(60));
        assert_eq!(budget.available(), 40);
        reader.release(10);
        assert_eq!(budget.available(), 50);
        let held = reader.take();
        now(reader.reserve(30));
        assert_eq!(budget.available(), 20);
        drop(held);
        assert_eq!(budget.available(), 70);
        drop(reader);
        assert_eq!(budget.available(), 100);
        assert!(Held::none().sem.is_none());
    }

    #[test]
    fn refusal_frames_round_trip_and_are_not_hellos() {
        let frame = refusal_frame(&"é".repeat(400));
        let (payload, _) = frame::decode(&frame, MAX_REFUSAL_BYTES)
            .expect("valid")
            .expect("whole");
        let reason = parse_refusal(payload).expect("a refusal");
        assert!(reason.chars().all(|c| c == 'é'));
        assert_ne!(REFUSAL_MAGIC, crate::handshake::MAGIC);
    }
}
