//! [`TableStream`]: a table's entries in internal order, read a bounded stretch of data
//! blocks at a time, around the block cache (compaction's read path).
//!
//! Memory: one read buffer of at most [`READ_AHEAD_BYTES`] (or one block, if a block is
//! larger) plus the decoded block being walked — whatever the table's size. Every block
//! is verified as any block read from disk ([`Table::check_block`]: checksum, decode,
//! against its index row and the previous row), and at the end the entries counted
//! against the footer's, so a stream yields exactly what the file holds or an error.
//! Blocks read here are not cached: compaction reads each block once and must not
//! evict the blocks readers use.

use std::ops::Deref;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;

use super::{corrupt, read_exact, Table};
use crate::lsm::block::Block;
use crate::lsm::codec::Entry;
use crate::lsm::error::Result;

/// How many bytes of consecutive data blocks one read fetches (at least one block):
/// a 4 KiB block per `pread` would cost a syscall per block.
pub const READ_AHEAD_BYTES: u64 = 64 << 10;

/// A table's entries in internal order (see the module doc), from an owned
/// (`Arc<Table>`) or borrowed (`&Table`) table.
#[derive(Debug)]
pub struct TableStream<T: Deref<Target = Table> = Arc<Table>> {
    table: T,
    /// Bytes of blocks `[decoded, fetched)`, the first at file offset `buf_at`.
    buf: Vec<u8>,
    buf_at: u64,
    /// Next block to decode from `buf`.
    decoded: usize,
    /// Next block to read from the file.
    fetched: usize,
    /// The block being walked and its next row.
    block: Option<(Block, usize)>,
    /// Entries yielded so far.
    yielded: u64,
}

impl<T: Deref<Target = Table>> TableStream<T> {
    /// A stream positioned before the table's first entry (no I/O yet).
    pub fn new(table: T) -> TableStream<T> {
        TableStream {
            table,
            buf: Vec::new(),
            buf_at: 0,
            decoded: 0,
            fetched: 0,
            block: None,
            yielded: 0,
        }
    }

    /// The next entry, or `None` after the last (once its count matched the footer's).
    pub async fn next(&mut self) -> Result<Option<Entry>> {
        loop {
            if let Some((block, row)) = &mut self.block {
                if *row < block.len() {
                    let e = block.get(*row).to_entry();
                    *row += 1;
                    self.yielded += 1;
                    return Ok(Some(e));
                }
                self.block = None;
            }
            let t = &*self.table;
            let blocks = t.index_blocks();
            if self.decoded == blocks.len() {
                if self.yielded != t.meta().entries {
                    return Err(corrupt(
                        &t.path,
                        format!("{} entries, footer says {}", self.yielded, t.meta().entries),
                    ));
                }
                return Ok(None);
            }
            if self.decoded == self.fetched {
                self.fetch().await?;
            }
            let i = self.decoded;
            let h = &self.table.index_blocks()[i];
            let start = usize::try_from(h.offset - self.buf_at).expect("a buffered block");
            let bytes = &self.buf[start..start + h.len as usize];
            let block = self.table.check_block(i, bytes)?;
            self.decoded += 1;
            self.block = Some((block, 0));
        }
    }

    /// Reads the next stretch of consecutive blocks (at least one) into `buf`.
    async fn fetch(&mut self) -> Result<()> {
        let blocks = self.table.index_blocks();
        let first = &blocks[self.fetched];
        let mut end = self.fetched + 1;
        while let Some(h) = blocks.get(end) {
            if h.offset + u64::from(h.len) - first.offset > READ_AHEAD_BYTES {
                break;
            }
            end += 1;
        }
        let last = &blocks[end - 1];
        // Blocks tile the data region (`Index::decode` checked it): one read covers them.
        let len = usize::try_from(last.offset + u64::from(last.len) - first.offset)
            .expect("a read-ahead fits in memory");
        self.buf.clear();
        self.buf.resize(len, 0);
        read_exact(
            &self.table.file,
            &self.table.path,
            &mut self.buf,
            first.offset,
        )
        .await?;
        self.table
            .blocks_read
            .fetch_add((end - self.fetched) as u64, AtomicOrdering::Relaxed);
        self.buf_at = first.offset;
        self.fetched = end;
        Ok(())
    }
}
