//! Requests in and out: arrivals and closed-loop users, sessions and their
//! turns, issuing a request (its prompt, reservation and parallel samples),
//! and ending it in one outcome.

use super::{
    Engine, Event, Live, NONE, Routed, SESSION_KEY_BASE, Session, TurnDone, Waiting,
    request_content,
};
use crate::cache::{Content, SeqId, SeqInfo};
use crate::hardware::cost::CostModel;
use crate::metrics::{Outcome, RequestRecord};
use crate::scheduler::{Admission, TierOverlap};
use crate::traffic::Lengths;
use crate::units::{SimDuration, SimTime};

impl<'s, C: CostModel> Engine<'s, C> {
    /// Routes a request into this replica: it arrives at `at` (no earlier
    /// than the events already processed).
    ///
    /// Its arrival is an event of its own, except where the replica is in
    /// the middle of a step with nothing else due by `at`: there the event
    /// would only record the request and queue it (the scheduler looks
    /// again at the step's end), so that is done now, without the event's
    /// round trip through both event queues (a disaggregated request
    /// arrives twice, once at each pool). The replica's state is what the
    /// event would have left; a request that ends at once (unservable)
    /// still gives the replica an instant at `at`, where the cluster hears
    /// of it as before. (Only the limits' check waits for the replica's
    /// next event.)
    pub(super) fn inject(&mut self, at: SimTime, routed: Routed) {
        self.routed_tokens += u64::from(routed.lengths.prompt);
        self.routed.push_back(routed);
        let mid_step = self.issues_mid_step
            && self.busy
            && at >= self.now
            && self.events.peek_time().is_some_and(|t| t > at);
        if !mid_step {
            self.events.push(at.max(self.now), Event::Routed);
            return;
        }
        self.now = at;
        let reports = self.done.len();
        self.issue_routed();
        if self.done.len() > reports {
            // The event the arrival was, in effect.
            self.events.push(at, Event::Wake);
        } else {
            self.guard.count();
        }
    }

    /// Requests this replica holds and has not finished: waiting, running
    /// or swapped out (what a least-outstanding-requests balancer counts).
    pub(super) fn outstanding(&self) -> usize {
        // Entries the fast path marked dead are still in `running`.
        self.waiting.len() + self.running.len() - self.dead
            + self.swapped.len()
            + self.routed.len()
            + self.received.len()
            + self.expected
    }

    /// KV bytes allocated now, and promised to requests on their way here
    /// (a decode replica's, before they reserve).
    pub(super) fn kv_allocated(&self) -> u64 {
        self.cache.usage().allocated + self.expected_kv
    }

    /// Prompt tokens still to prefill here: the waiting samples' (with what
    /// a recomputed sample had generated), the unprefilled rest of running
    /// sequences' and the routed requests' not yet arrived. Dynamo's
    /// `active_prefill_tokens`, counted before prefix hits. O(running).
    pub(super) fn prefill_backlog(&self) -> u64 {
        // Lazy decoders of the fast path are fully prefilled, dead ones
        // too, so every entry of `running` may be read as it is.
        let running: u64 = self
            .running
            .iter()
            .map(|s| u64::from(s.prefill_target - s.prefilled))
            .sum();
        self.waiting_tokens + running + self.routed_tokens
    }

    /// KV blocks held here: allocated bytes over the bytes of one block of
    /// every layer (one token for contiguous placement, whose block size is 1).
    pub(super) fn held_blocks(&self) -> u64 {
        let block_bytes =
            u64::from(self.layout.block_size.max(1)) * self.layout.bytes_per_token().max(1);
        self.kv_allocated() / block_bytes
    }

    /// How many leading blocks of `content` this replica holds, per tier.
    /// `at` is the routing instant: stores into the tiers that end by then
    /// count, as the replica will see them when it admits the request.
    pub(super) fn overlap_blocks(&self, content: &Content, at: SimTime) -> TierOverlap {
        let hbm = self.cache.cached_prefix(content);
        // Below HBM: the blocks each tier holds beyond the GPU prefix, in one
        // walk that stops at the first block held nowhere (as admission's).
        let [host, ssd, remote] = self.tiers.as_ref().map_or([0; 3], |t| {
            let from = u32::try_from(hbm.blocks).unwrap_or(u32::MAX);
            t.overlap(content, from, content.reusable / t.block_size(), at)
        });
        TierOverlap {
            hbm: hbm.blocks,
            hbm_held: hbm.held,
            host: u64::from(host),
            ssd: u64::from(ssd),
            remote: u64::from(remote),
        }
    }

    /// Queues a sample at the back of the waiting queue.
    fn push_waiting_back(&mut self, w: Waiting) {
        self.waiting_tokens += self.queued_tokens(&w);
        self.waiting.push_back(w);
    }

    /// Queues a sample at the front of the waiting queue (a preempted or
    /// spilled sample goes before new ones).
    pub(super) fn push_waiting_front(&mut self, w: Waiting) {
        self.waiting_tokens += self.queued_tokens(&w);
        self.waiting.push_front(w);
    }

    /// Takes the sample at the front of the waiting queue.
    pub(super) fn pop_waiting(&mut self) -> Option<Waiting> {
        let w = self.waiting.pop_front()?;
        self.waiting_tokens -= self.queued_tokens(&w);
        Some(w)
    }

    /// Tokens a waiting sample prefills when admitted: its prompt, plus what
    /// it had generated before a recompute preemption.
    fn queued_tokens(&self, w: &Waiting) -> u64 {
        u64::from(self.records[w.req as usize].prompt_tokens) + u64::from(w.generated)
    }

    /// Whether a request may still be issued at `at` under the stop rule.
    pub(super) fn may_issue(&mut self, at: SimTime) -> bool {
        let ok = !self.issuing_done && self.scenario.stop.admits(at, self.issued);
        if !ok {
            self.issuing_done = true;
        }
        ok
    }

    pub(super) fn schedule_next_arrival(&mut self) {
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
    pub(super) fn start_conversation(&mut self, lengths: Lengths, user: u32) {
        if !self.sessions_on {
            self.issue(lengths, user, NONE);
            return;
        }
        let turns = self.traffic.turns_of(&lengths).max(1);
        let session = Session {
            key: SESSION_KEY_BASE | self.sessions_started,
            turn: 0,
            history: 0,
            turns_left: turns - 1,
            user,
            conversation: lengths.conversation,
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
    pub(super) fn next_turn(&mut self, session: u32) {
        if !self.may_issue(self.now) {
            self.end_session(session);
            return;
        }
        // The new message only: the system prompt, if any, is already in the
        // history.
        let s = &self.sessions[session as usize];
        let mut lengths = if s.conversation == Lengths::NO_CONVERSATION {
            self.traffic.next_message()
        } else {
            self.traffic.conversation_turn(s.conversation, s.turn)
        };
        let s = &mut self.sessions[session as usize];
        s.turns_left -= 1;
        lengths.prompt = lengths.prompt.saturating_add(s.history);
        let user = s.user;
        self.issue(lengths, user, session);
    }

    pub(super) fn end_session(&mut self, session: u32) {
        let user = self.sessions[session as usize].user;
        self.free_sessions.push(session);
        if user != NONE {
            self.user_thinks(user);
        }
    }

    /// A closed-loop user thinks, then sends the next request. A user whose
    /// server is down retries only once it is back, so a crash does not turn
    /// into a storm of refused requests.
    pub(super) fn user_thinks(&mut self, user: u32) {
        let mut ready = self.now + self.traffic.think_time();
        if let Some(back) = self.down_until {
            ready = ready.max(back);
        }
        self.events.push(ready, Event::UserReady(user));
    }

    /// Records a request and queues it, or fails it at once.
    pub(super) fn issue(&mut self, lengths: Lengths, user: u32, session: u32) {
        let (session_no, turn, content) = match session {
            NONE => (None, 1, request_content(None, lengths.prefix)),
            sid => {
                let s = &mut self.sessions[sid as usize];
                s.turn += 1;
                let content = request_content(Some((s.key, s.history)), lengths.prefix);
                (Some(s.key & !SESSION_KEY_BASE), s.turn, content)
            }
        };
        self.issue_as(lengths, session_no, turn, content, user, session, NONE);
    }

    /// The cluster's next routed request arrives: issued as the cluster
    /// composed it, its end reported back if the cluster follows it up.
    pub(super) fn issue_routed(&mut self) {
        let Some(r) = self.routed.pop_front() else {
            invariant_violated!("a routed arrival without its request");
            return;
        };
        self.routed_tokens -= u64::from(r.lengths.prompt);
        self.issue_as(
            r.lengths,
            r.session,
            r.turn,
            r.content,
            r.conversation,
            NONE,
            r.received,
        );
    }

    /// Records a request of session number `session_no` (turn `turn`) with
    /// prompt `content`, sent by `user` within engine session `session`, and
    /// queues it, or fails it at once. A request whose KV a decode replica
    /// received into `received` (else `NONE`) waits for a batch instead.
    #[allow(clippy::too_many_arguments)]
    fn issue_as(
        &mut self,
        lengths: Lengths,
        session_no: Option<u64>,
        turn: u32,
        content: Option<Content>,
        user: u32,
        session: u32,
        received: SeqId,
    ) {
        // Streaming mode reuses the slot of a request that has ended.
        let id = self.free_records.pop().unwrap_or(self.records.len() as u32);
        let number = self.issued;
        self.issued += 1;
        let mml = self.scenario.model.max_model_len;
        // Generation stops at the model's context length, as in vLLM.
        let room = mml.saturating_sub(lengths.prompt);
        let output = lengths.output.min(lengths.max_tokens).min(room).max(1);
        let max_tokens = lengths.max_tokens.min(room).max(1);
        let record = RequestRecord {
            id: number,
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
            hbm_hit_tokens: 0,
            tier_hit_tokens: 0,
            load: SimDuration::ZERO,
            outcome: None,
        };
        let live = Live {
            user,
            session,
            samples_left: self.samples,
            outcome: Outcome::Ok,
        };
        if id as usize == self.records.len() {
            self.records.push(record);
            self.live.push(live);
        } else {
            self.records[id as usize] = record;
            self.live[id as usize] = live;
        }
        if self.down_until.is_some() {
            self.end_request(id, Outcome::Crashed);
            return;
        }
        if received != NONE {
            // Its KV is here already, in room reserved for it: it joins a
            // batch as soon as one has a place, with no admission.
            self.received.push_back(super::Received {
                req: id,
                slot: received,
                output,
            });
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
            self.push_waiting_back(Waiting {
                req: id,
                output,
                generated: 0,
                fork: self.samples > 1,
                content,
            });
        }
    }

    /// What waiting sample `w` asks the cache for when admitted into slot
    /// `id`: its prompt and what it had generated (recomputed), its
    /// reservation and its content.
    pub(super) fn waiting_seq(&self, w: &Waiting, id: SeqId) -> SeqInfo {
        let tokens = self.records[w.req as usize].prompt_tokens + w.generated;
        SeqInfo {
            id,
            tokens,
            reserve: self.reservation(w.req, w.output, tokens),
            content: self.contents.get(w.content),
        }
    }

    /// Tokens to hold for a sample of request `id` with true output `output`
    /// when it is admitted with `tokens` to prefill.
    pub(super) fn reservation(&self, id: u32, output: u32, tokens: u32) -> u32 {
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
    pub(super) fn sample_ended(&mut self, id: u32, unforked: bool, outcome: Outcome) {
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
    pub(super) fn end_request(&mut self, id: u32, outcome: Outcome) {
        let r = &mut self.records[id as usize];
        invariant!(r.outcome.is_none(), "request {id} ended twice");
        r.outcome = Some(outcome);
        r.finished = Some(self.now);
        self.last_end = self.last_end.max(self.now);
        let context = r.prompt_tokens + r.output_tokens;
        let live = self.live[id as usize];
        if self.fed {
            // The cluster owns sessions and users: it sends what follows.
            if live.user != NONE {
                self.done.push(TurnDone {
                    conversation: live.user,
                    outcome,
                    context,
                    at: self.now,
                    back: self.down_until,
                });
            }
        } else if live.session != NONE {
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
        if let Some(stream) = self.stream.as_mut() {
            // Nothing refers to an ended request: its record is folded in
            // and its slot reused.
            stream.add(&self.records[id as usize], &self.scenario.slo);
            self.free_records.push(id);
        }
    }

    pub(super) fn take_slot(&mut self) -> SeqId {
        self.free_slots.pop().unwrap_or_else(|| {
            self.next_slot += 1;
            self.next_slot - 1
        })
    }
}
