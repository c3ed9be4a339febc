//! A redb storage backend that never writes to its file.
//!
//! redb 2 has no read-only mode: opening a database always rewrites its header
//! (and repairs it after a crash). To look at a database that might belong to
//! a newer agent without touching it, [`ReadOnlyOverlay`] reads the real file
//! (holding redb's usual exclusive lock on it) and keeps every write, resize
//! and sync in memory, where it is discarded when the database is dropped.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::sync::{Mutex, MutexGuard};

use redb::backends::FileBackend;
use redb::{DatabaseError, StorageBackend};

/// Overlay granularity.
const BLOCK: u64 = 4096;

/// Reads from a locked file, writes to memory only.
#[derive(Debug)]
pub(crate) struct ReadOnlyOverlay {
    file: FileBackend,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The logical length seen by redb.
    len: u64,
    /// How much of the file still shows through (shrinks on truncation).
    base_valid: u64,
    /// Written blocks: block index -> `BLOCK` bytes.
    blocks: BTreeMap<u64, Vec<u8>>,
}

impl ReadOnlyOverlay {
    /// Lock `file` like redb does (an error if another handle holds it) and
    /// present it read-only.
    pub(crate) fn new(file: File) -> Result<Self, DatabaseError> {
        let file = FileBackend::new(file)?;
        let len = file.len()?;
        Ok(ReadOnlyOverlay {
            file,
            state: Mutex::new(State {
                len,
                base_valid: len,
                blocks: BTreeMap::new(),
            }),
        })
    }

    fn state(&self) -> io::Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| io::Error::other("overlay state poisoned"))
    }

    /// The bytes `[offset, offset + len)` as the file shows them (zeros past
    /// `base_valid`), ignoring overlay blocks.
    fn read_base(&self, state: &State, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        let end = offset + len as u64;
        let base_end = end.min(state.base_valid);
        if offset < base_end {
            let n = usize::try_from(base_end - offset).map_err(io::Error::other)?;
            buf[..n].copy_from_slice(&self.file.read(offset, n)?);
        }
        Ok(buf)
    }
}

/// The overlap of block `index` with `[offset, end)`: (offset in the block,
/// offset in the range, length).
fn overlap(index: u64, offset: u64, end: u64) -> (usize, usize, usize) {
    let block_start = index * BLOCK;
    let start = block_start.max(offset);
    let stop = (block_start + BLOCK).min(end);
    // All three fit in usize: they are bounded by BLOCK or by a buffer length.
    (
        (start - block_start) as usize,
        (start - offset) as usize,
        (stop - start) as usize,
    )
}

impl StorageBackend for ReadOnlyOverlay {
    fn len(&self) -> io::Result<u64> {
        Ok(self.state()?.len)
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let state = self.state()?;
        let end = offset + len as u64;
        if end > state.len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut buf = self.read_base(&state, offset, len)?;
        if len == 0 {
            return Ok(buf);
        }
        for (&index, block) in state.blocks.range(offset / BLOCK..=(end - 1) / BLOCK) {
            let (in_block, in_buf, n) = overlap(index, offset, end);
            buf[in_buf..in_buf + n].copy_from_slice(&block[in_block..in_block + n]);
        }
        Ok(buf)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.state()?;
        if len < state.len {
            state.base_valid = state.base_valid.min(len);
            let first_gone = len.div_ceil(BLOCK);
            state.blocks.split_off(&first_gone);
            if len % BLOCK != 0 {
                if let Some(block) = state.blocks.get_mut(&(len / BLOCK)) {
                    block[(len % BLOCK) as usize..].fill(0);
                }
            }
        }
        state.len = len;
        Ok(())
    }

    fn sync_data(&self, _eventual: bool) -> io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.state()?;
        if data.is_empty() {
            return Ok(());
        }
        let end = offset + data.len() as u64;
        for index in offset / BLOCK..=(end - 1) / BLOCK {
            if !state.blocks.contains_key(&index) {
                let base = self.read_base(&state, index * BLOCK, BLOCK as usize)?;
                state.blocks.insert(index, base);
            }
            let (in_block, in_data, n) = overlap(index, offset, end);
            if let Some(block) = state.blocks.get_mut(&index) {
                block[in_block..in_block + n].copy_from_slice(&data[in_data..in_data + n]);
            }
        }
        state.len = state.len.max(end);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Write(u64, Vec<u8>),
        SetLen(u64),
        Read(u64, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (
                0u64..20_000,
                proptest::collection::vec(any::<u8>(), 0..6000)
            )
                .prop_map(|(o, d)| Op::Write(o, d)),
            (0u64..24_000).prop_map(Op::SetLen),
            (0u64..24_000, 0usize..9000).prop_map(|(o, l)| Op::Read(o, l)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// The overlay behaves like a byte vector, and the file never changes.
        #[test]
        fn behaves_like_a_vec_and_never_writes(
            base in proptest::collection::vec(any::<u8>(), 0..12_000),
            ops in proptest::collection::vec(op(), 1..30),
        ) {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("f");
            std::fs::write(&path, &base)?;
            let overlay = ReadOnlyOverlay::new(File::open(&path)?)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut model = base.clone();
            for op in ops {
                match op {
                    Op::Write(offset, data) => {
                        let end = offset as usize + data.len();
                        if !data.is_empty() && model.len() < end {
                            model.resize(end, 0);
                        }
                        model[offset as usize..offset as usize + data.len()]
                            .copy_from_slice(&data);
                        overlay.write(offset, &data)?;
                    }
                    Op::SetLen(len) => {
                        model.resize(len as usize, 0);
                        overlay.set_len(len)?;
                    }
                    Op::Read(offset, len) => {
                        let end = offset as usize + len;
                        match overlay.read(offset, len) {
                            Ok(got) => prop_assert_eq!(&got[..], &model[offset as usize..end]),
                            Err(_) => prop_assert!(end > model.len()),
                        }
                    }
                }
                prop_assert_eq!(overlay.len()?, model.len() as u64);
            }
            let whole = overlay.read(0, model.len())?;
            prop_assert_eq!(whole, model);
            overlay.sync_data(false)?;
            prop_assert_eq!(std::fs::read(&path)?, base);
        }
    }
}
