//! Adam and AdamW as PyTorch's `torch.optim` runs them on the CPU (`_single_tensor_adam`), op
//! for op and kernel for kernel, so that a model trains bit for bit as in PyTorch. libtorch's
//! C++ Adam computes the same formula with other kernels (`mul_` and `add_` where Python uses
//! `lerp_`, a separate multiply and add where `addcmul_` rounds once): measured on the mini
//! Fashion-MNIST, the seed's network ended its second epoch 1.5e-5 (relative) from PyTorch's
//! loss with it, and a small BatchNorm ResNet 1.8e-4; with this one both are equal, bit for bit.

use tch::{Tensor, nn};

/// Adam (`decoupled: false`) or AdamW (`decoupled: true`), with PyTorch's defaults for betas
/// and eps.
pub struct Adam {
    params: Vec<Tensor>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    /// PyTorch keeps the step count in a float32 tensor.
    step: f32,
    lr: f64,
    weight_decay: f64,
    /// `weight_decay` as an f32 tensor on the parameters' device, for the L2 term.
    alpha: Option<Tensor>,
    decoupled: bool,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl Adam {
    pub fn new(vs: &nn::VarStore, lr: f64, weight_decay: f64, decoupled: bool) -> Adam {
        let params = vs.trainable_variables();
        let zeros = |p: &Tensor| p.zeros_like();
        let alpha = params
            .first()
            .map(|p| Tensor::from(weight_decay as f32).to_device(p.device()));
        Adam {
            alpha,
            exp_avg: params.iter().map(zeros).collect(),
            exp_avg_sq: params.iter().map(zeros).collect(),
            params,
            step: 0.0,
            lr,
            weight_decay,
            decoupled,
        }
    }

    /// `zero_grad`, `backward`, `step`, as `opt.zero_grad(); loss.backward(); opt.step()`.
    pub fn backward_step(&mut self, loss: &Tensor) {
        for p in &mut self.params {
            p.zero_grad();
        }
        loss.backward();
        self.step();
    }

    fn step(&mut self) {
        let _guard = tch::no_grad_guard();
        self.step += 1.0;
        let step = self.step as f64;
        let bias_correction1 = 1.0 - BETA1.powf(step);
        let bias_correction2 = 1.0 - BETA2.powf(step);
        let step_size = self.lr / bias_correction1;
        let bias_correction2_sqrt = bias_correction2.powf(0.5);
        for ((p, m), v) in self
            .params
            .iter_mut()
            .zip(&mut self.exp_avg)
            .zip(&mut self.exp_avg_sq)
        {
            let mut grad = p.grad();
            if !grad.defined() {
                continue;
            }
            if self.weight_decay != 0.0 {
                if self.decoupled {
                    let _ = p.g_mul_scalar_(1.0 - self.lr * self.weight_decay);
                } else {
                    // grad.add(param, alpha=weight_decay): `a + alpha * b` in one rounding,
                    // as addcmul's `self + 1 * t1 * t2` is.
                    let alpha = self.alpha.as_ref().expect("a parameter exists");
                    grad = grad.addcmul(p, alpha);
                }
            }
            let _ = m.lerp_(&grad, 1.0 - BETA1);
            // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2): tch's addcmul_
            // has no `value`, and the kernel computes `self + value * t1 * t2` left to right,
            // so `value * t1` is passed as t1 (the same product, then the same kernel).
            let _ = v.g_mul_scalar_(BETA2);
            let _ = v.addcmul_(&grad.g_mul_scalar(1.0 - BETA2), &grad);
            let denom = (v.sqrt() / bias_correction2_sqrt).g_add_scalar(EPS);
            // param.addcdiv_(exp_avg, denom, value=-step_size), the same way.
            let _ = p.addcdiv_(&m.g_mul_scalar(-step_size), &denom);
        }
    }
}
