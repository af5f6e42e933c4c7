//! The state of a reduce-on-plateau learning-rate schedule ([`LrSchedule::Plateau`]): the
//! mean training loss of every window of steps is compared with the best so far; after more
//! than `patience` windows without a relative improvement of [`THRESHOLD`] the rate is
//! multiplied by `factor` (PyTorch's `ReduceLROnPlateau` in `min` mode with its default
//! threshold, with the window as the epoch and the mean training loss of the window as the
//! monitored loss: under fresh draws every batch it estimates the same expectation as a
//! validation loss, from more samples).
//!
//! [`LrSchedule::Plateau`]: super::LrSchedule::Plateau

use serde::{Deserialize, Serialize};

/// The relative improvement that counts as one.
pub const THRESHOLD: f64 = 1e-4;
/// Steps of a window by default: the published toy epoch (100,000 sequences in batches of
/// 512).
pub const WINDOW: u64 = 196;
/// Windows without improvement before a reduction, by default.
pub const PATIENCE: u32 = 10;
/// The factor of a reduction, by default.
pub const FACTOR: f32 = 0.1;

/// Where a plateau schedule stands (stored in checkpoints).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    /// The current rate as a fraction of the optimizer's.
    pub scale: f32,
    /// The best window mean so far.
    pub best: Option<f64>,
    /// Windows since the last improvement (or reduction).
    pub bad: u32,
    /// Sum of the losses of the current window's steps read so far.
    pub sum: f64,
    /// Steps of the current window read so far.
    pub steps: u64,
    /// Reductions made.
    pub reductions: u32,
}

impl Default for PlateauState {
    fn default() -> Self {
        Self {
            scale: 1.0,
            best: None,
            bad: 0,
            sum: 0.0,
            steps: 0,
            reductions: 0,
        }
    }
}

impl PlateauState {
    /// Count `steps` steps of mean loss `mean` into the current window.
    pub fn observe(&mut self, mean: f64, steps: u64) {
        self.sum += mean * steps as f64;
        self.steps += steps;
    }

    /// Close the window: compare its mean with the best and reduce the rate after more than
    /// `patience` windows without improvement. Returns whether it reduced.
    pub fn end_window(&mut self, factor: f32, patience: u32) -> bool {
        if self.steps == 0 {
            return false;
        }
        let mean = self.sum / self.steps as f64;
        (self.sum, self.steps) = (0.0, 0);
        match self.best {
            Some(b) if mean >= b * (1.0 - THRESHOLD) => {
                self.bad += 1;
                if self.bad > patience {
                    self.scale *= factor;
                    self.bad = 0;
                    self.reductions += 1;
                    return true;
                }
            }
            _ => {
                self.best = Some(mean);
                self.bad = 0;
            }
        }
        false
    }
}
