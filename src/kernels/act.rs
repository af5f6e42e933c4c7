//! Element-wise activations: one enum for the gemm epilogue, the autodiff ops and the CPU
//! references, with the codes of `shaders/lib/act.wgsl` (a test compares them).

/// An element-wise activation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    /// `x`.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// `x` for `x ≥ 0`, else `slope · x`.
    LeakyRelu(f32),
    /// `x · sigmoid(x)`.
    Silu,
    /// The tanh approximation `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    Gelu,
}

const GELU_C: f64 = 0.797_884_560_802_865_4; // √(2/π)

/// The argument of GELU's tanh, clamped to ±15 as on the GPU (tanh is ±1 in f32 there).
fn gelu_arg(x: f64) -> f64 {
    (GELU_C * (x + 0.044715 * x * x * x)).clamp(-15.0, 15.0)
}

impl Activation {
    /// `(code, slope)` as the kernels read them (`ACT_*` in `shaders/lib/act.wgsl`).
    pub fn code(self) -> (u32, f32) {
        match self {
            Activation::Identity => (0, 0.0),
            Activation::Relu => (1, 0.0),
            Activation::LeakyRelu(s) => (2, s),
            Activation::Silu => (3, 0.0),
            Activation::Gelu => (4, 0.0),
        }
    }

    /// The WGSL name of the activation's code constant.
    pub fn wgsl_const(self) -> &'static str {
        match self {
            Activation::Identity => "ACT_IDENTITY",
            Activation::Relu => "ACT_RELU",
            Activation::LeakyRelu(_) => "ACT_LEAKY_RELU",
            Activation::Silu => "ACT_SILU",
            Activation::Gelu => "ACT_GELU",
        }
    }

    /// Every kind (with slope 0.01 for the leaky ReLU).
    pub fn all() -> [Activation; 5] {
        [
            Activation::Identity,
            Activation::Relu,
            Activation::LeakyRelu(0.01),
            Activation::Silu,
            Activation::Gelu,
        ]
    }

    /// Whether `f'(x)` is a function of `f(x)` alone, with the same formula: `f` keeps the sign
    /// of `x` (identity, ReLU, a leaky ReLU of positive slope). The backward pass may then
    /// read the output instead of the input, and a layer's pre-activation need not be kept.
    pub fn derivative_from_output(self) -> bool {
        match self {
            Activation::Identity | Activation::Relu => true,
            Activation::LeakyRelu(s) => s > 0.0,
            Activation::Silu | Activation::Gelu => false,
        }
    }

    /// `f(x)` in f64 (the reference of the kernels).
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Activation::Identity => x,
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu(s) => {
                if x >= 0.0 {
                    x
                } else {
                    s as f64 * x
                }
            }
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::Gelu => 0.5 * x * (1.0 + gelu_arg(x).tanh()),
        }
    }

    /// `f'(x)` in f64.
    pub fn deriv(self, x: f64) -> f64 {
        match self {
            Activation::Identity => 1.0,
            Activation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu(s) => {
                if x >= 0.0 {
                    1.0
                } else {
                    s as f64
                }
            }
            Activation::Silu => {
                let sg = 1.0 / (1.0 + (-x).exp());
                sg * (1.0 + x * (1.0 - sg))
            }
            Activation::Gelu => {
                let th = gelu_arg(x).tanh();
                0.5 * (1.0 + th)
                    + 0.5 * x * (1.0 - th * th) * GELU_C * (1.0 + 3.0 * 0.044715 * x * x)
            }
        }
    }

    /// `f(x)` of an f32, computed in f64.
    pub fn apply_f32(self, x: f32) -> f32 {
        self.apply(x as f64) as f32
    }
}
