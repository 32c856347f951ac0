//! A SQLite VFS that loses power: test support for the store's crash-safety claim.
//!
//! `kill -9` only proves that a write the kernel accepted survives the process; the kernel's page
//! cache still holds everything. A power cut also takes the page cache: what was written but not
//! synced may be gone, in part or whole. This VFS wraps SQLite's own `unix` VFS and keeps every
//! write, truncation and (for the files SQLite syncs: the database, its WAL and its journal) in
//! memory until the file is synced; reads see them, as reads see the page cache. Only `xSync`
//! puts them on the real file. When the power goes ([`PowerLoss::arm`] picks the moment: the
//! n-th write, truncation or sync from then on), the writes not yet synced are dropped
//! ([`Loss::All`]) or each one dropped, kept or kept in part ([`Loss::Some`], what a disk with a
//! volatile cache may do), and from then on every call fails, as on a dead machine. After the
//! last connection has closed, [`PowerLoss::restore`] brings the power back; the files then hold
//! what a disk would hold after the cut.
//!
//! The model's limits, on purpose: deleting and creating files is durable at once (SQLite syncs
//! the directory where that matters; WAL mode deletes nothing a commit depends on), and the
//! shared-memory index (`-wal-index`, `*-shm`) is passed through: the test deletes it before
//! reopening, as a reboot would leave it stale.
//!
//! This crate holds the workspace's only unsafe code (a VFS is a table of C callbacks), and it is
//! never linked into the server.

#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use rusqlite::ffi;

/// What becomes of the writes not synced yet when the power goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// All of them are lost: the disk holds exactly what was synced.
    All,
    /// Each is lost, kept, or kept in part (a prefix in 512-byte sectors), independently of the
    /// others and of their order.
    Some,
}

/// A write or truncation the file has seen but the disk may not have.
enum Op {
    Write { offset: u64, data: Vec<u8> },
    Truncate(u64),
}

/// Everything the VFS knows, behind one lock (it is a test: simple beats fast).
struct State {
    /// Unsynced operations per file, in the order they were made.
    pending: BTreeMap<PathBuf, Vec<Op>>,
    /// Writes, truncations and syncs left before the power goes, and what it takes with it.
    armed: Option<(u64, Loss)>,
    /// The power is off: every call fails.
    down: bool,
    /// Files open through this VFS.
    open: usize,
    /// xorshift64 state, for [`Loss::Some`].
    rng: u64,
    /// Counters for the test's report.
    stats: Stats,
}

/// What the VFS has seen since it was installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Syncs that put pending operations on disk.
    pub syncs: u64,
    /// Power cuts.
    pub cuts: u64,
    /// Unsynced writes dropped whole by the cuts.
    pub writes_lost: u64,
    /// Unsynced writes kept in part by the cuts.
    pub writes_torn: u64,
    /// Unsynced writes kept whole by the cuts.
    pub writes_kept: u64,
}

static STATE: Mutex<State> = Mutex::new(State {
    pending: BTreeMap::new(),
    armed: None,
    down: false,
    open: 0,
    rng: 0x9E37_79B9_7F4A_7C15,
    stats: Stats { syncs: 0, cuts: 0, writes_lost: 0, writes_torn: 0, writes_kept: 0 },
});

/// The name under which the VFS is registered (as the default).
const VFS_NAME: &CStr = c"postfach-powerloss";

fn state() -> MutexGuard<'static, State> {
    // A panic while holding the lock leaves consistent data (every change is one push or one
    // drain), so a poisoned lock is still usable.
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The installed VFS. Every SQLite connection opened in this process after [`install`] goes
/// through it.
#[derive(Debug, Clone, Copy)]
pub struct PowerLoss(());

/// Registers the VFS as SQLite's default (once per process) and returns its handle.
///
/// # Panics
/// When SQLite has no `unix` VFS to wrap or refuses the registration: the test cannot run.
pub fn install() -> PowerLoss {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find only reads the registered list; the pointer it returns stays
        // valid for the life of the process (built-in VFSes are static).
        let unix = unsafe { ffi::sqlite3_vfs_find(c"unix".as_ptr()) };
        assert!(!unix.is_null(), "SQLite has no unix VFS");
        // SAFETY: `unix` is a valid, static sqlite3_vfs; copying the struct copies plain data.
        let mut vfs: ffi::sqlite3_vfs = unsafe { std::ptr::read(unix) };
        vfs.szOsFile += c_int::try_from(REAL_OFFSET).expect("small struct");
        vfs.pNext = std::ptr::null_mut();
        vfs.zName = VFS_NAME.as_ptr();
        vfs.pAppData = unix.cast();
        vfs.xOpen = Some(x_open);
        vfs.xDelete = Some(x_delete);
        vfs.xAccess = Some(x_access);
        // The other entries (path names, randomness, time, dlopen) ignore their VFS argument in
        // the unix VFS, so they are used as they are.
        let vfs = Box::leak(Box::new(vfs));
        // SAFETY: `vfs` is leaked, so it lives as long as SQLite may use it; make_default = 1.
        let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 1) };
        assert_eq!(rc, ffi::SQLITE_OK, "sqlite3_vfs_register failed");
    });
    PowerLoss(())
}

impl PowerLoss {
    /// The power goes at the `after`-th write, truncation or sync from now (1 = the next one),
    /// taking `loss` of the unsynced writes with it. `seed` drives [`Loss::Some`].
    pub fn arm(self, after: u64, loss: Loss, seed: u64) {
        let mut st = state();
        st.armed = Some((after.max(1), loss));
        st.rng = seed | 1;
    }

    /// Takes the power now, as an armed cut would.
    pub fn cut_now(self, loss: Loss) {
        power_off(&mut state(), loss);
    }

    /// Whether the power is off.
    pub fn is_down(self) -> bool {
        state().down
    }

    /// Files open through the VFS (all connections must be closed before [`PowerLoss::restore`]).
    pub fn open_files(self) -> usize {
        state().open
    }

    /// Brings the power back. Call it once every connection of before the cut has closed.
    ///
    /// # Panics
    /// When a file is still open: its connection would carry state from before the cut.
    pub fn restore(self) {
        let mut st = state();
        assert_eq!(st.open, 0, "files still open from before the power cut");
        st.down = false;
        st.armed = None;
    }

    /// What the VFS has seen so far.
    pub fn stats(self) -> Stats {
        state().stats
    }
}

/// The power goes: pending operations are resolved by `loss`, then every call fails.
fn power_off(st: &mut State, loss: Loss) {
    if st.down {
        return;
    }
    st.down = true;
    st.armed = None;
    st.stats.cuts += 1;
    let pending = std::mem::take(&mut st.pending);
    for (path, ops) in pending {
        for op in ops {
            let choice = match loss {
                Loss::All => 0,
                Loss::Some => next_random(st) % 3,
            };
            let kept = match (choice, op) {
                (0, Op::Write { .. }) => {
                    st.stats.writes_lost += 1;
                    None
                }
                (0, Op::Truncate(_)) => None,
                (1, op @ Op::Write { .. }) => {
                    st.stats.writes_kept += 1;
                    Some(op)
                }
                (_, Op::Write { offset, mut data }) => {
                    let sectors = data.len().div_ceil(512) as u64;
                    let keep = usize::try_from(next_random(st) % (sectors + 1)).unwrap_or(0) * 512;
                    data.truncate(keep);
                    st.stats.writes_torn += 1;
                    Some(Op::Write { offset, data })
                }
                (_, op @ Op::Truncate(_)) => Some(op),
            };
            if let Some(op) = kept {
                // The disk may hold whatever the cut left; an error here (the file was deleted)
                // leaves nothing, which is one of the outcomes too.
                let _ = apply(&path, &op);
            }
        }
    }
}

fn next_random(st: &mut State) -> u64 {
    let mut x = st.rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    st.rng = x;
    x
}

/// Puts one operation on the real file.
fn apply(path: &Path, op: &Op) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    match op {
        Op::Write { offset, data } => file.write_all_at(data, *offset),
        Op::Truncate(size) => file.set_len(*size),
    }
}

/// Counts one write, truncation or sync against an armed cut; true when the power goes now.
fn tick(st: &mut State) -> bool {
    match st.armed {
        Some((1, loss)) => {
            power_off(st, loss);
            true
        }
        Some((n, loss)) => {
            st.armed = Some((n - 1, loss));
            false
        }
        None => false,
    }
}

/// The size a file has once its pending operations are counted.
fn logical_size(real: u64, ops: &[Op]) -> u64 {
    ops.iter().fold(real, |size, op| match op {
        Op::Write { offset, data } => size.max(offset + data.len() as u64),
        Op::Truncate(n) => *n,
    })
}

// --- the file -------------------------------------------------------------------------------

/// What SQLite allocates per open file (`szOsFile` bytes): our header, then the unix VFS's own
/// file structure at [`REAL_OFFSET`].
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    /// The file's path when its writes are held until sync (database, WAL, journal); `None` for
    /// temporary files, which pass straight through.
    path: Option<PathBuf>,
    real: *mut ffi::sqlite3_file,
}

const REAL_OFFSET: usize = std::mem::size_of::<File>().next_multiple_of(16);

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 2: shared memory (WAL) but no memory-mapped reads, which would bypass the writes
    // held here.
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

/// The unix VFS behind ours.
///
/// # Safety
/// `vfs` must be the VFS registered by [`install`].
unsafe fn base_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: the caller passes our VFS, whose pAppData is the unix VFS.
    unsafe { (*vfs).pAppData.cast() }
}

/// Our header and the unix file behind it, with the unix file's methods.
///
/// # Safety
/// `file` must have been opened by [`x_open`] and not closed.
unsafe fn parts<'a>(
    file: *mut ffi::sqlite3_file,
) -> (&'a File, *mut ffi::sqlite3_file, &'a ffi::sqlite3_io_methods) {
    // SAFETY: x_open wrote a File at this address; the unix file's pMethods was set by its xOpen.
    unsafe {
        let f = &*file.cast::<File>();
        (f, f.real, &*(*f.real).pMethods)
    }
}

fn path_of(name: *const c_char) -> Option<PathBuf> {
    if name.is_null() {
        return None;
    }
    // SAFETY: SQLite passes a NUL-terminated path name.
    let bytes = unsafe { CStr::from_ptr(name) }.to_bytes();
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let mut st = state();
    // SAFETY: SQLite allocated szOsFile bytes at `file`; the unix file goes after our header.
    let real = unsafe { file.cast::<u8>().add(REAL_OFFSET).cast::<ffi::sqlite3_file>() };
    if st.down {
        // SAFETY: a failed open must leave pMethods NULL.
        unsafe { (*file).pMethods = std::ptr::null() };
        return ffi::SQLITE_CANTOPEN;
    }
    // SAFETY: the unix VFS opens its file in the space reserved for it.
    let rc = unsafe {
        let base = base_vfs(vfs);
        ((*base).xOpen.expect("unix xOpen"))(base, name, real, flags, out_flags)
    };
    if rc != ffi::SQLITE_OK {
        // SAFETY: as above.
        unsafe { (*file).pMethods = std::ptr::null() };
        return rc;
    }
    let held = ffi::SQLITE_OPEN_MAIN_DB | ffi::SQLITE_OPEN_WAL | ffi::SQLITE_OPEN_MAIN_JOURNAL;
    let path =
        if flags & held != 0 && flags & ffi::SQLITE_OPEN_DELETEONCLOSE == 0 { path_of(name) } else { None };
    // SAFETY: `file` has room for a File (szOsFile includes it) and is suitably aligned (SQLite
    // allocates with 8-byte alignment, File needs 8).
    unsafe {
        std::ptr::write(
            file.cast::<File>(),
            File { base: ffi::sqlite3_file { pMethods: &METHODS }, path, real },
        );
    }
    st.open += 1;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_delete(vfs: *mut ffi::sqlite3_vfs, name: *const c_char, sync_dir: c_int) -> c_int {
    let mut st = state();
    if st.down {
        return ffi::SQLITE_IOERR_DELETE;
    }
    if let Some(path) = path_of(name) {
        st.pending.remove(&path);
    }
    // SAFETY: forwarding SQLite's own arguments to the unix VFS.
    unsafe {
        let base = base_vfs(vfs);
        ((*base).xDelete.expect("unix xDelete"))(base, name, sync_dir)
    }
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    res: *mut c_int,
) -> c_int {
    let st = state();
    if st.down {
        return ffi::SQLITE_IOERR_ACCESS;
    }
    // SAFETY: forwarding SQLite's own arguments to the unix VFS.
    let rc = unsafe {
        let base = base_vfs(vfs);
        ((*base).xAccess.expect("unix xAccess"))(base, name, flags, res)
    };
    // The unix VFS calls an empty file absent; a file whose writes are all still held here is
    // empty on disk but not to its readers.
    if rc == ffi::SQLITE_OK
        && flags == ffi::SQLITE_ACCESS_EXISTS
        && let Some(path) = path_of(name)
        && let Some(ops) = st.pending.get(&path)
    {
        let real = std::fs::metadata(&path).map_or(0, |m| m.len());
        if logical_size(real, ops) > 0 {
            // SAFETY: `res` is SQLite's out-parameter.
            unsafe { *res = 1 };
        }
    }
    rc
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let mut st = state();
    // SAFETY: SQLite closes a file it opened through x_open, once.
    let rc = unsafe {
        let (_, real, methods) = parts(file);
        let rc = (methods.xClose.expect("unix xClose"))(real);
        std::ptr::drop_in_place(file.cast::<File>());
        rc
    };
    st.open -= 1;
    rc
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let st = state();
    if st.down {
        return ffi::SQLITE_IOERR_READ;
    }
    // SAFETY: an open file; the unix VFS reads into SQLite's buffer.
    let (f, real, methods) = unsafe { parts(file) };
    // SAFETY: forwarding SQLite's own arguments.
    let rc = unsafe { (methods.xRead.expect("unix xRead"))(real, buf, amount, offset) };
    let Some(ops) = f.path.as_ref().and_then(|p| st.pending.get(p)) else { return rc };
    if rc != ffi::SQLITE_OK && rc != ffi::SQLITE_IOERR_SHORT_READ {
        return rc;
    }
    let mut real_size: i64 = 0;
    // SAFETY: forwarding to the unix file.
    let rc_size = unsafe { (methods.xFileSize.expect("unix xFileSize"))(real, &mut real_size) };
    if rc_size != ffi::SQLITE_OK {
        return rc_size;
    }
    let (Ok(amount), Ok(offset)) = (usize::try_from(amount), u64::try_from(offset)) else {
        return ffi::SQLITE_IOERR_READ;
    };
    // SAFETY: SQLite's buffer holds `amount` bytes; a short read zero-filled its tail.
    let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), amount) };
    let end = offset + amount as u64;
    for op in ops {
        match op {
            Op::Write { offset: at, data } => {
                let (from, to) = ((*at).max(offset), (at + data.len() as u64).min(end));
                if from < to {
                    let dst = (from - offset) as usize..(to - offset) as usize;
                    let src = (from - at) as usize..(to - at) as usize;
                    out[dst].copy_from_slice(&data[src]);
                }
            }
            Op::Truncate(n) => {
                if *n < end {
                    out[n.saturating_sub(offset) as usize..].fill(0);
                }
            }
        }
    }
    let size = logical_size(u64::try_from(real_size).unwrap_or(0), ops);
    if size < end {
        out[size.saturating_sub(offset) as usize..].fill(0);
        return ffi::SQLITE_IOERR_SHORT_READ;
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let mut st = state();
    if st.down {
        return ffi::SQLITE_IOERR_WRITE;
    }
    // SAFETY: an open file.
    let (f, real, methods) = unsafe { parts(file) };
    let Some(path) = &f.path else {
        // SAFETY: forwarding SQLite's own arguments.
        return unsafe { (methods.xWrite.expect("unix xWrite"))(real, buf, amount, offset) };
    };
    if tick(&mut st) {
        return ffi::SQLITE_IOERR_WRITE;
    }
    let (Ok(amount), Ok(offset)) = (usize::try_from(amount), u64::try_from(offset)) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    // SAFETY: SQLite's buffer holds `amount` bytes.
    let data = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), amount) }.to_vec();
    st.pending.entry(path.clone()).or_default().push(Op::Write { offset, data });
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    let mut st = state();
    if st.down {
        return ffi::SQLITE_IOERR_TRUNCATE;
    }
    // SAFETY: an open file.
    let (f, real, methods) = unsafe { parts(file) };
    let Some(path) = &f.path else {
        // SAFETY: forwarding SQLite's own arguments.
        return unsafe { (methods.xTruncate.expect("unix xTruncate"))(real, size) };
    };
    if tick(&mut st) {
        return ffi::SQLITE_IOERR_TRUNCATE;
    }
    st.pending.entry(path.clone()).or_default().push(Op::Truncate(u64::try_from(size).unwrap_or(0)));
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    let mut st = state();
    if st.down {
        return ffi::SQLITE_IOERR_FSYNC;
    }
    // SAFETY: an open file.
    let (f, real, methods) = unsafe { parts(file) };
    let Some(path) = &f.path else {
        // SAFETY: forwarding SQLite's own arguments.
        return unsafe { (methods.xSync.expect("unix xSync"))(real, flags) };
    };
    if tick(&mut st) {
        return ffi::SQLITE_IOERR_FSYNC;
    }
    // Like fsync, this syncs the file, whichever handle wrote to it. No real fsync: the machine
    // does not really lose power, so the page cache is as good as the disk here.
    if let Some(ops) = st.pending.remove(path) {
        for op in &ops {
            if apply(path, op).is_err() {
                return ffi::SQLITE_IOERR_FSYNC;
            }
        }
        st.stats.syncs += 1;
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    let st = state();
    if st.down {
        return ffi::SQLITE_IOERR_FSTAT;
    }
    // SAFETY: an open file; `size` is SQLite's out-parameter.
    unsafe {
        let (f, real, methods) = parts(file);
        let rc = (methods.xFileSize.expect("unix xFileSize"))(real, size);
        if rc == ffi::SQLITE_OK
            && let Some(ops) = f.path.as_ref().and_then(|p| st.pending.get(p))
        {
            let logical = logical_size(u64::try_from(*size).unwrap_or(0), ops);
            *size = i64::try_from(logical).unwrap_or(i64::MAX);
        }
        rc
    }
}

unsafe extern "C" fn x_file_control(file: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    // A size hint makes the unix VFS extend the real file behind our back; it is only a hint.
    if op == ffi::SQLITE_FCNTL_SIZE_HINT {
        return ffi::SQLITE_NOTFOUND;
    }
    // SAFETY: an open file; forwarding SQLite's own arguments.
    unsafe {
        let (_, real, methods) = parts(file);
        (methods.xFileControl.expect("unix xFileControl"))(real, op, arg)
    }
}

/// Methods passed straight to the unix file: locks, sector size, shared memory.
macro_rules! forward {
    ($name:ident => $method:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> $ret {
            // SAFETY: an open file; forwarding SQLite's own arguments.
            unsafe {
                let (_, real, methods) = parts(file);
                (methods.$method.expect(stringify!($method)))(real $(, $arg)*)
            }
        }
    };
}

forward!(x_lock => xLock(level: c_int) -> c_int);
forward!(x_unlock => xUnlock(level: c_int) -> c_int);
forward!(x_check_reserved_lock => xCheckReservedLock(out: *mut c_int) -> c_int);
forward!(x_sector_size => xSectorSize() -> c_int);
forward!(x_device_characteristics => xDeviceCharacteristics() -> c_int);
forward!(x_shm_map => xShmMap(page: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int);
forward!(x_shm_lock => xShmLock(offset: c_int, n: c_int, flags: c_int) -> c_int);
forward!(x_shm_barrier => xShmBarrier() -> ());
forward!(x_shm_unmap => xShmUnmap(delete: c_int) -> c_int);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_size_follows_writes_and_truncations() {
        let ops = vec![
            Op::Write { offset: 100, data: vec![1; 50] },
            Op::Truncate(20),
            Op::Write { offset: 10, data: vec![2; 5] },
        ];
        assert_eq!(logical_size(0, &ops[..1]), 150);
        assert_eq!(logical_size(1000, &ops[..1]), 1000);
        assert_eq!(logical_size(1000, &ops[..2]), 20);
        assert_eq!(logical_size(1000, &ops), 20);
    }
}
