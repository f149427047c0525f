//! The simulation loop: integer time, an event queue, and one engine step at a
//! time (docs/ARCHITECTURE.md#time, docs/ARCHITECTURE.md#engine-loop).
//!
//! # Lifecycle of a request
//!
//! arrival -> waiting (FCFS) -> admitted (its prompt placed in the cache,
//! leading blocks shared if cached) -> prefill of the rest (whole, or in
//! chunks) -> first token at the end of its last prefill step -> one token per
//! decode step -> ends `ok` after its last token, or earlier as `oom`,
//! `crashed`, `unservable` or `timeout`.
//!
//! A preempted sequence either goes back to the front of the queue and, when
//! readmitted, prefills its prompt and generated tokens again (recompute), or
//! has its KV copied to host memory and back (swap). A request with `n`
//! samples forks its sequence after the shared prefill; it ends when its last
//! sample does. A multi-turn session sends its next turn, whose prompt carries
//! the whole conversation so far, a think time after the previous turn ends.
//!
//! # KV accounting
//!
//! After a prefill of `P` tokens the cache holds `P` tokens and the first output
//! token is emitted. Each decode step writes the KV of the last emitted token
//! and emits the next, so a sample of `O` output tokens peaks at `P + O - 1`
//! stored tokens: the last token's KV is never written.
//!
//! # Cost per step
//!
//! The straightforward engine schedules, accounts and finishes in O(batch)
//! per step; nothing per step depends on the number of waiting or finished
//! requests, and nothing is allocated per token. In the common case (paged,
//! no window, no prefix caching, one sample, whole prefills, optimistic
//! admission) a fast path keeps the per-step work O(1) plus O(log batch) per
//! sequence event, with results identical to the straightforward engine's:
//! see `src/engine/fast.rs` and [`simulate_reference`].

mod cluster;
mod disagg;
mod fast;
mod guard;
mod memory;
mod queue;
mod requests;
mod step;
mod tiers;

pub use crate::machine::{peak_rss_bytes, physical_memory_bytes};
pub use cluster::ClusterOutput;
pub use guard::{
    BASE_BYTES, BYTES_PER_REQUEST, BYTES_PER_STEP, CHECK_EVERY, Limits, MemoryEstimate,
    MemoryVerdict, Stopped, WARN_WALL_S, WorkEstimate, estimate_memory, estimate_work, human_secs,
    memory_verdict,
};
pub use queue::EventQueue;

use std::collections::VecDeque;

use crate::cache::{Content, KvCache, KvLayout, SeqId};
use crate::hardware::cost::CostModel;
use crate::metrics::stream::RecordStream;
use crate::metrics::{
    BatchLimit, ByteLevels, Collector, Outcome, RequestRecord, Summary, TimelineRecorder,
    TimelineRow, summarize, summary_of,
};
use crate::scenario::spec::RecordsMode;
use crate::scenario::{AUTO_STREAMING_REQUESTS, Scenario, Stop};
use crate::scheduler::SchedulerConfig;
use crate::traffic::{Lengths, LoopKind, SharedPrefix, Traffic};
use crate::units::SimTime;
use memory::{levels_of, levels_of_usage};

/// Requests up to which the per-request tables are allocated at their final
/// size when the run stops after a request count.
const MAX_PRESIZED: u64 = 1 << 26;

/// Requests whose per-request tables a run of `scenario` that keeps its
/// records allocates at their final size: its request count, when it stops
/// after one (0 otherwise). What is kept per request is allocated once: no
/// doubling, which would hold the old and the new vector at once at ten
/// million requests, and copy and fault in every one of them on the way.
/// Untouched capacity costs address space, not memory.
fn presized(scenario: &Scenario) -> usize {
    match scenario.stop {
        Stop::Requests(n) => usize::try_from(n.min(MAX_PRESIZED)).unwrap_or(0),
        _ => 0,
    }
}

/// "None" for the `u32` indices below (kept as plain integers so the hot
/// structs stay small and `Copy`).
const NONE: u32 = u32::MAX;

/// Session keys live in the upper half of the content-key space, shared
/// system prompts in the lower half, so the two never collide.
const SESSION_KEY_BASE: u64 = 1 << 63;

/// What can happen.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Event {
    /// An open-loop request (or session) arrives.
    Arrival(Lengths),
    /// A request routed in by the cluster arrives (the next of
    /// [`Engine::routed`]).
    Routed,
    /// A closed-loop user sends its next request (or starts a session).
    UserReady(u32),
    /// A session sends its next turn.
    NextTurn(u32),
    /// The step in flight ends.
    StepEnd,
    /// A crashed server is back.
    Restart,
    /// A load from a KV tier below HBM ended (the scheduler looks again).
    LoadDone,
    /// The cluster changed this replica's memory (a prefill replica's held
    /// KV was released after its transfer): the scheduler looks again.
    Wake,
}

/// What a replica does in its deployment.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Role {
    /// Prefills and decodes its own requests.
    Colocated,
    /// Prefills only: a request's KV is held after its prefill until the
    /// cluster has moved it to a decode replica ([`Handoff`]).
    Prefill,
    /// Decodes requests whose KV it received into room reserved for it.
    Decode,
}

/// A prefill replica's report that a request's prefill completed: its KV
/// stays in `slot` until the cluster releases it
/// ([`Engine::release_held`]).
#[derive(Copy, Clone, Debug)]
struct Handoff {
    /// The cluster's flight (the request's [`Routed::conversation`]).
    flight: u32,
    /// The request in this replica.
    req: u32,
    /// Its KV.
    slot: SeqId,
    /// When its prefill ended.
    at: SimTime,
    /// When the step that completed it started (a layer-wise transfer
    /// overlaps that step).
    step_start: SimTime,
}

/// A request whose KV a decode replica received, waiting to join a batch.
#[derive(Copy, Clone, Debug)]
struct Received {
    req: u32,
    /// The room reserved for it, holding its prompt's KV.
    slot: SeqId,
    /// Its true output length.
    output: u32,
}

/// A sequence in the running batch: one sample of a request.
#[derive(Copy, Clone, Debug)]
struct Seq {
    /// Index into the request table.
    req: u32,
    /// The cache slot.
    slot: SeqId,
    /// Tokens to prefill in this admission (the prompt, plus generated tokens
    /// after a recompute preemption).
    prefill_target: u32,
    /// Of those, tokens already computed (or found in the prefix cache).
    prefilled: u32,
    /// Tokens whose KV is stored.
    context: u32,
    /// Tokens scheduled in the step in flight (0: not in this step).
    scheduled: u32,
    /// This sample's true output length.
    output: u32,
    /// This sample's tokens emitted so far.
    generated: u32,
    /// Fork the request's other samples when this prefill completes.
    fork: bool,
    /// KV bytes it will keep at its fullest, by its last token (for the
    /// waste breakdown; a chunked group is fullest at a chunk's end).
    final_bytes: u64,
    /// Fast path: the fast steps completed when `context`, `generated` and
    /// the cache's tokens were last brought up to date (each fast step adds
    /// one to all three; see [`fast`]).
    since: u64,
    /// Fast path: it ended and awaits compaction out of `running`.
    dead: bool,
    /// What its prompt is, for prefix caching (back to the queue with it
    /// if it is preempted).
    content: Option<Content>,
}

impl Seq {
    fn decoding(&self) -> bool {
        self.prefilled == self.prefill_target
    }

    /// Tokens the cache holds for this sequence right now.
    fn cached_tokens(&self) -> u32 {
        if self.decoding() {
            self.context + u32::from(self.scheduled > 0)
        } else {
            self.prefill_target
        }
    }
}

/// A sample waiting for (re)admission.
#[derive(Copy, Clone, Debug)]
struct Waiting {
    req: u32,
    /// This sample's true output length.
    output: u32,
    /// Tokens it had generated before a preemption (recomputed on admission).
    generated: u32,
    /// Fork the request's other samples after its prefill.
    fork: bool,
    /// What its prompt is, for prefix caching: an entry of
    /// [`Engine::contents`], or `NONE`. Kept aside rather than inline so
    /// that an entry is 20 bytes, not 40: an overloaded run's queue holds
    /// most of its requests.
    content: u32,
}

/// The contents of waiting samples' prompts (only scenarios with prefix
/// caching or sessions have any), in reusable slots.
#[derive(Debug, Default)]
struct ContentSlab {
    entries: Vec<Content>,
    free: Vec<u32>,
}

impl ContentSlab {
    /// Stores `content`, returning its slot (`NONE` for no content).
    fn put(&mut self, content: Option<Content>) -> u32 {
        let Some(c) = content else {
            return NONE;
        };
        match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = c;
                i
            }
            None => {
                self.entries.push(c);
                (self.entries.len() - 1) as u32
            }
        }
    }

    /// The content in `slot`.
    fn get(&self, slot: u32) -> Option<Content> {
        (slot != NONE).then(|| self.entries[slot as usize])
    }

    /// Removes and returns the content in `slot`.
    fn take(&mut self, slot: u32) -> Option<Content> {
        let c = self.get(slot);
        if c.is_some() {
            self.free.push(slot);
        }
        c
    }

    /// Forgets every entry (the server died: the queue is gone).
    fn clear(&mut self) {
        self.entries.clear();
        self.free.clear();
    }
}

/// A sequence whose KV sits in host memory.
#[derive(Copy, Clone, Debug)]
struct Swapped {
    seq: Seq,
    bytes: u64,
}

/// Per-request state the engine keeps while a request is alive.
#[derive(Copy, Clone, Debug)]
struct Live {
    /// Closed-loop user who sent it (`NONE` for open loop). In a fed
    /// replica: the cluster's conversation to report its end to
    /// ([`TurnDone::conversation`]), `NONE` when nothing follows it.
    user: u32,
    /// The session it belongs to (`NONE` if none).
    session: u32,
    /// Samples not ended yet.
    samples_left: u32,
    /// The worst outcome among its ended samples.
    outcome: Outcome,
}

/// A multi-turn conversation in progress.
#[derive(Copy, Clone, Debug)]
struct Session {
    key: u64,
    /// Turns sent so far.
    turn: u32,
    /// Tokens of conversation so far (the next turn's prompt starts with them).
    history: u32,
    /// Turns still to send.
    turns_left: u32,
    /// Closed-loop user who holds it (`NONE` for open loop).
    user: u32,
    /// The ShareGPT conversation it replays, or `Lengths::NO_CONVERSATION`.
    conversation: u32,
}

/// A request the cluster routes into a fed replica: everything the replica
/// would otherwise have decided itself when it issues the request.
#[derive(Copy, Clone, Debug)]
struct Routed {
    /// Its lengths; for a session's later turn, `prompt` includes the history.
    lengths: Lengths,
    /// What its prompt is, for prefix caching ([`request_content`]).
    content: Option<Content>,
    /// Its session number and turn, for its record (`None`, 1: no session).
    session: Option<u64>,
    turn: u32,
    /// The cluster's conversation to report its end to, or `NONE`.
    conversation: u32,
    /// For a decode replica: the slot reserved for it, holding its prompt's
    /// KV, received from a prefill replica (`NONE`: it prefills here).
    received: SeqId,
}

/// A fed replica's report that a request the cluster follows up (a session's
/// turn, a closed-loop user's request) has ended; the cluster sends the next
/// turn or lets the user think ([`Engine::done`]).
#[derive(Copy, Clone, Debug)]
struct TurnDone {
    /// The cluster's conversation ([`Routed::conversation`]).
    conversation: u32,
    /// How the request ended.
    outcome: Outcome,
    /// Tokens of conversation after it: its prompt and its output.
    context: u32,
    /// When it ended.
    at: SimTime,
    /// When the replica is back, if it was down when the request ended (a
    /// crash): its user waits for that before sending again.
    back: Option<SimTime>,
}

/// The content of a request's prompt for prefix caching: a session's turn
/// is its conversation so far (`key`, `history` tokens of it reusable, every
/// token its lineage), another request its shared prefix, if any. The
/// engine issues with it and the cluster's kv-aware router looks it up, so
/// both see the same blocks.
fn request_content(session: Option<(u64, u32)>, prefix: Option<SharedPrefix>) -> Option<Content> {
    match session {
        Some((key, history)) => Some(Content {
            key,
            reusable: history,
            lineage: u32::MAX,
        }),
        None => prefix.map(SharedPrefix::content),
    }
}

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// One record per request, in arrival order.
    pub records: Vec<RequestRecord>,
    /// One row per step (or per sampling interval).
    pub timeline: Vec<TimelineRow>,
    /// The run's metrics.
    pub summary: Summary,
    /// Per-step statistics (for a cluster: merged over its replicas).
    pub stats: Collector,
    /// Per-replica results, when the deployment has more than one replica.
    pub cluster: Option<ClusterOutput>,
    /// Streaming mode ([`streams`]): `records` is empty and the summary's
    /// percentiles come from sketches.
    pub streamed: bool,
}

/// Whether a run of `scenario` keeps no per-request records (streaming
/// mode): as `output.records` says; for `"auto"`, when it is expected to
/// issue more than [`AUTO_STREAMING_REQUESTS`] requests
/// ([`guard::expected_requests`], not computed where
/// [`guard::requests_at_most`] rules that out). A disaggregated deployment
/// always keeps them.
pub fn streams(scenario: &Scenario) -> bool {
    match scenario.records {
        RecordsMode::Exact => false,
        RecordsMode::Streaming => true,
        RecordsMode::Auto => {
            scenario.disagg.is_none()
                && guard::requests_at_most(scenario).is_none_or(|n| n > AUTO_STREAMING_REQUESTS)
                && guard::expected_requests(scenario) > AUTO_STREAMING_REQUESTS
        }
    }
}

/// Simulates `scenario` with seed `seed` and the given cost model: one
/// engine, or a cluster of `hardware.replicas` engines behind its router.
/// Without limits a run stops early only when its inputs make the simulated
/// clock pass the horizon ([`Stopped::Horizon`]).
pub fn simulate<C: CostModel + Clone>(
    scenario: &Scenario,
    seed: u64,
    cost: C,
) -> Result<RunOutput, Stopped> {
    simulate_limited(scenario, seed, cost, &Limits::default())
}

/// [`simulate`] under `limits`: a run that hits one stops with [`Stopped`]
/// (for a cluster, `max_events` applies to each replica).
pub fn simulate_limited<C: CostModel + Clone>(
    scenario: &Scenario,
    seed: u64,
    cost: C,
    limits: &Limits,
) -> Result<RunOutput, Stopped> {
    run_mode(scenario, seed, cost, limits, RunMode::FULL)
}

/// The summary of a run of `scenario` under `limits`, as [`simulate_limited`]
/// summarizes it, without recording its per-step timeline: what a sweep's
/// points and a plan's probes read (they write no timeline). A long probe's
/// timeline (up to `output.timeline_max_rows` rows a replica, thinned as it
/// grows) cost a plan about half its time.
pub fn simulate_summary<C: CostModel + Clone>(
    scenario: &Scenario,
    seed: u64,
    cost: C,
    limits: &Limits,
) -> Result<Summary, Stopped> {
    let mode = RunMode {
        timeline: false,
        replicas: false,
        ..RunMode::FULL
    };
    run_mode(scenario, seed, cost, limits, mode).map(|out| out.summary)
}

/// [`simulate_limited`] without recording the per-step timeline (an empty
/// `timeline`): the records and summary of a run nothing charts, such as
/// a validation case's.
pub fn simulate_without_timeline<C: CostModel + Clone>(
    scenario: &Scenario,
    seed: u64,
    cost: C,
    limits: &Limits,
) -> Result<RunOutput, Stopped> {
    let mode = RunMode {
        timeline: false,
        ..RunMode::FULL
    };
    run_mode(scenario, seed, cost, limits, mode)
}

/// How a run is carried out beyond what its scenario says.
#[derive(Copy, Clone, Debug)]
struct RunMode {
    /// Whether the fast path may run (else the straightforward engine only).
    fast: bool,
    /// Whether the per-step timeline is recorded.
    timeline: bool,
    /// Whether a cluster summarizes each replica too (`ClusterOutput`'s
    /// `replicas`; a summary alone, a sweep point's or a plan probe's, does
    /// not read them: each costs a pass of percentiles over its records).
    replicas: bool,
}

impl RunMode {
    /// The fast path and every output.
    const FULL: RunMode = RunMode {
        fast: true,
        timeline: true,
        replicas: true,
    };
}

/// A run in `mode`: one engine, or a cluster.
fn run_mode<C: CostModel + Clone>(
    scenario: &Scenario,
    seed: u64,
    cost: C,
    limits: &Limits,
    mode: RunMode,
) -> Result<RunOutput, Stopped> {
    if scenario.deployment.replicas > 1 || scenario.disagg.is_some() {
        return cluster::simulate_cluster(scenario, seed, cost, limits, mode);
    }
    simulate_with(scenario, seed, cost, mode, limits)
}

/// Simulates like [`simulate`] with the straightforward engine only: every
/// step visits every running sequence. Its output is identical to
/// [`simulate`]'s (tests compare them); it is kept as the reference the fast
/// path is checked against. One replica, replicas behind a router, or a
/// disaggregated deployment.
pub fn simulate_reference<C: CostModel + Clone>(
    scenario: &Scenario,
    seed: u64,
    cost: C,
) -> Result<RunOutput, Stopped> {
    let mode = RunMode {
        fast: false,
        ..RunMode::FULL
    };
    run_mode(scenario, seed, cost, &Limits::default(), mode)
}

/// The scenario's cache, with a Mooncake trace's block identities attached
/// (prefix caching then shares the blocks the trace's hash ids share).
fn build_cache(scenario: &Scenario) -> Box<dyn KvCache> {
    let mut cache = scenario
        .cache
        .build(scenario.budget.kv_bytes, scenario.layout);
    if let (Some(chains), Some(paged)) = (scenario.traffic.block_chains(), cache.as_paged_mut()) {
        paged.attach_chains(chains);
    }
    cache
}

fn simulate_with<C: CostModel>(
    scenario: &Scenario,
    seed: u64,
    cost: C,
    mode: RunMode,
    limits: &Limits,
) -> Result<RunOutput, Stopped> {
    let cache = build_cache(scenario);
    let traffic = scenario.traffic.instantiate(seed);
    let mut engine = Engine::new(scenario, cache, cost, traffic);
    let streamed = streams(scenario);
    engine.prepare(mode, limits, streamed, presized(scenario));
    engine.run()?;
    let end = engine.last_end;
    let stream = engine.stream.take();
    let records = match stream {
        Some(_) => Vec::new(),
        None => std::mem::take(&mut engine.records),
    };
    let timeline = engine.timeline.take_rows();
    let stats = std::mem::take(&mut engine.stats);
    // The per-request state and the queues' capacity go before the summary
    // allocates its latency lists: the peak is the records plus those.
    drop(engine);
    let summary = match &stream {
        Some(s) => summary_of(scenario, s.totals(), &s.latencies(), &stats, end),
        None => summarize(scenario, &records, &stats, end),
    };
    Ok(RunOutput {
        records,
        timeline,
        summary,
        stats,
        cluster: None,
        streamed,
    })
}

/// The engine state of one run.
struct Engine<'s, C> {
    scenario: &'s Scenario,
    cfg: SchedulerConfig,
    cache: Box<dyn KvCache>,
    /// Whether the cache may leave free bytes in pieces too small for a
    /// sequence (contiguous placement; paged never does), so that the
    /// memory levels ask it what the head of the queue cannot use.
    holes: bool,
    layout: KvLayout,
    cost: C,
    traffic: Traffic,
    loop_kind: LoopKind,
    sessions_on: bool,
    samples: u32,
    /// Host memory for swapped KV, bytes.
    swap_capacity: u64,

    now: SimTime,
    events: EventQueue<Event>,
    /// Requests issued so far (open and closed loop, every turn).
    issued: u64,
    /// No more requests will be issued.
    issuing_done: bool,
    /// A step is in flight.
    busy: bool,
    /// The server is down until this instant (after a crash).
    down_until: Option<SimTime>,

    /// The requests' records, indexed by request number; in streaming mode
    /// only those in flight, in slots reused once a request has ended.
    records: Vec<RequestRecord>,
    live: Vec<Live>,
    /// Streaming mode: ended requests folded into the summary's inputs.
    stream: Option<Box<RecordStream>>,
    /// Streaming mode: slots of `records` (and `live`) whose request ended.
    free_records: Vec<u32>,
    sessions: Vec<Session>,
    free_sessions: Vec<u32>,
    sessions_started: u64,
    waiting: VecDeque<Waiting>,
    /// Tokens the samples in `waiting` will prefill when admitted (what the
    /// kv-aware router counts as queued prompt work).
    waiting_tokens: u64,
    /// The prompt contents of the samples in `waiting`.
    contents: ContentSlab,
    running: Vec<Seq>,
    /// Samples forked during the current `finish_step` (a reused buffer).
    spawned: Vec<Seq>,
    swapped: VecDeque<Swapped>,
    swap_used: u64,
    /// Bytes copied over PCIe since the last step was priced.
    pending_swap_bytes: u64,
    free_slots: Vec<SeqId>,
    next_slot: SeqId,
    /// The fast path's state, when the scenario allows it.
    fast: Option<fast::Fast>,
    /// Entries of `running` marked dead (only while the fast path is lazy).
    dead: usize,
    /// The step in flight was started by the fast path.
    step_fast: bool,
    /// What kept the batch of the step being launched from growing.
    limit: BatchLimit,

    stats: Collector,
    timeline: TimelineRecorder,
    last_end: SimTime,
    /// A replica of a cluster: requests are routed in from outside
    /// ([`cluster`]), so the engine draws no arrivals, applies no stop rule
    /// and starts no session turn or user request: it reports the ends of
    /// those the cluster follows up ([`Engine::done`]).
    fed: bool,
    /// Whether a request routed in mid-step is issued at once rather than
    /// by an event of its own ([`Engine::inject`]): the fast path's runs;
    /// the straightforward engine keeps the event, so that comparing the
    /// two checks the shortcut too.
    issues_mid_step: bool,
    /// Requests routed in whose arrival has not been processed yet, in
    /// arrival order (each has an [`Event::Routed`] queued, but those
    /// issued at once: [`Engine::inject`]).
    routed: VecDeque<Routed>,
    /// Prompt tokens of `routed`.
    routed_tokens: u64,
    /// Ends of routed requests the cluster follows up, not yet collected
    /// (the cluster drains it after every instant it advances this replica).
    done: Vec<TurnDone>,
    /// Counts events against `--max-events` and `--time-limit`.
    guard: guard::Guard,
    /// KV tiers below HBM, when the scenario has any.
    tiers: Option<Box<tiers::EngineTiers>>,
    /// What this replica does in its deployment.
    role: Role,
    /// Prefill role: completed prefills not yet collected by the cluster.
    handoffs: Vec<Handoff>,
    /// Prefill role: sequences whose KV is held for a transfer.
    held: u32,
    /// Decode role: received requests waiting to join a batch.
    received: VecDeque<Received>,
    /// Decode role: bytes held by reservations whose sequence is not in
    /// `running` yet (receiving, or received and waiting).
    receiving_bytes: u64,
    /// Decode role: requests the router sent here that have not arrived
    /// yet (waiting to reserve, or on the wire): the router counts them.
    expected: usize,
    /// Decode role: KV bytes of the `expected` requests not reserved yet
    /// (what a KV-counting router adds to this replica's allocation).
    expected_kv: u64,
    /// When the step in flight (or the last one) started.
    step_started: SimTime,
    /// The running sequences' reserved, internal and rounding bytes as the
    /// straightforward engine measured them at the launch of the step in
    /// flight (`None` between steps). Nothing changes them until the step
    /// ends, so levels recorded meanwhile (a disaggregated replica's
    /// releases and reservations, which touch other sequences) reuse them
    /// instead of reading every running sequence again.
    running_slack: std::cell::Cell<Option<(u64, u64, u64)>>,
    /// What the cost model keeps between steps.
    step_memo: crate::hardware::cost::StepMemo,
}

impl<'s, C: CostModel> Engine<'s, C> {
    fn new(scenario: &'s Scenario, mut cache: Box<dyn KvCache>, cost: C, traffic: Traffic) -> Self {
        let layout = *cache.layout();
        let tiers = scenario.tiers.map(|plan| {
            let remote = plan.tier(crate::cache::tiers::TierKind::Remote).map(|cfg| {
                std::rc::Rc::new(std::cell::RefCell::new(tiers::SharedRemote::new(
                    cfg,
                    layout.block_bytes(),
                )))
            });
            let t = tiers::EngineTiers::new(
                plan,
                crate::cache::BlockNamer::new(scenario.traffic.block_chains(), layout.block_size),
                layout.block_size,
                layout.block_bytes(),
                remote,
            );
            if t.stores_hbm_victims() {
                if let Some(paged) = cache.as_paged_mut() {
                    paged.log_evictions();
                }
            }
            Box::new(t)
        });
        Engine {
            scenario,
            cfg: scenario.scheduler,
            holes: cache.as_contiguous().is_some(),
            cache,
            layout,
            cost,
            loop_kind: scenario.traffic.loop_kind(),
            sessions_on: scenario.traffic.session(),
            samples: scenario.traffic.samples().max(1),
            swap_capacity: scenario.scheduler.swap_bytes,
            traffic,
            now: SimTime::ZERO,
            events: EventQueue::default(),
            issued: 0,
            issuing_done: false,
            busy: false,
            down_until: None,
            records: Vec::new(),
            live: Vec::new(),
            stream: None,
            free_records: Vec::new(),
            sessions: Vec::new(),
            free_sessions: Vec::new(),
            sessions_started: 0,
            waiting: VecDeque::new(),
            waiting_tokens: 0,
            contents: ContentSlab::default(),
            running: Vec::new(),
            spawned: Vec::new(),
            swapped: VecDeque::new(),
            swap_used: 0,
            pending_swap_bytes: 0,
            free_slots: Vec::new(),
            next_slot: 0,
            fast: None,
            dead: 0,
            step_fast: false,
            limit: BatchLimit::Load,
            stats: Collector::default(),
            timeline: TimelineRecorder::new(scenario.timeline_interval, scenario.timeline_max_rows),
            last_end: SimTime::ZERO,
            fed: false,
            issues_mid_step: false,
            routed: VecDeque::new(),
            routed_tokens: 0,
            done: Vec::new(),
            guard: guard::Guard::new(guard::Limits::default()),
            tiers,
            role: Role::Colocated,
            handoffs: Vec::new(),
            held: 0,
            received: VecDeque::new(),
            receiving_bytes: 0,
            expected: 0,
            expected_kv: 0,
            step_started: SimTime::ZERO,
            running_slack: std::cell::Cell::new(None),
            step_memo: crate::hardware::cost::StepMemo::default(),
        }
    }

    /// Enters streaming mode: ended requests are folded into a
    /// [`RecordStream`] and their records dropped (the timeline is bounded
    /// in every mode, [`TimelineRecorder`]).
    fn stream_records(&mut self) {
        self.stream = Some(Box::default());
    }

    /// Sets up a run in `mode` under `limits`, once the engine's role is
    /// set (the fast path depends on it): streaming its records, or
    /// allocating what is kept per request for `requests` at once.
    fn prepare(&mut self, mode: RunMode, limits: &Limits, streamed: bool, requests: usize) {
        self.guard = guard::Guard::new(*limits);
        self.issues_mid_step = mode.fast;
        if mode.timeline {
            self.timeline.reserve();
        } else {
            self.timeline = TimelineRecorder::off();
        }
        if streamed {
            self.stream_records();
        } else {
            self.records.reserve_exact(requests);
            self.live.reserve_exact(requests);
        }
        if mode.fast {
            self.fast = fast::Fast::new(self);
        }
    }

    fn run(&mut self) -> Result<(), Stopped> {
        self.start();
        self.advance(None, || SimTime::MAX)?;
        // The fast path may end steps between events: the last instant too
        // must lie within the horizon.
        guard::beyond_horizon(self.now.max(self.last_end))?;
        self.finish_run();
        Ok(())
    }

    /// Seeds the event queue: the first arrival, or every closed-loop user.
    fn start(&mut self) {
        if self.fed {
            return;
        }
        match self.loop_kind {
            LoopKind::Open => self.schedule_next_arrival(),
            LoopKind::Closed { users } => {
                for user in 0..users {
                    self.events.push(SimTime::ZERO, Event::UserReady(user));
                }
            }
        }
    }

    /// Processes every event due before `until` (every event, when `None`),
    /// starting steps as the server frees up. Nothing from outside the
    /// engine (a cluster's routing, transfers) happens before `quiet_until()`:
    /// decode steps that end before it and its own next event may run in
    /// one loop ([`Engine::leap`]).
    fn advance(
        &mut self,
        until: Option<SimTime>,
        quiet_until: impl Fn() -> SimTime,
    ) -> Result<(), Stopped> {
        while let Some(due) = self.events.peek_time() {
            if until.is_some_and(|u| due >= u) {
                break;
            }
            let Some((time, event)) = self.events.pop() else {
                break;
            };
            invariant!(time >= self.now, "event scheduled in the past");
            self.now = time;
            self.guard.tick(time)?;
            match event {
                Event::Routed => self.issue_routed(),
                Event::Arrival(lengths) => {
                    // Session turns may have used up the request count since
                    // this arrival was drawn.
                    if self.may_issue(self.now) {
                        self.start_conversation(lengths, NONE);
                        self.schedule_next_arrival();
                    }
                }
                Event::UserReady(user) => {
                    if self.may_issue(self.now) {
                        let lengths = self.traffic.next_lengths();
                        self.start_conversation(lengths, user);
                    }
                }
                Event::NextTurn(session) => self.next_turn(session),
                Event::StepEnd => self.finish_step(),
                Event::Restart => {
                    self.down_until = None;
                    self.stats.level(self.now, ByteLevels::default());
                }
                // The loaded sequence joins the next batch the scheduler
                // forms; freed memory lets it admit more.
                Event::LoadDone | Event::Wake => {}
            }
            // Everything due at this instant happens before the scheduler
            // looks: requests that arrive together are batched together.
            if self.events.peek_time() == Some(self.now) {
                continue;
            }
            if !self.busy && self.down_until.is_none() {
                if self.fast.is_some() {
                    // Quiet decode steps up to the next event, its own or
                    // from outside, in one loop; then this one as usual.
                    let next = self.events.peek_time().unwrap_or(SimTime::MAX);
                    self.leap(|| next.min(quiet_until()))?;
                }
                self.start_step();
            }
        }
        Ok(())
    }

    /// After the last event: every lazy sequence is brought up to date and
    /// every request has ended.
    fn finish_run(&mut self) {
        self.materialize_all();
        if let Some(t) = self.tiers.as_mut() {
            t.finish(self.last_end);
            invariant!(t.check().is_ok(), "tier bookkeeping: {:?}", t.check());
            self.stats.tiers = t.totals;
        }
        invariant!(self.running.is_empty() && self.waiting.is_empty() && self.swapped.is_empty());
        invariant!(self.received.is_empty() && self.handoffs.is_empty() && self.held == 0);
        invariant_eq!(self.receiving_bytes, 0);
        invariant_eq!(self.expected_kv, 0);
        invariant_eq!(self.expected, 0);
        // Every queued sample's content was taken when it left the queue.
        invariant_eq!(self.contents.entries.len(), self.contents.free.len());
        // Conservation: every issued request has one record and ended
        // (exactly once: `end_request` asserts that), and the stop rule was
        // kept.
        match &self.stream {
            None => invariant_eq!(self.records.len() as u64, self.issued),
            Some(s) => {
                invariant_eq!(s.totals().requests, self.issued);
                invariant_eq!(self.free_records.len(), self.records.len());
            }
        }
        invariant!(self.records.iter().all(|r| r.outcome.is_some()));
        invariant!(match self.scenario.stop {
            Stop::Requests(n) => self.issued <= n,
            Stop::Duration(_) | Stop::TraceEnd => true,
        });
    }
}

#[cfg(test)]
mod tests;
