//! The simulation loop: integer time, an event queue, and one engine step at a
//! time (DESIGN.md sections 2 and 6).
//!
//! # Lifecycle of a request
//!
//! arrival -> waiting (FCFS) -> admitted (its prompt placed in the cache) ->
//! prefill (whole, or in chunks) -> first token at the end of its last prefill
//! step -> one token per decode step -> ends `ok` after its last token, or
//! earlier as `oom`, `crashed`, `unservable` or `timeout`. A preempted sequence
//! goes back to the front of the queue and, when readmitted, prefills its
//! prompt and the tokens it had generated again (vLLM's recompute).
//!
//! # KV accounting
//!
//! After a prefill of `P` tokens the cache holds `P` tokens and the first output
//! token is emitted. Each decode step writes the KV of the last emitted token
//! and emits the next, so a request of `O` output tokens peaks at `P + O - 1`
//! stored tokens: the last token's KV is never written.
//!
//! # Cost per step
//!
//! Scheduling and finishing are O(batch) per step; nothing per step depends on
//! the number of waiting or finished requests, and nothing is allocated per
//! token.

mod queue;

pub use queue::EventQueue;

use std::collections::VecDeque;

use crate::cache::{KvCache, KvLayout, SeqId, SeqInfo};
use crate::hardware::cost::{CostModel, StepWork};
use crate::metrics::{Collector, Outcome, RequestRecord, Summary, TimelineRow, summarize};
use crate::scenario::{Scenario, Stop};
use crate::scheduler::{Admission, OnOom, SchedulerConfig, attention_pairs};
use crate::traffic::{Lengths, LoopKind, Traffic};
use crate::units::{SimDuration, SimTime};

/// What can happen.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Event {
    /// An open-loop request arrives.
    Arrival(Lengths),
    /// A closed-loop user sends its next request.
    UserReady(u32),
    /// The step in flight ends.
    StepEnd,
    /// A crashed server is back.
    Restart,
}

/// A request in the running batch.
#[derive(Copy, Clone, Debug)]
struct Seq {
    /// Index into the request table.
    req: u32,
    /// The cache slot.
    slot: SeqId,
    /// Tokens to prefill in this admission (the prompt, plus generated tokens
    /// after a preemption).
    prefill_target: u32,
    /// Of those, tokens already computed.
    prefilled: u32,
    /// Tokens whose KV is stored.
    context: u32,
    /// Tokens scheduled in the step in flight (0: not in this step).
    scheduled: u32,
}

impl Seq {
    fn decoding(&self) -> bool {
        self.prefilled == self.prefill_target
    }
}

/// Per-request state the engine keeps while a request is alive.
#[derive(Copy, Clone, Debug)]
struct Live {
    /// Closed-loop user who sent it (`u32::MAX` for open loop).
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
    /// Per-step statistics.
    pub stats: Collector,
}

/// Simulates `scenario` with seed `seed` and the given cost model.
pub fn simulate<C: CostModel>(scenario: &Scenario, seed: u64, cost: C) -> RunOutput {
    let cache = scenario
        .cache
        .build(scenario.budget.kv_bytes, scenario.layout);
    let traffic = scenario.traffic.instantiate(seed);
    let mut engine = Engine::new(scenario, cache, cost, traffic);
    engine.run();
    let end = engine.end_time();
    let summary = summarize(scenario, &engine.records, &engine.stats, end);
    RunOutput {
        records: engine.records,
        timeline: engine.timeline,
        summary,
        stats: engine.stats,
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

    now: SimTime,
    events: EventQueue<Event>,
    /// Requests issued so far (open and closed loop).
    issued: u64,
    /// No more requests will be issued.
    issuing_done: bool,
    /// A step is in flight.
    busy: bool,
    /// The server is down until this instant (after a crash).
    down_until: Option<SimTime>,

    records: Vec<RequestRecord>,
    live: Vec<Live>,
    waiting: VecDeque<u32>,
    running: Vec<Seq>,
    free_slots: Vec<SeqId>,
    next_slot: SeqId,

    stats: Collector,
    timeline: Vec<TimelineRow>,
    next_sample: SimTime,
    last_end: SimTime,
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
            traffic,
            now: SimTime::ZERO,
            events: EventQueue::default(),
            issued: 0,
            issuing_done: false,
            busy: false,
            down_until: None,
            records: Vec::new(),
            live: Vec::new(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            free_slots: Vec::new(),
            next_slot: 0,
            stats: Collector::default(),
            timeline: Vec::new(),
            next_sample: SimTime::ZERO,
            last_end: SimTime::ZERO,
        }
    }

    fn end_time(&self) -> SimTime {
        self.last_end
    }

    fn run(&mut self) {
        match self.loop_kind {
            LoopKind::Open => self.schedule_next_arrival(),
            LoopKind::Closed { users } => {
                for user in 0..users {
                    self.events.push(SimTime::ZERO, Event::UserReady(user));
                }
            }
        }
        while let Some((time, event)) = self.events.pop() {
            debug_assert!(time >= self.now, "event scheduled in the past");
            self.now = time;
            match event {
                Event::Arrival(lengths) => {
                    self.admit_arrival(lengths, u32::MAX);
                    self.schedule_next_arrival();
                }
                Event::UserReady(user) => {
                    if self.may_issue(self.now) {
                        let lengths = self.traffic.next_lengths();
                        self.admit_arrival(lengths, user);
                    }
                }
                Event::StepEnd => self.finish_step(),
                Event::Restart => {
                    self.down_until = None;
                    self.stats.level(self.now, 0.0);
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
        debug_assert!(self.running.is_empty() && self.waiting.is_empty());
        debug_assert!(self.records.iter().all(|r| r.outcome.is_some()));
    }

    /// Whether a request may still be issued at `at` under the stop rule.
    fn may_issue(&mut self, at: SimTime) -> bool {
        let ok = !self.issuing_done
            && match self.scenario.stop {
                Stop::Requests(n) => self.issued < n,
                Stop::Duration(d) => at < d,
                Stop::TraceEnd => true,
            };
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
                // Issue accounting happens at arrival; reserve the count now so
                // `Stop::Requests` never schedules one too many.
                self.events.push(at.max(self.now), Event::Arrival(lengths));
            }
            _ => self.issuing_done = true,
        }
    }

    /// A request arrives: record it, then queue it or fail it at once.
    fn admit_arrival(&mut self, lengths: Lengths, user: u32) {
        let id = self.records.len() as u32;
        self.issued += 1;
        let mml = self.scenario.model.max_model_len;
        // Generation stops at the model's context length, as in vLLM.
        let room = mml.saturating_sub(lengths.prompt);
        let output = lengths.output.min(lengths.max_tokens).min(room).max(1);
        let max_tokens = lengths.max_tokens.min(room).max(1);
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
            preemptions: 0,
            outcome: None,
        });
        self.live.push(Live { user });
        if self.down_until.is_some() {
            self.end_request(id, Outcome::Crashed);
            return;
        }
        let unservable = lengths.prompt >= mml
            || (!self.cfg.chunked_prefill && lengths.prompt > self.cfg.max_batched_tokens)
            || !self.cache.fits_when_empty(&SeqInfo {
                id: 0,
                tokens: lengths.prompt,
                reserve: self.reservation(id, lengths.prompt),
                content: None,
            });
        if unservable {
            self.end_request(id, Outcome::Unservable);
        } else {
            self.waiting.push_back(id);
        }
    }

    /// Tokens to hold for request `id` when it is admitted with `tokens` to
    /// prefill.
    fn reservation(&self, id: u32, tokens: u32) -> u32 {
        match self.cfg.admission {
            Admission::Optimistic => tokens,
            Admission::Reserve => {
                let r = &self.records[id as usize];
                let final_tokens = r.prompt_tokens + r.output_target - 1;
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

    /// Ends request `id` now with `outcome`; a closed-loop user thinks, then
    /// sends the next one.
    fn end_request(&mut self, id: u32, outcome: Outcome) {
        let r = &mut self.records[id as usize];
        debug_assert!(r.outcome.is_none(), "request {id} ended twice");
        r.outcome = Some(outcome);
        r.finished = Some(self.now);
        self.last_end = self.last_end.max(self.now);
        let user = self.live[id as usize].user;
        if user != u32::MAX {
            // A user whose server is down retries only once it is back, so a
            // crash does not turn into a storm of refused requests.
            let mut ready = self.now + self.traffic.think_time();
            if let Some(back) = self.down_until {
                ready = ready.max(back);
            }
            self.events.push(ready, Event::UserReady(user));
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
        // Requests that waited too long leave the queue first.
        if let Some(limit) = self.cfg.queue_timeout {
            while let Some(&id) = self.waiting.front() {
                let r = &self.records[id as usize];
                if r.admitted.is_some() || self.now.saturating_since(r.arrival) < limit {
                    break;
                }
                self.waiting.pop_front();
                self.end_request(id, Outcome::Timeout);
            }
        }
        loop {
            let mut budget = self.cfg.max_batched_tokens;
            let preempted = match self.schedule_running(&mut budget) {
                Some(p) => p,
                None => return, // crashed
            };
            // As vLLM: no new admissions in a step that had to preempt.
            if !preempted {
                self.admit_waiting(&mut budget);
            }
            if budget < self.cfg.max_batched_tokens {
                self.launch_step();
                return;
            }
            // Nothing could be scheduled. If nothing is running either, the
            // request at the head of the queue can never be admitted (its
            // recomputed prompt outgrew the cache or the step budget): fail it
            // rather than wait forever, and try again.
            match self.waiting.front() {
                Some(&id) if self.running.is_empty() => {
                    self.waiting.pop_front();
                    self.end_request(id, Outcome::Oom);
                }
                _ => return,
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
            match self.cache.grow(seq.slot, 1) {
                Ok(()) => {
                    self.running[i].scheduled = 1;
                    *budget -= 1;
                    i += 1;
                }
                Err(_) => {
                    self.stats.oom_events += u64::from(self.cfg.on_oom != OnOom::PreemptRecompute);
                    match self.cfg.on_oom {
                        OnOom::Crash => {
                            self.crash();
                            return None;
                        }
                        OnOom::Reject => {
                            let seq = self.running.remove(i);
                            self.release(seq);
                            self.end_request(seq.req, Outcome::Oom);
                        }
                        OnOom::PreemptRecompute => {
                            preempted = true;
                            let last = self.running.len() - 1;
                            if last == 0 {
                                // Alone and still too big: it can never finish.
                                let seq = self.running.remove(i);
                                self.release(seq);
                                self.stats.oom_events += 1;
                                self.end_request(seq.req, Outcome::Oom);
                            } else {
                                // Evict the most recently admitted sequence
                                // (possibly this one) and retry.
                                let victim = self.running.pop().expect("running is not empty");
                                self.preempt(victim);
                            }
                        }
                    }
                }
            }
        }
        Some(preempted)
    }

    /// Admits waiting requests FCFS while the limits and the cache allow.
    fn admit_waiting(&mut self, budget: &mut u32) {
        while *budget > 0 && (self.running.len() as u32) < self.cfg.max_num_seqs {
            let Some(&id) = self.waiting.front() else {
                break;
            };
            let r = &self.records[id as usize];
            // A recomputed sequence prefills its prompt and what it had generated.
            let tokens = r.prompt_tokens + r.output_tokens;
            if !self.cfg.chunked_prefill && tokens > *budget {
                break; // FCFS: the head blocks the queue until it fits.
            }
            let slot = self.take_slot();
            let info = SeqInfo {
                id: slot,
                tokens,
                reserve: self.reservation(id, tokens),
                content: None,
            };
            if self.cache.admit(&info).is_err() {
                self.free_slots.push(slot);
                break;
            }
            self.waiting.pop_front();
            let r = &mut self.records[id as usize];
            r.admitted.get_or_insert(self.now);
            let chunk = tokens.min(*budget);
            *budget -= chunk;
            self.running.push(Seq {
                req: id,
                slot,
                prefill_target: tokens,
                prefilled: 0,
                context: 0,
                scheduled: chunk,
            });
        }
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
                work.attention_layer_pairs += self.layer_pairs(s.context, 1);
            } else {
                work.prefill_tokens += s.scheduled;
                work.prefill_seqs += 1;
                work.kv_read_bytes += self.layout.attended_bytes(s.prefilled);
                work.attention_layer_pairs += self.layer_pairs(s.prefilled, s.scheduled);
            }
        }
        work.kv_write_bytes = u64::from(work.tokens()) * bpt;
        let duration = self.cost.step_time(&work).max(SimDuration::from_nanos(1));
        self.busy = true;
        self.stats.step(batch, duration);
        let usage = self.cache.usage();
        let frac = usage.allocated as f64 / usage.budget.max(1) as f64;
        self.stats.level(self.now, frac);
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
                kv_used_bytes: usage.allocated,
                kv_frac: frac,
                step: duration,
            });
        }
        self.events.push(self.now + duration, Event::StepEnd);
    }

    /// Query-key pairs, summed over layers, of appending `k` tokens to a
    /// sequence of `p`: each layer group attends within its own window.
    fn layer_pairs(&self, p: u32, k: u32) -> u64 {
        self.layout
            .groups
            .iter()
            .map(|g| u64::from(g.layers) * attention_pairs(p, k, g.window))
            .sum()
    }

    /// The step in flight ends: emit tokens, finish sequences.
    fn finish_step(&mut self) {
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
                    let r = &mut self.records[s.req as usize];
                    r.output_tokens += 1;
                    r.first_token.get_or_insert(self.now);
                    done = r.output_tokens >= r.output_target;
                }
            }
            if done {
                self.release(s);
                self.end_request(s.req, Outcome::Ok);
            } else {
                self.running[kept] = s;
                kept += 1;
            }
        }
        self.running.truncate(kept);
        let usage = self.cache.usage();
        self.stats.level(
            self.now,
            usage.allocated as f64 / usage.budget.max(1) as f64,
        );
    }

    fn release(&mut self, seq: Seq) {
        self.cache.release(seq.slot);
        self.free_slots.push(seq.slot);
    }

    /// Evicts `seq` (recompute): its KV is dropped and it waits at the front of
    /// the queue to prefill its prompt and generated tokens again.
    fn preempt(&mut self, seq: Seq) {
        self.release(seq);
        self.stats.preemptions += 1;
        self.records[seq.req as usize].preemptions += 1;
        self.waiting.push_front(seq.req);
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
        let running = std::mem::take(&mut self.running);
        for s in &running {
            self.end_request(s.req, Outcome::Crashed);
        }
        while let Some(id) = self.waiting.pop_front() {
            self.end_request(id, Outcome::Crashed);
        }
        self.stats.level(self.now, 0.0);
    }
}
