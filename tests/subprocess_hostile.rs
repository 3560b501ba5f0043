//! A compromised worker cannot hurt the parent or another client: each thing such a worker
//! can do to the pool, played by a task of the hostile worker program (see
//! `ythread_suite::hostile`), fails only its own job with a clear error, and the pool heals.
//! `subprocess_hostile_resources.rs` plays them all on one pool and counts what the parent
//! holds.

mod hostile_support;
mod subprocess_support;

use hostile_support::{
    Scene, forks, hostile_pool, inflated_region, lies_about_time, lying_lengths, raw_packets,
    replies_twice, sealed_region, tiny_offers,
};

#[test]
fn lengths_past_the_payload_limit_are_refused_before_anything_is_allocated() {
    lying_lengths(&mut Scene::new(hostile_pool().max_payload(1 << 20)));
}

#[test]
fn descriptors_oversized_packets_and_lying_prefixes_are_garbled() {
    raw_packets(&mut Scene::new(hostile_pool()));
}

#[test]
fn a_forked_child_holding_the_socket_delays_nothing_and_dies_with_its_worker() {
    forks(&mut Scene::new(hostile_pool()));
}

#[test]
fn an_inflated_results_region_is_not_mapped_whole() {
    inflated_region(&mut Scene::new(hostile_pool()));
}

#[test]
fn a_second_reply_never_reaches_another_job() {
    replies_twice(&mut Scene::new(hostile_pool()));
}

#[test]
fn offers_below_the_direct_threshold_are_garbled() {
    tiny_offers(&mut Scene::new(hostile_pool()));
}

#[test]
fn a_worker_cannot_seal_its_region_against_the_parent() {
    sealed_region(&mut Scene::new(hostile_pool()));
}

#[test]
fn a_reported_run_time_cannot_make_heavy_work_look_cheap() {
    lies_about_time(&mut Scene::new(hostile_pool()));
}
