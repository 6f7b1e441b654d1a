-------------------------------- MODULE SSI --------------------------------
(***************************************************************************)
(* Serializable Snapshot Isolation as implemented by engine::mvcc           *)
(* (engine/src/mvcc/{core,ssi,manager}.rs): MVCC snapshots, buffered        *)
(* writes, first-committer-wins (first-updater-wins at each write, dooming  *)
(* at each commit), and SSI after Cahill/Rohm/Fekete 2008 with the          *)
(* commit-ordering and read-only refinements of Ports & Grittner 2012, the  *)
(* garbage collection of committed records (out_gc_min), the version GC of  *)
(* the store, and the prepare / publish split of a commit (the visibility   *)
(* watermark trails the allocated commit timestamps). With ReadOnlyModes,   *)
(* also the reads that register nothing (engine/src/mvcc/readonly.rs):      *)
(* point reads of one key at the watermark, and read-only transactions,    *)
(* untracked and pinned at a safe snapshot, tracked otherwise.              *)
(*                                                                          *)
(* The engine fields of the state (variable e) mirror the engine's          *)
(* bookkeeping field by field. The ghost fields (obs, bAcked, bCommitted,   *)
(* acked) record only what clients could observe: which version each read  *)
(* returned, and which commits had been acknowledged or made when a         *)
(* transaction began; the protocol never reads them. The invariants,        *)
(* Serializable and SnapshotReads, are stated over the ghost history and    *)
(* the commit order of versions only; they never mention the protocol's     *)
(* edges, flags, snapshot timestamps or watermark.                          *)
(*                                                                          *)
(* Canaries (a CONSTANT) switch off one check each, exactly like            *)
(* engine::mvcc::SsiCanary does in the engine; a negative-control config    *)
(* sets one and TLC must then find a non-serializable history.              *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets, TLC

CONSTANTS
    Txns,       \* transaction handles (model values; the engine's ids play no role)
    Keys,       \* the keys
    Range,      \* the key range a ScanRange reads (a subset of Keys)
    T0,         \* model value: writer of the initial (absent) version of every key
    None,       \* model value: "no transaction"
    MaxOps,     \* bound: reads + writes + scans one transaction issues
    Canaries,   \* subset of CanaryNames: checks switched off (negative controls)
    ReadOnlyModes \* BOOLEAN: whether BeginReadOnly and PointRead are enabled

CanaryNames == {"SkipReaderSideCheck", "SkipWriterSideCheck", "SkipRangeTracking",
                "SkipFirstCommitterWins", "SkipDeferredReadOnlyCheck",
                "SkipSafeSnapshotCheck"}

ASSUME Range \subseteq Keys /\ Canaries \subseteq CanaryNames
ASSUME T0 \notin Txns /\ None \notin Txns /\ MaxOps \in Nat
ASSUME ReadOnlyModes \in BOOLEAN

Canary(c) == c \in Canaries

VARIABLE e   \* the engine (TxnCore's Inner, Ssi's records, the store) and the ghost history

(* Fields of e:
   st        [Txns -> {"idle","active","committed","aborted"}]   aborted = rolled back,
             failed validation, or doomed (Inner::doom: removed from Ssi::active)
   mode      [Txns -> {"rw","ro","safe","point"}]   how it runs: an ordinary transaction;
             read-only and tracked (TxnRecord::read_only); read-only, untracked and
             pinned (Inner::pins; only its snapshot is recorded); a point read
   snap      TxnRecord::snapshot
   cts       TxnRecord::commit_ts (0 = none)
   rd        TxnRecord::reads (keys read by point reads)
   ranged    TxnRecord::ranges is non-empty (the one Range was recorded)
   wr        TxnRecord::writes (keys only: values and tombstones are abstracted away)
   outE      TxnRecord::out_edges (targets; a target's commit ts is cts[target])
   gcMin     TxnRecord::out_gc_min (a collected target, or None)
   ret       committed and still in Ssi::committed (not yet collected by Ssi::gc)
   visible   Inner::visible, the watermark new snapshots read at
   allocated Inner::allocated, the newest commit ts handed out
   published TxnCore::publish was called for this commit
   store     VersionedStore contents: set of <<key, ts, writer>>
   ops       bound only: reads + writes + scans issued
   scanned   bound only: the transaction issued its ScanRange
 Ghost fields (the history clients observe; the protocol never reads them):
   obs       [Txns -> set of <<key, writer of the version the read returned>>]
   bAcked    commits acknowledged to their clients when t began
   bCommitted  commits made (prepared) when t began
   acked     commits acknowledged to their clients

 To keep the state space small, fields nothing can read any more are reset to
 their initial values: all of a transaction's when it aborts (the engine drops its
 record), the bounds and the snapshot ghosts when it commits, and the SSI record
 when Ssi::gc collects it (cts and wr stay: the history needs them).            *)

vars == <<e>>

Max(S) == CHOOSE x \in S : \A y \in S : y <= x
Min(S) == CHOOSE x \in S : \A y \in S : x <= y

\* A transaction leaves the engine: rolled back, failed validation, or doomed
\* (Inner::doom / Ssi::remove_active). Its record, reads and writes are gone.
Drop(s, t) ==
    [s EXCEPT !.st[t] = "aborted", !.snap[t] = 0, !.rd[t] = {}, !.ranged[t] = FALSE,
              !.wr[t] = {}, !.outE[t] = {}, !.gcMin[t] = None, !.ops[t] = 0,
              !.scanned[t] = FALSE, !.obs[t] = {}, !.bAcked[t] = {}, !.bCommitted[t] = {}]

RECURSIVE DropAll(_, _)
DropAll(s, ts) == IF ts = {} THEN s ELSE LET t == CHOOSE x \in ts : TRUE
                                         IN DropAll(Drop(s, t), ts \ {t})

\* All helpers take the engine state s as a parameter, so that an action can apply
\* Ssi::gc to the state its operation produced, in the same step (TxnCore::mutate).
\* Active and in the SSI graph (Ssi::active); PinnedIn: active, untracked, pinned.
ActiveIn(s) == {t \in Txns : s.st[t] = "active" /\ s.mode[t] # "safe"}
PinnedIn(s) == {t \in Txns : s.st[t] = "active" /\ s.mode[t] = "safe"}
CommittedIn(s) == {t \in Txns : s.st[t] = "committed"}
RetainedIn(s) == {t \in CommittedIn(s) : s.ret[t]}

\* Ssi::retention_horizon: the oldest active snapshot, or the watermark. (Pinned
\* readers are in no edge: the SSI records need not wait for them.)
Horizon(s) == IF ActiveIn(s) = {} THEN s.visible ELSE Min({s.snap[t] : t \in ActiveIn(s)})

\* TxnCore::gc_horizon (Inner::store_horizon): the oldest snapshot in use, tracked or
\* pinned, or the watermark.
StoreHorizon(s) ==
    LET used == ActiveIn(s) \cup PinnedIn(s)
    IN IF used = {} THEN s.visible ELSE Min({s.snap[t] : t \in used})

\* Inner::snapshot_is_safe: every transaction that may write and can still become
\* visible above the watermark — active, or committed with writes and a ts above it
\* (prepared, not yet published) — sees the watermark already.
SafeSnapshot(s) ==
    \/ Canary("SkipSafeSnapshotCheck")
    \/ /\ \A a \in ActiveIn(s) : s.mode[a] = "ro" \/ s.snap[a] = s.visible
       /\ \A c \in CommittedIn(s) :
              (s.wr[c] # {} /\ s.cts[c] > s.visible) => s.snap[c] = s.visible

\* VersionedStore::get: the writer of the newest version of k at or below ts.
StoreGet(s, k, ts) ==
    LET vs == {v \in s.store : v[1] = k /\ v[2] <= ts}
        top == Max({v[2] : v \in vs})
    IN (CHOOSE v \in vs : v[2] = top)[3]

\* TxnRecord::out_edges_before: out-edge targets (live, or the folded collected one)
\* that committed before `before`.
OutBefore(s, x, before) ==
    {t \in s.outE[x] : s.cts[t] < before}
    \cup (IF s.gcMin[x] # None /\ s.cts[s.gcMin[x]] < before THEN {s.gcMin[x]} ELSE {})

\* ssi::dangerous(t1, t3): whether t1 ->rw t2 ->rw t3 (t3 committed first) can close
\* a cycle, given what is known of t1 now.
Dangerous(s, t1, t3) ==
    IF t1 = t3 THEN TRUE
    ELSE IF s.wr[t1] = {} THEN s.cts[t3] <= s.snap[t1]
    ELSE IF s.st[t1] # "committed" THEN TRUE
    ELSE s.cts[t3] < s.cts[t1]

\* Inner::newer_version: a retained commit after snapshot sn wrote k.
NewerVersion(s, k, sn) ==
    /\ ~Canary("SkipFirstCommitterWins")
    /\ \E c \in RetainedIn(s) : s.cts[c] > sn /\ k \in s.wr[c]

\* TxnRecord::read_any_of
ReadAnyOf(s, r, ks) ==
    \E k \in ks : k \in s.rd[r] \/ (~Canary("SkipRangeTracking") /\ s.ranged[r] /\ k \in Range)

(***************************************************************************)
(* Garbage collection, applied at the end of every step.                    *)
(***************************************************************************)

\* implemented by engine::mvcc::ssi::Ssi::gc (TxnCore::mutate runs it after every
\* operation, under the same lock): collect committed records no transaction is or
\* will be concurrent with, folding out-edges to them into out_gc_min (the
\* earliest-committed collected target).
SsiGc(s) ==
    LET gone == {t \in RetainedIn(s) : s.cts[t] <= Horizon(s)}
        live(x) == s.st[x] = "active" \/ (s.ret[x] /\ x \notin gone)
        fold(x) == LET cands == (s.outE[x] \cap gone)
                                \cup (IF s.gcMin[x] = None THEN {} ELSE {s.gcMin[x]})
                   IN IF cands = {} THEN None
                      ELSE CHOOSE c \in cands : \A d \in cands : s.cts[c] <= s.cts[d]
    IN IF gone = {} THEN s
       ELSE [s EXCEPT !.ret = [t \in Txns |-> s.ret[t] /\ t \notin gone],
                      !.outE = [x \in Txns |-> IF live(x) THEN s.outE[x] \ gone
                                               ELSE IF x \in gone THEN {} ELSE s.outE[x]],
                      !.gcMin = [x \in Txns |-> IF live(x) THEN fold(x)
                                                ELSE IF x \in gone THEN None ELSE s.gcMin[x]],
                      !.rd = [x \in Txns |-> IF x \in gone THEN {} ELSE s.rd[x]],
                      !.ranged = [x \in Txns |-> IF x \in gone THEN FALSE ELSE s.ranged[x]],
                      !.snap = [x \in Txns |-> IF x \in gone THEN 0 ELSE s.snap[x]]]

\* implemented by engine::mvcc::TxnManager::gc (TxnCore::gc_horizon, then
\* MemStore::gc) and, in the Db, by compaction below the same horizon: drop every
\* version that, for all reads at or above the horizon, is shadowed by a newer one
\* at or below it. The engine runs it now and then; here it runs after every step,
\* which is the most aggressive schedule (a lazier one only keeps more versions, and
\* a read returns the newest version at or below its snapshot, so it reads the same).
StoreGc(s) ==
    LET h == StoreHorizon(s)
        base(k) == Max({v[2] : v \in {u \in s.store : u[1] = k /\ u[2] <= h}})
    IN [s EXCEPT !.store = {v \in s.store : v[2] >= base(v[1])}]

Gc(s) == StoreGc(SsiGc(s))

-----------------------------------------------------------------------------
Init ==
    /\ e = [st |-> [t \in Txns |-> "idle"],
            mode |-> [t \in Txns |-> "rw"],
            snap |-> [t \in Txns |-> 0],
            cts |-> [t \in Txns |-> 0],
            rd |-> [t \in Txns |-> {}],
            ranged |-> [t \in Txns |-> FALSE],
            wr |-> [t \in Txns |-> {}],
            outE |-> [t \in Txns |-> {}],
            gcMin |-> [t \in Txns |-> None],
            ret |-> [t \in Txns |-> FALSE],
            visible |-> 0,
            allocated |-> 0,
            published |-> [t \in Txns |-> FALSE],
            store |-> {<<k, 0, T0>> : k \in Keys},
            ops |-> [t \in Txns |-> 0],
            scanned |-> [t \in Txns |-> FALSE],
            obs |-> [t \in Txns |-> {}],
            bAcked |-> [t \in Txns |-> {}],
            bCommitted |-> [t \in Txns |-> {}],
            acked |-> {}]

\* implemented by engine::mvcc::TxnCore::begin (TxnManager::begin_id, Db::begin):
\* the snapshot is the visibility watermark.
Begin(t) ==
    /\ e.st[t] = "idle"
    /\ e' = Gc([e EXCEPT !.st[t] = "active", !.snap[t] = e.visible,
                         !.bAcked[t] = e.acked, !.bCommitted[t] = CommittedIn(e)])

\* The reader-side check shared by Read and ScanRange, engine::mvcc::ssi::Ssi::on_read
\* (via Inner::after_read): `ks` is what was read. The writers that committed after
\* the reader's snapshot and wrote into ks are linked reader ->rw w; if one of them
\* already has an out-edge to a t3 that committed before it and the structure is
\* dangerous, the reader is doomed instead (Inner::doom, Ssi::remove_active).
ReaderWriters(s, r, ks) ==
    IF Canary("SkipReaderSideCheck") THEN {}
    ELSE {w \in RetainedIn(s) : s.cts[w] > s.snap[r] /\ s.wr[w] \cap ks # {}}
AfterRead(s, r, ks) ==
    IF \E w \in ReaderWriters(s, r, ks) :
           \E t3 \in OutBefore(s, w, s.cts[w]) : Dangerous(s, r, t3)
    THEN Drop(s, r)
    ELSE [s EXCEPT !.outE[r] = @ \cup ReaderWriters(s, r, ks)]

\* implemented by engine::mvcc::TxnCore::read_start (the snapshot) + the store read
\* (VersionedStore::get, or the LSM read in Db, outside the lock) +
\* TxnCore::record_read (Ssi::on_read). A read of the transaction's own write
\* (ReadStart::Own) touches neither the store nor the SSI graph and is not
\* modelled. The store read is a function of the snapshot alone (versions at or
\* below an active snapshot never change, and GC keeps the newest of them), so
\* reading at record time is the same as reading between read_start and
\* record_read, whatever commits in between.
Read(t, k) ==
    /\ e.st[t] = "active"
    /\ e.mode[t] # "safe"
    /\ e.ops[t] < MaxOps
    /\ k \notin e.rd[t] /\ k \notin e.wr[t]
    /\ e' = Gc(AfterRead([e EXCEPT !.rd[t] = @ \cup {k}, !.ops[t] = @ + 1,
                                    !.obs[t] = @ \cup {<<k, StoreGet(e, k, e.snap[t])>>}],
                          t, {k}))

\* implemented by engine::mvcc::TxnCore::scan_start + the store scan
\* (VersionedStore::scan) + TxnCore::record_scan: the whole range is recorded
\* (phantoms) and checked reader-side, unless SkipRangeTracking. The rows are the
\* snapshot's overlaid with the transaction's own writes, which are not
\* observations of anyone else's version.
ScanRange(t) ==
    LET s1 == [e EXCEPT !.scanned[t] = TRUE, !.ops[t] = @ + 1,
                        !.obs[t] = @ \cup {<<k, StoreGet(e, k, e.snap[t])>> : k \in Range \ e.wr[t]}]
    IN
    /\ Range # {}          \* an empty range: scan_start returns None, nothing happens
    /\ e.st[t] = "active"
    /\ e.mode[t] # "safe"
    /\ e.ops[t] < MaxOps
    /\ ~e.scanned[t]
    /\ e' = Gc(IF Canary("SkipRangeTracking") THEN s1
               ELSE AfterRead([s1 EXCEPT !.ranged[t] = TRUE], t, Range))

\* implemented by engine::mvcc::TxnCore::put / TxnCore::delete (Inner::write):
\* first-updater-wins dooms the writer if a concurrent commit already wrote k.
Write(t, k) ==
    /\ e.st[t] = "active"
    /\ e.mode[t] = "rw"      \* Inner::write refuses a read-only one (Error::ReadOnly)
    /\ e.ops[t] < MaxOps
    /\ k \notin e.wr[t]
    /\ e' = Gc(IF NewerVersion(e, k, e.snap[t])
               THEN Drop(e, t)
               ELSE [e EXCEPT !.wr[t] = @ \cup {k}, !.ops[t] = @ + 1])

\* engine::mvcc::ssi::Ssi::validate_commit, part by part.
\* (1) w as t1: it read while read-only, then wrote (the deferred read-only check).
DeferredConflict(s, w) ==
    /\ ~Canary("SkipDeferredReadOnlyCheck")
    /\ \E t2 \in s.outE[w] : \E t3 \in OutBefore(s, t2, s.cts[t2]) : Dangerous(s, w, t3)
\* (2) writer side: concurrent readers (active, or committed after w's snapshot) that
\* read what w writes gain r ->rw w.
CommitReaders(s, w) ==
    IF Canary("SkipWriterSideCheck") THEN {}
    ELSE {r \in (ActiveIn(s) \ {w}) \cup {c \in RetainedIn(s) : s.cts[c] > s.snap[w]} :
              ReadAnyOf(s, r, s.wr[w])}
\* (3) w as pivot: r ->rw w ->rw t3, with t3 committed before w's ts.
PivotConflict(s, w, ts) ==
    \E r \in CommitReaders(s, w) : \E t3 \in OutBefore(s, w, ts) : Dangerous(s, r, t3)

\* Inner::prepare, step 1 (validation). A read-only transaction always passes.
CommitFails(s, w, ts) ==
    \/ \E k \in s.wr[w] : NewerVersion(s, k, s.snap[w])
    \/ /\ s.wr[w] # {}
       /\ DeferredConflict(s, w) \/ PivotConflict(s, w, ts)

\* implemented by engine::mvcc::TxnCore::prepare_commit (Inner::prepare,
\* Ssi::validate_commit, Ssi::commit) with the caller's `apply` (MemStore::apply, or
\* LsmStore::apply: WAL submit + memtable insert), when validation passes. The commit
\* gets ts = allocated + 1 and is applied to the store, but new snapshots see it only
\* after Publish. Concurrent transactions that buffered one of its keys are doomed.
\* A read-only commit is acknowledged at once (Db's Txn::commit returns Committed
\* without waiting for the WAL); a commit with writes when published.
Commit(t) ==
    LET ts == e.allocated + 1
        readers == CommitReaders(e, t)
        losers == IF Canary("SkipFirstCommitterWins") THEN {}
                  ELSE {a \in ActiveIn(e) \ {t} : e.wr[a] \cap e.wr[t] # {}}
    IN
    /\ e.st[t] = "active"
    /\ e.mode[t] # "safe"
    /\ ~CommitFails(e, t, ts)
    /\ e' = Gc(DropAll(
            [e EXCEPT
                 !.st[t] = "committed",
                 !.cts[t] = ts,
                 !.ret[t] = TRUE,
                 !.allocated = ts,
                 !.outE = [r \in Txns |-> IF r \in readers THEN @[r] \cup {t} ELSE @[r]],
                 !.store = @ \cup {<<k, ts, t>> : k \in e.wr[t]},
                 !.acked = IF e.wr[t] = {} THEN @ \cup {t} ELSE @,
                 !.ops[t] = 0, !.scanned[t] = FALSE, !.bAcked[t] = {}, !.bCommitted[t] = {}],
            losers))

\* implemented by engine::mvcc::TxnCore::rollback (Ssi::remove_active), and by
\* TxnCore::prepare_commit when validation fails (Prepared::Aborted): in both the
\* transaction leaves the graph and the store untouched. (A failed validation is
\* this action taken while CommitFails holds; Commit is then disabled.)
Abort(t) ==
    /\ e.st[t] = "active"
    /\ e' = Gc(Drop(e, t))

\* implemented by engine::mvcc::TxnCore::publish: visible = max(visible, ts); then
\* the committer is acknowledged. Db publishes from the WAL record's hook, in log
\* order, once the fsync returned; TxnManager::commit publishes right after
\* prepare_commit, so concurrent committers may publish out of order. Any order
\* covers both. (TxnManager also publishes read-only commits; that only moves the
\* watermark over commits already applied, as a later writer's publish does.)
Publish(t) ==
    /\ e.st[t] = "committed"
    /\ e.wr[t] # {}
    /\ ~e.published[t]
    /\ e' = Gc([e EXCEPT !.published[t] = TRUE,
                         !.visible = IF e.cts[t] > @ THEN e.cts[t] ELSE @,
                         !.acked = @ \cup {t}])

(***************************************************************************)
(* Reads that register nothing (engine/src/mvcc/readonly.rs).               *)
(***************************************************************************)

\* implemented by engine::mvcc::TxnCore::begin_read_only (Db::begin_read_only,
\* and Db::scan, whose lock-free TxnCore::safe_read_point is the same decision:
\* "the watermark is safe" never becomes false once true): at a safe snapshot an
\* untracked reader with a pin, else a tracked transaction that cannot write.
BeginReadOnly(t) ==
    /\ ReadOnlyModes
    /\ e.st[t] = "idle"
    /\ e' = Gc([e EXCEPT !.st[t] = "active", !.snap[t] = e.visible,
                         !.mode[t] = IF SafeSnapshot(e) THEN "safe" ELSE "ro",
                         !.bAcked[t] = e.acked, !.bCommitted[t] = CommittedIn(e)])

\* A safe reader's get (TxnManager::get_untracked, ReadTxn::get): the store at its
\* pinned snapshot, nothing recorded.
ReadSafe(t, k) ==
    /\ e.st[t] = "active"
    /\ e.mode[t] = "safe"
    /\ e.ops[t] < MaxOps
    /\ ~\E o \in e.obs[t] : o[1] = k
    /\ e' = Gc([e EXCEPT !.ops[t] = @ + 1,
                         !.obs[t] = @ \cup {<<k, StoreGet(e, k, e.snap[t])>>}])

\* A safe reader's scan (TxnManager::scan_untracked, ReadTxn::scan, Db::scan).
ScanSafe(t) ==
    /\ Range # {}
    /\ e.st[t] = "active"
    /\ e.mode[t] = "safe"
    /\ e.ops[t] < MaxOps
    /\ ~e.scanned[t]
    /\ e' = Gc([e EXCEPT !.scanned[t] = TRUE, !.ops[t] = @ + 1,
                         !.obs[t] = @ \cup {<<k, StoreGet(e, k, e.snap[t])>> : k \in Range}])

\* A safe reader ends (TxnCore::unpin): it takes no commit ts and joins no graph.
\* (Abort, its rollback, is the same step without the commit.)
CommitSafe(t) ==
    /\ e.st[t] = "active"
    /\ e.mode[t] = "safe"
    /\ e' = Gc([e EXCEPT !.st[t] = "committed", !.ops[t] = 0, !.scanned[t] = FALSE,
                         !.bAcked[t] = {}, !.bCommitted[t] = {}])

\* implemented by engine::Db::get (TxnCore::read_point, then a store view whose GC
\* floor is at or below it, else a pin: the read sees exactly the store at the
\* watermark) and TxnManager::get_latest: one key, no transaction at all.
PointRead(t, k) ==
    /\ ReadOnlyModes
    /\ e.st[t] = "idle"
    /\ e' = Gc([e EXCEPT !.st[t] = "committed", !.mode[t] = "point",
                         !.obs[t] = {<<k, StoreGet(e, k, e.visible)>>}])

Next ==
    \/ \E t \in Txns : Begin(t) \/ ScanRange(t) \/ Commit(t) \/ Abort(t) \/ Publish(t)
    \/ \E t \in Txns, k \in Keys : Read(t, k) \/ Write(t, k)
    \/ \E t \in Txns : BeginReadOnly(t) \/ ScanSafe(t) \/ CommitSafe(t)
    \/ \E t \in Txns, k \in Keys : ReadSafe(t, k) \/ PointRead(t, k)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
(***************************************************************************)
(* Invariants, over the ghost history and the version order only.          *)
(***************************************************************************)

Committed == CommittedIn(e)
Writers == {w \in Committed : e.wr[w] # {}}

\* The commit position of the version a read returned (T0: the initial one).
VerTs(w) == IF w = T0 THEN 0 ELSE e.cts[w]

\* The multiversion serialization graph (Adya 1999; Bernstein, Hadzilacos & Goodman)
\* of the committed transactions. The version order of a key is the commit order of
\* its writers. A scan is a read of every key of its range (of the version it
\* returned, or of the absent initial one), so a phantom is an rw edge like any other.
WW == {<<i, j>> \in Committed \X Committed :
          i # j /\ e.wr[i] \cap e.wr[j] # {} /\ e.cts[i] < e.cts[j]}
WR == {<<i, j>> \in Committed \X Committed :
          i # j /\ \E k \in Keys : <<k, i>> \in e.obs[j]}
RW == {<<i, j>> \in Committed \X Committed :
          i # j /\ \E o \in e.obs[i] : o[1] \in e.wr[j] /\ VerTs(o[2]) < e.cts[j]}
MVSG == WW \cup WR \cup RW

RECURSIVE Reach(_, _, _)
\* Nodes reachable in one or more steps of E from the set `from`, plus `seen`.
Reach(E, from, seen) ==
    LET next == {d[2] : d \in {f \in E : f[1] \in from}} \ seen
    IN IF next = {} THEN seen ELSE Reach(E, next, seen \cup next)

\* (a) Every committed history is serializable: its MVSG is acyclic.
Serializable == \A t \in Committed : t \notin Reach(MVSG, {t}, {})

\* The last writer of k among the commits in S (T0 if none).
LastWriter(k, S) ==
    LET ws == {w \in S : k \in e.wr[w]}
    IN IF ws = {} THEN T0 ELSE CHOOSE w \in ws : \A v \in ws : e.cts[v] <= e.cts[w]

\* (b) Snapshot reads: everything a transaction read from the store comes from one
\* snapshot S, a prefix of the commit order of versions that contains every commit
\* acknowledged before the transaction began and none made after it began; each
\* read returned the last version of its key in S.
\* Checked while t is active: it reads only then, and once a read satisfies it, later
\* commits cannot falsify it (they are not in bCommitted[t]).
SnapshotReads ==
    \A t \in ActiveIn(e) \cup PinnedIn(e) :
        \E x \in 0..e.allocated :
            LET S == {w \in Writers : e.cts[w] <= x}
            IN /\ e.bAcked[t] \cap Writers \subseteq S
               /\ S \subseteq e.bCommitted[t]
               /\ \A o \in e.obs[t] : o[2] = LastWriter(o[1], S)

TypeOK ==
    /\ e.st \in [Txns -> {"idle", "active", "committed", "aborted"}]
    /\ e.mode \in [Txns -> {"rw", "ro", "safe", "point"}]
    /\ e.visible <= e.allocated
    /\ \A t \in Txns : e.ret[t] => e.st[t] = "committed"
    /\ e.acked \subseteq Committed

Symmetry == Permutations(Txns)
=============================================================================
