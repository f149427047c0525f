//! A deployment of several replicas behind a router
//! (docs/ARCHITECTURE.md#engine-loop).
//!
//! Each replica is a whole [`Engine`] (its own KV cache, batch and clock) in
//! *fed* mode: it draws no arrivals and starts no follow-up requests. The
//! cluster owns the traffic: it draws the scenario's arrival stream once,
//! holds every multi-turn session and closed-loop user, and sends each
//! request (an arrival, a session's next turn, a user's next request) to the
//! replica its router picks at the instant the request is ready, looking at
//! the replicas' state as a real load balancer would see it at that moment.
//! When a request the cluster follows up ends, its replica reports it
//! ([`TurnDone`]); the cluster then schedules the session's next turn or lets
//! the user think.
//!
//! # Global time order
//!
//! The cluster processes instants in time order over its own pending events
//! (the next arrival, sessions' next turns, users' next requests: one
//! [`EventQueue`], FIFO at equal times) and every replica's next event. At an
//! instant where both have something, the cluster's events go first, so a
//! router sees each replica as it was before that instant. A replica is then
//! advanced by one instant (every event due at it, and the step that
//! follows); a tournament tree of the replicas' next-event times finds the
//! earliest in O(log replicas). Without follow-ups (open-loop traffic without
//! sessions) each replica sees exactly the events, in exactly the order, of
//! the earlier loop that advanced every replica to each arrival, so those
//! runs are unchanged. A turn that a session sends with no think time
//! reaches its replica after the step that started at the instant the
//! previous turn ended: unlike in a single engine, where the next turn joins
//! that step, the report crosses the cluster first.
//!
//! # Common random numbers across routers
//!
//! Which replica serves a turn changes when it ends, so anything drawn when
//! a turn ends, in the order turns end, would differ between routers. The
//! cluster therefore draws:
//!
//! - in the order conversations start (the `n`-th session or closed-loop
//!   request is the same under every router): its first lengths, its number
//!   of turns and, in a closed loop, the user's think time after it, from
//!   the scenario's shared streams;
//! - from the conversation's own stream ([`session_rng`], keyed by `n`):
//!   its later turns' messages and the think times between turns.
//!
//! So session `n` has the same turns, message lengths and think times under
//! every router (as long as none of its turns fails), and an open-loop run
//! sees the same arrivals.
//!
//! # Cost
//!
//! Per instant, O(log replicas) to find the next; routing costs one pass
//! over the replicas per request (plus, for `kv-aware`, a walk of the
//! prompt's cached blocks and of the running batch on each). Conversations
//! live in reusable slots; nothing is allocated per request beyond its
//! record.

mod pools;

use std::collections::HashMap;

use rand_chacha::ChaCha8Rng;

use super::guard::{Limits, Stopped, beyond_horizon};
use super::queue::EventQueue;
use super::{Engine, NONE, Role, Routed, RunOutput, SESSION_KEY_BASE, TurnDone, request_content};
use crate::cache::Content;
use crate::hardware::cost::CostModel;
use crate::metrics::stream::RecordStream;
use crate::metrics::{Collector, Outcome, RequestRecord, TimelineRow, summarize, summary_of};
use crate::rng::{replica_seed, session_rng};
use crate::scenario::Scenario;
use crate::scheduler::{KvRouterConfig, Router, TierOverlap};
use crate::traffic::{Lengths, LoopKind, Traffic};
use crate::units::{SimDuration, SimTime};

/// What a cluster run adds to a single engine's output.
#[derive(Clone, Debug, Default)]
pub struct ClusterOutput {
    /// The replica each request (in [`RunOutput::records`] order) went to.
    pub replica_of_request: Vec<u32>,
    /// The replica each timeline row (in [`RunOutput::timeline`] order) is of.
    pub replica_of_row: Vec<u32>,
    /// Each replica's own metrics (a disaggregated deployment's prefill
    /// replicas first).
    pub replicas: Vec<crate::metrics::Summary>,
    /// A disaggregated run's flights between the pools, one per request in
    /// [`RunOutput::records`] order.
    pub flights: Option<Vec<crate::metrics::disagg::FlightTimes>>,
}

/// What a request looks like to the router.
pub(super) struct Request<'a> {
    /// When it is routed.
    at: SimTime,
    lengths: &'a Lengths,
    /// Its prompt's content, for prefix caching (what the replica will use).
    content: Option<Content>,
    /// The replica that served its session's previous turn, if any.
    home: Option<usize>,
}

/// The router's view and memory: where each shared prefix was last sent
/// (prefix-aware routing), the round-robin cursor, and the routers' keys.
pub(super) struct RouterState {
    policy: Router,
    next: usize,
    prefix_home: HashMap<u32, usize>,
    /// `hardware.session_imbalance`.
    imbalance: usize,
    /// `[hardware.kv_router]`.
    kv: KvRouterConfig,
}

impl RouterState {
    /// The router of `d`'s keys.
    pub(super) fn of(d: &crate::hardware::Deployment) -> Self {
        RouterState {
            policy: d.router,
            next: 0,
            prefix_home: HashMap::new(),
            imbalance: d.session_imbalance as usize,
            kv: d.kv_router,
        }
    }

    pub(super) fn pick<C: CostModel>(
        &mut self,
        replicas: &[Engine<'_, C>],
        req: &Request<'_>,
    ) -> usize {
        let least = |key: &dyn Fn(&Engine<'_, C>) -> u64| {
            // Ties go to the lowest index: deterministic.
            (0..replicas.len())
                .min_by_key(|&r| (key(&replicas[r]), r))
                .unwrap_or(0)
        };
        let least_outstanding = || least(&|e| e.outstanding() as u64);
        // An affinity router's home keeps the request unless it is more than
        // `imbalance` unfinished requests above the least loaded replica.
        let home_or = |home: Option<usize>, fallback: usize| match home {
            Some(h)
                if replicas[h].outstanding()
                    <= replicas[fallback].outstanding() + self.imbalance =>
            {
                h
            }
            _ => fallback,
        };
        match self.policy {
            Router::RoundRobin => {
                let r = self.next % replicas.len();
                self.next = r + 1;
                r
            }
            Router::LeastOutstanding => least_outstanding(),
            Router::LeastKv => least(&|e| e.kv_allocated()),
            Router::PrefixAware => {
                let fallback = least_outstanding();
                let Some(prefix) = req.lengths.prefix else {
                    return fallback;
                };
                let chosen = home_or(self.prefix_home.get(&prefix.id).copied(), fallback);
                self.prefix_home.insert(prefix.id, chosen);
                chosen
            }
            Router::SessionAffinity => home_or(req.home, least_outstanding()),
            Router::KvAware => {
                let mut best = (f64::INFINITY, 0);
                for (r, e) in replicas.iter().enumerate() {
                    let overlap = req
                        .content
                        .map_or(TierOverlap::default(), |c| e.overlap_blocks(&c, req.at));
                    let logit = self.kv.logit(
                        e.layout.block_size,
                        e.prefill_backlog(),
                        req.lengths.prompt,
                        overlap,
                        e.held_blocks(),
                    );
                    // Strictly lower: ties stay with the lowest index.
                    if r == 0 || logit < best.0 {
                        best = (logit, r);
                    }
                }
                best.1
            }
        }
    }
}

/// The earliest next event over the replicas, ties to the lowest index: a
/// tournament tree (each inner node the minimum of its two children), so an
/// update is O(log replicas) and the minimum is at the root.
struct NextEvents {
    /// Leaves: replicas rounded up to a power of two.
    leaves: usize,
    /// `(nanoseconds of the next event or u64::MAX for none, replica)`,
    /// root at 1, leaves at `leaves..2 * leaves`.
    tree: Vec<(u64, u32)>,
}

impl NextEvents {
    /// `n` replicas with no event.
    fn new(n: usize) -> Self {
        let leaves = n.max(1).next_power_of_two();
        let mut tree = vec![(u64::MAX, u32::MAX); 2 * leaves];
        for (i, leaf) in tree[leaves..].iter_mut().enumerate() {
            *leaf = (u64::MAX, i as u32);
        }
        for i in (1..leaves).rev() {
            tree[i] = tree[2 * i].min(tree[2 * i + 1]);
        }
        NextEvents { leaves, tree }
    }

    /// Replica `r`'s next event is now at `at` (`None`: it has none).
    fn set(&mut self, r: usize, at: Option<SimTime>) {
        // `SimTime::MAX` is u64::MAX - 1 nanoseconds: below "none".
        let key = at.map_or(u64::MAX, SimTime::as_nanos);
        let mut i = self.leaves + r;
        // Most events leave a replica's next one where it was: nothing
        // above its leaf changes.
        if self.tree[i].0 == key {
            return;
        }
        self.tree[i] = (key, r as u32);
        while i > 1 {
            i /= 2;
            self.tree[i] = self.tree[2 * i].min(self.tree[2 * i + 1]);
        }
    }

    /// The earliest next event of the replicas other than `r`
    /// ([`SimTime::MAX`] if none has one): the minimum of the siblings on
    /// the path from `r`'s leaf to the root.
    fn first_besides(&self, r: usize) -> SimTime {
        let mut i = self.leaves + r;
        let mut key = u64::MAX;
        while i > 1 {
            key = key.min(self.tree[i ^ 1].0);
            i /= 2;
        }
        SimTime::from_nanos(key.min(SimTime::MAX.as_nanos()))
    }

    /// The earliest next event of replicas `lo..hi` (`hi` past the last
    /// replica means up to it; [`SimTime::MAX`] if none has one): the
    /// minimum of the O(log replicas) subtrees that cover the range.
    fn first_in(&self, lo: usize, hi: usize) -> SimTime {
        let (mut lo, mut hi) = (
            self.leaves + lo.min(self.leaves),
            self.leaves + hi.min(self.leaves),
        );
        let mut key = u64::MAX;
        while lo < hi {
            if lo & 1 == 1 {
                key = key.min(self.tree[lo].0);
                lo += 1;
            }
            if hi & 1 == 1 {
                hi -= 1;
                key = key.min(self.tree[hi].0);
            }
            lo /= 2;
            hi /= 2;
        }
        SimTime::from_nanos(key.min(SimTime::MAX.as_nanos()))
    }

    /// The earliest next event and its replica.
    fn first(&self) -> Option<(SimTime, usize)> {
        let (key, r) = self.tree[1];
        (key != u64::MAX).then(|| (SimTime::from_nanos(key), r as usize))
    }
}

/// Which replicas' instants can read or change another replica at the
/// instant they happen, and so bound how far it may leap ahead of the
/// cluster. Whatever a replica's instant schedules for later goes on the
/// cluster's queue, whose next event bounds every leap anyway.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Reach {
    /// Any replica's, `lookahead` after its next event: a request's end
    /// schedules the conversation's next turn or its user's next request
    /// (sessions, closed loops) one think time later, routed by reading
    /// every replica; `lookahead` is the least think time (zero where it
    /// can be zero). Zero too in a disaggregated deployment, whose prefill
    /// replicas reserve decode memory at their own instants, and wherever
    /// the replicas share a remote KV store: a step launched at the end of
    /// a leap may store its HBM victims there, reserving the store's
    /// bandwidth, which must then come after what the other replicas
    /// reserved earlier.
    Everyone { lookahead: SimDuration },
    /// None: a colocated deployment under open-loop traffic without
    /// sessions, its replicas sharing no remote KV store. A request's end
    /// schedules nothing, and only the cluster's own events (arrivals, each
    /// routed when it is due) read a replica.
    Nobody,
    /// The other pool's (open loop, no sessions, disaggregated; replicas
    /// `0..np` prefill): a prefill replica's handoff reserves memory on a
    /// decode replica, or cancels a reservation, at its own instant; a
    /// decode replica's freed memory starts a queued transfer, or (when
    /// decode memory is reserved before the prefill) routes the prefill to a
    /// prefill replica, at its own. Neither pool reaches into itself.
    OtherPool { np: usize },
}

impl Reach {
    /// The reach in `scenario` under `traffic`, whose replicas share a
    /// remote KV store if `shared_store`.
    fn of(scenario: &Scenario, traffic: &Traffic, shared_store: bool) -> Reach {
        let np = scenario
            .disagg
            .as_deref()
            .map(|g| g.prefill.deployment.replicas.max(1) as usize);
        match (traffic.least_think(), np) {
            _ if shared_store => Reach::Everyone {
                lookahead: SimDuration::ZERO,
            },
            (Some(_), Some(_)) => Reach::Everyone {
                lookahead: SimDuration::ZERO,
            },
            (Some(lookahead), None) => Reach::Everyone { lookahead },
            (None, None) => Reach::Nobody,
            (None, Some(np)) => Reach::OtherPool { np },
        }
    }
}

/// What the cluster itself schedules.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Pending {
    /// An open-loop request (or session) arrives.
    Arrival(Lengths),
    /// A closed-loop user sends its next request (or starts a session).
    UserReady(u32),
    /// A session (a slot of [`Cluster::conversations`]) sends its next turn.
    NextTurn(u32),
    /// A disaggregated request's KV has reached its decode replica (FIFO
    /// links).
    TransferDone(u32),
    /// Fair sharing: a transfer starts moving data, its latency paid.
    TransferJoin(u32),
    /// Fair sharing: the earliest end among the moving transfers, as
    /// scheduled (stale when a later change moved it).
    LinksDue,
}

/// A conversation the cluster follows: a multi-turn session, or a
/// closed-loop user's single request (a session of one turn).
#[derive(Clone, Debug)]
struct Conversation {
    /// The session's content key, one for every replica (`SESSION_KEY_BASE
    /// | n` for the `n`-th session), so its blocks have the same identities
    /// wherever its turns land.
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
    replay: u32,
    /// The replica that served its previous turn (`NONE` before the first).
    home: u32,
    /// The user's think time after it ends (closed loop), drawn when it
    /// started.
    user_think: SimDuration,
    /// Its own stream: later turns' messages and think times between turns
    /// (`None` without sessions, where nothing follows the first turn).
    rng: Option<ChaCha8Rng>,
}

/// A cluster run in progress.
struct Cluster<'s, C> {
    scenario: &'s Scenario,
    seed: u64,
    replicas: Vec<Engine<'s, C>>,
    /// The replicas' next-event times.
    next: NextEvents,
    /// Which other replicas' next events bound a replica's leap.
    reach: Reach,
    traffic: Traffic,
    sessions_on: bool,
    now: SimTime,
    events: EventQueue<Pending>,
    router: RouterState,
    /// Conversations in progress, in reusable slots.
    conversations: Vec<Conversation>,
    free: Vec<u32>,
    /// Sessions started (the next one's number).
    sessions_started: u64,
    /// Requests issued so far (every turn).
    issued: u64,
    /// No more requests will be issued.
    issuing_done: bool,
    /// The replica of each issued request, in issue order.
    replica_of_request: Vec<u32>,
    /// The two pools of a disaggregated deployment.
    pools: Option<Box<super::disagg::Pools<'s>>>,
    /// Streaming mode: the replicas keep no records, nor the cluster which
    /// replica served each request.
    streamed: bool,
    /// Transfers that ended at a links check (a reused buffer).
    ended: Vec<u32>,
    /// The last event scheduled, if it is a [`Pending::TransferJoin`] still
    /// to come: its instant, [`EventQueue::pushed`] right after it, and the
    /// last flight of its chain. A transfer that joins at that instant
    /// with nothing scheduled since would be the next event popped after
    /// it, so it is chained to it (`Flight::next_join`) instead of pushed:
    /// a prefill step's handoffs join the links in one event, in the same
    /// order.
    join_chain: Option<(SimTime, u64, u32)>,
}

impl<'s, C: CostModel> Cluster<'s, C> {
    /// Runs until no replica and no conversation has anything left to do.
    fn run(&mut self) -> Result<(), Stopped> {
        self.start();
        loop {
            let replica = self.next.first();
            let cluster = self.events.peek_time();
            match (cluster, replica) {
                (None, None) => return Ok(()),
                (Some(t), None) => self.cluster_instant(t)?,
                (Some(t), Some((due, _))) if t <= due => self.cluster_instant(t)?,
                (_, Some((t, r))) => self.replica_instant(t, r)?,
            }
        }
    }

    /// Handles every cluster event due at `t` (no replica has an earlier
    /// one), including those it schedules at `t`.
    fn cluster_instant(&mut self, t: SimTime) -> Result<(), Stopped> {
        beyond_horizon(t)?;
        self.now = t;
        while self.events.peek_time() == Some(t) {
            let Some((_, event)) = self.events.pop() else {
                break;
            };
            self.handle(event);
        }
        Ok(())
    }

    /// Advances replica `r` through instant `t`, its next event (no cluster
    /// event is due by then), and collects the ends it reports.
    fn replica_instant(&mut self, t: SimTime, r: usize) -> Result<(), Stopped> {
        // Within the horizon, so `t + 1 ns` does not saturate.
        beyond_horizon(t)?;
        // Only the cluster's events and what the other replicas report
        // reach this one: nothing before the earliest of their next events
        // (of those that can reach it: `Reach`).
        // But a decode replica with transfers waiting for its memory is
        // offered them after every instant it advances through.
        // (Asked only when the replica could leap.)
        let (next, events, pools) = (&self.next, &self.events, &self.pools);
        let reach = self.reach;
        let quiet_until = || {
            let offered = pools
                .as_ref()
                .is_some_and(|p| r >= p.np && !p.queues[r - p.np].is_empty());
            let outside = match reach {
                Reach::Everyone { lookahead } => {
                    (next.first_besides(r) + lookahead).min(SimTime::MAX)
                }
                Reach::Nobody => SimTime::MAX,
                Reach::OtherPool { np } if r < np => next.first_in(np, usize::MAX),
                Reach::OtherPool { np } => next.first_in(0, np),
            };
            match events.peek_time() {
                _ if offered => t,
                Some(c) => c.min(outside),
                None => outside,
            }
        };
        let e = &mut self.replicas[r];
        e.advance(Some(t + SimDuration::from_nanos(1)), quiet_until)?;
        let due = e.events.peek_time();
        let mut done = std::mem::take(&mut e.done);
        self.next.set(r, due);
        if self.pools.is_some() {
            self.pools_instant(t, r, &mut done);
        } else {
            for d in done.drain(..) {
                self.turn_done(d);
            }
        }
        // Kept for its capacity: nothing allocated per report.
        self.replicas[r].done = done;
        Ok(())
    }

    /// Seeds the queue: the first arrival, or every closed-loop user.
    fn start(&mut self) {
        match self.scenario.traffic.loop_kind() {
            LoopKind::Open => self.schedule_next_arrival(),
            LoopKind::Closed { users } => {
                for user in 0..users {
                    self.events.push(SimTime::ZERO, Pending::UserReady(user));
                }
            }
        }
    }

    fn handle(&mut self, event: Pending) {
        match event {
            Pending::Arrival(lengths) => {
                // Session turns may have used up the request count since
                // this arrival was drawn.
                if self.may_issue(self.now) {
                    self.start_conversation(lengths, NONE);
                    self.schedule_next_arrival();
                }
            }
            Pending::UserReady(user) => {
                if self.may_issue(self.now) {
                    let lengths = self.traffic.next_lengths();
                    self.start_conversation(lengths, user);
                }
            }
            Pending::NextTurn(c) => self.next_turn(c),
            Pending::TransferDone(f) => self.transfer_done(f),
            Pending::TransferJoin(f) => {
                // Taken off the queue: nothing more joins its chain.
                self.join_chain = None;
                self.transfer_joins(f);
            }
            Pending::LinksDue => self.links_due(),
        }
    }

    /// Whether a request may still be issued at `at` under the stop rule
    /// (applied to every request, turns included, as one engine does).
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
                // One arrival is pending at a time: beside the heap, it
                // costs no sifts (the order is the same).
                self.events
                    .push_aside(at.max(self.now), Pending::Arrival(lengths));
            }
            _ => self.issuing_done = true,
        }
    }

    /// A new request from outside: a single request, or the first turn of a
    /// session. Every draw of the conversation's own that comes from the
    /// shared streams happens here, in start order.
    fn start_conversation(&mut self, lengths: Lengths, user: u32) {
        let conversation = Conversation {
            key: 0,
            turn: 0,
            history: 0,
            turns_left: 0,
            user,
            replay: lengths.conversation,
            home: NONE,
            user_think: self.traffic.think_time(),
            rng: None,
        };
        if !self.sessions_on {
            // An open-loop request has nothing to follow it.
            let c = if user == NONE {
                NONE
            } else {
                self.open(conversation)
            };
            let content = request_content(None, lengths.prefix);
            self.send(lengths, c, None, 1, content);
            return;
        }
        let turns = self.traffic.turns_of(&lengths).max(1);
        let n = self.sessions_started;
        self.sessions_started += 1;
        let c = self.open(Conversation {
            key: SESSION_KEY_BASE | n,
            turns_left: turns - 1,
            rng: Some(session_rng(self.seed, n)),
            ..conversation
        });
        self.send_turn(c, lengths);
    }

    /// A conversation slot holding `conversation`.
    fn open(&mut self, conversation: Conversation) -> u32 {
        match self.free.pop() {
            Some(c) => {
                self.conversations[c as usize] = conversation;
                c
            }
            None => {
                self.conversations.push(conversation);
                (self.conversations.len() - 1) as u32
            }
        }
    }

    /// A session's next turn: the new message follows the whole conversation.
    fn next_turn(&mut self, c: u32) {
        if !self.may_issue(self.now) {
            self.end_conversation(c, self.now, None);
            return;
        }
        let s = &mut self.conversations[c as usize];
        let Some(rng) = s.rng.as_mut() else {
            invariant_violated!("a next turn outside a session");
            return;
        };
        // The new message only: the system prompt, if any, is already in the
        // history.
        let mut lengths = if s.replay == Lengths::NO_CONVERSATION {
            self.traffic.next_message_from(rng)
        } else {
            self.traffic.conversation_turn_from(s.replay, s.turn, rng)
        };
        s.turns_left -= 1;
        lengths.prompt = lengths.prompt.saturating_add(s.history);
        self.send_turn(c, lengths);
    }

    /// Sends session `c`'s next turn, of `lengths`.
    fn send_turn(&mut self, c: u32, lengths: Lengths) {
        let s = &mut self.conversations[c as usize];
        s.turn += 1;
        let content = request_content(Some((s.key, s.history)), lengths.prefix);
        let (number, turn) = (s.key & !SESSION_KEY_BASE, s.turn);
        self.send(lengths, c, Some(number), turn, content);
    }

    /// Routes a request of conversation `c` (`NONE`: nothing follows it)
    /// and hands it to the chosen replica, arriving now.
    fn send(
        &mut self,
        lengths: Lengths,
        c: u32,
        session: Option<u64>,
        turn: u32,
        content: Option<Content>,
    ) {
        if self.pools.is_some() {
            self.send_disagg(lengths, c, session, turn, content);
            return;
        }
        let home = match c {
            NONE => NONE,
            c => self.conversations[c as usize].home,
        };
        let request = Request {
            at: self.now,
            lengths: &lengths,
            content,
            home: (home != NONE).then_some(home as usize),
        };
        let r = self.router.pick(&self.replicas, &request);
        if c != NONE {
            self.conversations[c as usize].home = r as u32;
        }
        let e = &mut self.replicas[r];
        e.inject(
            self.now,
            Routed {
                lengths,
                content,
                session,
                turn,
                conversation: c,
                received: NONE,
            },
        );
        self.next.set(r, e.events.peek_time());
        if !self.streamed {
            self.replica_of_request.push(r as u32);
        }
        self.issued += 1;
    }

    /// A replica reports that a request of a conversation ended: its session
    /// sends the next turn after a think time, or it ends.
    pub(super) fn turn_done(&mut self, d: TurnDone) {
        let s = &mut self.conversations[d.conversation as usize];
        if d.outcome == Outcome::Ok && s.turns_left > 0 && !self.issuing_done {
            s.history = d.context;
            let think = match s.rng.as_mut() {
                Some(rng) => self.traffic.session_think_from(rng),
                None => SimDuration::ZERO,
            };
            self.events
                .push(d.at + think, Pending::NextTurn(d.conversation));
        } else {
            self.end_conversation(d.conversation, d.at, d.back);
        }
    }

    /// Conversation `c` is over at `at`; its closed-loop user thinks, then
    /// sends the next request, not before `back` (when the replica that
    /// failed its last request in a crash is back: a crash does not turn
    /// into a storm of refused requests).
    fn end_conversation(&mut self, c: u32, at: SimTime, back: Option<SimTime>) {
        let s = &self.conversations[c as usize];
        let (user, think) = (s.user, s.user_think);
        self.free.push(c);
        if user != NONE {
            let ready = (at + think).max(back.unwrap_or(SimTime::ZERO));
            self.events.push(ready, Pending::UserReady(user));
        }
    }
}

/// Simulates `scenario` on its `hardware.replicas` replicas behind its router.
pub(super) fn simulate_cluster<C: CostModel + Clone>(
    scenario: &Scenario,
    seed: u64,
    cost: C,
    limits: &Limits,
    mode: super::RunMode,
) -> Result<RunOutput, Stopped> {
    let disagg = scenario.disagg.as_deref();
    let streamed = super::streams(scenario);
    // A disaggregated deployment's prefill replicas come first.
    let np = disagg.map_or(0, |g| g.prefill.deployment.replicas.max(1) as usize);
    let count = np + scenario.deployment.replicas.max(1) as usize;
    let p_cost = disagg.map(|g| cost.for_deployment(&g.prefill.model, &g.prefill.deployment));
    let replicas: Vec<Engine<'_, C>> = (0..count)
        .map(|r| {
            let (pool, cost, role) = match (disagg, &p_cost) {
                (Some(g), Some(c)) if r < np => (&g.prefill, c.clone(), Role::Prefill),
                (Some(_), _) => (scenario, cost.clone(), Role::Decode),
                (None, _) => (scenario, cost.clone(), Role::Colocated),
            };
            let cache = super::build_cache(pool);
            // A replica's own draws (sample lengths of forks) come from a
            // stream of its own; the arrivals below are the cluster's.
            let traffic = pool.traffic.instantiate(replica_seed(seed, r));
            let mut e = Engine::new(pool, cache, cost, traffic);
            e.fed = true;
            e.role = role;
            // A pool's requests spread over its replicas (a router that
            // favours one makes its tables double once).
            let pool_size = if r < np { np } else { count - np };
            e.prepare(
                mode,
                limits,
                streamed,
                super::presized(scenario).div_ceil(pool_size),
            );
            e
        })
        .collect();
    // One remote tier for the whole deployment: every replica stores into
    // and loads from the same one (its capacity and media bandwidth are the
    // deployment's), each through its own NIC.
    let remote = super::tiers::shared_remote(scenario);
    let mut replicas = replicas;
    if let Some(remote) = &remote {
        for e in &mut replicas {
            if let Some(t) = e.tiers.as_mut() {
                t.share_remote(std::rc::Rc::clone(remote));
            }
        }
    }
    let d = &scenario.deployment;
    let traffic = scenario.traffic.instantiate(seed);
    let reach = Reach::of(scenario, &traffic, remote.is_some());
    let mut cluster = Cluster {
        scenario,
        seed,
        replicas,
        next: NextEvents::new(count),
        traffic,
        sessions_on: scenario.traffic.session(),
        reach,
        now: SimTime::ZERO,
        events: EventQueue::default(),
        // A disaggregated deployment's cluster router is its prefill pool's.
        router: RouterState::of(disagg.map_or(d, |g| &g.prefill.deployment)),
        conversations: Vec::new(),
        free: Vec::new(),
        sessions_started: 0,
        issued: 0,
        issuing_done: false,
        replica_of_request: Vec::with_capacity(if streamed {
            0
        } else {
            super::presized(scenario)
        }),
        ended: Vec::new(),
        join_chain: None,
        streamed,
        pools: disagg.map(|g| Box::new(super::disagg::Pools::new(scenario, g, RouterState::of(d)))),
    };
    cluster.run()?;
    let Cluster {
        mut replicas,
        replica_of_request,
        pools,
        ..
    } = cluster;
    for e in &mut replicas {
        beyond_horizon(e.now.max(e.last_end))?;
        e.finish_run();
    }
    let end = replicas
        .iter()
        .map(|e| e.last_end)
        .max()
        .unwrap_or(SimTime::ZERO);
    if let Some(pools) = pools {
        return Ok(pools::finish(
            scenario,
            replicas,
            replica_of_request,
            &pools,
            end,
            mode.replicas,
        ));
    }
    if streamed {
        return Ok(finish_streamed(
            scenario,
            replicas,
            remote.as_deref(),
            end,
            mode.replicas,
        ));
    }
    // Records in global issue order: the k-th request is the next record of
    // the replica it was routed to (a replica issues its requests in the
    // order they were routed to it).
    let mut cursors = vec![0usize; count];
    let mut records: Vec<RequestRecord> = Vec::with_capacity(replica_of_request.len());
    for (k, &r) in replica_of_request.iter().enumerate() {
        let r = r as usize;
        let mut rec = replicas[r].records[cursors[r]];
        cursors[r] += 1;
        rec.id = k as u64;
        records.push(rec);
    }
    let summaries: Vec<_> = replicas
        .iter()
        .filter(|_| mode.replicas)
        .map(|e| summarize(scenario, &e.records, &e.stats, end))
        .collect();
    let (timeline, replica_of_row) = timelines(&mut replicas);
    let stats = merged_stats(&replicas, remote.as_deref(), end);
    let summary = summarize(scenario, &records, &stats, end);
    Ok(RunOutput {
        records,
        timeline,
        summary,
        stats,
        cluster: Some(ClusterOutput {
            replica_of_request,
            replica_of_row,
            replicas: summaries,
            flights: None,
        }),
        streamed: false,
    })
}

/// The replicas' timelines, one after the other, and the replica of each
/// row.
fn timelines<C>(replicas: &mut [Engine<'_, C>]) -> (Vec<TimelineRow>, Vec<u32>) {
    let mut timeline = Vec::new();
    let mut replica_of_row = Vec::new();
    for (r, e) in replicas.iter_mut().enumerate() {
        replica_of_row.extend(std::iter::repeat_n(r as u32, e.timeline.len()));
        timeline.append(&mut e.timeline.take_rows());
    }
    (timeline, replica_of_row)
}

/// The replicas' step statistics merged; the shared remote tier is the
/// deployment's: its evictions and contents are counted once, here (each
/// replica counted its own stores and loads).
fn merged_stats<C>(
    replicas: &[Engine<'_, C>],
    remote: Option<&std::cell::RefCell<super::tiers::SharedRemote>>,
    end: SimTime,
) -> Collector {
    let mut stats = Collector::merge_replicas(
        &replicas.iter().map(|e| e.stats.clone()).collect::<Vec<_>>(),
        end,
    );
    if let Some(remote) = remote {
        let r = remote.borrow();
        let i = crate::cache::tiers::TierKind::Remote.index();
        stats.tiers.evicted_blocks[i] = r.store.counters.evicted_blocks;
        stats.tiers.resident_blocks[i] = r.store.resident();
        invariant!(
            r.store.check().is_ok(),
            "remote tier: {:?}",
            r.store.check()
        );
    }
    stats
}

/// The output of a colocated cluster in streaming mode: each replica's
/// summary from its own stream (with `per_replica`), the deployment's from
/// their merge; `end` is when the last replica stopped.
fn finish_streamed<C>(
    scenario: &Scenario,
    mut replicas: Vec<Engine<'_, C>>,
    remote: Option<&std::cell::RefCell<super::tiers::SharedRemote>>,
    end: SimTime,
    per_replica: bool,
) -> RunOutput {
    let mut all = RecordStream::default();
    let mut summaries = Vec::with_capacity(replicas.len());
    for e in &replicas {
        let s = e.stream.as_deref().expect("every replica streams");
        all.merge(s);
        if per_replica {
            summaries.push(summary_of(
                scenario,
                s.totals(),
                &s.latencies(),
                &e.stats,
                end,
            ));
        }
    }
    let (timeline, replica_of_row) = timelines(&mut replicas);
    let stats = merged_stats(&replicas, remote, end);
    let summary = summary_of(scenario, all.totals(), &all.latencies(), &stats, end);
    RunOutput {
        records: Vec::new(),
        timeline,
        summary,
        stats,
        cluster: Some(ClusterOutput {
            replica_of_request: Vec::new(),
            replica_of_row,
            replicas: summaries,
            flights: None,
        }),
        streamed: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_events_finds_the_earliest_and_breaks_ties_by_index() {
        let mut n = NextEvents::new(5);
        assert_eq!(n.first(), None);
        let t = SimTime::from_nanos;
        n.set(3, Some(t(7)));
        n.set(1, Some(t(9)));
        assert_eq!(n.first(), Some((t(7), 3)));
        n.set(4, Some(t(7)));
        assert_eq!(n.first(), Some((t(7), 3)), "ties go to the lowest index");
        n.set(0, Some(t(7)));
        assert_eq!(n.first(), Some((t(7), 0)));
        n.set(0, None);
        n.set(3, Some(SimTime::MAX));
        assert_eq!(n.first(), Some((t(7), 4)));
        n.set(4, None);
        assert_eq!(n.first(), Some((t(9), 1)));
        n.set(1, None);
        assert_eq!(n.first(), Some((SimTime::MAX, 3)));
        n.set(3, None);
        assert_eq!(n.first(), None);
    }

    /// `first_in` is the minimum over its range, and `first_besides` over
    /// every other replica, whatever the replica count (leaves past the
    /// last replica hold no event).
    #[test]
    fn next_events_finds_the_earliest_of_a_range() {
        for count in 1..=9 {
            let mut n = NextEvents::new(count);
            // Distinct times, some replicas with none.
            let at = |r: usize| (r % 4 != 2).then(|| SimTime::from_nanos(((r * 7) % 11) as u64));
            for r in 0..count {
                n.set(r, at(r));
            }
            let min = |rs: &mut dyn Iterator<Item = usize>| {
                rs.filter_map(at).min().unwrap_or(SimTime::MAX)
            };
            for lo in 0..=count {
                for hi in lo..=count + 2 {
                    let want = min(&mut (lo..hi.min(count)));
                    assert_eq!(n.first_in(lo, hi), want, "{count} replicas, {lo}..{hi}");
                }
                assert_eq!(n.first_in(lo, usize::MAX), min(&mut (lo..count)));
            }
            for r in 0..count {
                let want = min(&mut (0..count).filter(|&q| q != r));
                assert_eq!(n.first_besides(r), want, "{count} replicas, besides {r}");
            }
        }
    }
}
