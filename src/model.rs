//! The models a run trains: the seed's `Network` (two conv + max-pool stages and three linear
//! layers, native tch), or a TorchScript module the user exported from PyTorch.

use std::path::Path;

use tch::nn::{self, Module};
use tch::{CModule, Device, Kind, Tensor, TrainableCModule};

use crate::config::SEED_MODEL;
use crate::error::{Error, Result};
use flowload_core::Shape;

/// A run's network, its parameters in the run's VarStore.
#[derive(Debug)]
pub enum Model {
    Seed(Box<Network>),
    /// A TorchScript module: parameters registered in the VarStore at load, on its device;
    /// buffers (BatchNorm's running statistics) stay in the module and are saved with it.
    Script(TrainableCModule, std::path::PathBuf),
}

impl Model {
    /// `seed`, or the TorchScript file `spec`, with its parameters in `vs`.
    pub fn new(spec: &str, vs: &nn::Path, shape: Shape, classes: usize) -> Result<Model> {
        if spec == SEED_MODEL {
            return Ok(Model::Seed(Box::new(Network::new(vs, shape, classes)?)));
        }
        let path = Path::new(spec);
        check_file(path)?;
        let module =
            TrainableCModule::load(path, vs.clone()).map_err(|e| not_torchscript(path, e))?;
        Ok(Model::Script(module, path.into()))
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Model::Seed(n) => Ok(n.forward(xs)),
            // A model that passed the probe can still fail on a batch (BatchNorm on a batch of
            // one while training): name the model and the input, in one line.
            Model::Script(m, path) => m.forward_ts(&[xs]).map_err(|e| Error::Model {
                path: path.clone(),
                detail: format!(
                    "forward fails on a batch of {:?}: {}",
                    xs.size(),
                    torch_reason(&e)
                ),
            }),
        }
    }

    /// Training mode (BatchNorm updates its statistics, Dropout drops) or evaluation mode.
    /// The seed's network has neither.
    pub fn set_train(&mut self, train: bool) {
        if let Model::Script(m, _) = self {
            if train { m.set_train() } else { m.set_eval() }
        }
    }

    /// The model as a checkpoint keeps it: the seed network's variables as `model/<name>`, or a
    /// TorchScript module's own archive (parameters and buffers) as the bytes of `module`,
    /// saved through a temporary file in `scratch`.
    pub fn state(&self, vs: &nn::VarStore, scratch: &Path) -> Result<Vec<(String, Tensor)>> {
        match self {
            Model::Seed(_) => Ok(vs
                .variables()
                .into_iter()
                .map(|(n, t)| (format!("model/{n}"), t))
                .collect()),
            Model::Script(m, _) => {
                std::fs::create_dir_all(scratch).map_err(|e| Error::io(scratch, e))?;
                let tmp = tempfile::Builder::new()
                    .prefix(".module.")
                    .suffix(".tmp")
                    .tempfile_in(scratch)
                    .map_err(|e| Error::io(scratch, e))?
                    .into_temp_path();
                m.save(&tmp)?;
                let bytes = std::fs::read(&tmp).map_err(|e| Error::io(&*tmp, e))?;
                Ok(vec![("module".into(), Tensor::from_slice(&bytes))])
            }
        }
    }

    /// The TorchScript module `spec` from the bytes of its archive (a checkpoint's), its
    /// parameters in `vs`.
    pub fn script_from_bytes(spec: &str, bytes: Vec<u8>, vs: &nn::VarStore) -> Result<Model> {
        let module = TrainableCModule::load_data(&mut std::io::Cursor::new(bytes), vs.root())
            .map_err(|e| not_torchscript(Path::new(spec), e))?;
        Ok(Model::Script(module, spec.into()))
    }

    /// Saves the trained network to `path`: a TorchScript module as TorchScript, buffers
    /// included; the seed's network as its VarStore (a TorchScript archive of named tensors,
    /// `conv1|weight`, …, that `scripts/load_seed_model.py` loads into the same architecture).
    pub fn save(&self, vs: &nn::VarStore, path: &Path) -> Result<()> {
        match self {
            Model::Seed(_) => vs.save(path)?,
            Model::Script(m, _) => m.save(path)?,
        }
        Ok(())
    }
}

/// Checks, before anything is written, that the TorchScript file `spec` loads, has a parameter
/// to train, and maps a `[2,C,H,W]` float32 batch of the data's shape to `[2,classes]` logits. The probe runs in
/// evaluation mode without gradients, on the CPU, so nothing in the module changes.
pub fn check_contract(spec: &str, shape: Shape, classes: usize) -> Result<()> {
    if spec == SEED_MODEL {
        return Ok(());
    }
    let path = Path::new(spec);
    check_file(path)?;
    let mut module =
        CModule::load_on_device(path, Device::Cpu).map_err(|e| not_torchscript(path, e))?;
    // Without a parameter that takes gradients, the first backward pass would abort.
    let trainable = module
        .named_parameters()
        .map_err(|e| not_torchscript(path, e))?
        .iter()
        .filter(|(_, t)| t.requires_grad())
        .count();
    if trainable == 0 {
        return Err(Error::Model {
            path: path.into(),
            detail: "has no trainable parameters (every parameter is frozen, or it has none): there is nothing to train".into(),
        });
    }
    module.set_eval();
    let input = [
        2,
        shape.channels as i64,
        shape.height as i64,
        shape.width as i64,
    ];
    let _guard = tch::no_grad_guard();
    let out = module
        .forward_ts(&[Tensor::zeros(input, (Kind::Float, Device::Cpu))])
        .map_err(|e| Error::Model {
            path: path.into(),
            detail: format!(
                "forward fails on the data's input {input:?} (float32, as flowload normalizes it): {}",
                torch_reason(&e)
            ),
        })?;
    let want = [2, classes as i64];
    if out.size() != want || out.kind() != Kind::Float {
        return Err(Error::Model {
            path: path.into(),
            detail: format!(
                "given {input:?} it returns {:?} {:?}; expected float logits {want:?} ({classes} classes)",
                out.kind(),
                out.size()
            ),
        });
    }
    Ok(())
}

fn check_file(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(Error::Model {
            path: path.into(),
            detail: "is not a file (a model is `seed` or a TorchScript .pt file)".into(),
        }),
        Err(e) => Err(Error::Model {
            path: path.into(),
            detail: format!("{e} (a model is `seed` or a TorchScript .pt file)"),
        }),
    }
}

fn not_torchscript(path: &Path, e: tch::TchError) -> Error {
    Error::Model {
        path: path.into(),
        detail: format!(
            "not a TorchScript module (save one with torch.jit.script(model).save(path)): {}",
            torch_reason(&e)
        ),
    }
}

/// libtorch's messages run over many lines (a C++ backtrace, a TorchScript traceback): the
/// reason is the last line that starts with an error's name (`RuntimeError: …`), or else the
/// first line that is not part of a backtrace.
fn torch_reason(e: &tch::TchError) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("frame #") && !l.starts_with("Exception raised from")
        })
        .collect();
    let named = |l: &&&str| {
        l.split_once(": ")
            .is_some_and(|(head, _)| head.ends_with("Error") && !head.contains([' ', ':']))
    };
    lines
        .iter()
        .rev()
        .find(named)
        .or(lines.first())
        .map_or_else(|| text.clone(), |l| l.to_string())
}

/// conv 1→6 k5, ReLU, maxpool 2; conv 6→12 k5, ReLU, maxpool 2; fc →120, fc 120→60, out 60→classes.
/// Input channels and the flattened size follow the data's shape (192 for 1×28×28).
#[derive(Debug)]
pub struct Network {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc1: nn::Linear,
    fc2: nn::Linear,
    out: nn::Linear,
}

impl Network {
    pub fn new(vs: &nn::Path, shape: Shape, classes: usize) -> Result<Network> {
        let side = |s: usize| (s.checked_sub(4)? / 2).checked_sub(4).map(|v| v / 2);
        let (h, w) = match (side(shape.height), side(shape.width)) {
            (Some(h), Some(w)) if h > 0 && w > 0 => (h, w),
            _ => {
                return Err(Error::config(format!(
                    "images of {}x{} are too small for the seed's network (two 5x5 convolutions and two 2x2 pools need at least 16x16)",
                    shape.height, shape.width
                )));
            }
        };
        let flat = (12 * h * w) as i64;
        Ok(Network {
            conv1: nn::conv2d(
                vs / "conv1",
                shape.channels as i64,
                6,
                5,
                Default::default(),
            ),
            conv2: nn::conv2d(vs / "conv2", 6, 12, 5, Default::default()),
            fc1: nn::linear(vs / "fc1", flat, 120, Default::default()),
            fc2: nn::linear(vs / "fc2", 120, 60, Default::default()),
            out: nn::linear(vs / "out", 60, classes as i64, Default::default()),
        })
    }
}

impl Module for Network {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.conv1)
            .relu()
            .max_pool2d_default(2)
            .apply(&self.conv2)
            .relu()
            .max_pool2d_default(2)
            .flatten(1, -1)
            .apply(&self.fc1)
            .relu()
            .apply(&self.fc2)
            .relu()
            .apply(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fashion_mnist_shape_flattens_to_192_and_gives_logits() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let shape = Shape {
            channels: 1,
            height: 28,
            width: 28,
        };
        let net = Network::new(&vs.root(), shape, 10).unwrap();
        assert_eq!(net.fc1.ws.size(), vec![120, 192]);
        let y = net.forward(&Tensor::zeros(
            [3, 1, 28, 28],
            (tch::Kind::Float, tch::Device::Cpu),
        ));
        assert_eq!(y.size(), vec![3, 10]);
    }

    #[test]
    fn too_small_images_are_a_clear_error() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let shape = Shape {
            channels: 3,
            height: 8,
            width: 8,
        };
        let e = Network::new(&vs.root(), shape, 10).unwrap_err().to_string();
        assert!(e.contains("8x8"), "{e}");
    }
}
