// Trigonometry to about 1 ulp in f32 for the manifold kernels. The built-ins may be much
// coarser (Vulkan allows an absolute error of 2^-11 for sin/cos and 4096 ulp for atan), and
// the sphere kernels are compared with an f64 reference at 1e-5, so they carry their own.

// Below this argument, sin(z)/z uses its Taylor series.
const SINC_TINY: f32 = 1e-3;

const PIO2_HI: f32 = 1.5707963705062866;    // f32(pi/2)
const PIO2_LO: f32 = -4.3711388286737929e-8; // pi/2 - PIO2_HI
const TWO_OVER_PI: f32 = 0.63661977236758134;

// Taylor polynomials on [-pi/4, pi/4] (truncation below 2e-9).
fn sin_poly(r: f32) -> f32 {
    let r2 = r * r;
    return r + r * r2 * (-1.6666667e-1 + r2 * (8.3333333e-3 + r2 * (-1.9841270e-4
        + r2 * (2.7557319e-6 + r2 * -2.5052108e-8))));
}

fn cos_poly(r: f32) -> f32 {
    let r2 = r * r;
    return 1.0 + r2 * (-0.5 + r2 * (4.1666667e-2 + r2 * (-1.3888889e-3 + r2 * (2.4801587e-5
        + r2 * -2.7557319e-7))));
}

// (sin z, cos z) with Cody-Waite reduction by pi/2 (accurate for |z| up to ~1e4).
fn sincos(z: f32) -> vec2<f32> {
    let q = round(z * TWO_OVER_PI);
    let r = (z - q * PIO2_HI) - q * PIO2_LO;
    let s = sin_poly(r);
    let c = cos_poly(r);
    let quadrant = u32(i32(q) & 3);
    switch quadrant {
        case 0u: { return vec2<f32>(s, c); }
        case 1u: { return vec2<f32>(c, -s); }
        case 2u: { return vec2<f32>(-s, -c); }
        default: { return vec2<f32>(-c, s); }
    }
}

fn sin_acc(z: f32) -> f32 {
    return sincos(z).x;
}

fn cos_acc(z: f32) -> f32 {
    return sincos(z).y;
}

// atan(y / x) for y, x >= 0, not both zero, in [0, pi/2].
fn atan_pos(y: f32, x: f32) -> f32 {
    let swap = y > x;
    let z = select(y / x, x / y, swap);           // in [0, 1]
    let big = z > 0.41421356;                      // tan(pi/8)
    let w = select(z, (z - 1.0) / (z + 1.0), big); // |w| <= tan(pi/8)
    let w2 = w * w;
    // Taylor series of atan to w^19 (truncation below 3e-9 on |w| <= tan(pi/8)).
    var p = -1.0 / 19.0;
    p = 1.0 / 17.0 + w2 * p;
    p = -1.0 / 15.0 + w2 * p;
    p = 1.0 / 13.0 + w2 * p;
    p = -1.0 / 11.0 + w2 * p;
    p = 1.0 / 9.0 + w2 * p;
    p = -1.0 / 7.0 + w2 * p;
    p = 1.0 / 5.0 + w2 * p;
    p = -1.0 / 3.0 + w2 * p;
    var a = w + w * w2 * p;
    a = select(a, a + 0.78539816, big);
    return select(a, PIO2_HI - a + PIO2_LO, swap);
}

fn sinc(z: f32) -> f32 {
    if (abs(z) < SINC_TINY) {
        return 1.0 - z * z / 6.0;
    }
    return sin_acc(z) / z;
}
