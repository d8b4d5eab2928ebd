/work/main/probe/no-std/target/release/deps/deltaseal_no_std_probe-3e6a585be4900644.d: src/main.rs

/work/main/probe/no-std/target/release/deps/deltaseal_no_std_probe-3e6a585be4900644: src/main.rs

src/main.rs:
