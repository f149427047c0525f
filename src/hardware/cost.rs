//! Step cost models: how long one engine step takes.
//!
//! [`RooflineCost`] is the physical model (docs/ARCHITECTURE.md#hardware),
//! applied per kernel group rather than to the step as a whole:
//!
//! ```text
//! t_step      = step_overhead + layers * layer_overhead + t_linear + t_attention + t_comm
//! t_linear    = max(2 * active_params * tokens / F, weight_bytes / B)
//! t_attention = max(sum over groups of 4 * heads * head_dim_g * pairs_g / F, kv_bytes / B)
//! F           = peak_flops[compute_dtype] * tp * mfu
//! B           = hbm_bandwidth * tp * mbu
//! t_comm      = 2 all-reduces per layer over the interconnect (0 when tp = 1),
//!               each latency + 2 (tp - 1) / tp * bytes / (link * LINK_EFFICIENCY)
//! ```
//!
//! A step runs its linear layers (the GEMMs that read the weights) and its
//! attention (which reads the KV cache) as separate kernels, one after the
//! other, so each is bounded by its own roofline and their times add. One
//! roofline over the whole step, `max(all FLOPs / F, all bytes / B)`, would let
//! the GEMMs' compute hide behind attention's KV reads, which no kernel does:
//! at large batch the GEMMs turn compute-bound while attention stays bound by
//! the KV bytes, and the whole-step roofline is then optimistic by up to 2x.
//! Vidur (Agrawal et al., MLSys 2024) and LLMCompass (Zhang et al., ISCA
//! 2024) likewise price a step operator by operator.
//!
//! Decode is memory-bound: at small batch the weights dominate the bytes, at
//! large batch and long context the KV reads do, so TPOT rises with batch and
//! context. The fixed part has a per-step term (the host's scheduling and
//! sampling) and a per-layer term (kernel launch gaps and tails, paid once
//! per layer however few bytes the layer reads), which is why an 80-layer
//! model at batch 1 is slower than its bytes alone say. The compute peak is
//! the tensor-core rate of the deployment's compute precision (fp8 weights
//! with fp8 activations run at the fp8 peak; weight-only quantization at the
//! bf16 one). [`FixedCost`] is a mock with hand-computable step times for tests.

use crate::model::Model;
use crate::units::SimDuration;

use super::{Deployment, Efficiency};

/// What one engine step computes, summed over its sequences (replica-wide).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct StepWork {
    /// Sequences decoding one token each.
    pub decode_tokens: u32,
    /// Prompt tokens computed (whole prompts or chunks).
    pub prefill_tokens: u32,
    /// Sequences with a prefill chunk in this step.
    pub prefill_seqs: u32,
    /// KV bytes attention reads from HBM: each decoding sequence's kept context,
    /// and each prefill chunk's earlier context.
    pub kv_read_bytes: u64,
    /// KV bytes written (one token's worth per new token).
    pub kv_write_bytes: u64,
    /// Attention FLOPs: for each new token and layer, the kept tokens it
    /// attends to (itself included) times the layer's FLOPs per query-key
    /// pair (`4 * heads * head_dim`), summed ([`crate::cache::KvLayout::attention_flops`]).
    pub attention_flops: u64,
    /// KV bytes copied between GPU and host memory before the step (swapping).
    pub swap_bytes: u64,
}

impl StepWork {
    /// Tokens this step runs through the model.
    pub fn tokens(&self) -> u32 {
        self.decode_tokens + self.prefill_tokens
    }
}

/// What a cost model may keep between the steps of one engine to price the
/// next faster ([`CostModel::step_time_with`]): the token-count-dependent
/// part of the last step priced, `(tokens, its fixed part in fixed-point
/// units)` ([`RooflineCost`]'s overheads, linear layers and all-reduces).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct StepMemo(u32, u128);

impl Default for StepMemo {
    fn default() -> Self {
        // No step has u32::MAX tokens: the first one computes.
        StepMemo(u32::MAX, 0)
    }
}

/// Fixed-point units of time per second: a step's price is summed in
/// 2^-64 nanoseconds, exactly, and rounded to the nanosecond once.
const UNITS_PER_SEC: f64 = 1e9 * 18_446_744_073_709_551_616.0;

/// `secs` (finite, non-negative) in fixed-point units, to the nearest unit.
/// A time of 2^64 ns or more (584 years, past the engine's horizon)
/// saturates, and so does the step that includes it: its duration is then
/// `u64::MAX` ns, which the engine refuses as past the horizon (exit 2), as
/// it refuses any other step that long.
fn units_of_secs(secs: f64) -> u128 {
    /// From 2^52 up every `f64` is whole: the unit is 2^-64 ns, so any time
    /// from 2^-12 ns (a quarter of a picosecond) up is.
    const WHOLE_FROM: f64 = 4_503_599_627_370_496.0;
    let units = secs * UNITS_PER_SEC;
    if units >= WHOLE_FROM {
        // `as` saturates at u128::MAX (infinity included).
        units as u128
    } else {
        // Below 2^52 `units + 0.5` is exact unless it reaches the next power
        // of two, whose integer part the exact sum has too (no libm `round`
        // call: the linear layers' part is converted whenever the token
        // count changes).
        u128::from((units + 0.5) as u64)
    }
}

/// Fixed-point units per unit of work at `rate` units of work a second.
fn units_per(rate: f64) -> u128 {
    (UNITS_PER_SEC / rate).round() as u128
}

/// `count` units of work at `per` fixed-point units each, saturating at
/// `u128::MAX`. Both fit in 64 bits in any real deployment (`per` does for
/// rates above 1e9 a second), and their product is then one widening
/// multiplication, which cannot overflow.
#[inline(always)]
fn units_times(count: u128, per: u128) -> u128 {
    match (u64::try_from(count), u64::try_from(per)) {
        (Ok(a), Ok(b)) => u128::from(a) * u128::from(b),
        _ => count.saturating_mul(per),
    }
}

/// A step of `units` fixed-point units, rounded to the nearest nanosecond
/// (ties up), saturating at `u64::MAX` ns.
#[inline(always)]
fn duration_of_units(units: u128) -> SimDuration {
    SimDuration::from_nanos((units.saturating_add(1 << 63) >> 64) as u64)
}

/// Prices engine steps.
pub trait CostModel: Send + Sync {
    /// Wall time of one step doing `work`.
    fn step_time(&self, work: &StepWork) -> SimDuration;

    /// [`CostModel::step_time`], bit for bit, with what the engine's
    /// previous steps left in `memo` (consecutive decode steps mostly run
    /// the same number of tokens, one per sequence).
    #[inline]
    fn step_time_with(&self, work: &StepWork, memo: &mut StepMemo) -> SimDuration {
        let _ = memo;
        self.step_time(work)
    }

    /// Prices a run of steps into `out`: the `j`-th does `work` with `j`
    /// times `growth` more KV bytes read and attention FLOPs (a leap's
    /// decode steps, each decoder a token longer a step), priced as
    /// [`CostModel::step_time_with`] prices it, bit for bit, and at least a
    /// nanosecond. Stops before the first step `keep(j, duration)` refuses;
    /// returns how many were priced.
    #[inline]
    fn price_run(
        &self,
        mut work: StepWork,
        (read, flops): (u64, u64),
        memo: &mut StepMemo,
        out: &mut [SimDuration],
        mut keep: impl FnMut(usize, SimDuration) -> bool,
    ) -> usize {
        for (n, slot) in out.iter_mut().enumerate() {
            let d = self
                .step_time_with(&work, memo)
                .max(SimDuration::from_nanos(1));
            if !keep(n, d) {
                return n;
            }
            *slot = d;
            work.kv_read_bytes += read;
            work.attention_flops += flops;
        }
        out.len()
    }

    /// The same kind of model for `model` on `deployment` (a disaggregated
    /// deployment's prefill pool, whose GPUs and TP are its own).
    fn for_deployment(&self, model: &Model, deployment: &Deployment) -> Self
    where
        Self: Sized;
}

/// A step takes `per_step` plus `per_prefill_token` for every prompt token
/// plus `per_swap_kib` for every KiB swapped: exact, hand-computable timings
/// for tests (as hyperfine's mock executor).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FixedCost {
    /// Cost of any non-empty step.
    pub per_step: SimDuration,
    /// Added cost per prompt token in the step.
    pub per_prefill_token: SimDuration,
    /// Added cost per KiB (1024 bytes) copied to or from host memory.
    pub per_swap_kib: SimDuration,
}

impl CostModel for FixedCost {
    fn step_time(&self, work: &StepWork) -> SimDuration {
        SimDuration::from_nanos(
            self.per_step.as_nanos()
                + u64::from(work.prefill_tokens) * self.per_prefill_token.as_nanos()
                + work.swap_bytes.div_ceil(1024) * self.per_swap_kib.as_nanos(),
        )
    }

    /// The same fixed costs: a mock prices every pool alike.
    fn for_deployment(&self, _model: &Model, _deployment: &Deployment) -> Self {
        *self
    }
}

/// The memory-bandwidth-bound roofline of one replica.
#[derive(Clone, Debug)]
pub struct RooflineCost {
    /// Effective HBM bytes per second of the replica (`bw * tp * mbu`).
    bytes_per_s: f64,
    /// Effective FLOP per second of the replica (`peak * tp * mfu`, the peak
    /// of the compute precision).
    flops_per_s: f64,
    /// Fixed per-step time, the step overhead plus every layer's, in
    /// fixed-point units ([`units_of_secs`]).
    overhead_units: u128,
    /// Fixed-point units of time a KV byte read or written takes
    /// (`1 / bytes_per_s`), and an attention FLOP (`1 / flops_per_s`): the
    /// part of a step that changes from one decode step to the next is
    /// priced in integers, so a run of steps is priced by additions, each
    /// step exactly as alone.
    units_per_byte: u128,
    units_per_flop: u128,
    /// Weight bytes a step reads when it touches every parameter.
    weight_bytes: f64,
    /// Dense part of the weights (all weights for dense models), bytes.
    shared_weight_bytes: f64,
    /// Bytes of one routed expert (all layers); 0 for dense models.
    expert_bytes: f64,
    /// Routed experts and experts per token (MoE only).
    experts: f64,
    experts_per_token: f64,
    /// FLOPs per token through the linear layers: 2 * active params.
    linear_flops_per_token: f64,
    /// All-reduce cost: bytes per token per all-reduce, count per step,
    /// seconds per byte and fixed latency.
    allreduce_bytes_per_token: f64,
    allreduces_per_step: f64,
    allreduce_s_per_byte: f64,
    allreduce_latency_s: f64,
    /// Host-device bytes per second of the replica (each GPU has its own link).
    pcie_bytes_per_s: f64,
}

/// Bytes of one activation element exchanged by tensor-parallel all-reduces.
const ACTIVATION_BYTES: f64 = 2.0;

/// The fraction of a link's line rate an all-reduce moves data at: NCCL's
/// protocol overhead is about 20 %, so "NCCL can get an effective NVLink
/// bandwidth of 370GB/s" of H100's 450 GB/s line rate, seen as the bus
/// bandwidth of ring all-reduces (S. Jeaugey, NCCL maintainer,
/// NVIDIA/nccl-tests#212, 2024-05-06). The catalog's
/// `interconnect_bandwidth` is the line rate (the datasheet's figure, one
/// direction); this factor is applied to it for every link.
pub const LINK_EFFICIENCY: f64 = 370.0 / 450.0;

impl RooflineCost {
    /// The roofline for `model` on `deployment` with efficiency `eff`.
    pub fn new(model: &Model, deployment: &Deployment, eff: &Efficiency) -> Self {
        let tp = f64::from(deployment.tp.max(1));
        let gpu = &deployment.gpu;
        let weight_bytes = model.weight_bytes() as f64;
        let bytes_per_param = model.weight_dtype.bits() as f64 / 8.0;
        let (shared, expert, experts, per_token) = match model.moe {
            Some(moe) if moe.experts > moe.experts_per_token => {
                let (e, all) = model.routed_expert_params();
                let shared = model.params as f64 - all;
                (
                    shared.max(0.0) * bytes_per_param,
                    e * model.expert_bytes_per_param(),
                    f64::from(moe.experts),
                    f64::from(moe.experts_per_token),
                )
            }
            _ => (weight_bytes, 0.0, 0.0, 0.0),
        };
        // Ring all-reduce: each GPU sends and receives 2 (tp - 1) / tp of the
        // buffer (Patarasuk and Yuan 2009; NCCL's "bus bandwidth" convention),
        // at the link's effective rate.
        let (allreduces, s_per_byte) = if deployment.tp > 1 {
            (
                2.0 * f64::from(model.layers),
                2.0 * (tp - 1.0) / tp / (gpu.interconnect_bandwidth * LINK_EFFICIENCY),
            )
        } else {
            (0.0, 0.0)
        };
        let bytes_per_s = gpu.hbm_bandwidth * tp * eff.mbu;
        let flops_per_s = deployment.compute_peak() * tp * eff.mfu;
        let overhead_s = eff.step_overhead_s + f64::from(model.layers) * eff.layer_overhead_s;
        RooflineCost {
            bytes_per_s,
            flops_per_s,
            overhead_units: units_of_secs(overhead_s),
            units_per_byte: units_per(bytes_per_s),
            units_per_flop: units_per(flops_per_s),
            weight_bytes,
            shared_weight_bytes: shared,
            expert_bytes: expert,
            experts,
            experts_per_token: per_token,
            linear_flops_per_token: 2.0 * model.active_params as f64,
            allreduce_bytes_per_token: f64::from(model.hidden) * ACTIVATION_BYTES,
            allreduces_per_step: allreduces,
            allreduce_s_per_byte: s_per_byte,
            allreduce_latency_s: eff.allreduce_latency_s,
            pcie_bytes_per_s: gpu.pcie_bandwidth * tp,
        }
    }

    /// The linear layers' roofline for `tokens` tokens.
    fn linear(&self, tokens: u32) -> Roof {
        Roof {
            compute: self.linear_flops_per_token * f64::from(tokens) / self.flops_per_s,
            memory: self.weight_bytes_read(tokens) / self.bytes_per_s,
        }
    }

    /// The tensor-parallel all-reduces of a step of `tokens` tokens, seconds.
    fn all_reduce(&self, tokens: u32) -> f64 {
        if self.allreduces_per_step > 0.0 {
            self.allreduces_per_step
                * (self.allreduce_latency_s
                    + f64::from(tokens)
                        * self.allreduce_bytes_per_token
                        * self.allreduce_s_per_byte)
        } else {
            0.0
        }
    }

    /// Weight bytes a step of `tokens` tokens reads. A MoE step reads the dense
    /// part plus every expert at least one token is routed to: with uniform
    /// routing, `E * (1 - (1 - k/E)^tokens)` experts are expected.
    fn weight_bytes_read(&self, tokens: u32) -> f64 {
        if self.experts == 0.0 {
            return self.weight_bytes;
        }
        let untouched = (1.0 - self.experts_per_token / self.experts).powf(f64::from(tokens));
        self.shared_weight_bytes + self.expert_bytes * self.experts * (1.0 - untouched)
    }

    /// The step's time in seconds, by kernel group: each group's compute and
    /// memory time (the larger is what it takes) and the communication.
    pub fn parts(&self, work: &StepWork) -> StepParts {
        StepParts {
            linear: self.linear(work.tokens()),
            attention: self.attention(work),
            comm: self.all_reduce(work.tokens()) + self.swap(work),
        }
    }

    /// Attention's roofline: query-key FLOPs against KV bytes read and
    /// written.
    fn attention(&self, work: &StepWork) -> Roof {
        Roof {
            compute: work.attention_flops as f64 / self.flops_per_s,
            memory: (work.kv_read_bytes as f64 + work.kv_write_bytes as f64) / self.bytes_per_s,
        }
    }

    /// Swapping copies synchronously before the step (vLLM V0's cache
    /// engine), seconds.
    fn swap(&self, work: &StepWork) -> f64 {
        // Zero without a division (most steps swap nothing): the same value.
        if work.swap_bytes == 0 {
            return 0.0;
        }
        work.swap_bytes as f64 / self.pcie_bytes_per_s
    }

    /// What a step of `tokens` tokens takes besides attention and swapping,
    /// in fixed-point units: the overheads, the linear layers' roofline and
    /// the all-reduces.
    fn base_units(&self, tokens: u32) -> u128 {
        self.overhead_units
            .saturating_add(units_of_secs(self.linear(tokens).time()))
            .saturating_add(units_of_secs(self.all_reduce(tokens)))
    }

    /// Swapping's time in fixed-point units.
    fn swap_units(&self, work: &StepWork) -> u128 {
        if work.swap_bytes == 0 {
            return 0;
        }
        units_of_secs(self.swap(work))
    }

    /// Attention's roofline in fixed-point units: the KV bytes read and
    /// written, and the query-key FLOPs, each at its rate (saturating).
    #[inline]
    fn attention_units(&self, work: &StepWork) -> (u128, u128) {
        let bytes = u128::from(work.kv_read_bytes) + u128::from(work.kv_write_bytes);
        (
            units_times(bytes, self.units_per_byte),
            units_times(u128::from(work.attention_flops), self.units_per_flop),
        )
    }
}

/// One kernel group's time at the roofline: it takes the larger of the two.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct Roof {
    /// Seconds its FLOPs take at the effective compute rate.
    pub compute: f64,
    /// Seconds its HBM bytes take at the effective bandwidth.
    pub memory: f64,
}

impl Roof {
    /// The group's time: bounded by whichever resource it exhausts first.
    pub fn time(&self) -> f64 {
        self.compute.max(self.memory)
    }

    /// Whether the group is bound by memory bandwidth (ties count as memory).
    pub fn memory_bound(&self) -> bool {
        self.memory >= self.compute
    }
}

/// A step's variable time by kernel group, seconds (the fixed per-step and
/// per-layer costs are not included).
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct StepParts {
    /// The linear layers (QKV, output, MLP and lm_head GEMMs): active
    /// parameters' FLOPs against the weight bytes read.
    pub linear: Roof,
    /// Attention: query-key FLOPs against the KV bytes read and written.
    pub attention: Roof,
    /// Tensor-parallel all-reduces and PCIe swapping, which overlap nothing.
    pub comm: f64,
}

impl StepParts {
    /// The variable time: the two kernel groups in sequence, then the
    /// communication.
    pub fn time(&self) -> f64 {
        self.linear.time() + self.attention.time() + self.comm
    }
}

impl CostModel for RooflineCost {
    /// `overhead + linear + attention + communication`, each part's seconds
    /// in fixed-point units (2^-64 ns, to the nearest: [`Self::parts`]'s
    /// roofs, but attention's from the integer bytes and FLOPs), summed in
    /// integers and rounded to the nearest nanosecond once.
    fn step_time(&self, work: &StepWork) -> SimDuration {
        self.step_time_with(work, &mut StepMemo::default())
    }

    /// The linear layers' and the all-reduces' times depend on the token
    /// count alone (and a MoE model's expected expert bytes cost a `powf`):
    /// reused while it repeats.
    #[inline]
    fn step_time_with(&self, work: &StepWork, memo: &mut StepMemo) -> SimDuration {
        let tokens = work.tokens();
        if memo.0 != tokens {
            *memo = StepMemo(tokens, self.base_units(tokens));
        }
        let (memory, compute) = self.attention_units(work);
        duration_of_units(
            memo.1
                .saturating_add(memory.max(compute))
                .saturating_add(self.swap_units(work)),
        )
    }

    /// [`CostModel::price_run`] by additions: a run's steps share their
    /// fixed part, and each next one's attention is the last one's plus
    /// `read` bytes and `flops` FLOPs at their rates, in integers (the same
    /// units as each step priced alone, so the same durations).
    #[inline]
    fn price_run(
        &self,
        work: StepWork,
        (read, flops): (u64, u64),
        memo: &mut StepMemo,
        out: &mut [SimDuration],
        mut keep: impl FnMut(usize, SimDuration) -> bool,
    ) -> usize {
        let tokens = work.tokens();
        if memo.0 != tokens {
            *memo = StepMemo(tokens, self.base_units(tokens));
        }
        let base = memo.1.saturating_add(self.swap_units(&work));
        let (mut memory, mut compute) = self.attention_units(&work);
        let memory_step = units_times(u128::from(read), self.units_per_byte);
        let compute_step = units_times(u128::from(flops), self.units_per_flop);
        // The sums below stay exact, without a check each, if the last
        // step's does with its rounding (its parts only grow).
        let steps = out.len() as u128;
        let last = memory_step
            .checked_mul(steps)
            .and_then(|m| m.checked_add(memory))
            .zip(
                compute_step
                    .checked_mul(steps)
                    .and_then(|c| c.checked_add(compute)),
            )
            .and_then(|(m, c)| base.checked_add(m.max(c)))
            .and_then(|total| total.checked_add(1 << 63));
        let (mut read_bytes, mut attention_flops) = (work.kv_read_bytes, work.attention_flops);
        if last.is_none() {
            // Steps of 2^64 ns or more (past the horizon): each priced
            // alone, saturating.
            for (n, slot) in out.iter_mut().enumerate() {
                let alone = StepWork {
                    kv_read_bytes: read_bytes,
                    attention_flops,
                    ..work
                };
                let d = self.step_time(&alone).max(SimDuration::from_nanos(1));
                if !keep(n, d) {
                    return n;
                }
                *slot = d;
                read_bytes = read_bytes.saturating_add(read);
                attention_flops = attention_flops.saturating_add(flops);
            }
            return out.len();
        }
        for (n, slot) in out.iter_mut().enumerate() {
            // `duration_of_units` without its saturation, which the check
            // above rules out (a check a step costs a leap 3 % of its
            // instructions).
            let d =
                SimDuration::from_nanos(((base + memory.max(compute) + (1 << 63)) >> 64) as u64)
                    .max(SimDuration::from_nanos(1));
            invariant_eq!(
                d,
                self.step_time(&StepWork {
                    kv_read_bytes: read_bytes,
                    attention_flops,
                    ..work
                })
                .max(SimDuration::from_nanos(1)),
                "a run's step priced as alone"
            );
            read_bytes = read_bytes.wrapping_add(read);
            attention_flops = attention_flops.wrapping_add(flops);
            if !keep(n, d) {
                return n;
            }
            *slot = d;
            memory += memory_step;
            compute += compute_step;
        }
        out.len()
    }

    /// The roofline of `deployment` with its own efficiency factors.
    fn for_deployment(&self, model: &Model, deployment: &Deployment) -> Self {
        RooflineCost::new(model, deployment, &deployment.efficiency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Gpu;
    use crate::model::{Dtype, Moe};

    /// `4 * heads * head_dim` of [`model`].
    const FLOPS_PER_PAIR: u64 = 4 * 32 * 128;

    fn model() -> Model {
        Model {
            name: "m".into(),
            params: 8_000_000_000,
            active_params: 8_000_000_000,
            layers: 32,
            hidden: 4096,
            heads: 32,
            kv_heads: 8,
            head_dim: 128,
            intermediate: 14336,
            vocab: 128_256,
            max_model_len: 8192,
            sliding_window: None,
            mla: None,
            moe: None,
            weight_dtype: Dtype::Bf16,
            expert_dtype: None,
            groups: Vec::new(),
        }
    }

    fn deployment(tp: u32) -> Deployment {
        let efficiency = Efficiency {
            mbu: 0.5,
            mfu: 0.5,
            step_overhead_s: 0.001,
            layer_overhead_s: 0.0,
            allreduce_latency_s: 10e-6,
        };
        Deployment {
            gpu: Gpu {
                name: "g".into(),
                vram_bytes: 80 << 30,
                hbm_bandwidth: 2e12,
                peak_flops: 1e15,
                peak_flops_fp8: Some(2e15),
                peak_flops_int8: None,
                peak_flops_fp4: None,
                interconnect_bandwidth: 450e9,
                pcie_bandwidth: 64e9,
                price_per_hour: None,
                efficiency,
            },
            tp,
            replicas: 1,
            router: crate::scheduler::Router::RoundRobin,
            session_imbalance: crate::scheduler::DEFAULT_IMBALANCE,
            kv_router: crate::scheduler::KvRouterConfig::default(),
            memory: crate::hardware::MemoryRule::TotalFraction(0.9),
            compute_dtype: crate::hardware::ComputeDtype::Bf16,
            efficiency,
            runtime_reserve: None,
        }
    }

    #[test]
    fn batch_one_decode_is_weight_bandwidth_bound() {
        let d = deployment(1);
        let cost = RooflineCost::new(&model(), &d, &d.efficiency);
        let work = StepWork {
            decode_tokens: 1,
            kv_read_bytes: 1000 * 131_072,
            kv_write_bytes: 131_072,
            attention_flops: FLOPS_PER_PAIR * 32 * 1001,
            ..StepWork::default()
        };
        let parts = cost.parts(&work);
        let (compute, memory, comm) = (
            parts.linear.compute + parts.attention.compute,
            parts.linear.memory + parts.attention.memory,
            parts.comm,
        );
        // 16 GB of weights + 131 MB of KV at 2 TB/s * 0.5.
        let expected = (16e9 + 1001.0 * 131_072.0) / 1e12;
        assert!((memory - expected).abs() < 1e-12, "{memory} vs {expected}");
        assert!(compute < memory / 100.0);
        assert_eq!(comm, 0.0);
        let t = cost.step_time(&work).as_secs_f64();
        assert!((t - (0.001 + expected)).abs() < 1e-9);
    }

    #[test]
    fn long_prefill_is_compute_bound() {
        let d = deployment(1);
        let cost = RooflineCost::new(&model(), &d, &d.efficiency);
        let work = StepWork {
            prefill_tokens: 8192,
            prefill_seqs: 1,
            kv_write_bytes: 8192 * 131_072,
            attention_flops: FLOPS_PER_PAIR * 32 * 8192 * 8193 / 2,
            ..StepWork::default()
        };
        let parts = cost.parts(&work);
        assert!(!parts.linear.memory_bound());
        assert!(!parts.attention.memory_bound());
    }

    #[test]
    fn decode_time_rises_with_context() {
        let d = deployment(1);
        let cost = RooflineCost::new(&model(), &d, &d.efficiency);
        let step = |ctx: u64| {
            cost.step_time(&StepWork {
                decode_tokens: 64,
                kv_read_bytes: 64 * ctx * 131_072,
                kv_write_bytes: 64 * 131_072,
                attention_flops: FLOPS_PER_PAIR * 32 * 64 * ctx,
                ..StepWork::default()
            })
        };
        assert!(step(512) < step(4096));
        assert!(step(4096) < step(32768));
    }

    #[test]
    fn tensor_parallelism_adds_all_reduces_and_splits_the_rest() {
        let m = model();
        let work = StepWork {
            decode_tokens: 1,
            ..StepWork::default()
        };
        let d1 = deployment(1);
        let d2 = deployment(2);
        let p1 = RooflineCost::new(&m, &d1, &d1.efficiency).parts(&work);
        let p2 = RooflineCost::new(&m, &d2, &d2.efficiency).parts(&work);
        let (mem1, comm1) = (p1.linear.memory, p1.comm);
        let (mem2, comm2) = (p2.linear.memory, p2.comm);
        assert!((mem1 / mem2 - 2.0).abs() < 1e-9);
        assert_eq!(comm1, 0.0);
        // 64 all-reduces of 8 KiB: latency dominates.
        let expected = 64.0 * (10e-6 + 4096.0 * 2.0 * (2.0 * 0.5 / (450e9 * LINK_EFFICIENCY)));
        assert!((comm2 - expected).abs() < 1e-12);
    }

    /// A run of steps priced at once is each step priced alone, bit for
    /// bit: dense and MoE, one GPU and TP 4, with swapping, through the
    /// memory-bound and compute-bound sides of attention, and `keep`
    /// stopping the run where it says.
    #[test]
    fn a_run_of_steps_is_priced_as_each_alone() {
        let mut moe = model();
        moe.moe = Some(Moe {
            experts: 8,
            experts_per_token: 2,
        });
        for (m, tp) in [(model(), 1), (model(), 4), (moe, 2)] {
            let d = deployment(tp);
            let cost = RooflineCost::new(&m, &d, &d.efficiency);
            for (batch, swap_bytes, pair_flops) in
                [(1u32, 0u64, 1u64), (64, 0, 1), (7, 1 << 30, 1 << 20)]
            {
                let work = StepWork {
                    decode_tokens: batch,
                    kv_read_bytes: 123_456_789,
                    kv_write_bytes: u64::from(batch) * 131_072,
                    attention_flops: 987_654_321,
                    swap_bytes,
                    ..StepWork::default()
                };
                let growth = (
                    u64::from(batch) * 131_072,
                    u64::from(batch) * FLOPS_PER_PAIR * pair_flops,
                );
                let mut out = [SimDuration::ZERO; 40];
                let mut memo = StepMemo::default();
                let n = cost.price_run(work, growth, &mut memo, &mut out, |j, _| j < 33);
                assert_eq!(n, 33);
                for (j, &got) in out[..n].iter().enumerate() {
                    let j = j as u64;
                    let alone = StepWork {
                        kv_read_bytes: work.kv_read_bytes + j * growth.0,
                        attention_flops: work.attention_flops + j * growth.1,
                        ..work
                    };
                    let want = cost.step_time(&alone).max(SimDuration::from_nanos(1));
                    assert_eq!(got, want, "tp {tp}, batch {batch}, step {j}");
                    // The trait's default, step by step, agrees too.
                    assert_eq!(
                        cost.step_time_with(&alone, &mut StepMemo::default())
                            .max(SimDuration::from_nanos(1)),
                        want
                    );
                }
            }
        }
    }

    /// The integer price is the roofline's seconds to the nearest
    /// nanosecond: each part is kept to 2^-64 ns, so it differs from
    /// rounding the `f64` sum only where that sum lies within a hair of a
    /// half nanosecond, by one nanosecond.
    #[test]
    fn integer_prices_are_the_roofline_to_the_nanosecond() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (mut steps, mut equal) = (0, 0);
        for tp in [1, 2, 8] {
            let d = deployment(tp);
            let cost = RooflineCost::new(&model(), &d, &d.efficiency);
            for _ in 0..20_000 {
                let work = StepWork {
                    decode_tokens: rng.random_range(0..512),
                    prefill_tokens: rng.random_range(0..16_384),
                    kv_read_bytes: rng.random_range(0..1u64 << 40),
                    kv_write_bytes: rng.random_range(0..1u64 << 30),
                    attention_flops: rng.random_range(0..1u64 << 50),
                    swap_bytes: rng.random_range(0..1u64 << 32) * rng.random_range(0..2u64),
                    ..StepWork::default()
                };
                let secs = 0.001 + cost.parts(&work).time();
                let want = (secs * 1e9).round() as i128;
                let got = i128::from(cost.step_time(&work).as_nanos());
                assert!((got - want).abs() <= 1, "{work:?}: {got} ns, {secs} s");
                steps += 1;
                equal += usize::from(got == want);
            }
        }
        // docs/ARCHITECTURE.md#hardware quotes this.
        assert_eq!((equal, steps), (59_998, 60_000));
    }

    /// A rate of next to nothing prices its steps past the engine's
    /// horizon (which refuses them, exit 2) instead of wrapping: alone and
    /// in a run alike.
    #[test]
    fn a_rate_of_next_to_nothing_saturates_past_the_horizon() {
        let mut d = deployment(1);
        d.gpu.hbm_bandwidth = 1e-300;
        let cost = RooflineCost::new(&model(), &d, &d.efficiency);
        let work = StepWork {
            decode_tokens: 1,
            kv_read_bytes: 1 << 20,
            kv_write_bytes: 1 << 10,
            attention_flops: 1 << 20,
            ..StepWork::default()
        };
        assert_eq!(cost.step_time(&work).as_nanos(), u64::MAX);
        let mut out = [SimDuration::ZERO; 4];
        let n = cost.price_run(
            work,
            (1 << 10, 1 << 10),
            &mut StepMemo::default(),
            &mut out,
            |_, _| true,
        );
        assert_eq!(n, 4);
        assert!(out.iter().all(|d| d.as_nanos() == u64::MAX));
        // A run whose last step would pass 2^64 ns is priced step by step,
        // as each alone.
        let d = deployment(1);
        let cost = RooflineCost::new(&model(), &d, &d.efficiency);
        let growth = (u64::MAX / 8, 0);
        let n = cost.price_run(work, growth, &mut StepMemo::default(), &mut out, |_, _| {
            true
        });
        assert_eq!(n, 4);
        for (j, got) in out.iter().enumerate() {
            let alone = StepWork {
                kv_read_bytes: work.kv_read_bytes.saturating_add(j as u64 * growth.0),
                ..work
            };
            assert_eq!(*got, cost.step_time(&alone).max(SimDuration::from_nanos(1)));
        }
    }

    #[test]
    fn moe_batch_one_reads_only_active_experts() {
        let mut m = model();
        m.params = 46_700_000_000;
        m.active_params = 12_900_000_000;
        m.moe = Some(Moe {
            experts: 8,
            experts_per_token: 2,
        });
        let d = deployment(1);
        let cost = RooflineCost::new(&m, &d, &d.efficiency);
        let one = cost.weight_bytes_read(1);
        assert!((one - 2.0 * 12.9e9).abs() / one < 1e-9, "{one}");
        let many = cost.weight_bytes_read(256);
        assert!((many - 2.0 * 46.7e9).abs() / many < 1e-6, "{many}");
    }

    #[test]
    fn prefill_runs_at_the_peak_of_the_compute_precision() {
        let prefill = StepWork {
            prefill_tokens: 8192,
            prefill_seqs: 1,
            ..StepWork::default()
        };
        let mut bf16 = deployment(1);
        bf16.compute_dtype = crate::hardware::ComputeDtype::Bf16;
        let mut fp8 = deployment(1);
        fp8.compute_dtype = crate::hardware::ComputeDtype::Fp8;
        let m = model();
        let c16 = RooflineCost::new(&m, &bf16, &bf16.efficiency)
            .parts(&prefill)
            .linear
            .compute;
        let c8 = RooflineCost::new(&m, &fp8, &fp8.efficiency)
            .parts(&prefill)
            .linear
            .compute;
        // The test GPU's fp8 peak is twice its bf16 peak.
        assert!((c16 / c8 - 2.0).abs() < 1e-12, "{c16} vs {c8}");
        // 2 * 8e9 params * 8192 tokens at 1e15 * 0.5.
        assert!((c16 - 2.0 * 8e9 * 8192.0 / 0.5e15).abs() < 1e-12);
    }

    #[test]
    fn weight_only_quantization_reads_fewer_bytes_at_the_bf16_peak() {
        let d = deployment(1);
        let mut m = model();
        m.weight_dtype = Dtype::Int4;
        let int4 = RooflineCost::new(&m, &d, &d.efficiency);
        let bf16 = RooflineCost::new(&model(), &d, &d.efficiency);
        let decode = StepWork {
            decode_tokens: 1,
            ..StepWork::default()
        };
        let prefill = StepWork {
            prefill_tokens: 4096,
            prefill_seqs: 1,
            ..StepWork::default()
        };
        let mem4 = int4.parts(&decode).linear.memory;
        let mem16 = bf16.parts(&decode).linear.memory;
        assert!((mem16 / mem4 - 4.0).abs() < 1e-9);
        let (c4, c16) = (int4.parts(&prefill), bf16.parts(&prefill));
        assert_eq!(c4.linear.compute, c16.linear.compute);
        assert_eq!(c4.attention, c16.attention);
    }

    #[test]
    fn the_fixed_cost_has_a_term_per_layer() {
        let mut d = deployment(1);
        d.efficiency.layer_overhead_s = 40e-6;
        let m = model();
        let work = StepWork {
            decode_tokens: 1,
            ..StepWork::default()
        };
        let base = RooflineCost::new(&m, &deployment(1), &deployment(1).efficiency);
        let with = RooflineCost::new(&m, &d, &d.efficiency);
        let extra = with.step_time(&work).as_secs_f64() - base.step_time(&work).as_secs_f64();
        // 32 layers x 40 us, whatever the tensor parallelism.
        assert!((extra - 32.0 * 40e-6).abs() < 1e-9, "{extra}");
        let mut d8 = deployment(8);
        d8.efficiency.layer_overhead_s = 40e-6;
        let tp8 = RooflineCost::new(&m, &d8, &d8.efficiency);
        let base8 = RooflineCost::new(&m, &deployment(8), &deployment(8).efficiency);
        let extra8 = tp8.step_time(&work).as_secs_f64() - base8.step_time(&work).as_secs_f64();
        assert!((extra8 - extra).abs() < 1e-9);
    }

    #[test]
    fn linear_layers_and_attention_are_priced_by_their_own_rooflines() {
        // Large-batch decode: the GEMMs are compute-bound, attention is bound
        // by its KV reads, and the step takes both in sequence.
        let d = deployment(1);
        let cost = RooflineCost::new(&model(), &d, &d.efficiency);
        let batch = 1024u32;
        let context = 2048u64;
        let work = StepWork {
            decode_tokens: batch,
            kv_read_bytes: u64::from(batch) * context * 131_072,
            kv_write_bytes: u64::from(batch) * 131_072,
            attention_flops: FLOPS_PER_PAIR * 32 * u64::from(batch) * context,
            ..StepWork::default()
        };
        let parts = cost.parts(&work);
        // 2 * 8e9 * 1024 FLOPs at 0.5e15 against 16 GB at 1e12.
        assert!((parts.linear.compute - 2.0 * 8e9 * 1024.0 / 0.5e15).abs() < 1e-12);
        assert!((parts.linear.memory - 0.016).abs() < 1e-12);
        assert!(!parts.linear.memory_bound());
        assert!(parts.attention.memory_bound());
        let expected = 0.001 + parts.linear.compute + parts.attention.memory;
        let t = cost.step_time(&work).as_secs_f64();
        assert!((t - expected).abs() < 1e-9, "{t} vs {expected}");
        // One roofline over the whole step would hide the GEMMs' compute
        // behind the KV reads: strictly faster, which no engine achieves.
        let whole = 0.001
            + (parts.linear.compute + parts.attention.compute)
                .max(parts.linear.memory + parts.attention.memory);
        assert!(whole < t - 0.01, "{whole} vs {t}");
    }
}
