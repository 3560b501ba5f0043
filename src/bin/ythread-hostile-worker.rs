//! A worker program whose registry holds the hostile tasks of `ythread_suite::hostile` beside
//! the test tasks: the isolation tests start their pools with it.

fn main() {
    ythread_executors::init(ythread_suite::hostile::registry());
    eprintln!("ythread-hostile-worker: this program only runs as a worker of a subprocess pool");
    std::process::exit(2);
}
