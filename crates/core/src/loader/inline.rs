//! The inline loader, PyTorch's `num_workers=0`: the consumer's own thread plans, decodes,
//! normalizes and batches each batch when it asks for it.

use arrow::datatypes::SchemaRef;

use super::{BatchStream, Cursor, LoaderConfig, check_config};
use crate::error::Result;
use crate::ops::batch::{self, Batch};
use crate::ops::decode::RecordReader;
use crate::ops::normalize::Normalizer;
use crate::ops::plan::EpochOrder;
use crate::source::Records;

pub(crate) struct InlineLoader {
    reader: RecordReader,
    order: EpochOrder,
    normalizer: Normalizer,
    schema: SchemaRef,
    /// The current epoch's permutation, made when its first batch is asked for.
    permutation: Option<(u32, Vec<u32>)>,
    cursor: Cursor,
}

impl InlineLoader {
    pub(crate) fn new(
        records: Records,
        normalizer: Normalizer,
        config: LoaderConfig,
    ) -> Result<Self> {
        check_config(&records, &config)?;
        Ok(InlineLoader {
            cursor: Cursor::new(&config),
            schema: batch::schema(records.shape()),
            reader: RecordReader::new(records, config.on_bad_record)
                .stopped_by(config.stopper.clone()),
            order: config.order,
            normalizer,
            permutation: None,
        })
    }
}

impl Iterator for InlineLoader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        let (epoch, index) = self.cursor.advance()?;
        if self.permutation.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.permutation = Some((epoch, self.order.permutation(epoch)));
        }
        let (_, perm) = self.permutation.as_ref().expect("set above");
        let plan = self.order.plan(epoch, perm, index);
        Some(
            self.reader
                .decode(&plan)
                .and_then(|b| batch::to_arrow(&self.schema, self.normalizer.apply(b))),
        )
    }
}

impl BatchStream for InlineLoader {
    fn batches_per_epoch(&self) -> usize {
        self.cursor.per_epoch()
    }
    fn workers(&self) -> usize {
        0
    }
}
