-------------------------------- MODULE WAL --------------------------------
(***************************************************************************)
(* The engine's write-ahead log (engine/src/lsm/wal.rs) and its recovery    *)
(* (engine/src/lsm/recovery.rs, step 4) under the sim-fs crash model        *)
(* (sim-fs/src/sim/crash.rs, data.rs; docs/fault-model.md).                 *)
(*                                                                          *)
(* One segment file. A file image is a sequence of slots; a slot holds one  *)
(* record (its id: records are numbered in submission order) or 0: bytes    *)
(* that do not form a valid record (a torn record, garbage, the zeros of a  *)
(* hole). CRC32C framing is abstracted to "a slot is valid or not"; a       *)
(* random tail forming a valid record by chance is ignored.                 *)
(*                                                                          *)
(* The disk: `cache` is the page cache (what the process reads), `durable`  *)
(* the platter, `pending` the unsynced writes. A sync makes the pending     *)
(* writes durable, or fails (EIO) and drops them from `pending` while the   *)
(* cache keeps them (fsyncgate). A power loss lands each pending write      *)
(* whole, torn (a prefix of its records, the rest absent or garbage) or not *)
(* at all, in any order (writes past the durable end zero-fill the gap),    *)
(* and the cache becomes the durable image. A process death (kill) keeps    *)
(* the page cache and the pending writes.                                   *)
(*                                                                          *)
(* Recovery's rewrite of the replayed records into a level-0 table and a    *)
(* fresh segment (recovery.rs step 6) is modelled in the same slot image:   *)
(* the records become durable in place and new records follow them, which  *)
(* is what the next recovery reads (table, then the new segment).           *)
(*                                                                          *)
(* The ghost history (acked, seen, written, last) records what clients were *)
(* told and what each recovery returned; the invariants compare the two and *)
(* never mention the protocol's batches or offsets.                         *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets, TLC

CONSTANTS
    MaxRecords,     \* records submitted in the whole run
    MaxRestarts,    \* power losses + process deaths
    FsyncEio,       \* BOOLEAN: sync_data may fail with EIO (and drop what it covered)
    Kills,          \* BOOLEAN: process death with the page cache surviving (Node::kill)
    RecoveryRewrites, \* BOOLEAN: recovery step 6 (recovery.rs): the replayed records are
                      \* rewritten into a fresh, synced table and the log restarts in a
                      \* new, empty segment. FALSE: the log goes on in the replayed
                      \* segment (the engine before that step; a negative control)
    Canaries        \* subset of CanaryNames: weakenings (negative controls)

\* SkipWalFsync and KeepTornWalTail are the engine's own canaries
\* (engine::canary::Canary); AckBeforeFsync acknowledges a batch when it is written
\* and fsyncs it afterwards.
CanaryNames == {"SkipWalFsync", "KeepTornWalTail", "AckBeforeFsync"}
ASSUME Canaries \subseteq CanaryNames
Canary(c) == c \in Canaries

VARIABLES
    \* the disk (sim-fs)
    cache, durable, pending,
    \* the process and the WAL's group commit (the leading committer)
    up,         \* a process is running (the WAL is open)
    poisoned,   \* Writer::poisoned
    queue,      \* records submitted, not yet taken by a leader (GroupState::queue)
    batch,      \* records the writer wrote with one append, awaiting their sync_data
    next,       \* the next record id to submit
    restarts,
    \* ghost history
    acked,      \* records whose submitter was answered Ok (durable, said the log)
    seen,       \* what clients could read, in log order: what the last recovery
                \* returned, then every record published since
    written,    \* what the database believed its log to be: the last recovery's
                \* records, then every record submitted since, in order
    last        \* what the last recovery returned, and the history just before it

vars == <<cache, durable, pending, up, poisoned, queue, batch, next, restarts,
          acked, seen, written, last>>

Range(s) == {s[i] : i \in DOMAIN s}
IsPrefix(p, s) == Len(p) <= Len(s) /\ SubSeq(s, 1, Len(p)) = p
Zeros(n) == [i \in 1..n |-> 0]

\* sim-fs's write_into: write `data` at slot offset `off` (0-based), zero-filling a gap.
WriteInto(img, off, data) ==
    LET n == IF off + Len(data) > Len(img) THEN off + Len(data) ELSE Len(img)
    IN [i \in 1..n |-> IF i > off /\ i <= off + Len(data) THEN data[i - off]
                       ELSE IF i <= Len(img) THEN img[i] ELSE 0]

\* A sync: the pending writes land in issue order.
RECURSIVE ApplyAll(_, _)
ApplyAll(img, ops) ==
    IF ops = <<>> THEN img
    ELSE ApplyAll(WriteInto(img, Head(ops).off, Head(ops).data), Tail(ops))

\* What of one unsynced write can reach the platter (crash.rs decide_data_ops):
\* a prefix of its records (none: lost; all: whole; else torn), and for a torn one
\* the rest either absent or garbage.
Landed(data) ==
    {SubSeq(data, 1, k) : k \in 0..Len(data)}
    \cup {SubSeq(data, 1, k) \o Zeros(Len(data) - k) : k \in 0..(Len(data) - 1)}

\* Every durable image a power loss can leave. The WAL's pending writes never
\* overlap, so the order in which the survivors land changes nothing but is allowed.
RECURSIVE PowerLoss(_, _)
PowerLoss(img, ops) ==
    IF ops = <<>> THEN {img}
    ELSE UNION {PowerLoss(WriteInto(img, Head(ops).off, d), Tail(ops)) : d \in Landed(Head(ops).data)}

\* decode_records: the valid records from the start, up to the first invalid slot.
RECURSIVE ValidPrefix(_)
ValidPrefix(img) ==
    IF img = <<>> \/ Head(img) = 0 THEN <<>> ELSE <<Head(img)>> \o ValidPrefix(Tail(img))

-----------------------------------------------------------------------------
Init ==
    \* Db::open on an empty directory: the segment exists, empty, its entry durable.
    /\ cache = <<>>
    /\ durable = <<>>
    /\ pending = <<>>
    /\ up = TRUE
    /\ poisoned = FALSE
    /\ queue = <<>>
    /\ batch = <<>>
    /\ next = 1
    /\ restarts = 0
    /\ acked = {}
    /\ seen = <<>>
    /\ written = <<>>
    /\ last = [ok |-> TRUE, recs |-> <<>>, acked |-> {}, seen |-> <<>>,
               written |-> <<>>]

\* implemented by engine::lsm::wal::Wal::submit (Wal::append; the Db calls it from
\* LsmStore::apply inside TxnCore::prepare_commit): the record joins the writer's
\* queue, in submission order. A poisoned database refuses commits before this.
Submit ==
    /\ up /\ ~poisoned
    /\ next <= MaxRecords
    /\ queue' = Append(queue, next)
    /\ written' = Append(written, next)
    /\ next' = next + 1
    /\ UNCHANGED <<cache, durable, pending, up, poisoned, batch, restarts, acked, seen, last>>

\* Acknowledging records: Done::finish runs the Db's hook (TxnCore::publish) and
\* answers the committer Ok.
Ack(recs) ==
    /\ acked' = acked \cup Range(recs)
    /\ seen' = seen \o recs

\* implemented by engine::lsm::wal::group::Leader::run + Writer::write_batch (first
\* half): the leader takes everything queued and writes it with ONE write at the end
\* of the synced records (group commit). Records submitted
\* while a batch is in flight wait for the next batch.
WriteBatch ==
    /\ up /\ ~poisoned
    /\ batch = <<>>
    /\ queue # <<>>
    /\ cache' = cache \o queue
    /\ pending' = Append(pending, [off |-> Len(cache), data |-> queue])
    /\ queue' = <<>>
    /\ IF Canary("SkipWalFsync")
       THEN /\ Ack(queue) /\ batch' = <<>>           \* flush answers Ok without a sync
       ELSE IF Canary("AckBeforeFsync")
       THEN /\ Ack(queue) /\ batch' = queue
       ELSE /\ batch' = queue /\ UNCHANGED <<acked, seen>>
    /\ UNCHANGED <<durable, up, poisoned, next, restarts, written, last>>

\* implemented by engine::lsm::wal::group::Writer::write_batch (second half): ONE sync_data covers
\* the whole batch; on Ok every record of it is acknowledged, in order.
Fsync ==
    /\ up
    /\ batch # <<>>
    /\ durable' = ApplyAll(durable, pending)
    /\ pending' = <<>>
    /\ batch' = <<>>
    /\ IF Canary("AckBeforeFsync") THEN UNCHANGED <<acked, seen>> ELSE Ack(batch)
    /\ UNCHANGED <<cache, up, poisoned, queue, next, restarts, written, last>>

\* implemented by engine::lsm::wal::group::Writer::write_batch when sync_data fails, then
\* Writer::poison: the batch gets the error (never acknowledged), the log and the
\* database fail-stop. sim-fs (data.rs Disk::sync) drops the pending writes from
\* the durable path; the page cache keeps them.
FsyncFail ==
    /\ FsyncEio
    /\ up
    /\ batch # <<>>
    /\ pending' = <<>>
    /\ poisoned' = TRUE
    /\ batch' = <<>>
    /\ UNCHANGED <<cache, durable, up, queue, next, restarts, acked, seen, written, last>>

\* Power loss: sim_runtime::node::Node::crash, which runs the sim-fs crash model
\* (sim-fs/src/sim/crash.rs Disk::power_loss, decide_data_ops): each unsynced write
\* lands whole, torn or not at all, in any order; then the page cache is the durable
\* image and the process is gone.
Crash ==
    /\ up
    /\ restarts < MaxRestarts
    /\ \E img \in PowerLoss(durable, pending) :
          /\ durable' = img
          /\ cache' = img
    /\ pending' = <<>>
    /\ up' = FALSE
    /\ queue' = <<>>
    /\ batch' = <<>>
    /\ restarts' = restarts + 1
    /\ UNCHANGED <<poisoned, next, acked, seen, written, last>>

\* Process death: sim_runtime::node::Node::kill (a Kill fault of the scenario plan,
\* and how scenarios/src/runner/embedded.rs restarts a fail-stopped node): the page
\* cache and its unsynced writes survive; only the process is gone.
Kill ==
    /\ Kills
    /\ up
    /\ restarts < MaxRestarts
    /\ up' = FALSE
    /\ queue' = <<>>
    /\ batch' = <<>>
    /\ restarts' = restarts + 1
    /\ UNCHANGED <<cache, durable, pending, poisoned, next, acked, seen, written, last>>

\* implemented by engine::lsm::recovery::open: step 4, Wal::recover_segment on the
\* newest segment (decode_records; valid_record_after: a bad record followed by a
\* valid one is WalError::Corrupt and the database does not open; else set_len +
\* sync_all cut the torn tail); then step 6: when records were replayed, they are
\* written to a fresh level-0 table (write_and_open_in, synced), the manifest
\* names it and a new, empty segment, and the old segments are deleted; then
\* Wal::open. The segment is read through the page cache (sim_fs::read), which
\* after a Kill or a failed fsync may hold records that are not on disk.
Recover ==
    LET img == cache
        recs == ValidPrefix(img)
        cut == Len(img) > Len(recs)
        corrupt == cut /\ \E i \in (Len(recs) + 1)..Len(img) : img[i] # 0
        ok == ~corrupt
        \* step 4's cut: the page cache is cut at once; set_len and every earlier
        \* pending write land with the sync_all
        cutDurable == SubSeq(ApplyAll(durable, pending), 1, Len(recs))
    IN
    /\ ~up
    /\ last.ok                 \* after a Corrupt refusal nothing more happens
    /\ last' = [ok |-> ok, recs |-> IF ok THEN recs ELSE <<>>,
                acked |-> acked, seen |-> seen, written |-> written]
    /\ IF ~ok
       THEN UNCHANGED <<cache, durable, pending, up, poisoned, seen, written>>
       ELSE /\ up' = TRUE
            /\ poisoned' = FALSE
            /\ seen' = recs
            /\ written' = recs
            /\ IF RecoveryRewrites /\ recs # <<>>
               THEN \* step 6: the records, durable in a fresh table; the old
                    \* segment, with whatever was pending on it, is gone
                    /\ cache' = recs /\ durable' = recs /\ pending' = <<>>
               ELSE IF cut /\ ~Canary("KeepTornWalTail")
               THEN /\ cache' = recs /\ durable' = cutDurable /\ pending' = <<>>
               ELSE UNCHANGED <<cache, durable, pending>>
    /\ UNCHANGED <<queue, batch, next, restarts, acked>>

Next == Submit \/ WriteBatch \/ Fsync \/ FsyncFail \/ Crash \/ Kill \/ Recover

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
(***************************************************************************)
(* Invariants: each recovery against the history clients saw before it.     *)
(***************************************************************************)

\* Recovery opens the database: a crash the model allows is never "corruption".
RecoveryOpens == last.ok

\* Every record acknowledged as durable, in any earlier life, is recovered.
Durability == \A r \in last.acked : r \in Range(last.recs)

\* Recovery returns a prefix of what the database believed its log was: never a
\* record that was not written, nothing after a hole, no record an earlier
\* recovery had dropped, in order.
NoInvention == IsPrefix(last.recs, last.written)

\* Stronger: what clients could read before the restart (recovered or published)
\* is recovered. Fails when a restart serves unsynced page-cache data that a later
\* power loss takes away.
StableReads == IsPrefix(last.seen, last.recs)

TypeOK ==
    /\ up \in BOOLEAN /\ poisoned \in BOOLEAN
    /\ Len(cache) <= MaxRecords * 2
    /\ acked \subseteq 1..MaxRecords
=============================================================================
