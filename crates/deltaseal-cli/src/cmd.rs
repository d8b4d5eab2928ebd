//! One module per subcommand.

pub mod apply;
pub mod attach_signature;
pub mod completions;
pub mod diff;
pub mod inspect;
pub mod keygen;
pub mod release;
pub mod release_plan;
pub mod root;
pub mod sign;
pub mod vectors;
pub mod verify;
