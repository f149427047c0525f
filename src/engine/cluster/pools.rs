//! The cluster's side of a disaggregated deployment: routing a request to a
//! prefill and a decode replica, the reservation queues, transfers, and the
//! records and metrics of a run (see `src/engine/disagg.rs` for the model).

use super::{Cluster, Pending, Request, TurnDone};
use crate::cache::{Content, SeqInfo};
use crate::engine::NONE;
use crate::engine::disagg::{Flight, decode_request, prefill_request, span};
use crate::hardware::cost::CostModel;
use crate::metrics::{Outcome, RequestRecord, disagg::FlightTimes};
use crate::scheduler::Admission;
use crate::traffic::Lengths;
use crate::units::SimTime;

impl<'s, C: CostModel> Cluster<'s, C> {
    /// A new request of conversation `c`: its decode replica now, its
    /// prefill replica now or once the decode replica has reserved room.
    pub(super) fn send_disagg(
        &mut self,
        lengths: Lengths,
        c: u32,
        session: Option<u64>,
        turn: u32,
        content: Option<Content>,
    ) {
        let Some(pools) = self.pools.as_mut() else {
            return;
        };
        let np = pools.np;
        let f = pools.flights.len() as u32;
        let request = Request {
            at: self.now,
            lengths: &lengths,
            content: None,
            home: None,
        };
        let d = pools.router.pick(&self.replicas[np..], &request);
        pools.flights.push(Flight {
            lengths,
            content,
            session,
            turn,
            conversation: c,
            arrival: self.now,
            p: NONE,
            p_req: NONE,
            d: d as u32,
            d_req: NONE,
            p_slot: NONE,
            d_slot: NONE,
            queued: self.now,
            reserved: None,
            prefill_end: None,
            step_start: SimTime::ZERO,
            transfer_start: None,
            transfer_end: None,
            bytes: 0,
            next_join: NONE,
        });
        let early = pools.early();
        self.replica_of_request.push((np + d) as u32);
        self.issued += 1;
        let e = &mut self.replicas[np + d];
        e.expected += 1;
        let (tokens, reserve) = e.received_tokens(&lengths);
        let fits = lengths.prompt < self.scenario.model.max_model_len
            && e.cache.fits_when_empty(&SeqInfo {
                id: 0,
                tokens,
                reserve,
                content: None,
            });
        if fits {
            e.expected_kv += e.layout.kept_bytes(tokens);
        }
        if !fits {
            // The decode replica could never hold it: it fails there, at
            // once, as unservable (the scenario's load-time check makes this
            // rare).
            self.deliver(f, self.now);
        } else if early {
            if let Some(pools) = self.pools.as_mut() {
                pools.queues[d].push_back(f);
            }
            self.try_reserve(d, self.now);
        } else {
            self.send_to_prefill(f, self.now);
        }
    }

    /// Routes flight `f` to a prefill replica at `at`.
    fn send_to_prefill(&mut self, f: u32, at: SimTime) {
        let Some(pools) = self.pools.as_mut() else {
            return;
        };
        let np = pools.np;
        let fl = pools.flights[f as usize];
        let home = match fl.conversation {
            NONE => NONE,
            c => self.conversations[c as usize].home,
        };
        let request = Request {
            at,
            lengths: &fl.lengths,
            content: fl.content,
            home: (home != NONE).then_some(home as usize),
        };
        let p = self.router.pick(&self.replicas[..np], &request);
        if fl.conversation != NONE {
            self.conversations[fl.conversation as usize].home = p as u32;
        }
        let fl = &mut pools.flights[f as usize];
        fl.p = p as u32;
        fl.p_req = pools.issued[p];
        pools.issued[p] += 1;
        let e = &mut self.replicas[p];
        e.inject(at, prefill_request(f, fl));
        self.next.set(p, e.events.peek_time());
    }

    /// Flight `f` arrives at its decode replica at `at`: received into its
    /// reservation, or (without one) to fail there as unservable.
    fn deliver(&mut self, f: u32, at: SimTime) {
        let Some(pools) = self.pools.as_mut() else {
            return;
        };
        let d = pools.np + pools.flights[f as usize].d as usize;
        let fl = &mut pools.flights[f as usize];
        fl.d_req = pools.issued[d];
        pools.issued[d] += 1;
        let e = &mut self.replicas[d];
        e.expected -= 1;
        e.inject(at, decode_request(fl));
        self.next.set(d, e.events.peek_time());
    }

    /// Reserves room on decode replica `d` (pool index) at `at` for the
    /// flights at the head of its queue, while they fit.
    fn try_reserve(&mut self, d: usize, at: SimTime) {
        loop {
            let Some(pools) = self.pools.as_mut() else {
                return;
            };
            let Some(&f) = pools.queues[d].front() else {
                break;
            };
            let np = pools.np;
            let lengths = pools.flights[f as usize].lengths;
            let e = &mut self.replicas[np + d];
            let (tokens, reserve) = e.received_tokens(&lengths);
            let Some(slot) = e.reserve_received(at, tokens, reserve) else {
                break;
            };
            e.expected_kv -= e.layout.kept_bytes(tokens);
            pools.queues[d].pop_front();
            let fl = &mut pools.flights[f as usize];
            fl.d_slot = slot;
            fl.reserved = Some(at);
            if pools.early() {
                self.send_to_prefill(f, at);
            } else {
                self.transfer(f, at);
            }
        }
        // A reservation schedules nothing on the decode replica: its next
        // event is unchanged.
    }

    /// After replica `r` advanced through `t`: its handoffs (a prefill
    /// replica) and its ends.
    pub(super) fn pools_instant(&mut self, t: SimTime, r: usize, done: &mut Vec<TurnDone>) {
        let Some(pools) = self.pools.as_mut() else {
            return;
        };
        let np = pools.np;
        if r >= np {
            for d in done.drain(..) {
                self.turn_done(d);
            }
            self.try_reserve(r - np, t);
            return;
        }
        let mut handoffs = std::mem::take(&mut self.replicas[r].handoffs);
        for h in handoffs.drain(..) {
            let Some(pools) = self.pools.as_mut() else {
                return;
            };
            let early = pools.early();
            let fl = &mut pools.flights[h.flight as usize];
            invariant!(
                fl.p as usize == r && fl.p_req == h.req,
                "a handoff of another flight"
            );
            fl.prefill_end = Some(h.at);
            fl.step_start = h.step_start;
            fl.p_slot = h.slot;
            let d = fl.d as usize;
            if early {
                self.transfer(h.flight, h.at);
            } else {
                fl.queued = h.at;
                pools.queues[d].push_back(h.flight);
                self.try_reserve(d, t);
            }
        }
        self.replicas[r].handoffs = handoffs;
        for end in done.drain(..) {
            // A prefill request ends `ok` when the cluster releases its KV,
            // which it knows; any other end is the request's failure.
            if end.outcome == Outcome::Ok {
                continue;
            }
            let Some(pools) = self.pools.as_mut() else {
                return;
            };
            let fl = pools.flights[end.conversation as usize];
            let d = np + fl.d as usize;
            let e = &mut self.replicas[d];
            e.expected -= 1;
            if fl.d_slot != NONE {
                e.cancel_reservation(t, fl.d_slot);
            } else {
                e.expected_kv -= e.layout.kept_bytes(fl.lengths.prompt);
                // Not reserved: it may still be queued for room.
                if let Some(pools) = self.pools.as_mut() {
                    let q = &mut pools.queues[fl.d as usize];
                    if let Some(i) = q.iter().position(|&f| f == end.conversation) {
                        q.remove(i);
                    }
                }
            }
            self.next.set(d, self.replicas[d].events.peek_time());
            self.try_reserve(fl.d as usize, t);
            if fl.conversation != NONE {
                self.turn_done(TurnDone {
                    conversation: fl.conversation,
                    ..end
                });
            }
        }
    }

    /// Issues flight `f`'s transfer at `at`.
    fn transfer(&mut self, f: u32, at: SimTime) {
        let Some(pools) = self.pools.as_mut() else {
            return;
        };
        match pools.issue_transfer(f, at) {
            Some(end) => self.events.push(end, Pending::TransferDone(f)),
            None => {
                let join = at + pools.disagg.link.latency;
                match self.join_chain {
                    Some((t, pushed, last)) if t == join && pushed == self.events.pushed() => {
                        pools.flights[last as usize].next_join = f;
                        self.join_chain = Some((t, pushed, f));
                    }
                    _ => {
                        self.events.push(join, Pending::TransferJoin(f));
                        self.join_chain = Some((join, self.events.pushed(), f));
                    }
                }
            }
        }
    }

    /// Fair sharing: the transfers of the chain that starts at flight `f`
    /// start moving data now, in turn (see `Cluster::join_chain`).
    pub(super) fn transfer_joins(&mut self, mut f: u32) {
        loop {
            let Some(pools) = self.pools.as_mut() else {
                return;
            };
            let next = std::mem::replace(&mut pools.flights[f as usize].next_join, NONE);
            self.transfer_join(f, next != NONE);
            if next == NONE {
                return;
            }
            f = next;
        }
    }

    /// Fair sharing: flight `f` starts moving data now, and `more` of its
    /// chain join right after it. Transfers joining at one instant (a
    /// prefill step's handoffs) share the links once, after the last of
    /// them joins.
    fn transfer_join(&mut self, f: u32, more: bool) {
        let Some(pools) = self.pools.as_mut() else {
            return;
        };
        let last = !more
            && !matches!(
                self.events.peek(),
                Some((t, Pending::TransferJoin(_))) if t == self.now
            );
        if let Some(due) = pools.join(f, self.now, last) {
            self.events.push(due, Pending::LinksDue);
        }
    }

    /// Fair sharing: the transfers that end now, if this check is not stale.
    pub(super) fn links_due(&mut self) {
        let Some(pools) = self.pools.as_mut() else {
            return;
        };
        let mut ended = std::mem::take(&mut self.ended);
        if let Some(due) = pools.links_due(self.now, &mut ended) {
            self.events.push(due, Pending::LinksDue);
        }
        for f in ended.drain(..) {
            self.transfer_done(f);
        }
        self.ended = ended;
    }

    /// Flight `f`'s KV has arrived: the prefill replica frees it, the
    /// decode replica receives the request.
    pub(super) fn transfer_done(&mut self, f: u32) {
        let Some(pools) = self.pools.as_ref() else {
            return;
        };
        let fl = &pools.flights[f as usize];
        let (p, p_req, p_slot) = (fl.p as usize, fl.p_req, fl.p_slot);
        let e = &mut self.replicas[p];
        e.release_held(self.now, p_req, p_slot);
        self.next.set(p, e.events.peek_time());
        self.deliver(f, self.now);
    }
}

impl<C: CostModel> crate::engine::Engine<'_, C> {
    /// Tokens a decode replica reserves for a received request of
    /// `lengths`, and the reservation its admission rule adds (as
    /// [`crate::engine::Engine::reservation`] for a request it issued).
    pub(in crate::engine) fn received_tokens(&self, lengths: &Lengths) -> (u32, u32) {
        let mml = self.scenario.model.max_model_len;
        let prompt = lengths.prompt;
        let room = mml.saturating_sub(prompt);
        let output = lengths.output.min(lengths.max_tokens).min(room).max(1);
        let max_tokens = lengths.max_tokens.min(room).max(1);
        let reserve = match self.cfg.admission {
            Admission::Optimistic => prompt,
            Admission::Reserve => self
                .scenario
                .cache
                .reserve
                .tokens(prompt, max_tokens, prompt + output - 1, mml)
                .max(prompt),
        };
        (prompt, reserve)
    }
}

/// Every request's record in issue order, composed from its two replicas'
/// (arrival and admission from the prefill side, tokens and the end from
/// the decode side), and its flight's times.
pub(super) fn compose<'a>(
    flights: &[Flight],
    np: usize,
    records_of: impl Fn(usize) -> &'a [RequestRecord],
) -> (Vec<RequestRecord>, Vec<FlightTimes>) {
    let mut records = Vec::with_capacity(flights.len());
    let mut times = Vec::with_capacity(flights.len());
    for (k, fl) in flights.iter().enumerate() {
        let p = (fl.p != NONE).then(|| records_of(fl.p as usize)[fl.p_req as usize]);
        let d = (fl.d_req != NONE).then(|| records_of(np + fl.d as usize)[fl.d_req as usize]);
        let mut rec = match (p, d) {
            (Some(p), Some(d)) => RequestRecord {
                arrival: fl.arrival,
                admitted: p.admitted,
                hbm_hit_tokens: p.hbm_hit_tokens,
                preemptions: p.preemptions + d.preemptions,
                ..d
            },
            (None, Some(d)) => d,
            (Some(p), None) => {
                // Failed on the prefill side: its true lengths.
                RequestRecord {
                    output_target: d_output(fl),
                    max_tokens: fl.lengths.max_tokens,
                    output_tokens: 0,
                    first_token: None,
                    ..p
                }
            }
            (None, None) => {
                invariant_violated!("a request that reached no replica");
                continue;
            }
        };
        rec.id = k as u64;
        times.push(FlightTimes {
            prefill_end: fl.prefill_end,
            transfer_start: fl.transfer_start,
            transfer_end: fl.transfer_end,
            stall: span(Some(fl.queued), fl.reserved),
            bytes: fl.bytes,
            prefill_replica: fl.p,
        });
        records.push(rec);
    }
    (records, times)
}

/// The output a failed request would have had (its lengths, uncapped by the
/// context: it never reached a replica that caps them).
fn d_output(fl: &Flight) -> u32 {
    fl.lengths.output.min(fl.lengths.max_tokens).max(1)
}

/// The run's output: records composed in issue order, each replica's
/// summary (with `per_replica`), the replicas' timelines, and the
/// deployment's summary with its disaggregation metrics; `end` is when the
/// last replica stopped. The run's statistics (batch, KV occupancy) are the
/// decode pool's, where requests finish; the prefill pool's are in the
/// `prefill_*` fields.
pub(super) fn finish<C: CostModel>(
    scenario: &crate::scenario::Scenario,
    mut replicas: Vec<crate::engine::Engine<'_, C>>,
    replica_of_request: Vec<u32>,
    pools: &crate::engine::disagg::Pools<'_>,
    end: SimTime,
    per_replica: bool,
) -> crate::engine::RunOutput {
    use crate::metrics::{Collector, disagg, summarize};
    let np = pools.np;
    let (records, times) = compose(&pools.flights, np, |r| &replicas[r].records);
    let prefill = &pools.disagg.prefill;
    let pool_of = |r: usize| if r < np { prefill } else { scenario };
    let summaries: Vec<_> = replicas
        .iter()
        .enumerate()
        .filter(|_| per_replica)
        .map(|(r, e)| summarize(pool_of(r), &e.records, &e.stats, end))
        .collect();
    let merged = |range: std::ops::Range<usize>| {
        Collector::merge_replicas(
            &replicas[range]
                .iter()
                .map(|e| e.stats.clone())
                .collect::<Vec<_>>(),
            end,
        )
    };
    let (p_stats, d_stats) = (merged(0..np), merged(np..replicas.len()));
    // A pool's own metrics: its steps and memory from its merged statistics
    // (no latency percentiles, so no pass over its records but one to count
    // its failures, which the replicas' summaries have counted already).
    let pool_summary = |s, range: std::ops::Range<usize>, stats: &Collector| {
        let mut m = summarize(s, &[], stats, end);
        let (mut failed, mut n) = (0u64, 0u64);
        if summaries.is_empty() {
            for r in replicas[range].iter().flat_map(|e| &e.records) {
                n += 1;
                failed += u64::from(matches!(
                    r.outcome,
                    Some(Outcome::Oom | Outcome::Unservable | Outcome::Crashed)
                ));
            }
        } else {
            for r in &summaries[range] {
                n += r.requests;
                failed += r.oom + r.unservable + r.crashed;
            }
        }
        m.oom_rate = if n == 0 {
            0.0
        } else {
            failed as f64 / n as f64
        };
        m
    };
    let p_summary = pool_summary(prefill, 0..np, &p_stats);
    let d_summary = pool_summary(scenario, np..replicas.len(), &d_stats);
    let mut summary = summarize(scenario, &records, &d_stats, end);
    let link_busy: Vec<u64> = pools
        .out
        .iter()
        .chain(&pools.inbound)
        .map(|c| c.busy_ns)
        .collect();
    disagg::fill(
        &mut summary,
        &records,
        &times,
        &disagg::Pools {
            prefill: &p_summary,
            decode: &d_summary,
            link_busy_ns: &link_busy,
        },
        end,
    );
    let (timeline, replica_of_row) = super::timelines(&mut replicas);
    crate::engine::RunOutput {
        records,
        timeline,
        summary,
        stats: d_stats,
        cluster: Some(crate::engine::ClusterOutput {
            replica_of_request,
            replica_of_row,
            replicas: summaries,
            flights: Some(times),
        }),
        streamed: false,
    }
}
