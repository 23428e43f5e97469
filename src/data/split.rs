//! The validation hold-out of §4.2 ("45k/5k train/val split" for the plateau study) and of any
//! `data.validation = N`: a seeded random choice of N training images evaluated instead of the
//! test split. One rule for every data source, so that in-memory and streamed data hold out the
//! same images for the same seed.
use super::rng::SplitMix64;
use anyhow::{bail, Result};

/// Mixed into the run seed for the hold-out's permutation (so it differs from the epoch order's).
const SEED_MIX: u64 = 0x005e_ed0f_5917;

/// Which of `n` training images are held out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holdout {
    /// The held-out images, in the order of the seeded permutation.
    pub held: Vec<usize>,
    /// The remaining training images, in the order of the seeded permutation.
    pub rest: Vec<usize>,
}

/// Holds out `validation` of `n` training images (`validation` > 0), chosen by a permutation
/// seeded from `seed`; refuses a hold-out that leaves no training image.
pub fn holdout(n: usize, validation: usize, seed: u64) -> Result<Holdout> {
    if validation >= n {
        bail!("data.validation = {validation}: must be smaller than the {n} training images");
    }
    let mut idx: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed ^ SEED_MIX).shuffle(&mut idx);
    let rest = idx.split_off(validation);
    Ok(Holdout { held: idx, rest })
}

impl Holdout {
    /// Whether each of the `n` training images is held out.
    pub fn mask(&self, n: usize) -> Vec<bool> {
        let mut m = vec![false; n];
        for &i in &self.held {
            m[i] = true;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_partitions_and_repeats_for_a_seed() {
        let h = holdout(20, 5, 3).unwrap();
        assert_eq!((h.held.len(), h.rest.len()), (5, 15));
        let mut all: Vec<usize> = h.held.iter().chain(&h.rest).copied().collect();
        all.sort();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
        assert_eq!(h, holdout(20, 5, 3).unwrap());
        assert_ne!(h.held, holdout(20, 5, 4).unwrap().held);
        assert_eq!(h.mask(20).iter().filter(|&&b| b).count(), 5);
        let e = holdout(5, 5, 0).unwrap_err().to_string();
        assert!(e.contains("data.validation = 5"), "{e}");
    }
}
