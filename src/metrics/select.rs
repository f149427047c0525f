//! Exact order statistics of integer keys by radix selection, for the
//! summary's percentiles.
//!
//! A run's summary takes the percentiles of a dozen latencies over every
//! completed request: at a million requests, selecting them by comparison
//! (`select_nth_unstable`, a few partitioning passes of branchy compares and
//! swaps each) cost more than any other part of a disaggregated run's end.
//! Latencies are ordered by integer keys (durations as nanoseconds, `f64` by
//! their total order's bits), so the ranks can be found by counting instead:
//! one pass finds the bits every key shares, one counts the keys into 2^11
//! buckets by the 11 bits below those, one moves the keys of the buckets
//! that hold a wanted rank to the front, and those buckets are selected in
//! turn the same way until few enough keys are left to sort. A bucket's
//! keys share 11 more bits than the keys it came from, so a 64-bit key takes
//! at most six levels; the passes are linear and branch-free but for the
//! buckets moved. The result is the exact order statistic (a key, not an
//! estimate).

/// Bits one level of selection buckets the keys by.
const RADIX_BITS: u32 = 11;
/// Buckets per level.
const BUCKETS: usize = 1 << RADIX_BITS;
/// Below this many keys, sorting them is cheaper than a level.
const SORT_BELOW: usize = 512;
/// From this many keys, a level counts them into four tables (see
/// [`count_buckets`]).
const TABLES_FROM: usize = 1 << 15;
/// Most ranks one call selects (two per percentile: the ranks on either
/// side of its interpolation).
const MAX_RANKS: usize = 16;

/// The percentiles `qs` (0-100, ascending) of the values whose keys are
/// `keys`, where `value` maps a key to its value and is non-decreasing: by
/// linear interpolation between closest ranks, bit for bit as
/// [`super::percentile`] of the sorted values gives them. `None` each when
/// `keys` is empty. `keys` is scratch: its order and contents afterwards are
/// unspecified.
pub(crate) fn percentiles_of_keys<const N: usize>(
    keys: &mut [u64],
    qs: [f64; N],
    value: impl Fn(u64) -> f64,
) -> [Option<f64>; N] {
    assert!(2 * N <= MAX_RANKS, "at most {} percentiles", MAX_RANKS / 2);
    let mut out = [None; N];
    let n = keys.len();
    if n == 0 {
        return out;
    }
    // Each percentile's closest ranks and where between them it lies
    // (`percentile`'s arithmetic).
    let mut sides = [(0usize, 0usize, 0.0f64); N];
    for (side, q) in sides.iter_mut().zip(qs) {
        let rank = q / 100.0 * (n - 1) as f64;
        let lo = rank.floor() as usize;
        let hi = rank.ceil() as usize;
        *side = (lo, hi, rank - lo as f64);
    }
    let mut ranks = [0usize; MAX_RANKS];
    let mut wanted = 0;
    for &(lo, hi, _) in &sides {
        ranks[wanted] = lo;
        ranks[wanted + 1] = hi;
        wanted += 2;
    }
    let ranks = &mut ranks[..wanted];
    ranks.sort_unstable();
    let mut distinct = 0;
    for i in 0..ranks.len() {
        if i == 0 || ranks[i] != ranks[distinct - 1] {
            ranks[distinct] = ranks[i];
            distinct += 1;
        }
    }
    let ranks = &ranks[..distinct];
    let mut at = [0u64; MAX_RANKS];
    select_ranks(keys, ranks, &mut at[..distinct]);
    let key_at = |rank: usize| at[ranks.binary_search(&rank).expect("a selected rank")];
    for (o, &(lo, hi, frac)) in out.iter_mut().zip(&sides) {
        let (at_lo, at_hi) = (value(key_at(lo)), value(key_at(hi)));
        *o = Some(at_lo + (at_hi - at_lo) * frac);
    }
    out
}

/// The key of `x` in `f64::total_cmp`'s order, as an unsigned integer: `a`'s
/// key is below `b`'s exactly when `a.total_cmp(&b)` is `Less`.
pub(crate) fn f64_key(x: f64) -> u64 {
    let bits = x.to_bits();
    // Negative values (sign bit set) reverse, the rest move above them.
    let flip = ((bits as i64 >> 63) as u64) | (1 << 63);
    bits ^ flip
}

/// The `f64` whose key ([`f64_key`]) is `key`.
pub(crate) fn f64_of_key(key: u64) -> f64 {
    // The key's top bit is set for the non-negative values.
    let flip = if key >> 63 == 1 { 1 << 63 } else { u64::MAX };
    f64::from_bits(key ^ flip)
}

/// Stores in `out[i]` the key of rank `ranks[i]` (0-based, in ascending
/// order of the keys) of `keys`, for `ranks` ascending, distinct and below
/// `keys.len()`. Permutes and overwrites `keys`.
fn select_ranks(keys: &mut [u64], ranks: &[usize], out: &mut [u64]) {
    debug_assert!(ranks.windows(2).all(|w| w[0] < w[1]));
    debug_assert!(ranks.last().is_none_or(|&r| r < keys.len()));
    if ranks.is_empty() {
        return;
    }
    let n = keys.len();
    // Few keys: sorting is cheaper than a level. More keys than a bucket's
    // count holds (no run keeps this many records, but the answer must stay
    // right): sorting is what is left.
    if n < SORT_BELOW || n > u32::MAX as usize {
        keys.sort_unstable();
        for (o, &r) in out.iter_mut().zip(ranks) {
            *o = keys[r];
        }
        return;
    }
    // The bits every key shares (a prefix above the highest bit in which
    // two differ) and the 11 bits below it bucket the keys in order. (Bitwise
    // reductions, where a minimum and a maximum would compare every key.)
    let (any, all) = keys
        .iter()
        .fold((0u64, u64::MAX), |(any, all), &k| (any | k, all & k));
    if any == all {
        out.fill(any);
        return;
    }
    let shift = (u64::BITS - (any ^ all).leading_zeros()).saturating_sub(RADIX_BITS);
    let bucket = |k: u64| (k >> shift) as usize & (BUCKETS - 1);
    let counts = count_buckets(keys, shift);
    // Each wanted rank's bucket, and its rank within the bucket; whether
    // each bucket is wanted (a byte each: one load a key).
    let mut groups = [(0usize, 0usize); MAX_RANKS]; // (bucket, first rank's index)
    let mut within = [0usize; MAX_RANKS];
    let mut wanted = [0u8; BUCKETS];
    let mut ngroups = 0;
    let (mut b, mut below) = (0usize, 0usize);
    for (i, &r) in ranks.iter().enumerate() {
        while below + counts[b] as usize <= r {
            below += counts[b] as usize;
            b += 1;
        }
        within[i] = r - below;
        if ngroups == 0 || groups[ngroups - 1].0 != b {
            groups[ngroups] = (b, i);
            ngroups += 1;
            wanted[b] = 1;
        }
    }
    // The wanted buckets' keys, moved to the front (the rest are dropped).
    let mut kept = 0;
    for i in 0..n {
        let k = keys[i];
        let b = bucket(k);
        keys[kept] = k;
        kept += usize::from(wanted[b]);
    }
    // Each wanted bucket in turn: its keys partitioned to the front of what
    // is left (the last one's are all that is left), then selected alone.
    let mut start = 0;
    for g in 0..ngroups {
        let (b, first) = groups[g];
        let last = if g + 1 < ngroups {
            groups[g + 1].1
        } else {
            ranks.len()
        };
        let len = counts[b] as usize;
        if g + 1 < ngroups {
            let mut p = start;
            for i in start..kept {
                if bucket(keys[i]) == b {
                    keys.swap(p, i);
                    p += 1;
                }
            }
            debug_assert_eq!(p - start, len);
        }
        select_ranks(
            &mut keys[start..start + len],
            &within[first..last],
            &mut out[first..last],
        );
        start += len;
    }
}

/// How many of `keys` fall in each bucket of the 11 bits at `shift`.
///
/// Latencies crowd into a few of the buckets (a long tail stretches the
/// range they split), and counting into one table makes each increment of
/// a counter wait for the store of the one before it. Four tables, taking
/// every fourth key each and added up once, let four increments run at
/// once (docs/speed-history.md, round 16). Below [`TABLES_FROM`] keys,
/// clearing and adding the tables costs more than it saves. (Out of line:
/// the tables' 32 KiB stay off the recursion's frames.)
#[inline(never)]
fn count_buckets(keys: &[u64], shift: u32) -> [u32; BUCKETS] {
    let bucket = |k: u64| (k >> shift) as usize & (BUCKETS - 1);
    if keys.len() < TABLES_FROM {
        let mut counts = [0u32; BUCKETS];
        for &k in keys {
            counts[bucket(k)] += 1;
        }
        return counts;
    }
    let mut tables = [[0u32; BUCKETS]; 4];
    let mut quads = keys.chunks_exact(4);
    for q in &mut quads {
        tables[0][bucket(q[0])] += 1;
        tables[1][bucket(q[1])] += 1;
        tables[2][bucket(q[2])] += 1;
        tables[3][bucket(q[3])] += 1;
    }
    for &k in quads.remainder() {
        tables[0][bucket(k)] += 1;
    }
    let [mut counts, t1, t2, t3] = tables;
    for (b, c) in counts.iter_mut().enumerate() {
        *c += t1[b] + t2[b] + t3[b];
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The order statistics of `keys` by sorting a copy.
    fn sorted_ranks(keys: &[u64], ranks: &[usize]) -> Vec<u64> {
        let mut s = keys.to_vec();
        s.sort_unstable();
        ranks.iter().map(|&r| s[r]).collect()
    }

    fn check(keys: &[u64], ranks: &[usize]) {
        let mut scratch = keys.to_vec();
        let mut out = vec![0; ranks.len()];
        select_ranks(&mut scratch, ranks, &mut out);
        assert_eq!(out, sorted_ranks(keys, ranks), "n = {}", keys.len());
    }

    /// Every rank of several shapes of data, small and past the sorting
    /// threshold: uniform, all equal, one outlier, heavy ties, and keys that
    /// span the whole `u64` range (the deepest recursion).
    #[test]
    fn selects_exact_order_statistics() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [1usize, 2, 511, 512, 513, 5000, TABLES_FROM + 3] {
            let shapes: Vec<Vec<u64>> = vec![
                (0..n).map(|_| next() % 1_000_000_007).collect(),
                vec![42; n],
                (0..n)
                    .map(|i| if i == n / 2 { u64::MAX } else { 0 })
                    .collect(),
                (0..n).map(|_| next() % 3).collect(),
                (0..n).map(|_| next()).collect(),
                (0..n).map(|_| 1 << (next() % 64)).collect(),
            ];
            for keys in shapes {
                // Every rank near both ends and the middle, in sets that share
                // buckets and sets that do not.
                let mut ranks: Vec<usize> = [0, 1, n / 2, n * 9 / 10, n - 2, n - 1]
                    .into_iter()
                    .filter(|&r| r < n)
                    .collect();
                ranks.sort_unstable();
                ranks.dedup();
                check(&keys, &ranks);
                for &r in &ranks {
                    check(&keys, &[r]);
                }
            }
        }
    }

    /// The four tables add up to one table's counts, whatever the keys'
    /// number modulo four.
    #[test]
    fn four_tables_count_as_one() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for n in [TABLES_FROM, TABLES_FROM + 1, TABLES_FROM + 3, 100_000] {
            let keys: Vec<u64> = (0..n)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Two thirds crowd one bucket.
                    if i % 3 == 0 { x % (1 << 30) } else { 5 << 19 }
                })
                .collect();
            let mut one = [0u32; BUCKETS];
            for &k in &keys {
                one[(k >> 19) as usize & (BUCKETS - 1)] += 1;
            }
            assert_eq!(count_buckets(&keys, 19), one, "n = {n}");
        }
    }

    #[test]
    fn f64_keys_follow_the_total_order() {
        let values = [
            f64::NEG_INFINITY,
            -1e300,
            -1.5,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            1e-300,
            0.025,
            1.5,
            f64::MAX,
            f64::INFINITY,
        ];
        for a in values {
            assert_eq!(f64_of_key(f64_key(a)).to_bits(), a.to_bits());
            for b in values {
                assert_eq!(f64_key(a).cmp(&f64_key(b)), a.total_cmp(&b), "{a} {b}");
            }
        }
    }

    proptest! {
        /// Any keys and any set of ranks: the sorted copy's keys.
        #[test]
        fn any_ranks_of_any_keys(
            keys in prop::collection::vec(
                prop_oneof![any::<u64>(), 0u64..4, 1_000_000u64..1_100_000],
                1..3000,
            ),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 1..8),
        ) {
            let mut ranks: Vec<usize> = picks.iter().map(|p| p.index(keys.len())).collect();
            ranks.sort_unstable();
            ranks.dedup();
            let mut scratch = keys.clone();
            let mut out = vec![0; ranks.len()];
            select_ranks(&mut scratch, &ranks, &mut out);
            prop_assert_eq!(out, sorted_ranks(&keys, &ranks));
        }
    }
}
