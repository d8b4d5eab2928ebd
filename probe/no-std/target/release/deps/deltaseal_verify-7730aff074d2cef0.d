/work/main/probe/no-std/target/release/deps/deltaseal_verify-7730aff074d2cef0.d: /work/main/crates/deltaseal-verify/src/lib.rs /work/main/crates/deltaseal-verify/src/bundle.rs /work/main/crates/deltaseal-verify/src/bundle/cbor.rs /work/main/crates/deltaseal-verify/src/bundle/cose.rs /work/main/crates/deltaseal-verify/src/bundle/manifest.rs /work/main/crates/deltaseal-verify/src/bundle/policy.rs /work/main/crates/deltaseal-verify/src/digest.rs /work/main/crates/deltaseal-verify/src/patch.rs /work/main/crates/deltaseal-verify/src/patch/apply.rs /work/main/crates/deltaseal-verify/src/patch/header.rs /work/main/crates/deltaseal-verify/src/update.rs

/work/main/probe/no-std/target/release/deps/libdeltaseal_verify-7730aff074d2cef0.rmeta: /work/main/crates/deltaseal-verify/src/lib.rs /work/main/crates/deltaseal-verify/src/bundle.rs /work/main/crates/deltaseal-verify/src/bundle/cbor.rs /work/main/crates/deltaseal-verify/src/bundle/cose.rs /work/main/crates/deltaseal-verify/src/bundle/manifest.rs /work/main/crates/deltaseal-verify/src/bundle/policy.rs /work/main/crates/deltaseal-verify/src/digest.rs /work/main/crates/deltaseal-verify/src/patch.rs /work/main/crates/deltaseal-verify/src/patch/apply.rs /work/main/crates/deltaseal-verify/src/patch/header.rs /work/main/crates/deltaseal-verify/src/update.rs

/work/main/crates/deltaseal-verify/src/lib.rs:
/work/main/crates/deltaseal-verify/src/bundle.rs:
/work/main/crates/deltaseal-verify/src/bundle/cbor.rs:
/work/main/crates/deltaseal-verify/src/bundle/cose.rs:
/work/main/crates/deltaseal-verify/src/bundle/manifest.rs:
/work/main/crates/deltaseal-verify/src/bundle/policy.rs:
/work/main/crates/deltaseal-verify/src/digest.rs:
/work/main/crates/deltaseal-verify/src/patch.rs:
/work/main/crates/deltaseal-verify/src/patch/apply.rs:
/work/main/crates/deltaseal-verify/src/patch/header.rs:
/work/main/crates/deltaseal-verify/src/update.rs:
