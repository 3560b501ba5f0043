//! A mix of request sizes for the load generator: each request draws its `n` from weighted
//! sizes with a seeded xorshift generator, so a run is the same sequence every time.
//!
//! Trade-offs: xorshift64* is tiny and fast (a few ns per draw, no dependency) but not
//! cryptographic, which a load mix does not need. Every client thread draws from its own
//! stream, seeded from the mix's seed and the client's index, so clients need no lock and
//! the sequence of each client is reproducible; the interleaving between clients is not
//! (it depends on the server's timing).

/// Weighted request sizes and the seed that makes their sequence repeatable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestMix {
    /// `(n, weight)`: `n` is drawn with probability weight / sum of weights.
    sizes: Vec<(u64, u32)>,
    seed: u64,
}

impl RequestMix {
    /// A mix of `sizes`, each `(n, weight)`, drawn from the sequence `seed` starts.
    ///
    /// # Errors
    /// If `sizes` is empty or every weight is zero.
    pub fn new(sizes: &[(u64, u32)], seed: u64) -> Result<Self, String> {
        if sizes.iter().all(|&(_, weight)| weight == 0) {
            return Err(
                "a request mix needs at least one size with a positive weight, e.g. (25000, 1)"
                    .to_owned(),
            );
        }
        Ok(RequestMix {
            sizes: sizes.to_vec(),
            seed,
        })
    }

    /// The sizes and their weights, as given.
    pub fn sizes(&self) -> &[(u64, u32)] {
        &self.sizes
    }

    /// The draws of client `stream`: its own repeatable sequence.
    pub(crate) fn sampler(&self, stream: u64) -> MixSampler {
        let mut total = 0u64;
        let cumulative = self
            .sizes
            .iter()
            .filter(|&&(_, weight)| weight > 0)
            .map(|&(n, weight)| {
                total += u64::from(weight);
                (total, n)
            })
            .collect();
        MixSampler {
            // splitmix64 spreads nearby seeds apart and never yields the all-zero state that
            // would stick xorshift at zero (after `| 1`).
            state: splitmix64(self.seed ^ splitmix64(stream)) | 1,
            cumulative,
            total,
        }
    }
}

/// One client's stream of sizes.
#[derive(Debug)]
pub(crate) struct MixSampler {
    state: u64,
    /// Running weight totals with their `n`, in the order given.
    cumulative: Vec<(u64, u64)>,
    total: u64,
}

impl MixSampler {
    /// The next request's `n`.
    pub(crate) fn next_n(&mut self) -> u64 {
        let pick = self.next_u64() % self.total;
        self.cumulative
            .iter()
            .find(|&&(upto, _)| pick < upto)
            .map_or(0, |&(_, n)| n)
    }

    /// A uniform draw from (0, 1]: never 0, so its logarithm is finite.
    pub(crate) fn next_unit(&mut self) -> f64 {
        // The top 53 bits, as many as an f64 holds exactly.
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// xorshift64* (Vigna, 2016).
    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_weights_and_repeat_for_a_seed() {
        let mix = RequestMix::new(&[(10, 90), (20, 9), (30, 1)], 7).unwrap();
        let draws: Vec<u64> = {
            let mut sampler = mix.sampler(0);
            (0..100_000).map(|_| sampler.next_n()).collect()
        };
        let share = |n| draws.iter().filter(|&&d| d == n).count() as f64 / draws.len() as f64;
        assert!((share(10) - 0.90).abs() < 0.01, "{}", share(10));
        assert!((share(20) - 0.09).abs() < 0.01, "{}", share(20));
        assert!((share(30) - 0.01).abs() < 0.005, "{}", share(30));
        let again: Vec<u64> = {
            let mut sampler = mix.sampler(0);
            (0..100_000).map(|_| sampler.next_n()).collect()
        };
        assert_eq!(draws, again, "the same seed and stream repeat");
        let mut other = mix.sampler(1);
        let other: Vec<u64> = (0..100).map(|_| other.next_n()).collect();
        assert_ne!(
            &draws[..100],
            &other[..],
            "another client draws another sequence"
        );
    }

    #[test]
    fn zero_weights_are_never_drawn_and_an_all_zero_mix_is_refused() {
        let mix = RequestMix::new(&[(1, 0), (2, 1)], 1).unwrap();
        let mut sampler = mix.sampler(3);
        assert!((0..1000).all(|_| sampler.next_n() == 2));
        assert!(RequestMix::new(&[(1, 0)], 1).is_err());
        assert!(RequestMix::new(&[], 1).is_err());
    }
}
