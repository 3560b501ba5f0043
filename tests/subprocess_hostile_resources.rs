//! Every row of the hostile worker on one pool: afterwards the parent holds the descriptors,
//! memory maps and threads it held before, and about the same memory. Its own binary, so that
//! no other test's pool moves the counts.

mod hostile_support;
mod subprocess_support;

use subprocess_support::eventually;
use hostile_support::{
    Scene, forks, hostile_pool, inflated_region, lying_lengths, raw_packets, replies_twice,
    sealed_region, status_field, tiny_offers,
};

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
}

#[test]
fn the_parent_holds_what_it_held_before_every_row() {
    let mut scene = Scene::new(hostile_pool().max_payload(1 << 20));
    // Warm up the paths the rows use, so that lazily made things (regions, buffers) count in
    // the start.
    sealed_region(&mut scene);
    let (fds, threads, map_count, rss) = (
        count("/proc/self/fd"),
        count("/proc/self/task"),
        maps(),
        status_field("VmRSS:"),
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
    eventually("the maps to come back to their count", || maps() <= map_count + 4);
    let grown_kib = status_field("VmRSS:").saturating_sub(rss);
    assert!(grown_kib < 64 << 10, "RSS grew by {grown_kib} KiB");
}
