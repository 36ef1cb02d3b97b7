//! The optimizers as PyTorch's `torch.optim` runs them on the CPU (`_single_tensor_adam`,
//! `_single_tensor_sgd`), op for op and kernel for kernel, so that a model trains bit for bit
//! as in PyTorch, and with their state in our hands, so that a checkpoint holds it (tch cannot
//! save libtorch's, tch-rs#360). libtorch's C++ Adam computes the same formula with other
//! kernels (`mul_` and `add_` where Python uses `lerp_`, a separate multiply and add where
//! `addcmul_` rounds once): measured on the mini Fashion-MNIST, the seed's network ended its
//! second epoch 1.5e-5 (relative) from PyTorch's loss with it, and a small BatchNorm ResNet
//! 1.8e-4; with this one both are equal, bit for bit.
//!
//! Parameters are kept by their VarStore names, sorted: a VarStore lists its variables in a
//! hash map's order, which differs between processes, and a resumed run must find each
//! moment's parameter by name.

use std::collections::HashMap;

use tch::{Kind, Tensor, nn};

use crate::config::OptimizerKind;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Adam, AdamW or SGD with momentum over a VarStore's trainable variables.
pub struct Optimizer {
    params: Vec<(String, Tensor)>,
    rule: Rule,
    lr: f64,
    weight_decay: f64,
    /// `weight_decay` as an f32 tensor on the parameters' device, for the L2 term.
    alpha: Tensor,
}

enum Rule {
    /// Adam (`decoupled: false`) or AdamW (`decoupled: true`), PyTorch's betas and eps.
    Adam {
        decoupled: bool,
        exp_avg: Vec<Tensor>,
        exp_avg_sq: Vec<Tensor>,
        /// PyTorch keeps the step count in a float32 tensor.
        step: f32,
    },
    /// SGD; with momentum, its buffers (no dampening, not Nesterov). `-lr` as an f32 tensor.
    Sgd {
        momentum: f64,
        buffers: Vec<Option<Tensor>>,
        neg_lr: Tensor,
    },
}

impl Optimizer {
    /// `kind` over `vs`'s trainable variables, at learning rate `lr`.
    pub fn new(
        vs: &nn::VarStore,
        kind: OptimizerKind,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
    ) -> Option<Optimizer> {
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let device = params.first().map(|(_, p)| p.device())?;
        let zeros = || params.iter().map(|(_, p)| p.zeros_like()).collect();
        let rule = match kind {
            OptimizerKind::Adam | OptimizerKind::Adamw => Rule::Adam {
                decoupled: kind == OptimizerKind::Adamw,
                exp_avg: zeros(),
                exp_avg_sq: zeros(),
                step: 0.0,
            },
            OptimizerKind::Sgd => Rule::Sgd {
                momentum,
                buffers: params.iter().map(|_| None).collect(),
                neg_lr: Tensor::from(-lr as f32).to_device(device),
            },
            OptimizerKind::Other => return None,
        };
        Some(Optimizer {
            alpha: Tensor::from(weight_decay as f32).to_device(device),
            params,
            rule,
            lr,
            weight_decay,
        })
    }

    /// `zero_grad`, `backward`, `step`, as `opt.zero_grad(); loss.backward(); opt.step()`.
    pub fn backward_step(&mut self, loss: &Tensor) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
        loss.backward();
        let _guard = tch::no_grad_guard();
        let Optimizer {
            params,
            rule,
            lr,
            weight_decay,
            alpha,
        } = self;
        let (lr, weight_decay) = (*lr, *weight_decay);
        // grad.add(param, alpha=weight_decay): `a + alpha * b` in one rounding, as addcmul's
        // `self + 1 * t1 * t2` is.
        let l2 = |grad: Tensor, p: &Tensor| match weight_decay {
            0.0 => grad,
            _ => grad.addcmul(p, alpha),
        };
        match rule {
            Rule::Adam {
                decoupled,
                exp_avg,
                exp_avg_sq,
                step,
            } => {
                *step += 1.0;
                let step = *step as f64;
                let bias_correction1 = 1.0 - BETA1.powf(step);
                let bias_correction2 = 1.0 - BETA2.powf(step);
                let step_size = lr / bias_correction1;
                let bias_correction2_sqrt = bias_correction2.powf(0.5);
                for (((_, p), m), v) in params.iter_mut().zip(exp_avg).zip(exp_avg_sq) {
                    let mut grad = p.grad();
                    if !grad.defined() {
                        continue;
                    }
                    if *decoupled && weight_decay != 0.0 {
                        let _ = p.g_mul_scalar_(1.0 - lr * weight_decay);
                    } else if !*decoupled {
                        grad = l2(grad, p);
                    }
                    let _ = m.lerp_(&grad, 1.0 - BETA1);
                    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2): tch's
                    // addcmul_ has no `value`, and the kernel computes `self + value * t1 * t2`
                    // left to right, so `value * t1` is passed as t1 (the same product, then
                    // the same kernel).
                    let _ = v.g_mul_scalar_(BETA2);
                    let _ = v.addcmul_(&grad.g_mul_scalar(1.0 - BETA2), &grad);
                    let denom = (v.sqrt() / bias_correction2_sqrt).g_add_scalar(EPS);
                    // param.addcdiv_(exp_avg, denom, value=-step_size), the same way.
                    let _ = p.addcdiv_(&m.g_mul_scalar(-step_size), &denom);
                }
            }
            Rule::Sgd {
                momentum,
                buffers,
                neg_lr,
            } => {
                for ((_, p), buf) in params.iter_mut().zip(buffers) {
                    let mut grad = p.grad();
                    if !grad.defined() {
                        continue;
                    }
                    grad = l2(grad, p);
                    if *momentum != 0.0 {
                        grad = match buf {
                            // torch.clone(grad).detach() on the first step.
                            None => buf.insert(grad.detach().copy()).shallow_clone(),
                            // buf.mul_(momentum).add_(grad, alpha=1 - dampening), dampening 0.
                            Some(b) => {
                                let _ = b.g_mul_scalar_(*momentum);
                                let _ = b.g_add_(&grad);
                                b.shallow_clone()
                            }
                        };
                    }
                    // param.add_(grad, alpha=-lr): `p + (-lr) * grad` in one rounding, as
                    // addcmul's is.
                    let _ = p.addcmul_(&grad, neg_lr);
                }
            }
        }
    }

    /// The state a checkpoint keeps, by name: `exp_avg/<param>`, `exp_avg_sq/<param>` and
    /// `step` for Adam; `momentum_buffer/<param>` for SGD (none before its first step).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let named = |what: &str, ts: &[Tensor]| -> Vec<(String, Tensor)> {
            self.params
                .iter()
                .zip(ts)
                .map(|((n, _), t)| (format!("{what}/{n}"), t.shallow_clone()))
                .collect()
        };
        match &self.rule {
            Rule::Adam {
                exp_avg,
                exp_avg_sq,
                step,
                ..
            } => {
                let mut out = named("exp_avg", exp_avg);
                out.extend(named("exp_avg_sq", exp_avg_sq));
                out.push(("step".into(), Tensor::from(*step)));
                out
            }
            Rule::Sgd { buffers, .. } => self
                .params
                .iter()
                .zip(buffers)
                .filter_map(|((n, _), b)| {
                    b.as_ref()
                        .map(|b| (format!("momentum_buffer/{n}"), b.shallow_clone()))
                })
                .collect(),
        }
    }

    /// Puts back what [`Optimizer::state`] gave; the error names what is missing or does not fit.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<(), String> {
        let _guard = tch::no_grad_guard();
        let get = |key: &str, like: &Tensor| -> Result<Tensor, String> {
            let t = state.get(key).ok_or_else(|| format!("no {key}"))?;
            if t.size() != like.size() {
                return Err(format!(
                    "{key} is {:?}, the parameter {:?}",
                    t.size(),
                    like.size()
                ));
            }
            Ok(t.to_device(like.device()).to_kind(like.kind()))
        };
        let params = &self.params;
        match &mut self.rule {
            Rule::Adam {
                exp_avg,
                exp_avg_sq,
                step,
                ..
            } => {
                for (i, (n, p)) in params.iter().enumerate() {
                    exp_avg[i] = get(&format!("exp_avg/{n}"), p)?;
                    exp_avg_sq[i] = get(&format!("exp_avg_sq/{n}"), p)?;
                }
                let s = state.get("step").ok_or("no step")?;
                *step = s.to_kind(Kind::Float).double_value(&[]) as f32;
            }
            Rule::Sgd { buffers, .. } => {
                for (i, (n, p)) in params.iter().enumerate() {
                    let key = format!("momentum_buffer/{n}");
                    buffers[i] = match state.contains_key(&key) {
                        true => Some(get(&key, p)?),
                        false => None,
                    };
                }
            }
        }
        Ok(())
    }
}
