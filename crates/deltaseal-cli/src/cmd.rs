//! One module per subcommand.

pub mod apply;
pub mod attach_signature;
pub mod boot;
pub mod completions;
pub mod confirm;
pub mod device;
pub mod diff;
pub mod inspect;
pub mod install;
pub mod keygen;
pub mod release;
pub mod release_plan;
pub mod report;
pub mod root;
pub mod sign;
pub mod status;
pub mod vectors;
pub mod verify;
