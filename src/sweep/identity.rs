//! What identifies a run's inputs, in one place for `--resume` and a cluster's handshake: the
//! data's content key, each model file's, and the effective configuration. A run file records
//! the first two ([`Provenance`]); `--resume` keeps a run only when they and the config agree,
//! and processes of a cluster let each other in only when their [`Identity::fingerprint`]s do.

use std::collections::HashMap;
use std::path::Path;

use flowload_core::{Dataset, StatsStore, WireFormat, file_key};

use crate::config::{SEED_MODEL, SinkKind, SweepConfig, model_name};
use crate::error::{Error, Result};
use crate::results::Provenance;

/// A sweep's inputs, by content.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    /// The data's content key: training and test parts, named and keyed.
    pub(crate) data: u128,
    /// Each TorchScript model of the grid by its content, as a run records its name.
    models: HashMap<String, u128>,
}

impl Identity {
    /// The data's key, through the statistics cache's memory of unchanged files; models come
    /// with [`Identity::with_models`].
    pub(crate) fn of(data: &Dataset, store: Option<&StatsStore>) -> Identity {
        Identity {
            data: data.content_key(store),
            models: HashMap::new(),
        }
    }

    /// Adds the key of each TorchScript model of the grid (only the training sink loads them).
    pub(crate) fn with_models(mut self, pipeline: &SweepConfig) -> Result<Identity> {
        if pipeline.sink != SinkKind::Train {
            return Ok(self);
        }
        for spec in &pipeline.grid.model {
            let name = model_name(spec);
            if spec == SEED_MODEL || self.models.contains_key(&name) {
                continue;
            }
            let key = file_key(Path::new(spec)).map_err(|e| Error::Model {
                path: spec.into(),
                detail: e.to_string(),
            })?;
            self.models.insert(name, key);
        }
        Ok(self)
    }

    /// What a run of `model` is made from, as its file records it.
    pub(crate) fn provenance(&self, model: &str) -> Provenance {
        Provenance {
            data: self.data,
            model: self.models.get(model).copied(),
        }
    }

    /// Identifies the configuration across processes: the effective pipeline, the wire format,
    /// and the data (its content key, size and shape). Processes with another refuse each other.
    pub(crate) fn fingerprint(&self, config_json: &str, wire: WireFormat, data: &Dataset) -> u32 {
        let mut h = crc32fast::Hasher::new();
        h.update(config_json.as_bytes());
        let train = &data.train;
        h.update(
            format!(
                "{wire:?} {} {} {} {:032x}",
                train.len(),
                train.shape(),
                train.classes(),
                self.data
            )
            .as_bytes(),
        );
        h.finalize()
    }
}
