/work/main/probe/no-std/target/release/deps/deltaseal_no_std_probe-24568b367ea81d0a.d: src/main.rs

/work/main/probe/no-std/target/release/deps/libdeltaseal_no_std_probe-24568b367ea81d0a.rmeta: src/main.rs

src/main.rs:
