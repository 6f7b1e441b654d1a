//! The targets: one decoder each (see the crate doc), with the seed inputs that
//! `seedbank-fuzz seed-corpus` writes and, for checksummed formats, the fix that
//! recomputes the checksums.

use engine::framing::{decode_records, encode_record};
use engine::lsm::formats::{
    decode_commit, encode_commit, replay_manifest, Block, BlockBuilder, Bloom, Change, Edit, Entry,
    Index, Layout, TableMeta,
};
use engine::raft::{Body, Message};
use engine::replicated::command::{self, Command, CommitCmd, KeySpan};
use engine::replicated::{Request, Response, Wire};
use engine::Timestamp;
use sim_net::frame::{self, HEADER_LEN};
use sim_net::handshake::Hello;
use std::path::Path;

/// One fuzz target.
pub struct Target {
    /// Its name (`fuzz/corpus/NAME/`).
    pub name: &'static str,
    /// Feeds the bytes to the decoder; must never panic.
    pub run: fn(&[u8]),
    /// Recomputes the format's checksums in place, so the parser behind them is reached.
    pub fix: Option<fn(&mut [u8])>,
    /// Bytes a single allocation may take beyond `64 × len + 64 KiB` (fixed costs).
    pub slack: usize,
    /// Valid inputs to start from.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "frame",
        run: frame,
        fix: Some(fix_frame),
        slack: 0,
        seeds: frame_seeds,
    },
    Target {
        name: "handshake",
        run: handshake,
        fix: None,
        slack: 0,
        seeds: handshake_seeds,
    },
    Target {
        name: "wire",
        run: wire,
        fix: None,
        slack: 0,
        seeds: wire_seeds,
    },
    Target {
        name: "command",
        run: command,
        fix: None,
        slack: 0,
        seeds: command_seeds,
    },
    Target {
        name: "shell",
        run: shell,
        fix: None,
        slack: 4 << 20,
        seeds: shell_seeds,
    },
    Target {
        name: "wal",
        run: wal,
        fix: Some(fix_records),
        slack: 0,
        seeds: wal_seeds,
    },
    Target {
        name: "sst_block",
        run: sst_block,
        fix: Some(fix_trailing_crc),
        slack: 0,
        seeds: block_seeds,
    },
    Target {
        name: "manifest",
        run: manifest,
        fix: Some(fix_records),
        slack: 0,
        seeds: manifest_seeds,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

// Polls a future that never waits (decoders over in-memory bytes) to completion.
use sim_runtime::task::poll_once as poll_now;

// ---- sim-net: frames and handshakes ----

fn frame(data: &[u8]) {
    let max = 1 << 20;
    if let Ok(Some((payload, _))) = frame::decode(data, max) {
        let _ = frame::decode_value::<Hello>(payload);
        let _ = frame::decode_value::<Wire>(payload);
    }
    // The streaming reader, over the same bytes, frame after frame.
    let mut cursor = std::io::Cursor::new(data);
    for _ in 0..64 {
        match poll_now(frame::read_frame(&mut cursor, max)) {
            Some(Ok(Some(_))) => continue,
            _ => break,
        }
    }
}

fn fix_frame(data: &mut [u8]) {
    if data.len() < HEADER_LEN {
        return;
    }
    let len = (data.len() - HEADER_LEN) as u32;
    let crc = crc32c::crc32c(&data[HEADER_LEN..]);
    data[0..4].copy_from_slice(&len.to_le_bytes());
    data[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn frame_seeds() -> Vec<Vec<u8>> {
    let hello = Hello::new(
        &sim_net::Config::new(7, 1),
        Some(([127, 0, 0, 1], 7001).into()),
    );
    let mut seeds = vec![frame::encode_value(&hello, 4096).unwrap_or_default()];
    for w in wire_values() {
        seeds.push(frame::encode_value(&w, 1 << 20).unwrap_or_default());
    }
    seeds
}

fn handshake(data: &[u8]) {
    if let Ok(h) = frame::decode_value::<Hello>(data) {
        let _ = h.check(&sim_net::Config::new(7, 1).with_token("t"));
        let _ = format!("{h:?}");
    }
    let _ = sim_net::bounds::parse_refusal(data);
}

fn handshake_seeds() -> Vec<Vec<u8>> {
    let cfg = sim_net::Config::new(7, 2).with_token("t");
    let mut refusal = sim_net::bounds::REFUSAL_MAGIC.to_vec();
    refusal.extend_from_slice(b"too many connections");
    vec![
        postcard::to_allocvec(&Hello::new(&cfg, None)).unwrap_or_default(),
        postcard::to_allocvec(&Hello::new(&cfg, Some(([10, 0, 0, 2], 9).into())))
            .unwrap_or_default(),
        refusal,
    ]
}

// ---- engine: Raft and client messages, replicated commands ----

fn wire(data: &[u8]) {
    if let Ok(w) = postcard::from_bytes::<Wire>(data) {
        if let Wire::Raft(m) = &w {
            let _ = m.validate(1);
            let _ = m.to_string();
        }
        let _ = format!("{w:?}");
    }
}

fn wire_values() -> Vec<Wire> {
    let append = Body::Append {
        prev_index: 3,
        prev_term: 1,
        entries: vec![engine::raft::Entry {
            index: 4,
            term: 2,
            data: Some(b"cmd".to_vec()),
        }],
        commit: 3,
    };
    vec![
        Wire::Raft(Message {
            term: 2,
            body: append,
        }),
        Wire::Raft(Message {
            term: 3,
            body: Body::Vote {
                last_index: 4,
                last_term: 2,
            },
        }),
        Wire::Raft(Message {
            term: 3,
            body: Body::Heartbeat {
                commit: 4,
                read_seq: 9,
            },
        }),
        Wire::Request {
            id: 1,
            req: Request::Begin,
        },
        Wire::Response {
            id: 1,
            resp: Response::Done,
        },
    ]
}

fn wire_seeds() -> Vec<Vec<u8>> {
    wire_values()
        .iter()
        .map(|w| postcard::to_allocvec(w).unwrap_or_default())
        .collect()
}

fn command(data: &[u8]) {
    let _ = command::decode(data);
}

fn command_seeds() -> Vec<Vec<u8>> {
    let cmd = CommitCmd {
        client: 1 << 32,
        seq: 3,
        snapshot: 5,
        reads: vec![b"a".to_vec()],
        ranges: vec![KeySpan {
            start: b"a".to_vec(),
            end: Some(b"z".to_vec()),
        }],
        writes: vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"b".to_vec(), None)],
    };
    vec![command::encode(&Command::Commit(cmd))]
}

// ---- the shell's command lines ----

struct ShellState {
    rt: tokio::runtime::Runtime,
    session: scenarios::shell::Session,
}

thread_local! {
    static SHELL: std::cell::RefCell<Option<ShellState>> = const { std::cell::RefCell::new(None) };
}

fn shell(data: &[u8]) {
    SHELL.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = open_shell();
        }
        let Some(st) = s.as_mut() else {
            return;
        };
        // Piped input is read as raw bytes, one line per `\n`: the word splitter
        // (`syntax::split`) and `execute` each see every line, invalid UTF-8 included.
        for line in data.split(|&b| b == b'\n').take(16) {
            let _ = scenarios::shell::syntax::split(line);
            let _ = st.rt.block_on(st.session.execute(line));
        }
    });
}

fn open_shell() -> Option<ShellState> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let dir = std::env::temp_dir().join(format!("seedbank-fuzz-shell-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = rt
        .block_on(engine::Db::open(&dir, engine::Options::tiny()))
        .ok()?;
    Some(ShellState {
        rt,
        session: scenarios::shell::Session::new(db),
    })
}

fn shell_seeds() -> Vec<Vec<u8>> {
    vec![
        b"begin t1\nput a 1\nget a\nscan a z\ncommit\n".to_vec(),
        b"put k some value with spaces\ndelete k\nuse t9\nrollback\nhelp\n".to_vec(),
        b"begin x\nbegin y\nuse x\nget \xff\xfe\ncommit\n".to_vec(),
        b"put \"on call\" 'alice, bob'\nput blob \"\\xff\\x00\"\nscan \"\" \"\\xff\"\n".to_vec(),
    ]
}

// ---- engine storage: WAL records, SST blocks, the manifest ----

fn wal(data: &[u8]) {
    let (records, _end) = decode_records(data);
    for r in &records {
        let _ = decode_commit(r);
    }
    let _ = engine::framing::valid_record_after(data, 0);
}

/// Recomputes the CRC of every WAL-framed record (`len u32, crc u32, payload`) whose
/// length fits, walking the records as a reader would.
fn fix_records(data: &mut [u8]) {
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let len = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|&e| e <= data.len()) else {
            return;
        };
        let mut crc = crc32c::crc32c(&data[at..at + 4]);
        crc = crc32c::crc32c_append(crc, &data[at + 8..end]);
        data[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

fn wal_seeds() -> Vec<Vec<u8>> {
    let mut seg = Vec::new();
    for ts in 1..4u64 {
        let mut writes = engine::mvcc::WriteSet::new();
        writes.insert(format!("key{ts}").into_bytes(), Some(b"value".to_vec()));
        writes.insert(b"gone".to_vec(), None);
        seg.extend(encode_record(&encode_commit(Timestamp(ts), &writes)).unwrap_or_default());
    }
    vec![seg]
}

fn sst_block(data: &[u8]) {
    if let Ok(b) = Block::decode(data) {
        let _ = b.find(b"key", Timestamp(u64::MAX));
        let _ = b.entries().count();
    }
    let _ = Index::decode(data, data.len() as u64);
    let _ = Bloom::decode(data, Layout::Local);
    let _ = Bloom::decode(data, Layout::Spread);
}

/// Recomputes a trailing CRC32C over everything before it.
fn fix_trailing_crc(data: &mut [u8]) {
    if data.len() < 4 {
        return;
    }
    let n = data.len() - 4;
    let crc = crc32c::crc32c(&data[..n]);
    data[n..].copy_from_slice(&crc.to_le_bytes());
}

fn block_seeds() -> Vec<Vec<u8>> {
    let mut b = BlockBuilder::new();
    for (i, k) in ["apple", "apricot", "banana", "cherry"].iter().enumerate() {
        b.add(&Entry {
            key: k.as_bytes().to_vec(),
            ts: Timestamp(10 - i as u64),
            value: (i != 2).then(|| vec![i as u8; 3]),
        });
    }
    vec![b.finish()]
}

fn manifest(data: &[u8]) {
    let _ = replay_manifest(Path::new("MANIFEST-fuzz"), data, 7);
}

fn manifest_seeds() -> Vec<Vec<u8>> {
    let meta = TableMeta {
        number: 5,
        size: 4096,
        smallest: b"a".to_vec(),
        largest: b"m".to_vec(),
        min_ts: Timestamp(1),
        max_ts: Timestamp(9),
        entries: 12,
    };
    let edits = [
        Edit(vec![
            Change::NextFile(6),
            Change::LogNumber(4),
            Change::LastTs(Timestamp(9)),
        ]),
        Edit(vec![Change::AddTable { level: 0, meta }]),
        Edit(vec![Change::RemoveTable {
            level: 0,
            number: 5,
        }]),
    ];
    let mut image = Vec::new();
    for e in &edits {
        image.extend(encode_record(&e.encode()).unwrap_or_default());
    }
    vec![image]
}
