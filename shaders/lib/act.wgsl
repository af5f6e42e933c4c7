// Element-wise activations, by code (kernels::Activation on the host, with the same codes).
// GELU is the tanh approximation with its argument clamped to +-15 (tanh is +-1 to f32 there),
// so large inputs cannot overflow the cube.

const ACT_IDENTITY: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_LEAKY_RELU: u32 = 2u;
const ACT_SILU: u32 = 3u;
const ACT_GELU: u32 = 4u;
const ACT_SIN: u32 = 5u;

const GELU_C: f32 = 0.7978845608028654; // sqrt(2/pi)

fn gelu_arg(x: f32) -> f32 {
    return clamp(GELU_C * (x + 0.044715 * x * x * x), -15.0, 15.0);
}

// f(x); `slope` is the leaky ReLU's negative slope.
fn act_apply(code: u32, slope: f32, x: f32) -> f32 {
    switch code {
        case ACT_RELU: { return max(x, 0.0); }
        case ACT_LEAKY_RELU: { return select(slope * x, x, x >= 0.0); }
        case ACT_SILU: { return x / (1.0 + exp(-x)); }
        case ACT_GELU: { return 0.5 * x * (1.0 + tanh(gelu_arg(x))); }
        case ACT_SIN: { return sin(x); }
        default: { return x; }
    }
}

// f'(x).
fn act_deriv(code: u32, slope: f32, x: f32) -> f32 {
    switch code {
        case ACT_RELU: { return select(0.0, 1.0, x > 0.0); }
        case ACT_LEAKY_RELU: { return select(slope, 1.0, x >= 0.0); }
        case ACT_SILU: {
            let sg = 1.0 / (1.0 + exp(-x));
            return sg * (1.0 + x * (1.0 - sg));
        }
        case ACT_GELU: {
            let th = tanh(gelu_arg(x));
            return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * GELU_C * (1.0 + 0.134145 * x * x);
        }
        case ACT_SIN: { return cos(x); }
        default: { return 1.0; }
    }
}
