//! The raw disk rate: the bytes a scenario stored, written to the data directory's disk in
//! the block sizes the broker wrote, with an fdatasync after each block (what acks=all asks
//! for when no two batches share a sync) and with one fdatasync at the end (page cache).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The rate of one write pattern.
#[derive(Clone, Copy, Debug)]
pub struct DiskRate {
    pub bytes_per_s_synced: f64,
    pub bytes_per_s_unsynced: f64,
}

/// Write `total_bytes` in `block_bytes` blocks into a scratch file in `dir`, twice: once
/// with fdatasync per block, once with a single fdatasync at the end. Each pass stops after
/// `max_seconds` and reports the rate so far, so a slow disk does not stall the suite.
pub fn measure(
    dir: &Path,
    total_bytes: u64,
    block_bytes: u64,
    max_seconds: f64,
) -> Result<DiskRate> {
    let block_bytes = block_bytes.max(512);
    let synced = write_pass(dir, total_bytes, block_bytes, true, max_seconds)?;
    let unsynced = write_pass(dir, total_bytes, block_bytes, false, max_seconds)?;
    Ok(DiskRate {
        bytes_per_s_synced: synced,
        bytes_per_s_unsynced: unsynced,
    })
}

fn write_pass(
    dir: &Path,
    total_bytes: u64,
    block_bytes: u64,
    sync_each: bool,
    max_seconds: f64,
) -> Result<f64> {
    let path = dir.join("riffle-bench-disk-probe");
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let block = vec![0x5a_u8; usize::try_from(block_bytes).context("block size")?];
    let limit = Duration::from_secs_f64(max_seconds);
    let started = Instant::now();
    let mut written = 0u64;
    while written < total_bytes && started.elapsed() < limit {
        file.write_all(&block)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written += block_bytes;
        if sync_each {
            fdatasync(&file)?;
        }
    }
    fdatasync(&file)?;
    let elapsed = started.elapsed();
    drop(file);
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(written as f64 / elapsed.as_secs_f64())
}

/// What this machine charges, in system CPU, for putting new bytes into the page cache.
#[derive(Clone, Copy, Debug)]
pub struct PageCacheCost {
    /// Into memory that sat free for a while: a VM host may have taken it back.
    pub cold_cpu_s_per_gb: f64,
    /// Into memory freed a moment before.
    pub warm_cpu_s_per_gb: f64,
}

/// Writes `bytes` to a scratch file in `dir` twice, deleting it after each pass: first after
/// `idle`, then at once. A VM host that backs guest memory lazily and takes back memory the
/// guest reports free (Linux free page reporting) makes the first pass cost several times
/// the second; a broker whose page cache grows pays the first rate.
pub fn page_cache_cost(dir: &Path, bytes: u64, idle: Duration) -> Result<PageCacheCost> {
    std::thread::sleep(idle);
    let cold_s = page_cache_pass_system_s(dir, bytes)?;
    let warm_s = page_cache_pass_system_s(dir, bytes)?;
    let gb = bytes as f64 / 1e9;
    Ok(PageCacheCost {
        cold_cpu_s_per_gb: cold_s / gb,
        warm_cpu_s_per_gb: warm_s / gb,
    })
}

/// System CPU seconds this thread spent writing `bytes` into the page cache (no fsync).
fn page_cache_pass_system_s(dir: &Path, bytes: u64) -> Result<f64> {
    const BLOCK_BYTES: usize = 1 << 20;
    let path = dir.join("riffle-bench-page-cache-probe");
    let block = vec![0xa5_u8; BLOCK_BYTES];
    let before_s = thread_system_s()?;
    let mut file =
        File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut written = 0u64;
    while written < bytes {
        file.write_all(&block)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written += BLOCK_BYTES as u64;
    }
    let after_s = thread_system_s()?;
    drop(file);
    // Unlinking drops the dirty pages unwritten, so the probe never waits on the disk.
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(after_s - before_s)
}

fn thread_system_s() -> Result<f64> {
    // SAFETY: getrusage only writes the struct we pass, which is plain data.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &raw mut usage) } != 0 {
        bail!("getrusage failed: {}", std::io::Error::last_os_error());
    }
    Ok(usage.ru_stime.tv_sec as f64 + usage.ru_stime.tv_usec as f64 / 1e6)
}

fn fdatasync(file: &File) -> Result<()> {
    // SAFETY: a valid open descriptor owned by `file`.
    if unsafe { libc::fdatasync(file.as_raw_fd()) } != 0 {
        bail!("fdatasync failed: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// The broker's average stored batch size for a topic: walk the v2 batch headers of every
/// `.log` file under `<data_dir>/<topic>-<partition>/` (base offset i64, length i32).
pub fn average_batch_bytes(data_dir: &Path, topic: &str) -> Result<Option<u64>> {
    let prefix = format!("{topic}-");
    let mut batches = 0u64;
    let mut bytes = 0u64;
    let entries = std::fs::read_dir(data_dir)
        .with_context(|| format!("cannot list {}", data_dir.display()))?;
    for entry in entries {
        let entry = entry.context("cannot list the data directory")?;
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|name| name.strip_prefix(&prefix)) else {
            continue;
        };
        if rest.parse::<u32>().is_err() {
            continue;
        }
        for segment in std::fs::read_dir(entry.path()).context("cannot list a partition")? {
            let segment = segment.context("cannot list a partition")?.path();
            if segment.extension().is_some_and(|ext| ext == "log") {
                let (count, size) = count_batches(&segment)?;
                batches += count;
                bytes += size;
            }
        }
    }
    Ok(bytes.checked_div(batches))
}

fn count_batches(path: &Path) -> Result<(u64, u64)> {
    let mut contents = Vec::new();
    File::open(path)
        .and_then(|mut file| file.read_to_end(&mut contents))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut position = 0usize;
    let mut batches = 0u64;
    while position + 12 <= contents.len() {
        let length_bytes: [u8; 4] = contents[position + 8..position + 12]
            .try_into()
            .context("short batch header")?;
        let length = i32::from_be_bytes(length_bytes);
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        if length == 0 || position + 12 + length > contents.len() {
            break;
        }
        position += 12 + length;
        batches += 1;
    }
    Ok((batches, position as u64))
}
