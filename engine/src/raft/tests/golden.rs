//! Goldenscript tests: `testscripts/*`, one file per scenario. The runner drives a
//! [`Cluster`] whose Ready loop persists before it sends, and the safety checker runs
//! on every transition and again after every command (a violation fails the script).
//!
//! Commands (node ids are numbers; `N…` means one or more, default all):
//! - `cluster nodes=3 [election_timeout=10] [heartbeat=1] [seed=0] [pre_vote=true]
//!   [check_quorum=true] [max_entries=64]`: a fresh cluster.
//! - `campaign N`: start an election on N now (pre-vote first if enabled).
//! - `tick [N…] [count=K]`: K ticks (default 1) on each node, in turn.
//! - `deliver [N…]`: deliver every message now in flight to N… (one round; replies
//!   stay queued). `stabilize`: deliver rounds until nothing is in flight.
//! - `run [count=K]`: K times: tick every live node, then stabilize.
//! - `drop [from=N] [to=N]`: discard the in-flight messages matching.
//! - `partition N…`: cut N… off from the rest (both directions). `heal`.
//! - `propose N data`, `read N ctx`.
//! - `crash N`: power loss (keeps only what was advanced). `restart N`.
//! - `hold N`: stop processing N's Ready (state stays unpersisted, nothing sent);
//!   `persist N`: persist N's Ready but keep its messages; `release N`: send them and
//!   resume.
//! - `snapshot N [index]`: the application snapshots N at index (default: applied).
//!   `compact [N…]`: compact the log up to the snapshot.
//! - `inject to=N from=F term=T kind=heartbeat|append|vote|prevote [commit=C]
//!   [prev=P] [entry=I]`: a hand-made message (`prev`, `entry`: an append's previous
//!   index and one entry at index I of term T).
//! - `status [N…]`, `log [N…]`, `net`, `values [N…]`.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::str::FromStr;

use super::cluster::Cluster;
use crate::raft::{Body, Config, Message, NodeId, Role, Storage};

type Res = Result<String, Box<dyn StdError>>;

struct Runner {
    cluster: Option<Cluster>,
}

fn parse<T: FromStr>(s: &str) -> Result<T, Box<dyn StdError>>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>()
        .map_err(|e| format!("bad argument {s:?}: {e}").into())
}

impl Runner {
    fn cluster(&mut self) -> Result<&mut Cluster, Box<dyn StdError>> {
        self.cluster
            .as_mut()
            .ok_or_else(|| "no cluster; start with `cluster nodes=N`".into())
    }

    /// Positional node ids, or every node if none.
    fn ids(
        &mut self,
        args: &mut goldenscript::ArgumentConsumer,
    ) -> Result<Vec<NodeId>, Box<dyn StdError>> {
        let mut ids = Vec::new();
        while let Some(a) = args.next_pos() {
            ids.push(parse(a)?);
        }
        if ids.is_empty() {
            ids = self.cluster()?.ids();
        }
        Ok(ids)
    }

    fn one_id(args: &mut goldenscript::ArgumentConsumer) -> Result<NodeId, Box<dyn StdError>> {
        parse(args.next_pos().ok_or("node id missing")?)
    }

    fn status(c: &Cluster, id: NodeId) -> Res {
        let Ok(n) = c.node(id) else {
            return Ok(format!("n{id}: down"));
        };
        let s = n.status();
        let mut line = format!(
            "n{id}: {} term={} vote={} commit={} applied={} log={}..{}@{} snapshot={}",
            format!("{:?}", s.role).to_lowercase(),
            s.term,
            s.vote.map_or("-".to_string(), |v| v.to_string()),
            s.commit,
            s.applied,
            s.first_index,
            s.last_index,
            s.last_term,
            s.snapshot_index,
        );
        if let Some(l) = s.leader.filter(|_| s.role != Role::Leader) {
            write!(line, " leader={l}")?;
        }
        if !s.progress.is_empty() {
            let ps: Vec<String> = s
                .progress
                .iter()
                .map(|(p, (m, nx))| format!("{p}:{m}/{nx}"))
                .collect();
            write!(line, " match/next={}", ps.join(" "))?;
        }
        Ok(line)
    }

    fn log(c: &Cluster, id: NodeId) -> Res {
        let Ok(n) = c.node(id) else {
            return Ok(format!("n{id}: down\n"));
        };
        let (si, st) = n.log_start();
        let persisted = n.storage().last_index();
        let mut out = format!(
            "n{id}: start={si}@{st} commit={} persisted={persisted}\n",
            n.commit()
        );
        for e in n.log_entries()? {
            writeln!(out, "  {e}")?;
        }
        Ok(out)
    }

    fn inject(&mut self, args: &mut goldenscript::ArgumentConsumer) -> Res {
        let key = |args: &mut goldenscript::ArgumentConsumer,
                   k: &str|
         -> Result<u64, Box<dyn StdError>> {
            parse(args.take_key(k).ok_or_else(|| format!("{k}= missing"))?)
        };
        let (to, from, term) = (key(args, "to")?, key(args, "from")?, key(args, "term")?);
        let commit: u64 = args.take_key("commit").map(parse).transpose()?.unwrap_or(0);
        let body = match args.take_key("kind").ok_or("kind= missing")? {
            "heartbeat" => Body::Heartbeat {
                commit,
                read_seq: 0,
            },
            "append" => {
                let prev_index: u64 = args.take_key("prev").map(parse).transpose()?.unwrap_or(0);
                let entry: Option<u64> = args.take_key("entry").map(parse).transpose()?;
                Body::Append {
                    prev_index,
                    prev_term: 0,
                    entries: entry
                        .map(|index| crate::raft::Entry {
                            index,
                            term,
                            data: Some(b"forged".to_vec()),
                        })
                        .into_iter()
                        .collect(),
                    commit,
                }
            }
            "vote" => Body::Vote {
                last_index: 1000,
                last_term: term,
            },
            "prevote" => Body::PreVote {
                last_index: 1000,
                last_term: term,
            },
            k => return Err(format!("unknown kind {k}").into()),
        };
        let msg = Message { term, body };
        let c = self.cluster()?;
        c.deliver(super::cluster::Envelope { from, to, msg })?;
        Ok(String::new())
    }
}

impl goldenscript::Runner for Runner {
    type Command = goldenscript::Command;

    fn run(&mut self, command: &goldenscript::Command, _context: &goldenscript::Context) -> Res {
        let mut args = command.consume_args();
        let mut out = String::new();
        match command.name.as_str() {
            "cluster" => {
                let get = |args: &mut goldenscript::ArgumentConsumer,
                           k: &str,
                           d: u64|
                 -> Result<u64, Box<dyn StdError>> {
                    args.take_key(k)
                        .map(parse)
                        .transpose()
                        .map(|v| v.unwrap_or(d))
                };
                let nodes = get(&mut args, "nodes", 3)?;
                let mut cfg = Config::new(1, [1]);
                cfg.election_timeout_ticks = get(&mut args, "election_timeout", 10)?;
                cfg.heartbeat_interval_ticks = get(&mut args, "heartbeat", 2)?;
                cfg.max_entries_per_message = get(&mut args, "max_entries", 64)? as usize;
                let seed = get(&mut args, "seed", 0)?;
                cfg.pre_vote = args
                    .take_key("pre_vote")
                    .map(parse)
                    .transpose()?
                    .unwrap_or(true);
                cfg.check_quorum = args
                    .take_key("check_quorum")
                    .map(parse)
                    .transpose()?
                    .unwrap_or(true);
                self.cluster = Some(Cluster::new(nodes, cfg, seed)?);
            }
            "campaign" => {
                let id = Self::one_id(&mut args)?;
                self.cluster()?.campaign(id)?;
            }
            "tick" => {
                let count: u64 = args.take_key("count").map(parse).transpose()?.unwrap_or(1);
                let ids = self.ids(&mut args)?;
                for _ in 0..count {
                    for &id in &ids {
                        let c = self.cluster()?;
                        if c.is_up(id) {
                            c.tick(id)?;
                        }
                    }
                }
            }
            "deliver" => {
                let ids: Vec<NodeId> = std::iter::from_fn(|| args.next_pos())
                    .map(parse)
                    .collect::<Result<_, _>>()?;
                self.cluster()?.deliver_all(&ids)?;
            }
            "stabilize" => self.cluster()?.stabilize()?,
            "run" => {
                let count: u64 = args.take_key("count").map(parse).transpose()?.unwrap_or(1);
                let c = self.cluster()?;
                for _ in 0..count {
                    for id in c.ids() {
                        if c.is_up(id) {
                            c.tick(id)?;
                        }
                    }
                    c.stabilize()?;
                }
            }
            "drop" => {
                let from: Option<NodeId> = args.take_key("from").map(parse).transpose()?;
                let to: Option<NodeId> = args.take_key("to").map(parse).transpose()?;
                let c = self.cluster()?;
                let before = c.net.len();
                c.net.retain(|e| {
                    !(from.map_or(true, |f| f == e.from) && to.map_or(true, |t| t == e.to))
                });
                writeln!(out, "dropped {} messages", before - c.net.len())?;
            }
            "partition" => {
                let ids: Vec<NodeId> = std::iter::from_fn(|| args.next_pos())
                    .map(parse)
                    .collect::<Result<_, _>>()?;
                self.cluster()?.partition(&ids);
            }
            "heal" => self.cluster()?.heal(),
            "propose" => {
                let id = Self::one_id(&mut args)?;
                let data = args.next_pos().ok_or("data missing")?;
                match self.cluster()?.propose(id, data.as_bytes())? {
                    Ok(i) => writeln!(out, "n{id}: proposed {data} at index {i}")?,
                    Err(e) => writeln!(out, "n{id}: propose {data} → {e}")?,
                }
            }
            "read" => {
                let id = Self::one_id(&mut args)?;
                let ctx = args.next_pos().ok_or("ctx missing")?;
                if let Err(e) = self.cluster()?.read(id, ctx.as_bytes())? {
                    writeln!(out, "n{id}: read {ctx} → {e}")?;
                }
            }
            "crash" => {
                let id = Self::one_id(&mut args)?;
                self.cluster()?.crash(id)?;
            }
            "restart" => {
                let id = Self::one_id(&mut args)?;
                self.cluster()?.restart(id)?;
            }
            "hold" => {
                let id = Self::one_id(&mut args)?;
                self.cluster()?.hold(id)?;
            }
            "persist" => {
                let id = Self::one_id(&mut args)?;
                let n = self.cluster()?.persist_only(id)?;
                writeln!(out, "n{id}: persisted, {n} messages held back")?;
            }
            "release" => {
                let id = Self::one_id(&mut args)?;
                self.cluster()?.release(id)?;
            }
            "snapshot" => {
                let id = Self::one_id(&mut args)?;
                let index = args.next_pos().map(parse).transpose()?;
                match self.cluster()?.snapshot(id, index)? {
                    Ok(i) => writeln!(out, "n{id}: snapshot at {i}")?,
                    Err(e) => writeln!(out, "n{id}: snapshot → {e}")?,
                }
            }
            "compact" => {
                for id in self.ids(&mut args)? {
                    match self.cluster()?.compact(id)? {
                        Ok(i) => writeln!(out, "n{id}: compacted through {i}")?,
                        Err(e) => writeln!(out, "n{id}: compact → {e}")?,
                    }
                }
            }
            "inject" => out = self.inject(&mut args)?,
            "status" => {
                for id in self.ids(&mut args)? {
                    writeln!(out, "{}", Self::status(self.cluster()?, id)?)?;
                }
            }
            "log" => {
                for id in self.ids(&mut args)? {
                    out.push_str(&Self::log(self.cluster()?, id)?);
                }
            }
            "values" => {
                for id in self.ids(&mut args)? {
                    let c = self.cluster()?;
                    writeln!(
                        out,
                        "n{id}: applied={} [{}]",
                        c.applied(id),
                        c.values(id).join(" ")
                    )?;
                }
            }
            "net" => {
                for e in &self.cluster()?.net {
                    writeln!(out, "n{}→n{} {}", e.from, e.to, e.msg)?;
                }
            }
            name => return Err(format!("unknown command {name}").into()),
        }
        args.reject_next()?;
        if let Some(c) = self.cluster.as_mut() {
            let mut lines = std::mem::take(&mut c.out).join("\n");
            if !lines.is_empty() {
                lines.push('\n');
            }
            out = lines + &out;
        }
        Ok(out)
    }

    /// The safety checker and every node's invariants, after every command.
    fn end_command(
        &mut self,
        _command: &goldenscript::Command,
        _context: &goldenscript::Context,
    ) -> Res {
        if let Some(c) = self.cluster.as_mut() {
            c.check_all()?;
        }
        Ok(String::new())
    }
}

/// Every script in `testscripts/`.
#[test]
fn every_script() {
    let dir = crate::testscripts::folder("src/raft/testscripts");
    crate::testscripts::run_folder(&dir, || Runner { cluster: None });
}
