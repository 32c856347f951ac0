//! What several fuzz targets share: a single-threaded runtime and a SQLite store in memory.

use std::sync::Arc;

use postfach_store::sqlite::SqliteStore;

/// A runtime for driving async code from a fuzz target, plus a fresh store in a temporary
/// directory (kept alive by the returned `TempDir`). The directory is in `/dev/shm` where the
/// system has it: SQLite's fsyncs would otherwise dominate every run.
pub fn runtime_and_store() -> (tokio::runtime::Runtime, Arc<SqliteStore>, tempfile::TempDir) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.expect("tempdir");
    let store = Arc::new(SqliteStore::open(dir.path()).expect("store"));
    (runtime, store, dir)
}
