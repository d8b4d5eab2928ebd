//! Benchmarks live in benches/; this library holds what the corpus size
//! report (`src/bin/corpus-sizes.rs`) and the heap-budget test
//! (`tests/heap.rs`) share: the heap high-water of a streaming install.

pub mod heap;
