//! Shared-memory regions: the memfds through which large arguments and results travel.
//!
//! Each worker has two regions, one per direction: the parent writes a job's arguments into
//! the *args* region and the worker reads them; the worker writes the result into the
//! *results* region and the parent reads it. One writer per region keeps the worker's
//! decoding of its arguments (a borrow of the args region) apart from the writing of its
//! result. The parent creates both memfds before starting the worker, which inherits them
//! under their own numbers (only that child: they are close-on-exec everywhere else), so no
//! descriptor ever crosses a socket and a region lives exactly as long as its worker: the
//! parent's descriptor and mapping go when the worker is dropped, and the worker's go with its
//! process.
//!
//! A region starts empty (no memory), grows on demand to the next power of two (at least
//! 1 MiB), and is reused across jobs, so a steady stream of large payloads maps and faults in
//! its pages once. Pages past [`KEPT`] (64 MiB) are kept only while jobs keep needing them:
//! after the first job that used no more than that, the parent punches them out of the region
//! (the file keeps its size, so mappings stay valid, but the memory goes back to the system).
//! Trade-off: a stream of 256 MiB jobs does not fault in 256 MiB of fresh pages per job, at
//! the price of holding that memory until a smaller job comes (or the worker goes).
//!
//! Safety argument, shared by every `unsafe` block here: each region is sealed against
//! shrinking (`F_SEAL_SHRINK`) before the worker exists, so no mapping can reach past the end
//! of its file (which would be SIGBUS) whatever the worker does. The protocol hands each region
//! back and forth: its writer writes only before it sends the frame that names the payload,
//! and its reader reads only after receiving that frame. A worker that broke this (a task
//! scribbling on the mapping) could only change bytes that the parent decodes as untrusted
//! input, with bounds checks; no Rust value's validity depends on the region's contents.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use memfd::{FileSeal, Memfd, MemfdOptions};
use memmap2::{MmapMut, MmapOptions};

/// The smallest size a region grows to.
const MIN_GROWTH: usize = 1 << 20;

/// How much of a region keeps its pages between jobs.
pub(crate) const KEPT: usize = 64 << 20;

/// How much of a region to map (and grow the file to) for a payload of `len` bytes: the next
/// power of two, at least [`MIN_GROWTH`].
fn growth(len: usize) -> usize {
    len.checked_next_power_of_two()
        .unwrap_or(len)
        .max(MIN_GROWTH)
}

/// One shared-memory region and this process's mapping of it.
pub(crate) struct Region {
    file: File,
    /// `None` until the first payload: a worker that never sees a large one maps nothing.
    map: Option<MmapMut>,
    /// The most bytes a payload used in the current job.
    used: usize,
    /// Whether pages past [`KEPT`] may be resident.
    holding: bool,
}

impl Region {
    /// Parent: a new, empty region, sealed against shrinking.
    pub(crate) fn create(name: &str) -> io::Result<Region> {
        let memfd = MemfdOptions::new()
            .allow_sealing(true)
            .close_on_exec(true)
            .create(name)
            .map_err(io::Error::other)?;
        // Sealed against more seals too: a worker cannot seal the region against writing or
        // growing, which would fail the parent's next large payload.
        memfd
            .add_seals(&[FileSeal::SealShrink, FileSeal::SealSeal])
            .map_err(io::Error::other)?;
        Ok(Region {
            file: memfd.into_file(),
            map: None,
            used: 0,
            holding: false,
        })
    }

    /// Worker: adopts the region the parent left at descriptor `fd`, after checking that it is
    /// a memfd sealed against shrinking (anything else could fault under the mapping).
    pub(crate) fn adopt(fd: RawFd) -> io::Result<Region> {
        // SAFETY: `fcntl(F_GETFD)` only asks whether `fd` is open; it touches no memory.
        if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(io::Error::other(format!("descriptor {fd} is not open")));
        }
        // SAFETY: `fd` is open (checked above) and was left to this process by the parent for
        // this region alone (see the module docs): nothing else in the process owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let memfd = Memfd::try_from_fd(owned)
            .map_err(|_| io::Error::other(format!("descriptor {fd} is not a memfd")))?;
        let sealed = memfd.seals().map_err(io::Error::other)?;
        if !sealed.contains(&FileSeal::SealShrink) {
            return Err(io::Error::other(format!(
                "memfd {fd} is not sealed against shrinking"
            )));
        }
        let file = memfd.into_file();
        // Inherited without close-on-exec: set it, so processes a task starts do not get it.
        // SAFETY: `fcntl(F_SETFD)` changes a flag of an open descriptor this region owns.
        unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(Region {
            file,
            map: None,
            used: 0,
            holding: false,
        })
    }

    /// The region's descriptor number in this process.
    pub(crate) fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Writer: room for at least `len` bytes, growing the file and the mapping if needed.
    pub(crate) fn reserve(&mut self, len: usize) -> io::Result<&mut [u8]> {
        if self.map.as_ref().is_none_or(|map| map.len() < len) {
            let grown = growth(len);
            if self.file_size()? < grown {
                self.file.set_len(grown as u64)?;
            }
            self.remap(grown)?;
        }
        self.used = self.used.max(len);
        let map = self.map.as_mut().expect("mapped above");
        Ok(&mut map[..])
    }

    /// Reader: the first `len` bytes, as the other side wrote them.
    pub(crate) fn read(&mut self, len: usize) -> io::Result<&[u8]> {
        self.map_for_reading(len)?;
        let map = self.map.as_ref().expect("mapped above");
        Ok(&map[..len])
    }

    /// Parent: copies the first `len` bytes into `into` (replacing its contents) before any of
    /// them is looked at. The worker can still write the region while the parent reads it, so
    /// the parent decodes only bytes it owns: a value checked once (a string's UTF-8) cannot
    /// change under it afterwards.
    pub(crate) fn copy_out(&mut self, len: usize, into: &mut Vec<u8>) -> io::Result<()> {
        self.map_for_reading(len)?;
        let map = self.map.as_ref().expect("mapped above");
        into.clear();
        into.reserve(len);
        // SAFETY: the mapping holds at least `len` bytes (mapped above) and `into` has room for
        // `len` (reserved); the two never overlap (one is this process's heap, the other a
        // shared mapping). The bytes are copied as they are, whatever the other process
        // writes meanwhile: nothing is assumed of them until they are ours.
        unsafe {
            std::ptr::copy_nonoverlapping(map.as_ptr(), into.as_mut_ptr(), len);
            into.set_len(len);
        }
        if into.capacity() > KEPT && len <= KEPT {
            into.shrink_to(KEPT);
        }
        Ok(())
    }

    /// Maps at least `len` bytes for reading: only what `len` needs, whatever the size of the
    /// file, since the other side may have grown it without bound.
    fn map_for_reading(&mut self, len: usize) -> io::Result<()> {
        if self.map.as_ref().is_none_or(|map| map.len() < len) {
            let size = self.file_size()?;
            if size < len {
                return Err(io::Error::other(format!(
                    "a payload of {len} bytes does not fit its region"
                )));
            }
            self.remap(growth(len).min(size))?;
        }
        self.used = self.used.max(len);
        Ok(())
    }

    /// Ends a job: gives the pages past [`KEPT`] back to the system if earlier jobs used them
    /// and this one did not. The file keeps its size, so every mapping of it stays valid (the
    /// hole reads as zeros).
    pub(crate) fn trim(&mut self) {
        let big = std::mem::take(&mut self.used) > KEPT;
        if big || !self.holding {
            self.holding |= big;
            return;
        }
        self.holding = false;
        let Ok(size) = self.file_size() else {
            return;
        };
        // SAFETY: `fallocate` on a descriptor this region owns; punching a hole keeps the
        // file's size (`FALLOC_FL_KEEP_SIZE`), so no mapping loses its backing file range.
        unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                KEPT as libc::off_t,
                (size - KEPT.min(size)) as libc::off_t,
            );
        }
    }

    fn file_size(&self) -> io::Result<usize> {
        let len = self.file.metadata()?.len();
        usize::try_from(len).map_err(io::Error::other)
    }

    /// Maps the first `len` bytes of the file (at most its size), replacing the old mapping.
    fn remap(&mut self, len: usize) -> io::Result<()> {
        self.map = None;
        if len == 0 {
            return Err(io::Error::other("the region is empty"));
        }
        // SAFETY: see the module docs: the file cannot shrink under the mapping (and is at
        // least `len` bytes long, checked by the callers), and its contents are only ever read
        // as untrusted bytes.
        let map = unsafe { MmapOptions::new().len(len).map_mut(&self.file)? };
        self.map = Some(map);
        Ok(())
    }
}

/// Lets the process that `command` starts inherit descriptor `fd` (a region's, or the worker's
/// end of its socket) under its own number (the parent's copy stays close-on-exec, so no other
/// child gets it).
pub(crate) fn inherit(command: &mut Command, fd: RawFd) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes one `fcntl` call on a descriptor the child
    // inherited from the parent, allocating nothing and taking no lock.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_grows_and_its_reader_sees_what_its_writer_wrote() {
        let mut writer = Region::create("test").unwrap();
        let duplicate = writer.file.try_clone().unwrap();
        let mut reader = Region {
            file: duplicate,
            map: None,
            used: 0,
            holding: false,
        };
        writer.reserve(10).unwrap()[..5].copy_from_slice(b"hello");
        assert_eq!(reader.read(5).unwrap(), b"hello");
        let big = (3 << 20) + 7;
        writer.reserve(big).unwrap()[big - 1] = 42;
        assert_eq!(reader.read(big).unwrap()[big - 1], 42);
        assert!(reader.read(64 << 20).is_err(), "past the end of the file");
    }

    #[test]
    fn pages_past_the_kept_size_go_after_the_first_smaller_job() {
        use std::os::unix::fs::MetadataExt;
        let resident = |region: &Region| region.file.metadata().unwrap().blocks() * 512;
        let mut region = Region::create("test").unwrap();
        let big = KEPT + (8 << 20);
        region.reserve(big).unwrap().fill(1);
        region.trim();
        assert!(resident(&region) >= big as u64, "kept while big jobs come");
        region.reserve(big).unwrap()[big - 1] = 2;
        region.trim();
        region.reserve(10).unwrap()[0] = 3;
        region.trim();
        assert!(
            resident(&region) <= KEPT as u64,
            "given back after a small job"
        );
        assert_eq!(
            region.read(big).unwrap()[big - 1],
            0,
            "the hole reads as zeros"
        );
        assert_eq!(
            region.read(1).unwrap()[0],
            3,
            "the kept pages keep their bytes"
        );
    }

    #[test]
    fn a_region_cannot_shrink() {
        let mut region = Region::create("test").unwrap();
        region.reserve(1 << 20).unwrap();
        assert!(region.file.set_len(0).is_err(), "sealed against shrinking");
    }
}
