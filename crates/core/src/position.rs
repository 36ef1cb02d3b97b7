//! Where a run is: one definition for the loader's start, the binary's checkpoints, a
//! cluster's announcement and the Python loader's state.

use serde::{Deserialize, Serialize};

/// Where a run is: the next batch it gives, as an epoch and a batch index within it (from 0).
/// One definition for [`crate::LoaderBuilder::start_at`], the binary's checkpoints, a cluster's
/// run announcement and the Python loader's `state_dict`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The epoch, from 0.
    pub epoch: u32,
    /// Batches of it already given: the index of the next.
    pub batch: usize,
}
