//! The host's handling of a guest's answer, without wasmtime, for the fuzz targets in
//! `fuzz/`. Hidden and not an API: it may change with the ABI at any time.

use weir_api::Batch;

use crate::guest::{FailureCause, GuestAnswer};
use crate::outcome::apply;

/// Applies what a guest wrote back through `weir_output` to `batch`, as the host does after
/// the call: `output` is one verdict byte per item (return code 1) or, with `replacement`,
/// a protobuf export request replacing the batch (return code 2). On `Err` the batch is as
/// it was.
pub fn apply_output(
    batch: &mut Batch,
    replacement: bool,
    output: &[u8],
) -> Result<(), (FailureCause, String)> {
    let answer = if replacement {
        GuestAnswer::Replacement(output.to_vec())
    } else {
        GuestAnswer::Verdicts(output.to_vec())
    };
    apply(batch, answer).map_err(|f| (f.cause, f.detail))
}
