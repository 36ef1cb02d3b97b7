//! Training sink: the run's model (the seed's network, or a TorchScript module) learns from the
//! streamed Arrow batches (tch, GPU when present).

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

use tch::nn;
use tch::{Device, Kind, Tensor};

use super::checkpoint::{self, Checkpoint, Meta, Partial, Schedule};
use super::optim::Optimizer;
use super::{EpochFeed, Trained};
use crate::config::RunParams;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::results::EpochMetrics;
use flowload_core::{BadRecord, Batch, Loader, Position};

/// Resolves `auto`, `cpu`, `cuda` or `cuda:N`. An explicit CUDA device that is not there is an
/// error, never a silent fallback to the CPU.
pub fn parse_device(spec: &str) -> Result<Device> {
    let cuda = |n: usize| {
        let count = tch::Cuda::device_count() as usize;
        if n < count {
            Ok(Device::Cuda(n))
        } else {
            Err(Error::Device(format!(
                "--device {spec}: CUDA device {n} is not available (this process sees {count} CUDA device(s){})",
                if count == 0 {
                    "; is libtorch_cuda loaded and a GPU present?"
                } else {
                    ""
                }
            )))
        }
    };
    match spec {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        _ => match spec.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => cuda(n),
            _ => Err(Error::Device(format!(
                "--device {spec}: expected auto, cpu, cuda or cuda:N"
            ))),
        },
    }
}

pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Views a batch's image buffer as a `[B,C,H,W]` tensor. On the CPU this is the Arrow buffer
/// itself, no copy; on a GPU it is exactly one host→device copy.
///
/// The CPU tensor borrows `batch`: it must not outlive it, which `Trainer::step` guarantees by
/// finishing backward before the batch is dropped.
fn images_tensor(batch: &Batch, device: Device) -> Tensor {
    let s = batch.shape;
    let dims = [
        batch.rows() as i64,
        s.channels as i64,
        s.height as i64,
        s.width as i64,
    ];
    let values = batch.images();
    // SAFETY: `values` is a live, contiguous f32 buffer of exactly B·C·H·W elements, and the
    // returned tensor is dropped (and on CUDA, copied) before `batch` is.
    let view =
        unsafe { Tensor::from_blob(values.as_ptr().cast(), &dims, &[], Kind::Float, Device::Cpu) };
    if device == Device::Cpu {
        view
    } else {
        view.to_device(device)
    }
}

fn labels_tensor(batch: &Batch, device: Device) -> Tensor {
    let labels = batch.labels();
    // SAFETY: as above; i64 labels, one per row.
    let view = unsafe {
        Tensor::from_blob(
            labels.as_ptr().cast(),
            &[labels.len() as i64],
            &[],
            Kind::Int64,
            Device::Cpu,
        )
    };
    if device == Device::Cpu {
        view
    } else {
        view.to_device(device)
    }
}

/// The network, its optimizer and the device.
pub struct Trainer {
    net: Model,
    opt: Optimizer,
    device: Device,
    vs: nn::VarStore,
    /// The run's seed: with the position, what each step's random draws (dropout) come from.
    seed: u64,
}

/// The seed of libtorch's generator for the step at `(epoch, index)`: a dropout mask is a
/// function of the run's seed and the batch, as the augmentation is, so a run resumed from a
/// checkpoint draws the masks the uninterrupted run drew (tch cannot read the generator's
/// state to save it). SplitMix64's finalizer over the three.
fn step_seed(seed: u64, epoch: u32, index: usize) -> i64 {
    let mut z =
        seed ^ (u64::from(epoch) << 40) ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as i64
}

/// Loss summed over samples and correct predictions of some batches, kept on the device: adding
/// a batch does not wait for its step to finish (reading a value would, on a GPU). An epoch's
/// figures are read once, at its end.
struct Tally {
    loss_sum: Tensor,
    correct: Tensor,
    images: u64,
}

impl Tally {
    fn new(device: Device) -> Self {
        Tally {
            loss_sum: Tensor::zeros([], (Kind::Double, device)),
            correct: Tensor::zeros([], (Kind::Int64, device)),
            images: 0,
        }
    }
    fn add(&mut self, logits: &Tensor, loss: &Tensor, ys: &Tensor, rows: usize) {
        let _guard = tch::no_grad_guard();
        self.loss_sum += loss.detach().to_kind(Kind::Double) * rows as f64;
        self.correct += logits.argmax(-1, false).eq_tensor(ys).sum(Kind::Int64);
        self.images += rows as u64;
    }
    /// Mean loss and accuracy; reads the device.
    fn read(&self) -> (f64, f64) {
        let n = self.images.max(1) as f64;
        (
            self.loss_sum.double_value(&[]) / n,
            self.correct.int64_value(&[]) as f64 / n,
        )
    }

    /// The sums as a checkpoint keeps them.
    fn state(&self) -> Vec<(String, Tensor)> {
        vec![
            ("tally/loss_sum".into(), self.loss_sum.shallow_clone()),
            ("tally/correct".into(), self.correct.shallow_clone()),
        ]
    }

    /// The sums a checkpoint kept, for the epoch it stopped in.
    fn restored(c: &Checkpoint, device: Device) -> Result<Self> {
        let sums = c.group("tally");
        let get = |name: &str| {
            sums.get(name)
                .map(|t| t.to_device(device))
                .ok_or_else(|| Error::config(format!("{}: no tally/{name}", c.path.display())))
        };
        Ok(Tally {
            loss_sum: get("loss_sum")?,
            correct: get("correct")?,
            images: c.meta.partial.images,
        })
    }
}

impl Trainer {
    /// Builds the run's model on `device` with its optimizer. `seed` fixes the seed's network's
    /// initial weights; a TorchScript module brings its own.
    pub fn new(
        params: &RunParams,
        batch_shape: flowload_core::Shape,
        classes: usize,
        device: Device,
        (momentum, weight_decay): (f64, f64),
        resume: Option<&Checkpoint>,
    ) -> Result<Self> {
        tch::manual_seed(params.seed as i64);
        let vs = nn::VarStore::new(device);
        let net = match resume {
            Some(c) => c.model(&params.model, &vs, batch_shape, classes)?,
            None => Model::new(&params.model, &vs.root(), batch_shape, classes)?,
        };
        let mut opt = Optimizer::new(&vs, params.optimizer, params.lr, momentum, weight_decay)
            .ok_or_else(|| {
                Error::config(format!(
                    "optimizer '{}' marks a Python run's own optimizer, or the model has no parameter to train; flowload trains with adam, adamw or sgd",
                    params.optimizer.name()
                ))
            })?;
        if let Some(c) = resume {
            opt.load_state(&c.group("optimizer")).map_err(|why| {
                Error::config(format!(
                    "{}: the optimizer's state: {why}",
                    c.path.display()
                ))
            })?;
        }
        Ok(Trainer {
            net,
            opt,
            device,
            vs,
            seed: params.seed,
        })
    }

    /// Writes the run's checkpoint: the model, the optimizer, the partial epoch's sums, and
    /// `meta`. Returns the seconds it took.
    fn checkpoint(&self, schedule: &mut Schedule, tally: &Tally, meta: Meta) -> Result<f64> {
        let started = Instant::now();
        let mut tensors = self.net.state(&self.vs, &schedule.dir)?;
        tensors.extend(
            self.opt
                .state()
                .into_iter()
                .map(|(n, t)| (format!("optimizer/{n}"), t)),
        );
        tensors.extend(tally.state());
        checkpoint::write(&schedule.dir, meta, tensors)?;
        schedule.last = Instant::now();
        Ok(started.elapsed().as_secs_f64())
    }

    fn step(&mut self, batch: &Batch, tally: &mut Tally) -> Result<()> {
        let xs = images_tensor(batch, self.device);
        let ys = labels_tensor(batch, self.device);
        let logits = self.net.forward(&xs)?;
        let loss = logits.cross_entropy_for_logits(&ys);
        self.opt.backward_step(&loss);
        tally.add(&logits, &loss, &ys, batch.rows());
        Ok(())
    }

    fn evaluate(&mut self, test: &[Batch]) -> Result<(f64, f64)> {
        self.net.set_train(false);
        let _guard = tch::no_grad_guard();
        let mut tally = Tally::new(self.device);
        for batch in test.iter().filter(|b| b.rows() > 0) {
            let ys = labels_tensor(batch, self.device);
            let logits = self.net.forward(&images_tensor(batch, self.device))?;
            let loss = logits.cross_entropy_for_logits(&ys);
            tally.add(&logits, &loss, &ys, batch.rows());
        }
        Ok(tally.read())
    }

    /// Saves the trained model (see [`Model::save`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.net.save(&self.vs, path)
    }

    /// The training loop: every epoch takes `loader.batches_per_epoch()` batches, one optimizer
    /// step each, then evaluates on `test_batches`. `on_epoch` sees each epoch's row as it
    /// completes; records skipped in the first epoch are appended to `skipped`.
    ///
    /// With a `schedule`, a checkpoint is written at the first batch boundary after each
    /// interval and at each epoch's end (before its row goes to `on_epoch`). With `resume` (the
    /// checkpoint this trainer was made from, and the loader started at its position), the
    /// finished epochs' rows go to `on_epoch` first, and the stopped epoch goes on with its
    /// sums and timings.
    #[allow(clippy::too_many_arguments)]
    pub fn fit(
        &mut self,
        loader: &mut Loader,
        epochs: u32,
        test_batches: &[Batch],
        clock: super::RunClock,
        skipped: &mut Vec<BadRecord>,
        mut schedule: Option<Schedule>,
        resume: Option<&Checkpoint>,
        mut on_epoch: impl FnMut(&EpochMetrics) -> Result<()>,
    ) -> Result<Vec<EpochMetrics>> {
        let per_epoch = loader.batches_per_epoch();
        let (start, mut rows) = match resume {
            Some(c) => (c.meta.position, c.meta.rows.clone()),
            None => (Position::default(), Vec::with_capacity(epochs as usize)),
        };
        if let Some(c) = resume {
            skipped.extend(c.meta.skipped.iter().cloned());
        }
        rows.iter().try_for_each(&mut on_epoch)?;
        for epoch in start.epoch..epochs {
            let bar = progress_bar(per_epoch, epoch, epochs);
            let stopped_here = resume.filter(|_| epoch == start.epoch);
            let (first, before, mut tally) = match stopped_here {
                Some(c) => (
                    start.batch,
                    c.meta.partial,
                    Tally::restored(c, self.device)?,
                ),
                None => (0, Partial::default(), Tally::new(self.device)),
            };
            let (mut compute, mut written) = (before.compute_seconds, before.checkpoint_seconds);
            bar.set_position(first as u64);
            self.net.set_train(true);
            let mut feed = EpochFeed::new(loader, epoch, skipped).carrying(&before);
            for index in first..per_epoch {
                let batch = feed.next_batch()?;
                let t2 = Instant::now();
                if batch.rows() > 0 {
                    // (a batch whose every record was skipped trains nothing)
                    tch::manual_seed(step_seed(self.seed, epoch, index));
                    self.step(&batch, &mut tally)?;
                    compute += t2.elapsed().as_secs_f64();
                }
                bar.inc(1);
                bar.set_message(format!("{:.0} img/s", tally.images as f64 / feed.elapsed()));
                if let Some(sched) = schedule
                    .as_mut()
                    .filter(|s| s.due() && index + 1 < per_epoch)
                {
                    let meta = Meta {
                        version: 0,
                        identity: sched.identity.clone(),
                        position: Position {
                            epoch,
                            batch: index + 1,
                        },
                        partial: feed.partial(tally.images, compute, written),
                        run_seconds: clock.before + clock.start.elapsed().as_secs_f64(),
                        rows: rows.clone(),
                        skipped: feed.skipped_so_far(),
                        checksum: 0,
                    };
                    written += self.checkpoint(sched, &tally, meta)?;
                }
            }
            // The epoch's training time ends when its last step has: on a GPU, reading the
            // tally waits for it.
            let (loss, accuracy) = tally.read();
            let epoch_seconds = feed.elapsed();
            bar.finish_and_clear();
            let evaluated = Instant::now();
            let test = if test_batches.is_empty() {
                None
            } else {
                Some(self.evaluate(test_batches)?)
            };
            let trained = Trained {
                loss,
                accuracy,
                test,
                test_skipped: test_batches.iter().map(|b| b.skipped.len() as u64).sum(),
                eval_seconds: evaluated.elapsed().as_secs_f64(),
            };
            let mut row = feed.row(clock, epoch_seconds, tally.images, compute, Some(trained));
            row.resumed_from = stopped_here.map(|_| format!("epoch {} batch {}", epoch + 1, first));
            row.checkpoint_seconds = written;
            let skipped_now = feed.skipped_so_far();
            // The epoch-end checkpoint holds this row (less the checkpoint's own seconds), and
            // is written before the row: a stop in between resumes after this epoch.
            if let Some(sched) = schedule.as_mut() {
                let mut with_row = rows.clone();
                with_row.push(row.clone());
                let meta = Meta {
                    version: 0,
                    identity: sched.identity.clone(),
                    position: Position {
                        epoch: epoch + 1,
                        batch: 0,
                    },
                    partial: Partial::default(),
                    run_seconds: row.run_seconds,
                    rows: with_row,
                    skipped: skipped_now,
                    checksum: 0,
                };
                row.checkpoint_seconds += self.checkpoint(sched, &Tally::new(self.device), meta)?;
            }
            let end = row.checkpoint_seconds - written;
            row.checkpoint_share = row.checkpoint_seconds / (epoch_seconds + end).max(1e-9);
            on_epoch(&row)?;
            rows.push(row);
        }
        Ok(rows)
    }
}

/// One bar per epoch on a terminal; nothing when stdout is a pipe or a file.
fn progress_bar(batches: usize, epoch: u32, epochs: u32) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(batches as u64);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
    bar
}
