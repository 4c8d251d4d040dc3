//! Health probing of the RED uplink (DESIGN.md sections 3 and 5). Placeholder: the health
//! issue fills this in.

use crate::error::{Error, Result};
use crate::paths::Paths;

/// `connectd check`: one probe round on the current RED. Returns the exit code.
pub fn run_check(_paths: &Paths, _json: bool) -> Result<u8> {
    Err(Error::Failed("check: not implemented yet".into()))
}
