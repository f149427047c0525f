//! The simulation loop: integer time, an event queue, and one engine step at a
//! time (DESIGN.md sections 2 and 6).
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
mod fast;
mod guard;
mod queue;

pub use crate::machine::{peak_rss_bytes, physical_memory_bytes};
pub use cluster::ClusterOutput;
pub use guard::{
    BASE_BYTES, BYTES_PER_REQUEST, BYTES_PER_STEP, CHECK_EVERY, Limits, MemoryEstimate,
    MemoryVerdict, Stopped, WARN_WALL_S, WorkEstimate, estimate_memory, estimate_work, human_secs,
    memory_verdict,
};
pub use queue::EventQueue;

use std::collections::VecDeque;

use crate::cache::{Content, KvCache, KvLayout, MemoryUsage, SeqId, SeqInfo};
use crate::hardware::cost::{CostModel, StepWork};
use crate::metrics::{
    BatchLimit, Collector, MemoryLevels, Outcome, RequestRecord, Summary, TimelineRow, summarize,
};
use crate::scenario::{Scenario, Stop};
use crate::scheduler::{Admission, OnOom, SchedulerConfig, attention_pairs};
use crate::traffic::{Lengths, LoopKind, Traffic};
use crate::units::{SimDuration, SimTime};

/// Requests up to which the per-request tables are allocated at their final
/// size when the run stops after a request count.
const MAX_PRESIZED: u64 = 1 << 26;

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
    /// A closed-loop user sends its next request (or starts a session).
    UserReady(u32),
    /// A session sends its next turn.
    NextTurn(u32),
    /// The step in flight ends.
    StepEnd,
    /// A crashed server is back.
    Restart,
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
    /// KV bytes it will keep at its last token (for the waste breakdown).
    final_bytes: u64,
    /// Order of entry into the batch: strictly increasing along `running`,
    /// so the fast path finds a sequence by binary search.
    uid: u64,
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
    /// Closed-loop user who sent it (`NONE` for open loop).
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
    if scenario.deployment.replicas > 1 {
        return cluster::simulate_cluster(scenario, seed, cost, limits);
    }
    simulate_with(scenario, seed, cost, true, limits)
}

/// Simulates like [`simulate`] with the straightforward engine only: every
/// step visits every running sequence. Its output is identical to
/// [`simulate`]'s (tests compare them); it is kept as the reference the fast
/// path is checked against. One replica only.
pub fn simulate_reference<C: CostModel>(
    scenario: &Scenario,
    seed: u64,
    cost: C,
) -> Result<RunOutput, Stopped> {
    simulate_with(scenario, seed, cost, false, &Limits::default())
}

fn simulate_with<C: CostModel>(
    scenario: &Scenario,
    seed: u64,
    cost: C,
    fast: bool,
    limits: &Limits,
) -> Result<RunOutput, Stopped> {
    let cache = scenario
        .cache
        .build(scenario.budget.kv_bytes, scenario.layout);
    let traffic = scenario.traffic.instantiate(seed);
    let mut engine = Engine::new(scenario, cache, cost, traffic);
    engine.guard = guard::Guard::new(*limits);
    if let Stop::Requests(n) = scenario.stop {
        // What is kept per request, allocated once: no doubling (which
        // would hold the old and the new vector at once) at ten million
        // requests. Untouched capacity costs address space, not memory.
        let n = usize::try_from(n.min(MAX_PRESIZED)).unwrap_or(0);
        engine.records.reserve_exact(n);
        engine.live.reserve_exact(n);
    }
    if fast {
        engine.fast = fast::Fast::new(&engine);
    }
    engine.run()?;
    let end = engine.last_end;
    let records = std::mem::take(&mut engine.records);
    let timeline = std::mem::take(&mut engine.timeline);
    let stats = std::mem::take(&mut engine.stats);
    // The per-request state and the queues' capacity go before the summary
    // allocates its latency lists: the peak is the records plus those.
    drop(engine);
    let summary = summarize(scenario, &records, &stats, end);
    Ok(RunOutput {
        records,
        timeline,
        summary,
        stats,
        cluster: None,
    })
}

/// The memory levels of a cache with `usage`, of whose allocated bytes
/// `reserved`, `internal` and the allocator's `rounding` are slack, plus
/// `external` unusable free bytes: what holds tokens is the rest of the
/// allocation. Rounding is reported as external fragmentation.
fn levels_of(
    usage: &MemoryUsage,
    reserved: u64,
    internal: u64,
    external: u64,
    rounding: u64,
) -> MemoryLevels {
    let budget = usage.budget.max(1) as f64;
    let slack = (reserved + internal + rounding).min(usage.allocated);
    let used = usage.allocated - slack;
    MemoryLevels {
        kv: usage.allocated as f64 / budget,
        used: used as f64 / budget,
        reserved: reserved as f64 / budget,
        internal: internal as f64 / budget,
        external: (external + rounding) as f64 / budget,
        cached: usage.cached as f64 / budget,
    }
}

/// The engine state of one run.
struct Engine<'s, C> {
    scenario: &'s Scenario,
    cfg: SchedulerConfig,
    cache: Box<dyn KvCache>,
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

    records: Vec<RequestRecord>,
    live: Vec<Live>,
    sessions: Vec<Session>,
    free_sessions: Vec<u32>,
    sessions_started: u64,
    waiting: VecDeque<Waiting>,
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
    /// The next [`Seq::uid`].
    next_uid: u64,
    /// The fast path's state, when the scenario allows it.
    fast: Option<fast::Fast>,
    /// Entries of `running` marked dead (only while the fast path is lazy).
    dead: usize,
    /// The step in flight was started by the fast path.
    step_fast: bool,
    /// What kept the batch of the step being launched from growing.
    limit: BatchLimit,

    stats: Collector,
    timeline: Vec<TimelineRow>,
    next_sample: SimTime,
    last_end: SimTime,
    /// A replica of a cluster: requests are routed in from outside
    /// ([`cluster`]), so the engine draws no arrivals and applies no stop rule.
    fed: bool,
    /// Requests routed in whose arrival has not been processed yet.
    routed_pending: usize,
    /// Counts events against `--max-events` and `--time-limit`.
    guard: guard::Guard,
}

impl<'s, C: CostModel> Engine<'s, C> {
    fn new(scenario: &'s Scenario, cache: Box<dyn KvCache>, cost: C, traffic: Traffic) -> Self {
        let layout = *cache.layout();
        Engine {
            scenario,
            cfg: scenario.scheduler,
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
            sessions: Vec::new(),
            free_sessions: Vec::new(),
            sessions_started: 0,
            waiting: VecDeque::new(),
            contents: ContentSlab::default(),
            running: Vec::new(),
            spawned: Vec::new(),
            swapped: VecDeque::new(),
            swap_used: 0,
            pending_swap_bytes: 0,
            free_slots: Vec::new(),
            next_slot: 0,
            next_uid: 0,
            fast: None,
            dead: 0,
            step_fast: false,
            limit: BatchLimit::Load,
            stats: Collector::default(),
            timeline: Vec::new(),
            next_sample: SimTime::ZERO,
            last_end: SimTime::ZERO,
            fed: false,
            routed_pending: 0,
            guard: guard::Guard::new(guard::Limits::default()),
        }
    }

    fn run(&mut self) -> Result<(), Stopped> {
        self.start();
        self.advance(None)?;
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
    /// starting steps as the server frees up.
    fn advance(&mut self, until: Option<SimTime>) -> Result<(), Stopped> {
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
                Event::Arrival(lengths) if self.fed => {
                    self.routed_pending -= 1;
                    self.start_conversation(lengths, NONE);
                }
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
                    self.stats.level(self.now, MemoryLevels::default());
                }
            }
            // Everything due at this instant happens before the scheduler
            // looks: requests that arrive together are batched together.
            if self.events.peek_time() == Some(self.now) {
                continue;
            }
            if !self.busy && self.down_until.is_none() {
                self.start_step();
            }
        }
        Ok(())
    }

    /// After the last event: every lazy sequence is brought up to date and
    /// every request has ended.
    fn finish_run(&mut self) {
        self.materialize_all();
        invariant!(self.running.is_empty() && self.waiting.is_empty() && self.swapped.is_empty());
        // Every queued sample's content was taken when it left the queue.
        invariant_eq!(self.contents.entries.len(), self.contents.free.len());
        // Conservation: every issued request has one record and ended
        // (exactly once: `end_request` asserts that), and the stop rule was
        // kept.
        invariant_eq!(self.records.len() as u64, self.issued);
        invariant!(self.records.iter().all(|r| r.outcome.is_some()));
        invariant!(match self.scenario.stop {
            Stop::Requests(n) => self.issued <= n,
            Stop::Duration(_) | Stop::TraceEnd => true,
        });
    }

    /// Routes a request into this replica: it arrives at `at` (no earlier
    /// than the events already processed).
    fn inject(&mut self, at: SimTime, lengths: Lengths) {
        self.routed_pending += 1;
        self.events.push(at.max(self.now), Event::Arrival(lengths));
    }

    /// Requests this replica holds and has not finished: waiting, running
    /// or swapped out (what a least-outstanding-requests balancer counts).
    fn outstanding(&self) -> usize {
        // Entries the fast path marked dead are still in `running`.
        self.waiting.len() + self.running.len() - self.dead
            + self.swapped.len()
            + self.routed_pending
    }

    /// KV bytes allocated now.
    fn kv_allocated(&self) -> u64 {
        self.cache.usage().allocated
    }

    /// Whether a request may still be issued at `at` under the stop rule.
    fn may_issue(&mut self, at: SimTime) -> bool {
        let ok = !self.issuing_done && self.scenario.stop.admits(at, self.issued);
        if !ok {
            self.issuing_done = true;
        }
        ok
    }

    fn schedule_next_arrival(&mut self) {
        if self.issuing_done {
            return;
        }
        match self.traffic.next_arrival() {
            Some((at, lengths)) if self.may_issue(at) => {
                self.events.push(at.max(self.now), Event::Arrival(lengths));
            }
            _ => self.issuing_done = true,
        }
    }

    /// A new request arrives from outside: a single request, or the first turn
    /// of a session.
    fn start_conversation(&mut self, lengths: Lengths, user: u32) {
        if !self.sessions_on {
            self.issue(lengths, user, NONE);
            return;
        }
        let turns = self.traffic.session_turns().max(1);
        let session = Session {
            key: SESSION_KEY_BASE | self.sessions_started,
            turn: 0,
            history: 0,
            turns_left: turns - 1,
            user,
        };
        self.sessions_started += 1;
        let id = match self.free_sessions.pop() {
            Some(id) => {
                self.sessions[id as usize] = session;
                id
            }
            None => {
                self.sessions.push(session);
                (self.sessions.len() - 1) as u32
            }
        };
        self.issue(lengths, user, id);
    }

    /// A session's next turn: the new message follows the whole conversation.
    fn next_turn(&mut self, session: u32) {
        if !self.may_issue(self.now) {
            self.end_session(session);
            return;
        }
        // The new message only: the system prompt, if any, is already in the
        // history.
        let mut lengths = self.traffic.next_message();
        let s = &mut self.sessions[session as usize];
        s.turns_left -= 1;
        lengths.prompt = lengths.prompt.saturating_add(s.history);
        let user = s.user;
        self.issue(lengths, user, session);
    }

    fn end_session(&mut self, session: u32) {
        let user = self.sessions[session as usize].user;
        self.free_sessions.push(session);
        if user != NONE {
            self.user_thinks(user);
        }
    }

    /// A closed-loop user thinks, then sends the next request. A user whose
    /// server is down retries only once it is back, so a crash does not turn
    /// into a storm of refused requests.
    fn user_thinks(&mut self, user: u32) {
        let mut ready = self.now + self.traffic.think_time();
        if let Some(back) = self.down_until {
            ready = ready.max(back);
        }
        self.events.push(ready, Event::UserReady(user));
    }

    /// Records a request and queues it, or fails it at once.
    fn issue(&mut self, lengths: Lengths, user: u32, session: u32) {
        let id = self.records.len() as u32;
        self.issued += 1;
        let mml = self.scenario.model.max_model_len;
        // Generation stops at the model's context length, as in vLLM.
        let room = mml.saturating_sub(lengths.prompt);
        let output = lengths.output.min(lengths.max_tokens).min(room).max(1);
        let max_tokens = lengths.max_tokens.min(room).max(1);
        let (session_no, turn) = match session {
            NONE => (None, 1),
            sid => {
                let s = &mut self.sessions[sid as usize];
                s.turn += 1;
                (Some(s.key & !SESSION_KEY_BASE), s.turn)
            }
        };
        let content = if session != NONE {
            let s = &self.sessions[session as usize];
            Some(Content {
                key: s.key,
                reusable: s.history,
                lineage: u32::MAX,
            })
        } else {
            lengths.prefix.map(|p| Content {
                key: u64::from(p.id),
                reusable: p.tokens,
                lineage: p.tokens,
            })
        };
        self.records.push(RequestRecord {
            id: u64::from(id),
            arrival: self.now,
            admitted: None,
            first_token: None,
            finished: None,
            prompt_tokens: lengths.prompt,
            output_target: output,
            output_tokens: 0,
            max_tokens,
            samples: self.samples,
            session: session_no,
            turn,
            preemptions: 0,
            outcome: None,
        });
        self.live.push(Live {
            user,
            session,
            samples_left: self.samples,
            outcome: Outcome::Ok,
        });
        if self.down_until.is_some() {
            self.end_request(id, Outcome::Crashed);
            return;
        }
        let unservable = lengths.prompt >= mml
            || (!self.cfg.chunked_prefill && lengths.prompt > self.cfg.max_batched_tokens)
            || !self.cache.fits_when_empty(&SeqInfo {
                id: 0,
                tokens: lengths.prompt,
                reserve: self.reservation(id, output, lengths.prompt),
                content: None,
            });
        if unservable {
            self.end_request(id, Outcome::Unservable);
        } else {
            let content = self.contents.put(content);
            self.waiting.push_back(Waiting {
                req: id,
                output,
                generated: 0,
                fork: self.samples > 1,
                content,
            });
        }
    }

    /// Tokens to hold for a sample of request `id` with true output `output`
    /// when it is admitted with `tokens` to prefill.
    fn reservation(&self, id: u32, output: u32, tokens: u32) -> u32 {
        match self.cfg.admission {
            Admission::Optimistic => tokens,
            Admission::Reserve => {
                let r = &self.records[id as usize];
                let final_tokens = r.prompt_tokens + output - 1;
                self.scenario
                    .cache
                    .reserve
                    .tokens(
                        r.prompt_tokens,
                        r.max_tokens,
                        final_tokens,
                        self.scenario.model.max_model_len,
                    )
                    .max(tokens)
            }
        }
    }

    /// A sample of request `id` ended with `outcome`; if it still carried the
    /// request's other samples (`unforked`: it failed before its prefill
    /// completed and forked them), they end with it. The request ends with its
    /// last sample, with the worst outcome any sample had.
    fn sample_ended(&mut self, id: u32, unforked: bool, outcome: Outcome) {
        let ended = if unforked { self.samples } else { 1 };
        let live = &mut self.live[id as usize];
        if outcome != Outcome::Ok && live.outcome == Outcome::Ok {
            live.outcome = outcome;
        }
        invariant!(live.samples_left >= ended);
        live.samples_left -= ended;
        if live.samples_left == 0 {
            let outcome = live.outcome;
            self.end_request(id, outcome);
        }
    }

    /// Ends request `id` now with `outcome`; its session sends the next turn,
    /// or its closed-loop user thinks and sends the next request.
    fn end_request(&mut self, id: u32, outcome: Outcome) {
        let r = &mut self.records[id as usize];
        invariant!(r.outcome.is_none(), "request {id} ended twice");
        r.outcome = Some(outcome);
        r.finished = Some(self.now);
        self.last_end = self.last_end.max(self.now);
        let context = r.prompt_tokens + r.output_tokens;
        let live = self.live[id as usize];
        if live.session != NONE {
            let s = &mut self.sessions[live.session as usize];
            if outcome == Outcome::Ok && s.turns_left > 0 && !self.issuing_done {
                s.history = context;
                let think = self.traffic.session_think();
                self.events
                    .push(self.now + think, Event::NextTurn(live.session));
            } else {
                self.end_session(live.session);
            }
        } else if live.user != NONE {
            self.user_thinks(live.user);
        }
    }

    fn take_slot(&mut self) -> SeqId {
        self.free_slots.pop().unwrap_or_else(|| {
            self.next_slot += 1;
            self.next_slot - 1
        })
    }

    /// Forms the next batch and starts a step, if there is anything to do.
    fn start_step(&mut self) {
        // Requests that waited too long for their first admission leave the
        // queue first (noticed when the scheduler next looks).
        if let Some(limit) = self.cfg.queue_timeout {
            while let Some(&w) = self.waiting.front() {
                let r = &self.records[w.req as usize];
                if r.admitted.is_some() || self.now.saturating_since(r.arrival) < limit {
                    break;
                }
                self.waiting.pop_front();
                self.contents.take(w.content);
                self.sample_ended(w.req, w.fork, Outcome::Timeout);
            }
        }
        if self.try_fast_step() {
            return;
        }
        // The straightforward step sees every sequence as it is.
        self.materialize_all();
        loop {
            let mut budget = self.cfg.max_batched_tokens;
            let oom_before = self.stats.oom_events;
            let preempted = match self.schedule_running(&mut budget) {
                Some(p) => p,
                None => return, // crashed
            };
            // As vLLM: no new admissions in a step that had to preempt, and
            // swapped sequences come back before new ones are admitted.
            // What keeps this step's batch from growing (see `BatchLimit`).
            self.limit = if preempted {
                BatchLimit::KvMemory
            } else {
                match self.swap_in(&mut budget) {
                    Some(limit) => limit,
                    None => self.admit_waiting(&mut budget),
                }
            };
            if self.stats.oom_events > oom_before {
                // A sequence failed to grow this step (rejected).
                self.limit = BatchLimit::KvMemory;
            }
            if budget < self.cfg.max_batched_tokens {
                self.launch_step();
                return;
            }
            if preempted {
                // Evictions emptied the batch before anything was admitted:
                // look again, with admissions this time.
                continue;
            }
            // Nothing could be scheduled although admission was tried. If
            // nothing is running either, the sample at the head of the queue
            // can never be admitted (its recomputed prompt outgrew the cache
            // or the step budget): fail it rather than wait forever, and try
            // again.
            if !self.running.is_empty() {
                self.record_levels();
                return;
            }
            // The same for a swapped sequence that cannot come back even into
            // an empty cache (it shared blocks with a sibling when it left).
            if let Some(sw) = self.swapped.pop_front() {
                self.swap_used -= sw.bytes;
                self.stats.oom_events += 1;
                self.sample_ended(sw.seq.req, sw.seq.fork, Outcome::Oom);
                continue;
            }
            match self.waiting.pop_front() {
                Some(w) => {
                    self.contents.take(w.content);
                    let tokens = self.records[w.req as usize].prompt_tokens + w.generated;
                    if !self.cfg.chunked_prefill && tokens > self.cfg.max_batched_tokens {
                        // Longer than any step prefills whole (a recomputed
                        // prompt that outgrew the step budget): as a prompt
                        // this long is at arrival, and as vLLM ignores a
                        // prompt past its limit, it is unservable, not out
                        // of memory.
                        self.sample_ended(w.req, w.fork, Outcome::Unservable);
                    } else {
                        self.stats.oom_events += 1;
                        self.sample_ended(w.req, w.fork, Outcome::Oom);
                    }
                }
                None => {
                    self.record_levels();
                    return;
                }
            }
        }
    }

    /// Schedules running sequences (decodes and prefill chunks) in admission
    /// order, growing their KV. Returns whether it preempted, or `None` if the
    /// server crashed.
    fn schedule_running(&mut self, budget: &mut u32) -> Option<bool> {
        let mut preempted = false;
        let mut i = 0;
        while i < self.running.len() {
            if *budget == 0 {
                break;
            }
            let seq = self.running[i];
            if !seq.decoding() {
                let remaining = seq.prefill_target - seq.prefilled;
                let chunk = if self.cfg.chunked_prefill {
                    remaining.min(*budget)
                } else if remaining <= *budget {
                    remaining
                } else {
                    0
                };
                self.running[i].scheduled = chunk;
                *budget -= chunk;
                i += 1;
                continue;
            }
            if self.cache.grow(seq.slot, 1).is_ok() {
                self.running[i].scheduled = 1;
                *budget -= 1;
                i += 1;
                continue;
            }
            match self.cfg.on_oom {
                OnOom::Crash => {
                    self.stats.oom_events += 1;
                    self.crash();
                    return None;
                }
                OnOom::Reject => {
                    self.stats.oom_events += 1;
                    let seq = self.running.remove(i);
                    self.release(seq.slot);
                    self.sample_ended(seq.req, seq.fork, Outcome::Oom);
                }
                OnOom::PreemptRecompute | OnOom::PreemptSwap => {
                    if self.running.len() == 1 {
                        // Alone and still too big: it can never finish.
                        self.stats.oom_events += 1;
                        let seq = self.running.remove(i);
                        self.release(seq.slot);
                        self.sample_ended(seq.req, seq.fork, Outcome::Oom);
                    } else {
                        // Evict the most recently admitted sequence (possibly
                        // this one) and retry.
                        preempted = true;
                        let victim = self.running.pop().expect("running is not empty");
                        self.preempt(victim);
                    }
                }
            }
        }
        Some(preempted)
    }

    /// Brings swapped sequences back, oldest first, while they fit. Returns
    /// the limit that kept one out, or `None` when none is left waiting (new
    /// admissions wait until then).
    fn swap_in(&mut self, budget: &mut u32) -> Option<BatchLimit> {
        while let Some(&Swapped { seq, bytes }) = self.swapped.front() {
            if *budget == 0 {
                return Some(BatchLimit::TokenBudget);
            }
            if self.running.len() as u32 >= self.cfg.max_num_seqs {
                return Some(BatchLimit::MaxNumSeqs);
            }
            // Room for the stored tokens plus the one this step writes.
            let tokens = seq.context + 1;
            let slot = self.take_slot();
            let info = SeqInfo {
                id: slot,
                tokens,
                reserve: self.reservation(seq.req, seq.output, tokens),
                content: None,
            };
            if self.cache.admit(&info).is_err() {
                self.free_slots.push(slot);
                return Some(BatchLimit::KvMemory);
            }
            self.swapped.pop_front();
            self.swap_used -= bytes;
            self.pending_swap_bytes += bytes;
            self.stats.swap_bytes += bytes;
            *budget -= 1;
            let uid = self.take_uid();
            self.running.push(Seq {
                slot,
                scheduled: 1,
                uid,
                ..seq
            });
        }
        None
    }

    /// Admits waiting samples FCFS while the limits and the cache allow;
    /// returns the limit that stopped it.
    fn admit_waiting(&mut self, budget: &mut u32) -> BatchLimit {
        loop {
            let Some(&w) = self.waiting.front() else {
                return BatchLimit::Load;
            };
            if *budget == 0 {
                return BatchLimit::TokenBudget;
            }
            if ((self.running.len() - self.dead) as u32) >= self.cfg.max_num_seqs {
                return BatchLimit::MaxNumSeqs;
            }
            let prompt = self.records[w.req as usize].prompt_tokens;
            // A recomputed sample prefills its prompt and what it had generated.
            let tokens = prompt + w.generated;
            if !self.cfg.chunked_prefill && tokens > *budget {
                // FCFS: the head blocks the queue until it fits.
                return BatchLimit::TokenBudget;
            }
            let slot = self.take_slot();
            let info = SeqInfo {
                id: slot,
                tokens,
                reserve: self.reservation(w.req, w.output, tokens),
                content: self.contents.get(w.content),
            };
            let Ok(admitted) = self.cache.admit(&info) else {
                self.free_slots.push(slot);
                return BatchLimit::KvMemory;
            };
            self.waiting.pop_front();
            let content = self.contents.take(w.content);
            self.stats.prefix_lookup_tokens += u64::from(tokens);
            self.stats.prefix_hit_tokens += u64::from(admitted.cached_tokens);
            self.records[w.req as usize]
                .admitted
                .get_or_insert(self.now);
            let cached = admitted.cached_tokens.min(tokens - 1);
            let chunk = (tokens - cached).min(*budget);
            *budget -= chunk;
            let uid = self.take_uid();
            self.running.push(Seq {
                req: w.req,
                slot,
                prefill_target: tokens,
                prefilled: cached,
                context: cached,
                scheduled: chunk,
                output: w.output,
                generated: w.generated,
                fork: w.fork,
                final_bytes: self.layout.kept_bytes(prompt + w.output - 1),
                uid,
                since: 0,
                dead: false,
                content,
            });
        }
    }

    fn take_uid(&mut self) -> u64 {
        self.next_uid += 1;
        self.next_uid - 1
    }

    /// Query-key pairs, summed over layers, of appending `k` tokens to a
    /// sequence of `p`: each layer group attends within its own window.
    fn layer_pairs(&self, p: u32, k: u32) -> u64 {
        self.layout
            .groups
            .iter()
            // Saturating: only a price, and absurd shapes must not wrap.
            .map(|g| u64::from(g.layers).saturating_mul(attention_pairs(p, k, g.window)))
            .fold(0, u64::saturating_add)
    }

    /// Where the KV budget is now: stored tokens, reservations that will be
    /// filled, slack that never will be, and free space the head of the queue
    /// cannot use.
    fn memory_levels(&self) -> MemoryLevels {
        if self.dead > 0 || self.fast.as_ref().is_some_and(|f| f.lazy) {
            return self.fast_levels();
        }
        let usage = self.cache.usage();
        let (mut reserved, mut internal, mut slack) = (0u64, 0u64, 0u64);
        for s in &self.running {
            // An allocator's rounding is held but belongs to no token, now or
            // later: external fragmentation (as the PagedAttention paper's
            // Fig. 2 counts a buddy allocator's), not this sequence's slack.
            let rounding = self.cache.allocator_slack_bytes(s.slot);
            slack += rounding;
            let held = self.cache.held_bytes(s.slot) - rounding;
            let kept = self.layout.kept_bytes(s.cached_tokens()).min(held);
            let fill = s.final_bytes.min(held).max(kept);
            reserved += fill - kept;
            internal += held - fill;
        }
        let external = match self.waiting.front() {
            Some(w) => {
                let tokens = self.records[w.req as usize].prompt_tokens + w.generated;
                self.cache.unusable_free_bytes(&SeqInfo {
                    id: 0,
                    tokens,
                    reserve: self.reservation(w.req, w.output, tokens),
                    content: None,
                })
            }
            None => 0,
        };
        // What is held and is not slack holds tokens. (This equals the cache's
        // stored bytes, except where a forked sequence shares a block that has
        // partly slid out of a window: the cache counts such a block whole.)
        levels_of(&usage, reserved, internal, external, slack)
    }

    /// Integrates memory levels up to now and records the current ones.
    fn record_levels(&mut self) -> MemoryLevels {
        let levels = self.memory_levels();
        self.stats.level(self.now, levels);
        levels
    }

    /// Prices the scheduled batch and schedules its end.
    fn launch_step(&mut self) {
        let bpt = self.layout.bytes_per_token();
        let mut work = StepWork::default();
        let mut batch = 0u32;
        for s in &self.running {
            if s.scheduled == 0 {
                continue;
            }
            batch += 1;
            if s.decoding() {
                // The step writes the KV of the last emitted token (already
                // grown into the cache) and attends over the kept context.
                work.decode_tokens += 1;
                work.kv_read_bytes += self.layout.attended_bytes(s.context);
                work.attention_layer_pairs = work
                    .attention_layer_pairs
                    .saturating_add(self.layer_pairs(s.context, 1));
            } else {
                work.prefill_tokens += s.scheduled;
                work.prefill_seqs += 1;
                work.kv_read_bytes += self.layout.attended_bytes(s.prefilled);
                work.attention_layer_pairs = work
                    .attention_layer_pairs
                    .saturating_add(self.layer_pairs(s.prefilled, s.scheduled));
            }
        }
        work.kv_write_bytes = u64::from(work.tokens()) * bpt;
        self.step_fast = false;
        self.launch_work(work, batch);
    }

    /// Prices `work`, a batch of `batch` sequences, records the step and
    /// schedules its end (both engines).
    fn launch_work(&mut self, mut work: StepWork, batch: u32) {
        work.swap_bytes = std::mem::take(&mut self.pending_swap_bytes);
        let duration = self.cost.step_time(&work).max(SimDuration::from_nanos(1));
        self.busy = true;
        self.stats.step(batch, duration, self.limit);
        let levels = self.record_levels();
        let sample = match self.scenario.timeline_interval {
            None => true,
            Some(interval) if self.now >= self.next_sample => {
                self.next_sample = self.now + interval;
                true
            }
            Some(_) => false,
        };
        if sample {
            self.timeline.push(TimelineRow {
                time: self.now,
                running: batch,
                waiting: self.waiting.len() as u32,
                kv_used_bytes: self.cache.usage().allocated,
                kv_frac: levels.kv,
                levels,
                step: duration,
            });
        }
        self.events.push(self.now + duration, Event::StepEnd);
    }

    /// The step in flight ends: emit tokens, fork samples, finish sequences.
    fn finish_step(&mut self) {
        if self.step_fast {
            self.fast_finish();
            return;
        }
        self.busy = false;
        let mut kept = 0;
        for i in 0..self.running.len() {
            let mut s = self.running[i];
            let mut done = false;
            if s.scheduled > 0 {
                let emits = if s.decoding() {
                    s.context += 1;
                    true
                } else {
                    s.prefilled += s.scheduled;
                    s.context = s.prefilled;
                    s.prefilled == s.prefill_target
                };
                s.scheduled = 0;
                if emits {
                    s.generated += 1;
                    let r = &mut self.records[s.req as usize];
                    r.output_tokens += 1;
                    r.first_token.get_or_insert(self.now);
                    done = s.generated >= s.output;
                    if std::mem::take(&mut s.fork) {
                        // Fork before a one-token parent is released.
                        self.spawn_samples(&s);
                    }
                }
            }
            if done {
                self.release(s.slot);
                self.sample_ended(s.req, false, Outcome::Ok);
            } else {
                self.running[kept] = s;
                kept += 1;
            }
        }
        self.running.truncate(kept);
        let spawned = std::mem::take(&mut self.spawned);
        self.running.extend_from_slice(&spawned);
        self.spawned = spawned;
        self.spawned.clear();
        if self.running.is_empty() {
            self.record_levels();
        }
    }

    /// The shared prefill of a multi-sample request just completed in
    /// `parent`: its other samples start, sharing the prompt's blocks
    /// copy-on-write, each with its own first token. A sample that does not fit
    /// waits to be admitted on its own (recomputing the prompt).
    fn spawn_samples(&mut self, parent: &Seq) {
        let max_tokens = self.records[parent.req as usize].max_tokens;
        for _ in 1..self.samples {
            let output = self.traffic.sample_output(max_tokens).clamp(1, max_tokens);
            let r = &mut self.records[parent.req as usize];
            r.output_target += output;
            r.output_tokens += 1;
            if output == 1 {
                // Its only token came with the shared prefill.
                self.sample_ended(parent.req, false, Outcome::Ok);
                continue;
            }
            let slot = self.take_slot();
            if self.cache.fork(parent.slot, slot).is_ok() {
                let prompt = self.records[parent.req as usize].prompt_tokens;
                let uid = self.take_uid();
                self.spawned.push(Seq {
                    slot,
                    uid,
                    output,
                    generated: 1,
                    fork: false,
                    final_bytes: self.layout.kept_bytes(prompt + output - 1),
                    ..*parent
                });
            } else {
                self.free_slots.push(slot);
                let content = self.contents.put(parent.content);
                self.waiting.push_front(Waiting {
                    req: parent.req,
                    output,
                    generated: 1,
                    fork: false,
                    content,
                });
            }
        }
    }

    fn release(&mut self, slot: SeqId) {
        self.cache.release(slot);
        self.free_slots.push(slot);
    }

    /// Evicts `seq` to make room: its KV goes to host memory if the scheduler
    /// swaps and host memory has room, else it is dropped and recomputed later.
    fn preempt(&mut self, seq: Seq) {
        self.stats.preemptions += 1;
        self.records[seq.req as usize].preemptions += 1;
        let bytes = self.cache.held_bytes(seq.slot);
        let swappable = self.cfg.on_oom == OnOom::PreemptSwap && seq.decoding();
        self.release(seq.slot);
        if swappable && self.swap_used + bytes <= self.swap_capacity {
            self.swap_used += bytes;
            self.pending_swap_bytes += bytes;
            self.stats.swaps += 1;
            self.stats.swap_bytes += bytes;
            self.swapped.push_back(Swapped { seq, bytes });
        } else {
            let content = self.contents.put(seq.content);
            self.waiting.push_front(Waiting {
                req: seq.req,
                output: seq.output,
                generated: seq.generated,
                fork: seq.fork,
                content,
            });
        }
    }

    /// The server process dies: every request in it fails, and it is down for
    /// `restart_s`.
    fn crash(&mut self) {
        let back = self.now + self.cfg.restart;
        self.down_until = Some(back);
        self.events.push(back, Event::Restart);
        self.cache.reset();
        self.free_slots.clear();
        self.next_slot = 0;
        self.swap_used = 0;
        self.pending_swap_bytes = 0;
        let mut in_flight: Vec<u32> = self.running.drain(..).map(|s| s.req).collect();
        in_flight.extend(self.waiting.drain(..).map(|w| w.req));
        self.contents.clear();
        in_flight.extend(self.swapped.drain(..).map(|s| s.seq.req));
        for id in in_flight {
            // Samples of one request share its record: end it once.
            if self.records[id as usize].outcome.is_none() {
                self.end_request(id, Outcome::Crashed);
            }
        }
        self.stats.level(self.now, MemoryLevels::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::cost::RooflineCost;

    /// The saturated bench workload runs nearly every step on the fast path
    /// (a silent fallback would keep results right and lose the speed).
    #[test]
    fn saturated_chat_takes_the_fast_path() {
        with_bench_engine(2000, |engine| {
            engine.fast = fast::Fast::new(engine);
            assert!(
                engine.fast.is_some(),
                "the scenario is in the fast path's case"
            );
            engine.run().expect("no limits");
            let fast_steps = engine.fast.as_ref().map_or(0, |f| f.steps);
            assert!(
                fast_steps * 100 >= engine.stats.steps * 99,
                "{fast_steps} of {} steps on the fast path",
                engine.stats.steps
            );
        });
    }

    /// Runs `f` on an engine for the bench's saturated-chat scenario cut to
    /// `requests` requests, on the roofline.
    fn with_bench_engine(requests: u32, f: impl FnOnce(&mut Engine<RooflineCost>)) {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/saturated-chat.toml");
        let s = Scenario::load(&path, &[format!("requests={requests}")]).expect("bench scenario");
        let cache = s.cache.build(s.budget.kv_bytes, s.layout);
        let d = &s.deployment;
        let cost = RooflineCost::new(&s.model, d, &d.efficiency);
        let mut engine = Engine::new(&s, cache, cost, s.traffic.instantiate(s.seed));
        f(&mut engine);
    }

    /// The engine's own checks are on in the builds that check invariants (CI
    /// runs this module with `--features invariants`): ending a request twice,
    /// which would count it in two outcomes, stops the run.
    #[test]
    #[cfg(any(debug_assertions, feature = "invariants"))]
    #[should_panic(expected = "request 0 ended twice")]
    fn a_request_cannot_end_twice() {
        with_bench_engine(20, |engine| {
            engine.run().expect("no limits");
            engine.end_request(0, Outcome::Ok);
        });
    }

    /// What a run keeps per request: its record (returned to the caller) and
    /// the engine's per-request state. The README quotes the sum.
    #[test]
    fn bytes_kept_per_request() {
        assert_eq!(std::mem::size_of::<RequestRecord>(), 88);
        assert_eq!(std::mem::size_of::<Live>(), 16);
        // Not per request, but an overloaded run queues most of them.
        assert_eq!(std::mem::size_of::<Waiting>(), 20);
    }
}
