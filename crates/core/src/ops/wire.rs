//! Wire: batches on their way to the trainer's process — encoded by the worker that built them,
//! exchanged to worker 0 (on process 0), put back in run order and into the trainer's queue.
//!
//! Two encodings, `--wire raw|arrow`. `raw` sends the decoded u8 pixels and normalizes on
//! process 0; `arrow` normalizes where the batch was built and sends an Arrow IPC stream of the
//! f32 values, four times the bytes. `raw` is the default: see the README's cluster section for
//! the measurement.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use crossbeam_channel::{Sender, TrySendError};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::{Capability, Operator};
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::SyncActivator;

use super::batch::{Batch, to_arrow};
use super::decode::DecodedBatch;
use super::normalize::Normalizer;
use super::plan::{EpochOrder, sequence};
use crate::error::{BadRecord, Error, Failed, Result};
use crate::shape::Shape;

/// How batches travel between processes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    /// Decoded u8 pixels; process 0 normalizes (1 byte per value).
    #[default]
    Raw,
    /// Normalized f32 values as an Arrow IPC stream (4 bytes per value).
    Arrow,
}

impl WireFormat {
    /// The formats by name, as `--wire` spells them.
    pub const NAMES: [&'static str; 2] = ["raw", "arrow"];
}

impl std::str::FromStr for WireFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "raw" => Ok(WireFormat::Raw),
            "arrow" => Ok(WireFormat::Arrow),
            other => Err(format!(
                "'{other}' is not a wire format: give {}",
                WireFormat::NAMES.join(" or ")
            )),
        }
    }
}

/// A batch in transit, with the global index of the worker that built it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WireBatch {
    pub epoch: u32,
    pub index: usize,
    pub from: usize,
    pub payload: Payload,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Payload {
    Raw(DecodedBatch),
    Arrow {
        shape: Shape,
        #[serde(with = "serde_bytes")]
        ipc: Vec<u8>,
        skipped: Vec<BadRecord>,
    },
    /// The batch could not be built: the error goes to the trainer as its own.
    Failed(Failed),
}

impl WireBatch {
    /// Encodes one built batch (or its error).
    pub(crate) fn encode(
        built: Result<DecodedBatch>,
        (epoch, index): (u32, usize),
        from: usize,
        format: WireFormat,
        normalizer: &Normalizer,
        schema: &SchemaRef,
    ) -> WireBatch {
        let payload = match (built, format) {
            (Err(e), _) => Payload::Failed(Failed::new(e, from)),
            (Ok(b), WireFormat::Raw) => Payload::Raw(b),
            (Ok(b), WireFormat::Arrow) => {
                let shape = b.shape;
                match to_arrow(schema, normalizer.apply(b)).and_then(|b| {
                    let mut ipc = Vec::new();
                    let mut w = StreamWriter::try_new(&mut ipc, schema)?;
                    w.write(&b.record)?;
                    w.finish()?;
                    drop(w);
                    Ok((ipc, b.skipped))
                }) {
                    Ok((ipc, skipped)) => Payload::Arrow {
                        shape,
                        ipc,
                        skipped,
                    },
                    Err(e) => Payload::Failed(Failed::new(e, from)),
                }
            }
        };
        WireBatch {
            epoch,
            index,
            from,
            payload,
        }
    }

    /// The batch as the trainer takes it; `wire_bytes` records what it cost on the wire.
    pub(crate) fn into_batch(
        self,
        normalizer: &Normalizer,
        schema: &SchemaRef,
        wire_bytes: u64,
    ) -> Result<Batch> {
        let mut batch = match self.payload {
            Payload::Failed(failed) => return Err(failed.into()),
            Payload::Raw(b) => to_arrow(schema, normalizer.apply(b))?,
            Payload::Arrow {
                shape,
                ipc,
                skipped,
            } => {
                let mut reader = StreamReader::try_new(Cursor::new(ipc), None)?;
                let record = reader.next().transpose()?.ok_or_else(|| {
                    Error::Dataflow(format!(
                        "epoch {} batch {}: empty Arrow IPC stream",
                        self.epoch, self.index
                    ))
                })?;
                Batch {
                    epoch: self.epoch,
                    index: self.index,
                    shape,
                    record,
                    skipped,
                    wire_bytes: 0,
                }
            }
        };
        batch.wire_bytes = wire_bytes;
        Ok(batch)
    }
}

/// Extension trait: `decoded.to_wire(order, format, normalizer, schema)`.
pub(crate) trait ToWire<'scope> {
    /// Encodes each batch. Its position comes from its timestamp (a gated source stamps each
    /// batch with its [`sequence`]), so that a batch that failed still takes its place in order.
    fn to_wire(
        self,
        order: &EpochOrder,
        format: WireFormat,
        normalizer: Normalizer,
        schema: SchemaRef,
    ) -> StreamVec<'scope, u64, WireBatch>;
}

impl<'scope> ToWire<'scope> for StreamVec<'scope, u64, Result<DecodedBatch>> {
    fn to_wire(
        self,
        order: &EpochOrder,
        format: WireFormat,
        normalizer: Normalizer,
        schema: SchemaRef,
    ) -> StreamVec<'scope, u64, WireBatch> {
        let from = self.scope().index();
        let per_epoch = order.batches_per_epoch().max(1) as u64;
        self.unary::<CapacityContainerBuilder<Vec<WireBatch>>, _, _, _>(
            Pipeline,
            "ToWire",
            move |_, _| {
                move |input, output| {
                    input.for_each_stamp(|cap, data| {
                        let seq = *cap.least().expect("batches travel under a capability");
                        let position = ((seq / per_epoch) as u32, (seq % per_epoch) as usize);
                        let mut session = output.session(&cap);
                        for batches in data {
                            for built in batches.drain(..) {
                                session.give(WireBatch::encode(
                                    built,
                                    position,
                                    from,
                                    format,
                                    &normalizer,
                                    &schema,
                                ));
                            }
                        }
                    });
                }
            },
        )
    }
}

/// Where [`Deliver::deliver`] hands batches over: the trainer's queue, and a slot for the
/// activator that the trainer pulls after each batch it takes (to refill the queue).
pub(crate) struct Handoff {
    pub queue: Sender<Result<Batch>>,
    pub wake: Arc<Mutex<Option<SyncActivator>>>,
    pub cancel: Arc<AtomicBool>,
    /// Tells which process built a batch (global worker / threads), so that `bytes_received`
    /// counts the batches of other processes only.
    pub threads_per_process: usize,
}

/// Extension trait: `wire.deliver(order, normalizer, schema, handoff, first)`.
pub(crate) trait Deliver<'scope> {
    /// Exchanges every batch to worker 0 and puts them into the trainer's queue in run order,
    /// from run position `first`. `handoff` is `Some` on worker 0 alone.
    ///
    /// The operator keeps a capability for each batch not yet in the queue, so its output's
    /// frontier — which the gated sources watch — is the position of the trainer's next batch.
    /// The queue is filled with `try_send`: a worker thread that blocked would stop answering
    /// the network, and the cluster's progress with it.
    fn deliver(
        self,
        order: EpochOrder,
        normalizer: Normalizer,
        schema: SchemaRef,
        handoff: Option<Handoff>,
        first: u64,
    ) -> StreamVec<'scope, u64, ()>;
}

impl<'scope> Deliver<'scope> for StreamVec<'scope, u64, WireBatch> {
    fn deliver(
        self,
        order: EpochOrder,
        normalizer: Normalizer,
        schema: SchemaRef,
        handoff: Option<Handoff>,
        first: u64,
    ) -> StreamVec<'scope, u64, ()> {
        let scope: Scope<'scope, u64> = self.scope();
        self.unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Exchange::new(|_: &WireBatch| 0),
            "Deliver",
            move |initial, info| {
                drop(initial);
                if let Some(h) = &handoff {
                    *h.wake.lock().expect("wake lock") =
                        Some(scope.worker().sync_activator_for(info.address.to_vec()));
                }
                let mut pending: BTreeMap<u64, (Capability<u64>, Result<Batch>)> = BTreeMap::new();
                let mut next = first;
                move |input, _output| {
                    input.for_each_stamp(|cap, data| {
                        let seq = *cap.least().expect("batches travel under a capability");
                        for batches in data {
                            for wire in batches.drain(..) {
                                let Some(h) = &handoff else {
                                    unreachable!("batches are exchanged to worker 0 alone")
                                };
                                debug_assert_eq!(seq, sequence(&order, wire.epoch, wire.index));
                                let remote = wire.from / h.threads_per_process != 0;
                                let bytes = if remote {
                                    bincode::serialized_size(&wire).unwrap_or(0)
                                } else {
                                    0
                                };
                                let batch = wire.into_batch(&normalizer, &schema, bytes);
                                pending.insert(seq, (cap.delayed(&seq, 0), batch));
                            }
                        }
                    });
                    let Some(h) = &handoff else { return };
                    while let Some(entry) = pending.first_entry() {
                        if h.cancel.load(Ordering::Relaxed) {
                            // The trainer has gone: let the rest through unseen.
                            pending.clear();
                            break;
                        }
                        if *entry.key() != next {
                            break;
                        }
                        let (cap, batch) = entry.remove();
                        match h.queue.try_send(batch) {
                            Ok(()) => next += 1,
                            Err(TrySendError::Full(batch)) => {
                                pending.insert(next, (cap, batch));
                                break;
                            }
                            Err(TrySendError::Disconnected(_)) => {
                                h.cancel.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RecordId;
    use crate::ops::batch::schema;
    use crate::stats::Stats;

    fn decoded() -> DecodedBatch {
        let shape = Shape {
            channels: 2,
            height: 2,
            width: 3,
        };
        DecodedBatch {
            epoch: 1,
            index: 4,
            shape,
            pixels: (0..24).map(|v| (v * 11) as u8).collect(),
            labels: vec![3, 1],
            skipped: vec![BadRecord {
                record: RecordId {
                    file: "s.parquet".into(),
                    row: 9,
                },
                reason: "bad".into(),
            }],
        }
    }

    /// Through bincode, as timely sends it between processes.
    fn over_the_wire(w: &WireBatch) -> WireBatch {
        bincode::deserialize(&bincode::serialize(w).unwrap()).unwrap()
    }

    #[test]
    fn raw_and_arrow_arrive_as_the_batch_built_locally() {
        let d = decoded();
        let stats = Stats {
            images: 2,
            channels: 2,
            height: 2,
            width: 3,
            mean: vec![0.3, 0.6],
            std: vec![0.2, 0.1],
        };
        let normalizer = Normalizer::new(Some(&stats), 2);
        let schema = schema(d.shape);
        let local = to_arrow(&schema, normalizer.apply(d.clone())).unwrap();
        let mut sizes = Vec::new();
        for format in [WireFormat::Raw, WireFormat::Arrow] {
            let w = WireBatch::encode(Ok(d.clone()), (1, 4), 3, format, &normalizer, &schema);
            let bytes = bincode::serialized_size(&w).unwrap();
            sizes.push(bytes);
            let b = over_the_wire(&w)
                .into_batch(&normalizer, &schema, bytes)
                .unwrap();
            assert_eq!(b.images(), local.images(), "{format:?}");
            assert_eq!(b.labels(), local.labels());
            assert_eq!(b.skipped, local.skipped);
            assert_eq!((b.epoch, b.index, b.wire_bytes), (1, 4, bytes));
        }
        // Raw is the pixels, labels and the skipped record plus a few dozen bytes of framing;
        // Arrow carries f32 values and an IPC schema.
        assert!(sizes[0] < 24 + 16 + 150, "{sizes:?}");
        assert!(sizes[1] > sizes[0] + 3 * 24, "{sizes:?}");
    }

    #[test]
    fn a_failed_batch_carries_its_typed_error_to_the_trainer() {
        let normalizer = Normalizer::new(None, 2);
        let schema = schema(decoded().shape);
        let bad = BadRecord {
            record: RecordId {
                file: "shard.parquet".into(),
                row: 7,
            },
            reason: "not a PNG or JPEG image".into(),
        };
        let w = WireBatch::encode(
            Err(bad.clone().into()),
            (0, 2),
            1,
            WireFormat::Raw,
            &normalizer,
            &schema,
        );
        let e = over_the_wire(&w)
            .into_batch(&normalizer, &schema, 0)
            .unwrap_err();
        assert!(matches!(&e, Error::BadRecord(b) if *b == bad), "{e:?}");
        assert_eq!(
            e.to_string(),
            "shard.parquet: row 7: not a PNG or JPEG image"
        );
    }
}
