//! Training sink: the run's model (the seed's network, or a TorchScript module) learns from the
//! streamed Arrow batches (tch, GPU when present).

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::optim::Adam;
use super::{EpochFeed, Trained};
use crate::config::{OptimizerKind, RunParams};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::results::EpochMetrics;
use flowload_core::{BadRecord, Batch, Loader};

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

/// libtorch's optimizer, or one written op for op as PyTorch's Python runs it.
enum Optimizer {
    Libtorch(nn::Optimizer),
    Python(Adam),
}

/// The network, its optimizer and the device.
pub struct Trainer {
    net: Model,
    opt: Optimizer,
    device: Device,
    vs: nn::VarStore,
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
    ) -> Result<Self> {
        tch::manual_seed(params.seed as i64);
        let vs = nn::VarStore::new(device);
        let net = Model::new(&params.model, &vs.root(), batch_shape, classes)?;
        let lr = params.lr;
        let opt = match params.optimizer {
            OptimizerKind::Adam => Optimizer::Python(Adam::new(&vs, lr, weight_decay, false)),
            OptimizerKind::Adamw => Optimizer::Python(Adam::new(&vs, lr, weight_decay, true)),
            OptimizerKind::Sgd => Optimizer::Libtorch(
                nn::Sgd {
                    momentum,
                    wd: weight_decay,
                    ..Default::default()
                }
                .build(&vs, lr)?,
            ),
            OptimizerKind::Other => {
                return Err(Error::config(
                    "optimizer 'other' marks a Python run's own optimizer; flowload trains with adam, adamw or sgd",
                ));
            }
        };
        Ok(Trainer {
            net,
            opt,
            device,
            vs,
        })
    }

    fn step(&mut self, batch: &Batch, tally: &mut Tally) -> Result<()> {
        let xs = images_tensor(batch, self.device);
        let ys = labels_tensor(batch, self.device);
        let logits = self.net.forward(&xs)?;
        let loss = logits.cross_entropy_for_logits(&ys);
        match &mut self.opt {
            Optimizer::Python(o) => o.backward_step(&loss),
            Optimizer::Libtorch(o) => o.backward_step(&loss),
        }
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
    /// step each, then evaluates on `test_batches`. `on_epoch` sees each epoch's row as it completes;
    /// records skipped in the first epoch are appended to `skipped`.
    pub fn fit(
        &mut self,
        loader: &mut Loader,
        epochs: u32,
        test_batches: &[Batch],
        clock: super::RunClock,
        skipped: &mut Vec<BadRecord>,
        mut on_epoch: impl FnMut(&EpochMetrics) -> Result<()>,
    ) -> Result<Vec<EpochMetrics>> {
        let per_epoch = loader.batches_per_epoch();
        let mut rows = Vec::with_capacity(epochs as usize);
        for epoch in 0..epochs {
            let bar = progress_bar(per_epoch, epoch, epochs);
            let (mut compute, mut tally) = (0.0, Tally::new(self.device));
            self.net.set_train(true);
            let mut feed = EpochFeed::new(loader, epoch, skipped);
            for _ in 0..per_epoch {
                let batch = feed.next_batch()?;
                let t2 = Instant::now();
                if batch.rows() == 0 {
                    continue; // every record of this batch was skipped
                }
                self.step(&batch, &mut tally)?;
                compute += t2.elapsed().as_secs_f64();
                bar.inc(1);
                bar.set_message(format!("{:.0} img/s", tally.images as f64 / feed.elapsed()));
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
            let row = feed.row(clock, epoch_seconds, tally.images, compute, Some(trained));
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
