//! Every row of the hostile worker on one pool: afterwards the parent holds the descriptors,
//! memory maps and threads it held before, and about the same memory. Its own binary, so that
//! no other test's pool moves the counts.

mod hostile_support;
mod subprocess_support;

use hostile_support::{
    Scene, forks, hostile_pool, inflated_region, lying_lengths, raw_packets, replies_twice,
    sealed_region, status_field, tiny_offers,
};
use subprocess_support::eventually;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

/// The mappings of the pool's shared-memory regions. Anonymous mappings are not counted:
/// glibc keeps the arenas and stacks of exited threads mapped for reuse, so their count only
/// ever grows to a bound; the address space (`VmSize`) below catches a mapping gone wild.
fn region_maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|line| line.contains("/memfd:ythread"))
        .count()
}

#[test]
fn the_parent_holds_what_it_held_before_every_row() {
    let mut scene = Scene::new(hostile_pool().max_payload(1 << 20));
    // Warm up the paths the rows use, so that lazily made things (regions, buffers) count in
    // the start.
    sealed_region(&mut scene);
    let (fds, threads, map_count, rss, vm) = (
        count("/proc/self/fd"),
        count("/proc/self/task"),
        region_maps(),
        status_field("VmRSS:"),
        status_field("VmSize:"),
    );
    lying_lengths(&mut scene);
    raw_packets(&mut scene);
    forks(&mut scene);
    inflated_region(&mut scene);
    replies_twice(&mut scene);
    tiny_offers(&mut scene);
    sealed_region(&mut scene);
    // Helper threads (a launch's handshake, a bounded wait) end a little after their work, and
    // hold a descriptor or two while they run: what leaks never comes back down.
    eventually("the descriptors to come back to their count", || {
        count("/proc/self/fd") <= fds
    });
    eventually("the threads to come back to their count", || {
        count("/proc/self/task") <= threads
    });
    eventually("the region maps to come back to their count", || {
        region_maps() <= map_count
    });
    // At most one malloc arena per thread that ever ran (64 MiB each, 16 on two cores).
    let vm_grown_kib = status_field("VmSize:").saturating_sub(vm);
    assert!(vm_grown_kib < 2 << 20, "VmSize grew by {vm_grown_kib} KiB");
    let grown_kib = status_field("VmRSS:").saturating_sub(rss);
    assert!(grown_kib < 64 << 10, "RSS grew by {grown_kib} KiB");
}
