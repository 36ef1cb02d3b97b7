//! The seed's `Network`: two conv + max-pool stages and three linear layers (tch).

use tch::Tensor;
use tch::nn::{self, Module};

use crate::error::{Error, Result};
use crate::source::Shape;

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
                return Err(Error::Config(format!(
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
