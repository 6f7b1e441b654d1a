//! The durability oracle: what every client did, and the check each recovery must pass.
//!
//! Each client owns a few keys and runs one transaction at a time, so its transactions
//! are totally ordered (by its own sequence numbers, never by engine timestamps). Each
//! transaction ends acknowledged, rejected (known to have no effect), or indeterminate
//! (a crash or an error while committing). After a recovery, for every client, the
//! recovered values of its keys must equal what applying, in order, every acknowledged
//! transaction plus *some* subset of the indeterminate ones gives — each all or nothing.
//! An indeterminate transaction once resolved (seen applied, or seen absent) must stay
//! so. Any value that no transaction wrote, any lost acknowledged write, any half-
//! applied transaction, any deleted key that comes back fails the check.

use std::collections::BTreeMap;

pub type Kv = BTreeMap<Vec<u8>, Vec<u8>>;

/// How a transaction ended, as its client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Started; the node crashed before it ended.
    InFlight,
    /// Commit returned `Committed`.
    Acked,
    /// Aborted, rolled back or failed before commit: it cannot have any effect.
    Rejected,
    /// Commit returned an error: it may or may not have been applied.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct TxnLog {
    pub seq: u64,
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub status: Status,
    /// For an indeterminate transaction: whether a recovery showed it applied.
    pub resolved: Option<bool>,
}

#[derive(Debug, Default)]
pub struct Client {
    pub txns: Vec<TxnLog>,
}

pub fn key(client: usize, k: usize) -> Vec<u8> {
    format!("c{client}k{k}").into_bytes()
}

pub fn value(client: usize, seq: u64, k: usize) -> Vec<u8> {
    // Padded so a commit's WAL record often spans a 512-byte sector (torn writes).
    format!("c{client}.s{seq}.k{k}.{:120}", "").into_bytes()
}

/// The (client, seq, key index) a value names, if it is one a client could write.
pub fn parse_value(v: &[u8]) -> Option<(usize, u64, usize)> {
    let s = std::str::from_utf8(v).ok()?.trim_end();
    let mut it = s.split('.');
    let c = it.next()?.strip_prefix('c')?.parse().ok()?;
    let seq = it.next()?.strip_prefix('s')?.parse().ok()?;
    let k = it.next()?.strip_prefix('k')?.parse().ok()?;
    Some((c, seq, k))
}

impl Client {
    /// Checks `observed` (this client's keys only) and resolves indeterminate
    /// transactions where the evidence is unambiguous.
    pub fn check(&mut self, id: usize, observed: &Kv) -> Result<(), String> {
        let open: Vec<usize> = (0..self.txns.len())
            .filter(|&i| {
                matches!(self.txns[i].status, Status::InFlight | Status::Unknown)
                    && self.txns[i].resolved.is_none()
            })
            .collect();
        if open.len() > 14 {
            return Err(format!(
                "client {id}: {} unresolved transactions, too many to check",
                open.len()
            ));
        }
        let mut matching: Vec<u32> = Vec::new();
        for mask in 0..(1u32 << open.len()) {
            let mut state = Kv::new();
            for (i, t) in self.txns.iter().enumerate() {
                let apply = match (&t.status, t.resolved) {
                    (Status::Acked, _) => true,
                    (Status::Rejected, _) => false,
                    (_, Some(r)) => r,
                    (_, None) => {
                        mask & (1 << open.iter().position(|&o| o == i).expect("open")) != 0
                    }
                };
                if apply {
                    for (k, v) in &t.writes {
                        match v {
                            Some(v) => state.insert(k.clone(), v.clone()),
                            None => state.remove(k),
                        };
                    }
                }
            }
            if &state == observed {
                matching.push(mask);
            }
        }
        if matching.is_empty() {
            let acked: Vec<u64> = self
                .txns
                .iter()
                .filter(|t| t.status == Status::Acked)
                .map(|t| t.seq)
                .collect();
            let unknown: Vec<u64> = open.iter().map(|&i| self.txns[i].seq).collect();
            let show = |kv: &Kv| {
                kv.iter()
                    .map(|(k, v)| {
                        format!(
                            "{}={}",
                            String::from_utf8_lossy(k),
                            String::from_utf8_lossy(v).trim_end()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            return Err(format!(
                "client {id}: recovered state matches no allowed outcome\n  observed: {}\n  acked seqs: {acked:?}\n  indeterminate: {unknown:?}",
                show(observed)
            ));
        }
        for (bit, &i) in open.iter().enumerate() {
            let first = matching[0] & (1 << bit) != 0;
            if matching.iter().all(|m| (m & (1 << bit) != 0) == first) {
                self.txns[i].resolved = Some(first);
            }
        }
        Ok(())
    }
}

/// Checks a value read during the workload: it must be one that some transaction that
/// is not known to have failed wrote, under the key it was written to.
pub fn check_read(clients: &[Client], key_read: &[u8], v: &[u8]) -> Result<(), String> {
    let (c, seq, k) = parse_value(v).ok_or_else(|| format!("read a value nobody writes: {v:?}"))?;
    if key(c, k) != key_read {
        return Err(format!(
            "value {:?} read under the wrong key {:?}",
            String::from_utf8_lossy(v),
            String::from_utf8_lossy(key_read)
        ));
    }
    let t = clients
        .get(c)
        .and_then(|cl| cl.txns.iter().find(|t| t.seq == seq))
        .ok_or_else(|| {
            format!(
                "read {:?}, written by no transaction",
                String::from_utf8_lossy(v)
            )
        })?;
    if t.status == Status::Rejected || t.resolved == Some(false) {
        return Err(format!(
            "read {:?}, written by a transaction that had no effect",
            String::from_utf8_lossy(v)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(seq: u64, writes: &[(usize, Option<u64>)], status: Status) -> TxnLog {
        TxnLog {
            seq,
            writes: writes
                .iter()
                .map(|(k, v)| (key(0, *k), v.map(|s| value(0, s, *k))))
                .collect(),
            status,
            resolved: None,
        }
    }

    fn kv(pairs: &[(usize, u64)]) -> Kv {
        pairs
            .iter()
            .map(|(k, s)| (key(0, *k), value(0, *s, *k)))
            .collect()
    }

    /// The oracle itself can say no: lost acks, half-applied and resurrected writes.
    #[test]
    fn oracle_rejects_what_it_must() {
        let mut c = Client {
            txns: vec![
                txn(1, &[(0, Some(1)), (1, Some(1))], Status::Acked),
                txn(2, &[(0, Some(2)), (1, None)], Status::Unknown),
                txn(3, &[(2, Some(3))], Status::Rejected),
            ],
        };
        assert!(c.check(0, &kv(&[(0, 1), (1, 1)])).is_ok(), "2 not applied");
        assert_eq!(c.txns[1].resolved, Some(false));
        assert!(
            c.check(0, &kv(&[(0, 2)])).is_err(),
            "once absent, stays absent"
        );
        let mut c = Client {
            txns: c.txns.clone(),
        };
        c.txns[1].resolved = None;
        assert!(c.check(0, &kv(&[(0, 2)])).is_ok(), "2 applied whole");
        c.txns[1].resolved = None;
        assert!(
            c.check(0, &kv(&[(0, 2), (1, 1)])).is_err(),
            "2 half-applied"
        );
        assert!(c.check(0, &kv(&[])).is_err(), "acked 1 lost");
        assert!(
            c.check(0, &kv(&[(0, 1), (1, 1), (2, 3)])).is_err(),
            "rejected 3 visible"
        );
        assert_eq!(parse_value(&value(3, 17, 2)), Some((3, 17, 2)));
        assert!(check_read(&[], &key(0, 0), b"garbage").is_err());
    }
}
