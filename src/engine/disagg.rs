//! Prefill/decode disaggregation: two pools of replicas in one cluster and
//! the KV moving between them (docs/ARCHITECTURE.md#disaggregation).
//!
//! # Life of a request
//!
//! ```text
//! arrival ─route(P, D)─▶ P queue ─▶ P prefill ─▶ held on P ─reserve on D─▶ transfer ─▶ D batch ─▶ end
//! ```
//!
//! - **Routing.** Both replicas are picked when the request arrives (every
//!   proxy read for the design does: vLLM's toy proxy, SGLang's mini load
//!   balancer, llm-d's EPP, Dynamo's frontend), each pool by its own
//!   `hardware.router`. A decode replica counts the requests sent its way
//!   that have not arrived ([`Engine::outstanding`]).
//! - **Prefill.** A prefill replica is a fed engine whose requests end after
//!   their first token; instead of releasing the sequence's KV it holds it
//!   (counted in its KV occupancy, in no batch) and reports a [`Handoff`].
//!   Held KV can fill a prefill replica: its admissions stop until a
//!   transfer ends (a prompt's blocks are allocated whole at admission, so a
//!   prefill in progress never runs out).
//! - **Reservation.** A decode replica admits the prompt's KV into its cache
//!   before the transfer starts (vLLM allocates the blocks a remote prefill
//!   will fill when it first schedules the request; SGLang's
//!   `DecodePreallocQueue`). Requests waiting to reserve form a FIFO per
//!   decode replica that stops at the first that does not fit (SGLang's
//!   queue; head-of-line blocking is part of the behaviour); it is retried
//!   after every instant of that replica. The wait is the request's
//!   *decode stall*. With `reserve = "after-prefill"` (vLLM) the request
//!   waits after its prefill, its KV held on P; with `"before-prefill"`
//!   (SGLang, Dynamo, Mooncake) it waits before entering P's queue.
//! - **Transfer.** The prompt's KV under the prefill pool's layout
//!   (`kept_bytes(prompt)`, exact tokens, not rounded to blocks), alone at
//!   `min(tp_p, tp_d) × deployment.link.gbps`, after the link's latency,
//!   over two links: the prefill replica's out (`tp_p` GPUs' NICs) and the
//!   decode replica's in (`tp_d`'s). With `sharing = "fair"` (default) the
//!   transfers moving data at once share each link equally, each at
//!   `min(solo, out / its transfers, in / its transfers)`, recomputed at
//!   every start and end (one clock in `f64` bytes per replica pair,
//!   [`Pair`], ends rounded up to the nanosecond); with `"fifo"` they queue, one channel per replica
//!   and direction reserved together at the solo rate
//!   ([`crate::cache::tiers::reserve`]).
//!   `layerwise` overlaps the last prefill step: with `L` layers, a step from
//!   `s` to `e` and a wire time `T`, the transfer ends at
//!   `max(e + T/L, max(free, s + (e - s)/L) + T) + latency`.
//! - **Reception.** At the transfer's end the prefill replica frees the KV
//!   and the decode replica receives the request: it joins the next batch
//!   with room, recomputing its last prompt token (vLLM's decode instance
//!   computes the token the prefill instance's first token came from), so
//!   its first step is a one-token prefill. That step's token is the
//!   request's first: TTFT = queue + prefill + transfer + first step.
//!
//! # Not modelled
//!
//! KV tiers in either pool, crashes, swap, parallel samples (refused at
//! load), prefix caching on the decode side (a received request carries no
//! content), SGLang's first token returned by the prefill server, Dynamo's
//! conditional (local) prefill, and vLLM's abort timeout for unclaimed KV.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::{Engine, Event, Handoff, NONE, Received, Routed, Seq};
use crate::cache::tiers::{Channel, Transfer, reserve};
use crate::cache::{Content, KvLayout, SeqId, SeqInfo};
use crate::hardware::cost::CostModel;
use crate::metrics::Outcome;
use crate::scenario::Scenario;
use crate::scenario::disagg::{Disagg, ReserveMode, Sharing, TransferMode};
use crate::traffic::Lengths;
use crate::units::{SimDuration, SimTime};

impl<C: CostModel> Engine<'_, C> {
    /// A prefill replica's sequence completed its prefill: keep its KV and
    /// report it.
    pub(super) fn hold(&mut self, s: &Seq) {
        self.held += 1;
        self.handoffs.push(Handoff {
            flight: self.live[s.req as usize].user,
            req: s.req,
            slot: s.slot,
            at: self.now,
            step_start: self.step_started,
        });
    }

    /// The cluster moved held request `req`'s KV (in `slot`) away at `at`:
    /// free it; the request ends here.
    pub(super) fn release_held(&mut self, at: SimTime, req: u32, slot: SeqId) {
        invariant!(at >= self.now, "a release in the past");
        self.now = at;
        self.held -= 1;
        self.release(slot);
        self.sample_ended(req, false, Outcome::Ok);
        self.record_levels();
        // An idle replica with requests waiting looks again now (the freed
        // KV may let them in); a busy one does at its step's end.
        if !self.busy && !self.waiting.is_empty() {
            self.events.push(at, Event::Wake);
        }
    }

    /// Reserves room at `at` for a received request of `tokens` prompt
    /// tokens (`reserve` tokens under reserving admission); `None` when the
    /// cache has none now.
    pub(super) fn reserve_received(
        &mut self,
        at: SimTime,
        tokens: u32,
        reserve: u32,
    ) -> Option<SeqId> {
        invariant!(at >= self.now, "a reservation in the past");
        self.now = at;
        let slot = self.take_slot();
        let info = SeqInfo {
            id: slot,
            tokens,
            reserve,
            content: None,
        };
        if self.cache.admit(&info).is_err() {
            self.free_slots.push(slot);
            return None;
        }
        self.receiving_bytes += self.cache.held_bytes(slot);
        self.record_levels();
        Some(slot)
    }

    /// Gives back a reservation whose request failed before its transfer.
    pub(super) fn cancel_reservation(&mut self, at: SimTime, slot: SeqId) {
        self.now = self.now.max(at);
        self.receiving_bytes -= self.cache.held_bytes(slot);
        self.release(slot);
        self.record_levels();
        self.events.push(self.now, Event::Wake);
    }

    /// A received request joins the batch being formed: its prompt's KV is
    /// in its slot; it recomputes the last prompt token.
    pub(super) fn admit_received(&mut self, r: Received) {
        self.receiving_bytes -= self.cache.held_bytes(r.slot);
        let rec = &mut self.records[r.req as usize];
        rec.admitted = Some(self.now);
        let prompt = rec.prompt_tokens;
        self.running.push(Seq {
            req: r.req,
            slot: r.slot,
            prefill_target: prompt,
            prefilled: prompt - 1,
            context: prompt - 1,
            scheduled: 1,
            output: r.output,
            generated: 0,
            fork: false,
            final_bytes: self.layout.peak_bytes(prompt + r.output - 1),
            since: 0,
            dead: false,
            content: None,
        });
    }
}

/// A request's way through a disaggregated deployment.
#[derive(Copy, Clone, Debug)]
pub(super) struct Flight {
    /// Its lengths (the true output; the prefill replica sees one token).
    pub lengths: Lengths,
    pub content: Option<Content>,
    pub session: Option<u64>,
    pub turn: u32,
    /// The cluster's conversation (`NONE`: nothing follows it).
    pub conversation: u32,
    pub arrival: SimTime,
    /// Prefill replica (pool index) and the request's index in it (`NONE`:
    /// not sent there).
    pub p: u32,
    pub p_req: u32,
    /// Decode replica (pool index) and the request's index in it (`NONE`:
    /// not received yet).
    pub d: u32,
    pub d_req: u32,
    /// Held KV on the prefill replica, and the decode replica's reservation.
    pub p_slot: SeqId,
    pub d_slot: SeqId,
    /// When it joined its decode replica's reservation queue, and when it
    /// reserved.
    pub queued: SimTime,
    pub reserved: Option<SimTime>,
    /// When its prefill ended, and when the step that ended it started.
    pub prefill_end: Option<SimTime>,
    pub step_start: SimTime,
    /// Its transfer.
    pub transfer_start: Option<SimTime>,
    pub transfer_end: Option<SimTime>,
    pub bytes: u64,
    /// The flight whose transfer joins the links right after this one's,
    /// in the same event ([`NONE`]: none; see `Cluster::join_chain`).
    pub next_join: u32,
}

/// Fair sharing: the transfers moving from one prefill replica to one
/// decode replica. They all move at the same rate (each link's share is
/// the same for every transfer using it), so one clock serves them: the
/// bytes each has moved since the clock started, and a transfer that
/// joined at reading `c` with `b` bytes is done at `c + b`. A change of
/// rate or an end costs a step of each moving pair's clock and a heap
/// operation, not a pass over every moving transfer.
#[derive(Debug, Default)]
pub(super) struct Pair {
    /// Bytes each of its transfers has moved since the clock (re)started,
    /// as of [`Pools::last`].
    clock: f64,
    /// Bytes a second each of them moves.
    rate: f64,
    /// Its moving transfers: the clock's reading at which each is done
    /// (its bits: the readings are finite and not negative, so they order
    /// as the values), its place in the order transfers joined, and its
    /// flight.
    moving: BinaryHeap<Reverse<(u64, u32, u32)>>,
}

/// A pair's clock is taken back to zero (every reading shifted, the
/// order kept) past this many bytes, so that its `f64` readings keep
/// a thousandth of a byte of precision however long the run.
const CLOCK_REBASE: f64 = (1u64 << 40) as f64;

impl Pair {
    /// Shifts every reading back by the clock's, which becomes zero.
    #[cold]
    fn rebase(&mut self) {
        let clock = self.clock;
        let moving = std::mem::take(&mut self.moving).into_vec();
        self.moving = moving
            .into_iter()
            .map(|Reverse((key, joined, f))| {
                Reverse(((f64::from_bits(key) - clock).max(0.0).to_bits(), joined, f))
            })
            .collect();
        self.clock = 0.0;
    }
}

/// The cluster's state for the two pools: replicas `0..np` prefill,
/// `np..` decode.
pub(super) struct Pools<'s> {
    pub disagg: &'s Disagg,
    pub np: usize,
    pub router: super::cluster::RouterState,
    pub tp_p: u32,
    pub tp_d: u32,
    pub p_layout: KvLayout,
    pub layers: u32,
    /// Out-channel of each prefill replica, in-channel of each decode one.
    pub out: Vec<Channel>,
    pub inbound: Vec<Channel>,
    /// Flights waiting to reserve on each decode replica.
    pub queues: Vec<VecDeque<u32>>,
    pub flights: Vec<Flight>,
    /// Requests issued so far to each replica (its next request's index).
    pub issued: Vec<u32>,
    /// Fair sharing: each (prefill, decode) replica pair's transfers
    /// (index `p * decode replicas + d`), the pairs with transfers moving,
    /// how many transfers have joined (their order), the last instant the
    /// clocks were brought up to date, and how many transfers use each
    /// prefill replica's out-link and each decode replica's in-link.
    pub pairs: Vec<Pair>,
    pub live: Vec<u32>,
    pub joins: u32,
    pub last: SimTime,
    /// The earliest end among `active` (when the cluster checks the links).
    pub due: Option<SimTime>,
    /// While transfers join at one instant: [`Pools::due`] before the
    /// first of them.
    pub due_before_joins: Option<Option<SimTime>>,
    pub out_n: Vec<u32>,
    pub in_n: Vec<u32>,
    /// Scratch: the transfers ending at a check, by join order.
    pub ending: Vec<(u32, u32)>,
    /// Each link's share per transfer using it (its capacity over
    /// `out_n`/`in_n`), kept as they change so that sharing anew divides
    /// once per transfer, not three times; stale while a link is idle.
    pub out_each: Vec<f64>,
    pub in_each: Vec<f64>,
}

impl<'s> Pools<'s> {
    pub(super) fn new(
        scenario: &'s Scenario,
        disagg: &'s Disagg,
        router: super::cluster::RouterState,
    ) -> Self {
        let np = disagg.prefill.deployment.replicas.max(1) as usize;
        let nd = scenario.deployment.replicas.max(1) as usize;
        Pools {
            disagg,
            np,
            router,
            tp_p: disagg.prefill.deployment.tp,
            tp_d: scenario.deployment.tp,
            p_layout: disagg.prefill.layout,
            layers: scenario.model.layers.max(1),
            out: vec![Channel::default(); np],
            inbound: vec![Channel::default(); nd],
            queues: vec![VecDeque::new(); nd],
            flights: Vec::with_capacity(super::presized(scenario)),
            issued: vec![0; np + nd],
            pairs: std::iter::repeat_with(Pair::default)
                .take(np * nd)
                .collect(),
            live: Vec::new(),
            joins: 0,
            last: SimTime::ZERO,
            due: None,
            due_before_joins: None,
            out_n: vec![0; np],
            in_n: vec![0; nd],
            ending: Vec::new(),
            out_each: vec![0.0; np],
            in_each: vec![0.0; nd],
        }
    }

    /// Whether concurrent transfers share the links fairly.
    pub(super) fn fair(&self) -> bool {
        self.disagg.link.sharing == Sharing::Fair
    }

    /// Issues flight `f`'s transfer at `at`: with FIFO links, reserves them
    /// and returns when it ends; with fair sharing, returns `None` (it
    /// starts moving data after the link's latency: [`Pools::join`]).
    pub(super) fn issue_transfer(&mut self, f: u32, at: SimTime) -> Option<SimTime> {
        if !self.fair() {
            return Some(self.start_transfer(f, at));
        }
        let fl = &mut self.flights[f as usize];
        fl.bytes = self.p_layout.kept_bytes(fl.lengths.prompt);
        fl.transfer_start = Some(at);
        None
    }

    /// Brings every moving pair's clock up to `t`.
    fn progress(&mut self, t: SimTime) {
        let dt = (t - self.last).as_secs_f64();
        self.last = t;
        if dt == 0.0 {
            return;
        }
        for &g in &self.live {
            let pair = &mut self.pairs[g as usize];
            pair.clock += pair.rate * dt;
            if pair.clock > CLOCK_REBASE {
                pair.rebase();
            }
        }
    }

    /// Each moving pair's rate after a change at `t`, and when its next
    /// transfer now ends: `rate = min(solo, out-link / its transfers,
    /// in-link / its transfers)`, the end rounded up to the nanosecond.
    /// Returns the earliest end, which becomes [`Pools::due`].
    fn reshare(&mut self, t: SimTime) -> Option<SimTime> {
        let solo = self.disagg.transfer_rate(self.tp_p, self.tp_d) as f64;
        let nd = self.in_n.len();
        let mut first: Option<SimTime> = None;
        for &g in &self.live {
            let (p, d) = (g as usize / nd, g as usize % nd);
            let pair = &mut self.pairs[g as usize];
            pair.rate = solo.min(self.out_each[p]).min(self.in_each[d]);
            let Some(&Reverse((key, _, _))) = pair.moving.peek() else {
                invariant_violated!("a moving pair with no transfer");
                continue;
            };
            // Less than a byte left is rounding: it ends now.
            let left = f64::from_bits(key) - pair.clock;
            let ns = if left < 1.0 {
                0
            } else {
                ceil_u64(left / pair.rate * 1e9)
            };
            let end = t + SimDuration::from_nanos(ns);
            first = Some(first.map_or(end, |f| f.min(end)));
        }
        self.due = first;
        first
    }

    /// Fair sharing: flight `f` starts moving data at `t` (its latency
    /// paid). With `last`, the links are shared anew and the next due
    /// instant returned if it changed since before the first of the
    /// transfers joining at `t` (the cluster schedules a check then); without,
    /// another joins at `t` after it, and the sharing waits for it (it
    /// would be recomputed from the same clocks).
    pub(super) fn join(&mut self, f: u32, t: SimTime, last: bool) -> Option<SimTime> {
        self.progress(t);
        let fl = &self.flights[f as usize];
        let (p, d, bytes) = (fl.p as usize, fl.d as usize, fl.bytes);
        for (n, c) in [
            (&mut self.out_n[p], &mut self.out[p]),
            (&mut self.in_n[d], &mut self.inbound[d]),
        ] {
            if *n == 0 {
                // Busy from now: `free_at` marks when it became busy.
                c.free_at = t;
            }
            *n += 1;
        }
        self.share_links(p, d);
        let g = p * self.in_n.len() + d;
        let pair = &mut self.pairs[g];
        if pair.moving.is_empty() {
            pair.clock = 0.0;
            self.live.push(g as u32);
        }
        let done_at = pair.clock + bytes as f64;
        pair.moving
            .push(Reverse((done_at.to_bits(), self.joins, f)));
        self.joins += 1;
        // The due instant before this instant's joins: a check is
        // scheduled for it.
        let before = *self.due_before_joins.get_or_insert(self.due);
        if !last {
            return None;
        }
        self.due_before_joins = None;
        let due = self.reshare(t);
        (due != before).then_some(due).flatten()
    }

    /// Fair sharing: the links' check at `t`. If `t` is still the earliest
    /// end (a check scheduled before the ends moved is stale), every
    /// transfer ending now (less than a byte left) leaves the links, in the
    /// order they joined, into `ended`; the others' shares grow. Returns
    /// the next due instant to schedule, if any.
    pub(super) fn links_due(&mut self, t: SimTime, ended: &mut Vec<u32>) -> Option<SimTime> {
        if self.due != Some(t) {
            return None;
        }
        self.progress(t);
        let start = ended.len();
        let mut order = std::mem::take(&mut self.ending);
        let mut i = 0;
        while i < self.live.len() {
            let pair = &mut self.pairs[self.live[i] as usize];
            while let Some(&Reverse((key, joined, f))) = pair.moving.peek() {
                if f64::from_bits(key) - pair.clock >= 1.0 {
                    break;
                }
                pair.moving.pop();
                order.push((joined, f));
            }
            if pair.moving.is_empty() {
                self.live.swap_remove(i);
            } else {
                i += 1;
            }
        }
        order.sort_unstable();
        for &(_, f) in &order {
            let fl = &mut self.flights[f as usize];
            fl.transfer_end = Some(t);
            let (p, d, bytes) = (fl.p as usize, fl.d as usize, fl.bytes);
            for (n, c) in [
                (&mut self.out_n[p], &mut self.out[p]),
                (&mut self.in_n[d], &mut self.inbound[d]),
            ] {
                *n -= 1;
                c.bytes += bytes;
                if *n == 0 {
                    c.busy_ns += (t - c.free_at).as_nanos();
                    c.free_at = t;
                }
            }
            self.share_links(p, d);
            ended.push(f);
        }
        invariant!(ended.len() > start, "a due check ends a transfer");
        order.clear();
        self.ending = order;
        self.reshare(t)
    }

    /// Recomputes prefill replica `p`'s out-link share and decode replica
    /// `d`'s in-link share after their transfer counts changed: capacity
    /// (link bandwidth per GPU times TP) over the transfers using it.
    fn share_links(&mut self, p: usize, d: usize) {
        let gbps = self.disagg.link.bytes_per_s as f64;
        let (cap_out, cap_in) = (gbps * f64::from(self.tp_p), gbps * f64::from(self.tp_d));
        self.out_each[p] = cap_out / f64::from(self.out_n[p]);
        self.in_each[d] = cap_in / f64::from(self.in_n[d]);
    }

    /// When flight `f`'s transfer, issued at `at`, ends; reserves the links.
    pub(super) fn start_transfer(&mut self, f: u32, at: SimTime) -> SimTime {
        let fl = &self.flights[f as usize];
        let (p, d) = (fl.p as usize, fl.d as usize);
        let bytes = self.p_layout.kept_bytes(fl.lengths.prompt);
        let t = Transfer {
            blocks: 1,
            block_bytes: bytes,
            rate_bps: self.disagg.transfer_rate(self.tp_p, self.tp_d),
            latency_ns: self.disagg.link.latency.as_nanos(),
            per_block_ns: 0,
        };
        let end = match self.disagg.transfer {
            TransferMode::AfterPrefill => {
                let [out, inbound] = [&mut self.out[p], &mut self.inbound[d]];
                reserve(at, &mut [out, inbound], &t)
            }
            TransferMode::Layerwise => {
                let wire = t.duration_ns() - t.latency_ns;
                let (s, e) = (fl.step_start.as_nanos(), at.as_nanos());
                let l = u64::from(self.layers);
                let free = self.out[p].free_at.max(self.inbound[d].free_at).as_nanos();
                let first_layer = s + (e - s) / l;
                let end = (e + wire / l).max(free.max(first_layer) + wire) + t.latency_ns;
                let end = SimTime::from_nanos(end);
                for c in [&mut self.out[p], &mut self.inbound[d]] {
                    c.free_at = end;
                    c.busy_ns += wire + t.latency_ns;
                    c.bytes += bytes;
                }
                end
            }
        };
        let fl = &mut self.flights[f as usize];
        fl.bytes = bytes;
        fl.transfer_start = Some(at);
        fl.transfer_end = Some(end);
        end
    }

    /// Whether decode replicas reserve before the prefill (`reserve =
    /// "before-prefill"`).
    pub(super) fn early(&self) -> bool {
        self.disagg.reserve == ReserveMode::BeforePrefill
    }
}

/// The request a prefill replica runs for flight `f`: one output token.
pub(super) fn prefill_request(f: u32, fl: &Flight) -> Routed {
    Routed {
        lengths: Lengths {
            output: 1,
            max_tokens: 1,
            ..fl.lengths
        },
        content: fl.content,
        session: fl.session,
        turn: fl.turn,
        conversation: f,
        received: NONE,
    }
}

/// The request a decode replica receives for flight `fl`.
pub(super) fn decode_request(fl: &Flight) -> Routed {
    Routed {
        lengths: fl.lengths,
        content: None,
        session: fl.session,
        turn: fl.turn,
        conversation: fl.conversation,
        received: fl.d_slot,
    }
}

/// Nanoseconds between two instants of a flight, when both happened.
pub(super) fn span(from: Option<SimTime>, to: Option<SimTime>) -> Option<SimDuration> {
    Some(to? - from?)
}

/// `x.ceil() as u64`, without the libm call `ceil` is on x86-64's baseline
/// (no SSE4.1): every reshare rounds each moving transfer's end up. The
/// same value for every `x`: on `[0, 2^63)` the truncation is exact through
/// `i64` and a fraction left rounds it up (from 2^52 on `x` is whole);
/// the rest (negative, huge, infinite or NaN) goes through `ceil`.
#[inline]
fn ceil_u64(x: f64) -> u64 {
    const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if (0.0..I64_LIMIT).contains(&x) {
        let whole = x as i64;
        return whole as u64 + u64::from((whole as f64) < x);
    }
    x.ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::{Flight, NONE, Pools, ceil_u64};
    use crate::engine::cluster::RouterState;
    use crate::scenario::Scenario;
    use crate::traffic::Lengths;
    use crate::units::SimTime;

    /// A flight from prefill replica `p` to decode replica `d` moving
    /// `bytes`, issued at `at`.
    fn flight(p: u32, d: u32, bytes: u64, at: SimTime) -> Flight {
        Flight {
            lengths: Lengths {
                prompt: 1,
                output: 1,
                max_tokens: 1,
                prefix: None,
                conversation: Lengths::NO_CONVERSATION,
            },
            content: None,
            session: None,
            turn: 0,
            conversation: NONE,
            arrival: at,
            p,
            p_req: 0,
            d,
            d_req: 0,
            p_slot: 0,
            d_slot: 0,
            queued: at,
            reserved: Some(at),
            next_join: NONE,
            prefill_end: Some(at),
            step_start: at,
            transfer_start: Some(at),
            transfer_end: None,
            bytes,
        }
    }

    /// Fair sharing by one clock per replica pair ends every transfer when
    /// sharing defined transfer by transfer does: at each join and end,
    /// each moving transfer's bytes left brought up to date and its rate
    /// recomputed (`min(solo, out-link / its transfers, in-link / its
    /// transfers)`), its end rounded up to the nanosecond (the engine's
    /// sharing before the clocks). Random joins on pools of one to three
    /// replicas, links from a fast one (transfers rarely overlap) to a slow
    /// one (hundreds move at once), and terabyte transfers that take a
    /// pair's clock past [`CLOCK_REBASE`] again and again: ends agree to the nanosecond (the two
    /// round `f64` differently), transfers ending at one instant leave in
    /// the order they joined, every link carries the bytes of the
    /// transfers that used it, and no end is more than 16 ns from the exact
    /// one (rounding up an end delays the rate rise it brings).
    #[test]
    fn pair_clocks_end_transfers_as_sharing_transfer_by_transfer_does() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/disagg.toml");
        // (prefill replicas, decode replicas, GB/s, joins, least bytes of a
        // transfer, the most a gap between joins, ns).
        for (case, (np, nd, gbps, joins, least, gap)) in [
            (1, 1, 50.0, 400, 10_000_000, 4_000_000),
            (2, 3, 2.0, 600, 10_000_000, 4_000_000),
            (3, 2, 0.2, 600, 10_000_000, 4_000_000),
            (3, 3, 0.05, 300, 10_000_000, 4_000_000),
            // 100-1,000 GB a transfer, overlapping: the pair's clock
            // passes `CLOCK_REBASE` again and again.
            (1, 1, 50.0, 60, 100_000_000_000, 4_000_000_000),
        ]
        .into_iter()
        .enumerate()
        {
            let sets = [
                format!("deployment.prefill.hardware.replicas={np}"),
                format!("deployment.decode.hardware.replicas={nd}"),
                format!("deployment.link.gbps={gbps}"),
            ];
            let s = Scenario::load(&path, &sets).expect("the bench scenario");
            let disagg = s.disagg.as_ref().expect("disaggregated");
            let mut pools = Pools::new(&s, disagg, RouterState::of(&s.deployment));
            let solo = disagg.transfer_rate(pools.tp_p, pools.tp_d) as f64;
            let link = disagg.link.bytes_per_s as f64;
            let caps = (link * f64::from(pools.tp_p), link * f64::from(pools.tp_d));
            // Joins (ns, p, d, bytes): a few at one instant now and then,
            // `least` to ten times as many bytes each.
            let mut x = 0x2545_F491_4F6C_DD1Du64 + case as u64;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            // First, where there are two decode replicas, three transfers at
            // 0 on one prefill replica's link, which all move at a third of
            // it and end together: two to decode replica 0, joining first and
            // last, and one to decode replica 1 (one pair's clock, another's).
            let mut planned = Vec::new();
            if nd > 1 {
                planned.extend([
                    (0, 0, 0, 50_000_000),
                    (0, 0, 1, 50_000_000),
                    (0, 0, 0, 50_000_000),
                ]);
            }
            let mut t = 1_000_000_000u64;
            while planned.len() < joins {
                if next() % 4 != 0 {
                    t += next() % gap;
                }
                let (p, d) = ((next() % np) as u32, (next() % nd) as u32);
                planned.push((t, p, d, least + next() % (9 * least)));
            }
            for &(at, p, d, bytes) in &planned {
                pools
                    .flights
                    .push(flight(p, d, bytes, SimTime::from_nanos(at)));
            }
            // The pools, driven as the cluster drives them: the joins at
            // an instant, then a due check if one is at or before the next.
            let (mut ended, mut order) = (Vec::new(), Vec::new());
            let mut due: Option<SimTime> = None;
            let mut i = 0;
            while i < planned.len() || due.is_some() {
                let join_at = planned.get(i).map(|j| SimTime::from_nanos(j.0));
                if let Some(at) = join_at.filter(|&at| due.is_none_or(|d| at <= d)) {
                    while planned.get(i).is_some_and(|j| j.0 == at.as_nanos()) {
                        let last = planned.get(i + 1).is_none_or(|j| j.0 != at.as_nanos());
                        if let Some(d) = pools.join(i as u32, at, last) {
                            due = Some(d);
                        }
                        i += 1;
                    }
                    continue;
                }
                let at = due.take().expect("a check");
                if let Some(d) = pools.links_due(at, &mut ended) {
                    due = Some(d);
                }
                order.append(&mut ended);
            }
            let (rounded, exact) = (
                transfer_by_transfer(&planned, solo, caps, true),
                transfer_by_transfer(&planned, solo, caps, false),
            );
            assert_eq!(order.len(), joins, "case {case}: every transfer ends once");
            let mut seen = vec![false; joins];
            for &f in &order {
                assert!(!std::mem::replace(&mut seen[f as usize], true));
            }
            for w in order.windows(2) {
                let (a, b) = (&pools.flights[w[0] as usize], &pools.flights[w[1] as usize]);
                assert!(
                    a.transfer_end <= b.transfer_end,
                    "case {case}: ends in time order"
                );
                if a.transfer_end == b.transfer_end {
                    assert!(
                        w[0] < w[1],
                        "case {case}: ends at one instant in join order"
                    );
                }
            }
            for (k, fl) in pools.flights.iter().enumerate() {
                let got = fl.transfer_end.expect("ended").as_nanos() as f64;
                assert!(
                    (got - rounded[k]).abs() <= 1.0 && (got - exact[k]).abs() <= 16.0,
                    "case {case}, transfer {k}: ends at {got} ns; transfer by transfer \
                     {} ns, {} ns unrounded",
                    rounded[k],
                    exact[k]
                );
            }
            let moved: u64 = planned.iter().map(|p| p.3).sum();
            let out: u64 = pools.out.iter().map(|c| c.bytes).sum();
            let inbound: u64 = pools.inbound.iter().map(|c| c.bytes).sum();
            assert_eq!((out, inbound), (moved, moved), "case {case}");
        }
    }

    /// When each of `planned`'s transfers (join ns, p, d, bytes) ends, in
    /// ns, shared transfer by transfer: at each join and end every moving
    /// transfer's bytes left are brought up to date and its rate
    /// recomputed; with `round`, each end is rounded up to the nanosecond
    /// and events fall on whole nanoseconds, as in the engine.
    fn transfer_by_transfer(
        planned: &[(u64, u32, u32, u64)],
        solo: f64,
        (cap_out, cap_in): (f64, f64),
        round: bool,
    ) -> Vec<f64> {
        let n = planned.len();
        let (mut left, mut rate, mut end) = (vec![0.0; n], vec![0.0; n], vec![f64::NAN; n]);
        let mut moving: Vec<usize> = Vec::new();
        let (mut now, mut j) = (0.0_f64, 0);
        while j < n || !moving.is_empty() {
            let first_end = moving
                .iter()
                .map(|&k| {
                    let ns = left[k] / rate[k] * 1e9;
                    match (round, left[k] < 1.0) {
                        (true, true) => now,
                        (true, false) => now + ceil_u64(ns) as f64,
                        (false, _) => now + ns,
                    }
                })
                .fold(f64::INFINITY, f64::min);
            let next_join = planned.get(j).map_or(f64::INFINITY, |p| p.0 as f64);
            let to = first_end.min(next_join);
            for &k in &moving {
                left[k] = (left[k] - rate[k] * (to - now) / 1e9).max(0.0);
            }
            now = to;
            if next_join <= first_end {
                left[j] = planned[j].3 as f64;
                moving.push(j);
                j += 1;
                if planned.get(j).is_some_and(|p| p.0 as f64 == now) {
                    continue;
                }
            } else {
                moving.retain(|&k| {
                    let done = left[k] < 1.0;
                    if done {
                        end[k] = now;
                    }
                    !done
                });
            }
            let count = |f: &dyn Fn(usize) -> bool| moving.iter().filter(|&&k| f(k)).count();
            for &k in &moving {
                let (p, d) = (planned[k].1, planned[k].2);
                let n_out = count(&|m| planned[m].1 == p) as f64;
                let n_in = count(&|m| planned[m].2 == d) as f64;
                rate[k] = solo.min(cap_out / n_out).min(cap_in / n_in);
            }
        }
        end
    }

    /// `ceil_u64` is `ceil` then the saturating cast, for every kind of
    /// `f64`: whole and fractional values, either side of 2^52 and 2^63,
    /// negative ones, infinities and NaN, and random bit patterns.
    #[test]
    fn ceil_u64_is_ceil() {
        let mut values = vec![
            0.0,
            -0.0,
            0.4,
            0.5,
            1.0,
            1.0 + f64::EPSILON,
            2.5,
            1e9,
            123_456_789.000_000_1,
            4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9_007_199_254_740_993.0,
            9_223_372_036_854_774_784.0,
            9_223_372_036_854_775_808.0,
            1.8e19,
            2e19,
            -0.5,
            -1.5,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(f64::from_bits(x));
            values.push((x >> 11) as f64 / 1024.0);
        }
        for v in values {
            assert_eq!(ceil_u64(v), v.ceil() as u64, "{v:e}");
        }
    }
}
