//! Token length distributions, validated and ready to draw from.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal};

use crate::error::Error;

use super::Ctx;
use super::data::{self, Shared};
use super::spec::LengthSpec;

/// A validated length distribution. Every draw is in `[1, upper_bound()]`.
#[derive(Clone, Debug)]
pub(crate) enum Sampler {
    /// Always this many tokens.
    Fixed(u32),
    /// Uniform over `lo..=hi`.
    Uniform { lo: u32, hi: u32 },
    /// Normal clamped to `[lo, hi]`, rounded.
    Normal { dist: Normal<f64>, lo: u32, hi: u32 },
    /// Log-normal clamped to `[lo, hi]`, rounded.
    LogNormal {
        dist: LogNormal<f64>,
        /// Mean of the log, kept for the exact pmf (rand_distr hides it).
        mu: f64,
        /// Standard deviation of the log.
        sigma: f64,
        lo: u32,
        hi: u32,
    },
    /// Components with cumulative normalized weights (the last is exactly 1).
    Mixture(Shared<(f64, Sampler)>),
    /// Values of a file column, already clamped.
    Empirical(Shared<u32>),
}

/// Above this many support points a parametric distribution's mean is
/// estimated by sampling instead of summed exactly (a `max` in the millions).
const EXACT_SUPPORT_LIMIT: u64 = 1 << 20;

/// Draws for the sampled mean estimate: standard error about 0.3 % of the mean
/// for a log-normal with sigma = 1.
const MEAN_SAMPLES: usize = 200_000;

/// Seed of the sampled mean estimate, fixed so that it is deterministic.
const MEAN_SEED: u64 = 0x6b76_7369_6d5f_6d65;

/// What a distribution counts, for the reason of a 0 lower bound.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Unit {
    /// Tokens of a request.
    Tokens,
    /// Turns of a session.
    Turns,
}

impl Unit {
    /// Why the count must be at least 1.
    fn at_least_one(self) -> &'static str {
        match self {
            Unit::Tokens => "must be at least 1: a request has at least one token",
            Unit::Turns => "must be at least 1: a session has at least one turn",
        }
    }
}

/// Checks `1 <= min <= max`.
fn bounds(ctx: &Ctx<'_>, key: &str, unit: Unit, min: u32, max: u32) -> Result<(u32, u32), Error> {
    if min == 0 {
        return Err(ctx.err(format!("{key}.min"), unit.at_least_one()));
    }
    if min > max {
        return Err(ctx.err(
            format!("{key}.max"),
            format!(
                "must be >= min ({min}), got {}",
                crate::ranges::number(max as f64)
            ),
        ));
    }
    Ok((min, max))
}

impl Sampler {
    /// Validates the token-length `spec`, found at dotted `key`, loading its
    /// file if any.
    pub(crate) fn build(spec: &LengthSpec, key: &str, ctx: &Ctx<'_>) -> Result<Sampler, Error> {
        Sampler::build_counting(spec, key, Unit::Tokens, ctx)
    }

    /// Validates `spec`, found at dotted `key`, a distribution of `unit`s.
    pub(crate) fn build_counting(
        spec: &LengthSpec,
        key: &str,
        unit: Unit,
        ctx: &Ctx<'_>,
    ) -> Result<Sampler, Error> {
        Ok(match spec {
            LengthSpec::Fixed { value } => {
                if *value == 0 {
                    return Err(ctx.err(format!("{key}.value"), unit.at_least_one()));
                }
                Sampler::Fixed(*value)
            }
            LengthSpec::Uniform { min, max } => {
                let (lo, hi) = bounds(ctx, key, unit, *min, *max)?;
                Sampler::Uniform { lo, hi }
            }
            LengthSpec::Normal {
                mean,
                std,
                min,
                max,
            } => {
                let mean = ctx.positive(&format!("{key}.mean"), *mean)?;
                let std = ctx.non_negative(&format!("{key}.std"), *std)?;
                let (lo, hi) = bounds(ctx, key, unit, *min, *max)?;
                let dist = Normal::new(mean, std)
                    .map_err(|e| ctx.err(format!("{key}.std"), e.to_string()))?;
                Sampler::Normal { dist, lo, hi }
            }
            LengthSpec::Lognormal {
                mean,
                sigma,
                min,
                max,
            } => {
                let mean = ctx.positive(&format!("{key}.mean"), *mean)?;
                let sigma = ctx.non_negative(&format!("{key}.sigma"), *sigma)?;
                let (lo, hi) = bounds(ctx, key, unit, *min, *max)?;
                // `mean` is the arithmetic mean: E[X] = exp(mu + sigma^2 / 2).
                let mu = mean.ln() - sigma * sigma / 2.0;
                if !mu.is_finite() {
                    return Err(ctx.err(
                        format!("{key}.sigma"),
                        format!(
                            "is too large for a log-normal length, got {}",
                            crate::ranges::number(sigma as f64)
                        ),
                    ));
                }
                let dist = LogNormal::new(mu, sigma)
                    .map_err(|e| ctx.err(format!("{key}.sigma"), e.to_string()))?;
                Sampler::LogNormal {
                    dist,
                    mu,
                    sigma,
                    lo,
                    hi,
                }
            }
            LengthSpec::Mixture { components } => {
                if components.is_empty() {
                    return Err(ctx.err(
                        format!("{key}.components"),
                        "must list at least one component",
                    ));
                }
                let mut built = Vec::with_capacity(components.len());
                let mut total = 0.0;
                for (i, c) in components.iter().enumerate() {
                    let ckey = format!("{key}.components[{i}]");
                    let w = ctx.positive(&format!("{ckey}.weight"), c.weight)?;
                    total += w;
                    built.push((
                        total,
                        Sampler::build_counting(&c.dist, &format!("{ckey}.dist"), unit, ctx)?,
                    ));
                }
                if !total.is_finite() {
                    return Err(ctx.err(
                        format!("{key}.components"),
                        "the weights' sum is not finite",
                    ));
                }
                for (cum, _) in &mut built {
                    *cum /= total;
                }
                // Rounding could leave the last cumulative weight at 0.999...;
                // pin it so a uniform draw always lands on a component.
                if let Some(last) = built.last_mut() {
                    last.0 = 1.0;
                }
                Sampler::Mixture(Shared::new(built))
            }
            LengthSpec::Empirical {
                path,
                column,
                min,
                max,
                zero_tokens,
            } => {
                let lo = min.unwrap_or(1);
                let hi = max.unwrap_or(u32::MAX);
                bounds(ctx, key, unit, lo, hi)?;
                let file = ctx.resolve(path);
                let mut values = data::load_column(&file, column, *zero_tokens, key)?;
                for v in &mut values {
                    *v = (*v).clamp(lo, hi);
                }
                Sampler::Empirical(Shared::new(values))
            }
        })
    }

    /// One length, tokens, in `[1, upper_bound()]`. O(1) (a mixture scans its
    /// few components) and allocation-free.
    pub(crate) fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        match self {
            Sampler::Fixed(v) => *v,
            Sampler::Uniform { lo, hi } => rng.random_range(*lo..=*hi),
            Sampler::Normal { dist, lo, hi } => clamp_round(dist.sample(rng), *lo, *hi),
            Sampler::LogNormal { dist, lo, hi, .. } => clamp_round(dist.sample(rng), *lo, *hi),
            Sampler::Mixture(components) => {
                let u: f64 = rng.random();
                let chosen = components
                    .iter()
                    .find(|(cum, _)| u < *cum)
                    .or(components.last())
                    .map(|(_, s)| s);
                // A mixture has at least one component (validated).
                chosen.map_or(1, |s| s.sample(rng))
            }
            Sampler::Empirical(values) => values[rng.random_range(0..values.len())],
        }
    }

    /// The largest length a draw can return.
    pub(crate) fn upper_bound(&self) -> u32 {
        match self {
            Sampler::Fixed(v) => *v,
            Sampler::Uniform { hi, .. }
            | Sampler::Normal { hi, .. }
            | Sampler::LogNormal { hi, .. } => *hi,
            Sampler::Mixture(components) => components
                .iter()
                .map(|(_, s)| s.upper_bound())
                .max()
                .unwrap_or(1),
            Sampler::Empirical(values) => values.iter().copied().max().unwrap_or(1),
        }
    }

    /// The distribution of draws as (length, probability) sorted by length.
    ///
    /// Exact for fixed, uniform and empirical lengths, and for normal and
    /// log-normal ones whose `[min, max]` spans at most
    /// [`EXACT_SUPPORT_LIMIT`] integers: the probability of each rounded,
    /// clamped value is computed from the normal CDF (relative error ~1e-7).
    /// Wider parametric ones are estimated from [`MEAN_SAMPLES`] draws of a
    /// fixed seed (deterministic).
    pub(crate) fn pmf(&self) -> Vec<(u32, f64)> {
        match self {
            Sampler::Fixed(v) => vec![(*v, 1.0)],
            Sampler::Uniform { lo, hi } if support(*lo, *hi) <= EXACT_SUPPORT_LIMIT => {
                let p = 1.0 / support(*lo, *hi) as f64;
                (*lo..=*hi).map(|v| (v, p)).collect()
            }
            Sampler::Normal { dist, lo, hi } if support(*lo, *hi) <= EXACT_SUPPORT_LIMIT => {
                let (mean, std) = (dist.mean(), dist.std_dev());
                clamped_rounded_pmf(*lo, *hi, |x| normal_survival((x - mean) / std))
            }
            Sampler::LogNormal {
                mu, sigma, lo, hi, ..
            } if support(*lo, *hi) <= EXACT_SUPPORT_LIMIT => {
                clamped_rounded_pmf(*lo, *hi, |x| normal_survival((x.ln() - mu) / sigma))
            }
            Sampler::Uniform { .. } | Sampler::Normal { .. } | Sampler::LogNormal { .. } => {
                let mut rng = ChaCha8Rng::seed_from_u64(MEAN_SEED);
                let draws: Vec<u32> = (0..MEAN_SAMPLES).map(|_| self.sample(&mut rng)).collect();
                counts_pmf(draws)
            }
            Sampler::Mixture(components) => {
                let mut all = Vec::new();
                let mut prev = 0.0;
                for (cum, s) in components.iter() {
                    let w = cum - prev;
                    prev = *cum;
                    all.extend(s.pmf().into_iter().map(|(v, p)| (v, p * w)));
                }
                merge_pmf(all)
            }
            Sampler::Empirical(values) => counts_pmf(values.to_vec()),
        }
    }
}

/// How far clamping to `[min, max]` may move a distribution's mean before
/// kvsim warns: beyond it the traffic is not what the file says.
pub const MEAN_SHIFT_WARN: f64 = 0.10;

impl Sampler {
    /// Warnings, one per normal or log-normal distribution (at `key`, or in a
    /// mixture under it) whose clamping to `[min, max]` moves the mean by
    /// more than [`MEAN_SHIFT_WARN`] of the requested `mean`.
    pub(crate) fn mean_shift_warnings(&self, key: &str, out: &mut Vec<String>) {
        let (requested, lo, hi) = match self {
            Sampler::Normal { dist, lo, hi } => (dist.mean(), *lo, *hi),
            Sampler::LogNormal {
                mu, sigma, lo, hi, ..
            } => ((mu + sigma * sigma / 2.0).exp(), *lo, *hi),
            Sampler::Mixture(components) => {
                for (i, (_, c)) in components.iter().enumerate() {
                    c.mean_shift_warnings(&format!("{key}.components[{i}].dist"), out);
                }
                return;
            }
            Sampler::Fixed(_) | Sampler::Uniform { .. } | Sampler::Empirical(_) => return,
        };
        let effective = pmf_mean(&self.pmf());
        if requested <= 0.0
            || !requested.is_finite()
            || ((effective - requested) / requested).abs() <= MEAN_SHIFT_WARN
        {
            return;
        }
        out.push(format!(
            "`{key}`: clamping to [min, max] = [{lo}, {hi}] moves the mean from the requested \
             {} to {} ({:+.0} %); widen `{key}.min`/`{key}.max` or change the spread",
            fmt_mean(requested),
            fmt_mean(effective),
            (effective - requested) / requested * 100.0
        ));
    }
}

/// A mean for messages: whole numbers as such, others to one decimal.
fn fmt_mean(x: f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn support(lo: u32, hi: u32) -> u64 {
    u64::from(hi) - u64::from(lo) + 1
}

/// Clamps `x` to `[lo, hi]` and rounds to the nearest integer. Clamping first
/// keeps the conversion in range (a normal can draw negative values).
fn clamp_round(x: f64, lo: u32, hi: u32) -> u32 {
    let y = x.clamp(f64::from(lo), f64::from(hi)).round();
    // NaN cannot come out of validated parameters; map it to `lo` regardless.
    if y.is_nan() { lo } else { y as u32 }
}

/// The pmf of round(clamp(X, lo, hi)) given X's survival function `s`:
/// P(Y >= k) = s(k - 0.5) for lo < k <= hi, and 1 for k = lo. The masses
/// telescope, so they sum to 1 even for a zero-variance step `s`.
fn clamped_rounded_pmf(lo: u32, hi: u32, s: impl Fn(f64) -> f64) -> Vec<(u32, f64)> {
    let mut out = Vec::new();
    let mut at_least_k = 1.0;
    for k in lo..=hi {
        let at_least_next = if k < hi { s(f64::from(k) + 0.5) } else { 0.0 };
        let p = (at_least_k - at_least_next).max(0.0);
        if p > 0.0 {
            out.push((k, p));
        }
        at_least_k = at_least_next;
    }
    out
}

/// P(Z > z) for a standard normal Z; 0 or 1 for infinite z (zero variance).
fn normal_survival(z: f64) -> f64 {
    if z.is_nan() {
        // 0 / 0: a zero-variance distribution exactly at the boundary.
        return 0.5;
    }
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function, Chebyshev fit with fractional error below
/// 1.2e-7 everywhere (Numerical Recipes' `erfcc`); std has no `erfc`.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Equal-weight pmf of observed values.
fn counts_pmf(values: Vec<u32>) -> Vec<(u32, f64)> {
    let p = 1.0 / values.len().max(1) as f64;
    merge_pmf(values.into_iter().map(|v| (v, p)).collect())
}

/// Sorts by value and sums the probabilities of equal values.
pub(crate) fn merge_pmf(mut entries: Vec<(u32, f64)>) -> Vec<(u32, f64)> {
    entries.sort_unstable_by_key(|e| e.0);
    let mut out: Vec<(u32, f64)> = Vec::with_capacity(entries.len());
    for (v, p) in entries {
        match out.last_mut() {
            Some(last) if last.0 == v => last.1 += p,
            _ => out.push((v, p)),
        }
    }
    out
}

/// E[X] of a pmf.
pub(crate) fn pmf_mean(pmf: &[(u32, f64)]) -> f64 {
    pmf.iter().map(|&(v, p)| f64::from(v) * p).sum()
}

/// E[min(X, Y)] for independent X and Y given sorted pmfs, in O(|x| + |y|).
pub(crate) fn mean_min(x: &[(u32, f64)], y: &[(u32, f64)]) -> f64 {
    let mut j = 0;
    // Over the y values below the current x: sum of p * y and sum of p.
    let (mut below_sum, mut below_mass) = (0.0, 0.0);
    let mut acc = 0.0;
    for &(xv, px) in x {
        while j < y.len() && y[j].0 < xv {
            below_sum += y[j].1 * f64::from(y[j].0);
            below_mass += y[j].1;
            j += 1;
        }
        acc += px * (below_sum + f64::from(xv) * (1.0 - below_mass).max(0.0));
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_known_values() {
        // Reference values from the closed form / tables.
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_1),
            (2.0, 0.004_677_734_981_047_266),
            (-1.0, 1.842_700_792_949_715),
            (4.0, 1.541_725_790_028_002e-8),
        ] {
            let got = erfc(x);
            assert!(
                ((got - want) / want).abs() < 2e-7,
                "erfc({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn mean_min_of_independent_pmfs() {
        // X uniform on {1, 3}, Y uniform on {2, 4}: min is 1,1,2,3 -> 7/4.
        let x = [(1, 0.5), (3, 0.5)];
        let y = [(2, 0.5), (4, 0.5)];
        assert!((mean_min(&x, &y) - 1.75).abs() < 1e-12);
        assert!((mean_min(&x, &[(10, 1.0)]) - 2.0).abs() < 1e-12);
        assert!((mean_min(&[(5, 1.0)], &[(5, 1.0)]) - 5.0).abs() < 1e-12);
    }
}
