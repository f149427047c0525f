//! One engine step: which sequences run (decodes first, then swap-ins, then
//! admissions from the queue, within the token and sequence budgets), what
//! the step costs, and what its end does (tokens, finished sequences,
//! forked samples). The batch limit that held each step is recorded here.

use super::{Engine, Event, Seq, Swapped, Waiting, tiers};
use crate::cache::SeqInfo;
use crate::hardware::cost::{CostModel, StepWork};
use crate::metrics::{BatchLimit, ByteLevels, Outcome, TimelineRow};
use crate::scheduler::OnOom;
use crate::units::SimDuration;

impl<'s, C: CostModel> Engine<'s, C> {
    /// Forms the next batch and starts a step, if there is anything to do.
    pub(super) fn start_step(&mut self) {
        // Requests that waited too long for their first admission leave the
        // queue first (noticed when the scheduler next looks).
        if let Some(limit) = self.cfg.queue_timeout {
            while let Some(&w) = self.waiting.front() {
                let r = &self.records[w.req as usize];
                if r.admitted.is_some() || self.now.saturating_since(r.arrival) < limit {
                    break;
                }
                self.pop_waiting();
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
            // Nor while a disaggregated replica holds KV for requests
            // outside the batch (held for a transfer, or reserved for one
            // being received): it is freed without a step.
            if !self.running.is_empty() || self.held > 0 || self.receiving_bytes > 0 {
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
            match self.pop_waiting() {
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
    pub(super) fn schedule_running(&mut self, budget: &mut u32) -> Option<bool> {
        let mut preempted = false;
        let mut i = 0;
        while i < self.running.len() {
            if *budget == 0 {
                break;
            }
            let seq = self.running[i];
            if !seq.decoding()
                && self
                    .tiers
                    .as_ref()
                    .is_some_and(|t| t.loading(seq.slot, self.now))
            {
                // Its blocks are still on their way up from a lower tier.
                self.running[i].scheduled = 0;
                i += 1;
                continue;
            }
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
    pub(super) fn swap_in(&mut self, budget: &mut u32) -> Option<BatchLimit> {
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
            self.running.push(Seq {
                slot,
                scheduled: 1,
                ..seq
            });
        }
        None
    }

    /// Admits waiting samples FCFS while the limits and the cache allow;
    /// returns the limit that stopped it.
    pub(super) fn admit_waiting(&mut self, budget: &mut u32) -> BatchLimit {
        // Sequences counted against max_num_seqs: the live ones, and the
        // samples that running, not yet forked requests will fork (as vLLM
        // counts a request's `n` sequences together).
        let mut occupied = (self.running.len() - self.dead) as u64;
        if self.samples > 1 {
            let unforked = self.running.iter().filter(|s| s.fork && !s.dead).count();
            occupied += unforked as u64 * u64::from(self.samples - 1);
        }
        // Received requests first: their KV is here already.
        while let Some(&r) = self.received.front() {
            if *budget == 0 {
                return BatchLimit::TokenBudget;
            }
            if occupied + 1 > u64::from(self.cfg.max_num_seqs) {
                return BatchLimit::MaxNumSeqs;
            }
            self.received.pop_front();
            occupied += 1;
            *budget -= 1;
            self.admit_received(r);
        }
        loop {
            let Some(&w) = self.waiting.front() else {
                return BatchLimit::Load;
            };
            if *budget == 0 {
                return BatchLimit::TokenBudget;
            }
            let needs = if w.fork { u64::from(self.samples) } else { 1 };
            if occupied + needs > u64::from(self.cfg.max_num_seqs) {
                return BatchLimit::MaxNumSeqs;
            }
            // A recomputed sample prefills its prompt and what it had generated.
            let mut info = self.waiting_seq(&w, 0);
            let tokens = info.tokens;
            let prompt = tokens - w.generated;
            if !self.cfg.chunked_prefill && tokens > *budget {
                // FCFS: the head blocks the queue until it fits.
                return BatchLimit::TokenBudget;
            }
            let slot = self.take_slot();
            info.id = slot;
            let Ok(admitted) = self.cache.admit(&info) else {
                self.free_slots.push(slot);
                return BatchLimit::KvMemory;
            };
            self.pop_waiting();
            occupied += needs;
            let content = self.contents.take(w.content);
            self.stats.prefix_lookup_tokens += u64::from(tokens);
            self.stats.prefix_hit_tokens += u64::from(admitted.cached_tokens);
            let cached = admitted.cached_tokens.min(tokens - 1);
            let loaded = match self.tiers.take() {
                Some(mut t) => {
                    let l = t.admit(slot, content.as_ref(), tokens, cached, self.now, |n| {
                        self.recompute_ns(cached, n)
                    });
                    self.tiers = Some(t);
                    l
                }
                None => tiers::Loaded {
                    tokens: 0,
                    ready: self.now,
                },
            };
            let r = &mut self.records[w.req as usize];
            if r.admitted.is_none() {
                r.admitted = Some(self.now);
                r.hbm_hit_tokens = cached;
                r.tier_hit_tokens = loaded.tokens;
                r.load = loaded.ready - self.now;
            }
            let prefilled = cached + loaded.tokens;
            let chunk = if loaded.ready > self.now
                && self
                    .scenario
                    .tiers
                    .is_some_and(|p| p.load == crate::cache::tiers::LoadMode::Async)
            {
                // It joins a batch when its load ends.
                self.events.push(loaded.ready, Event::LoadDone);
                0
            } else {
                (tokens - prefilled).min(*budget)
            };
            *budget -= chunk;
            self.running.push(Seq {
                req: w.req,
                slot,
                prefill_target: tokens,
                prefilled,
                context: prefilled,
                scheduled: chunk,
                output: w.output,
                generated: w.generated,
                fork: w.fork,
                final_bytes: self.layout.peak_bytes(prompt + w.output - 1),
                since: 0,
                dead: false,
                content,
            });
        }
    }

    /// Prices the scheduled batch and schedules its end.
    pub(super) fn launch_step(&mut self) {
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
                work.attention_flops = work
                    .attention_flops
                    .saturating_add(self.layout.attention_flops(s.context, 1));
            } else {
                work.prefill_tokens += s.scheduled;
                work.prefill_seqs += 1;
                work.kv_read_bytes += self.layout.attended_bytes(s.prefilled);
                work.attention_flops = work
                    .attention_flops
                    .saturating_add(self.layout.attention_flops(s.prefilled, s.scheduled));
            }
        }
        work.kv_write_bytes = u64::from(work.tokens()) * bpt;
        self.step_fast = false;
        self.launch_work(work, batch);
    }

    /// Prices `work`, a batch of `batch` sequences, records the step and
    /// schedules its end (both engines).
    pub(super) fn launch_work(&mut self, mut work: StepWork, batch: u32) {
        work.swap_bytes = std::mem::take(&mut self.pending_swap_bytes);
        let mut duration = self
            .cost
            .step_time_with(&work, &mut self.step_memo)
            .max(SimDuration::from_nanos(1));
        if self.tiers.is_some() {
            duration = self.tier_step_time(duration);
        }
        self.busy = true;
        // The running sequences are as this step leaves them: measured
        // afresh, then kept until it ends.
        self.running_slack.set(None);
        let levels = self.memory_levels();
        self.launched(batch, duration, levels);
        self.events.push_aside(self.now + duration, Event::StepEnd);
    }

    /// A step of `batch` sequences lasting `duration` starts now and leaves
    /// memory at `levels`: its statistics, the levels and its timeline row
    /// (every step, whether its end is an event or a leap's iteration).
    #[inline(always)]
    pub(super) fn launched(&mut self, batch: u32, duration: SimDuration, levels: ByteLevels) {
        self.step_started = self.now;
        self.stats.step(batch, duration, self.limit);
        self.stats.level(self.now, levels);
        self.timeline_row(batch, duration, levels);
    }

    /// The step of `batch` sequences launched now, lasting `duration` at
    /// `levels`, becomes a timeline row if one is due.
    #[inline(always)]
    pub(super) fn timeline_row(&mut self, batch: u32, duration: SimDuration, levels: ByteLevels) {
        if self.timeline.due(self.now) {
            self.timeline.push(TimelineRow {
                time: self.now,
                running: batch,
                waiting: self.waiting.len() as u32,
                levels,
                step: duration,
            });
        }
    }

    /// The step in flight ends: emit tokens, fork samples, finish sequences.
    pub(super) fn finish_step(&mut self) {
        if self.step_fast {
            self.fast_finish();
            return;
        }
        self.busy = false;
        self.running_slack.set(None);
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
                if let (Some(t), Some(c)) = (self.tiers.as_mut(), s.content.as_ref()) {
                    t.computed(s.slot, c, s.context);
                }
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
            if done && self.role == super::Role::Prefill {
                // Its KV stays until the cluster has moved it.
                self.hold(&s);
            } else if done {
                self.release(s.slot);
                self.sample_ended(s.req, false, Outcome::Ok);
            } else {
                self.running[kept] = s;
                kept += 1;
            }
        }
        self.running.truncate(kept);
        if let Some(t) = self.tiers.as_mut() {
            t.flush(self.now);
        }
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
    pub(super) fn spawn_samples(&mut self, parent: &Seq) {
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
                if let Some(t) = self.tiers.as_mut() {
                    t.forked(parent.slot, slot);
                }
                let prompt = self.records[parent.req as usize].prompt_tokens;
                self.spawned.push(Seq {
                    slot,
                    output,
                    generated: 1,
                    fork: false,
                    final_bytes: self.layout.peak_bytes(prompt + output - 1),
                    ..*parent
                });
            } else {
                self.free_slots.push(slot);
                let content = self.contents.put(parent.content);
                self.push_waiting_front(Waiting {
                    req: parent.req,
                    output,
                    generated: 1,
                    fork: false,
                    content,
                });
            }
        }
    }
}
