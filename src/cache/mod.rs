//! KV cache policies: where every token's keys and values live.
//!
//! A policy implements [`KvCache`]. The engine never looks inside one: it admits
//! sequences, grows them one step at a time, releases them, and reads the
//! [`MemoryUsage`] counters. Policies are built from a validated [`CacheConfig`],
//! whose four presets (`contiguous`, `paged`, `sliding`, `quantized`) are
//! shorthands for orthogonal knobs: placement, block size, window and `kv_dtype`.

mod contiguous;
mod ident_map;
mod lru;
mod paged;
pub mod tiers;

pub use contiguous::ContiguousCache;
pub use paged::{BlockNamer, IdentHasher, PagedCache, peak_blocks};

/// The name of a KV block: `(content key, block index)`, or a hash-id
/// chain's node and the block's place within it (see [`BlockNamer`]).
pub type BlockIdent = (u64, u32);

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{Dtype, Span};

/// Identifies a sequence inside a cache: a small dense slot number that the
/// engine recycles, so per-sequence tables stay as small as the batch.
pub type SeqId = u32;

/// What a cache needs to know to place a new sequence.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SeqInfo {
    /// The slot this sequence will be known by until released.
    pub id: SeqId,
    /// Tokens whose KV must be stored now (the prompt, or prompt plus generated
    /// tokens when a preempted sequence is recomputed).
    pub tokens: u32,
    /// Tokens of capacity to hold for this sequence from admission on
    /// (`>= tokens`). Equal to `tokens` under optimistic admission; the
    /// contiguous reservation (`max-tokens`, `pow2`, ...) under reserve admission.
    pub reserve: u32,
    /// What the tokens are, for prefix caching (`None`: unique content).
    pub content: Option<Content>,
}

/// The identity of a sequence's leading tokens, for prefix caching.
///
/// Sequences with the same `key` agree on their leading tokens: a shared system
/// prompt (`key` names the prompt, `lineage` = `reusable` = its length), or a
/// multi-turn conversation (`key` names the session; every turn's context is a
/// prefix of the next turn's, so `lineage` is all its tokens and `reusable` the
/// history it carries).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Content {
    /// Which shared content this is.
    pub key: u64,
    /// Leading tokens that may be served from cached blocks of `key`.
    pub reusable: u32,
    /// Leading tokens that belong to `key`: full blocks within them are
    /// published for later sequences when they are stored. (A simplification:
    /// vLLM caches a block once it is computed, so a sequence admitted in the
    /// same step as another with the same prefix could not yet hit it; kvsim
    /// lets it, which matters only for simultaneous arrivals.)
    pub lineage: u32,
}

/// The bit that marks a [`Content::key`] naming a hash-id chain of
/// [`BlockChains`] (the rest of the key is the chain's offset in the table)
/// rather than one whole shared content. Shared system prompts use keys below
/// 2^32 and sessions set bit 63, so the three never meet.
pub const CHAIN_KEY: u64 = 1 << 62;

impl Content {
    /// The content of a request whose first `tokens` tokens are the trace
    /// blocks of the hash-id chain at `offset` in the run's [`BlockChains`]:
    /// cache block `j` is then named by the chain's node for trace block
    /// `j * block_size / block_tokens` (see [`BlockChains`]), not by the
    /// request, so requests share exactly the blocks the trace says they do.
    pub fn chain(offset: u32, tokens: u32) -> Content {
        Content {
            key: CHAIN_KEY | u64::from(offset),
            reusable: tokens,
            lineage: tokens,
        }
    }
}

/// The block identities of a trace whose requests list hash ids of their
/// prompt's blocks (the Mooncake traces, `docs/traces.md`).
///
/// Every request's hash ids are one chain; the table holds, for each trace
/// block of each kept request, the node of the prefix tree of all chains that
/// ends at it, so two requests' k-th blocks have the same node exactly when
/// their hash ids agree at positions `0..=k` (for Mooncake's prefix-chained ids,
/// exactly when the k-th ids agree). A request's [`Content::chain`] points at
/// its first entry; the paged cache names its cache block `j` by the node of
/// trace block `j * block_size / block_tokens` and the block's place within
/// it. Built once per trace and shared (an `Arc`) by every run's cache.
#[derive(Clone, PartialEq, Eq)]
pub struct BlockChains {
    nodes: Arc<[u32]>,
    block_tokens: u32,
}

impl BlockChains {
    /// The table: `nodes` concatenated per request, each naming
    /// `block_tokens` tokens (>= 1).
    pub fn new(nodes: Vec<u32>, block_tokens: u32) -> Self {
        BlockChains {
            nodes: Arc::from(nodes),
            block_tokens: block_tokens.max(1),
        }
    }

    /// Tokens each hash id names (`traffic.arrival.trace_block_tokens`).
    pub fn block_tokens(&self) -> u32 {
        self.block_tokens
    }

    /// The node at `at` of the table.
    #[inline]
    pub fn node(&self, at: usize) -> u32 {
        self.nodes[at]
    }

    /// Entries in the table.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

impl fmt::Debug for BlockChains {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BlockChains {{ {} blocks of {} tokens }}",
            self.nodes.len(),
            self.block_tokens
        )
    }
}

/// What [`KvCache::admit`] found.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Admitted {
    /// Leading tokens whose KV was already cached (whole blocks, never all of
    /// the sequence's tokens: at least one token is always computed, as vLLM).
    pub cached_tokens: u32,
}

/// The leading blocks of a content a cache could serve from its prefix
/// cache ([`KvCache::cached_prefix`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CachedPrefix {
    /// Leading whole blocks published (held by a live sequence or cached).
    pub blocks: u64,
    /// Of those, the ones live sequences hold: a sequence admitted with the
    /// content shares them, so they add nothing to what the cache holds.
    pub held: u64,
}

/// Not enough free KV memory for the request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NoRoom;

/// Memory counters of a cache at one instant, in bytes.
///
/// `allocated = stored + slack` and `allocated + free = budget`. `slack` is
/// memory held by sequences that no token occupies (yet): the unfilled tail of a
/// contiguous reservation or of the last block. Shared blocks count once.
/// Cached blocks that no live sequence references (prefix caching) are part of
/// `free`: they are evicted, least recently used first, when space is needed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemoryUsage {
    /// The KV budget the cache manages.
    pub budget: u64,
    /// Bytes held by live sequences (stored tokens plus slack).
    pub allocated: u64,
    /// Bytes holding the KV of actual tokens.
    pub stored: u64,
    /// Bytes not held by any sequence. Under a contiguous policy some of it may
    /// be unusable for a given request (external fragmentation).
    pub free: u64,
    /// Of `free`, bytes of cached blocks kept for prefix reuse.
    pub cached: u64,
}

impl MemoryUsage {
    /// Counters for a cache of `budget` bytes with `allocated` held by
    /// sequences, `stored` of which hold tokens; `free` is the rest.
    pub fn new(budget: u64, allocated: u64, stored: u64) -> Self {
        invariant!(
            stored <= allocated && allocated <= budget,
            "KV usage out of bounds: {stored} stored, {allocated} allocated, budget {budget}"
        );
        MemoryUsage {
            budget,
            allocated,
            stored,
            free: budget - allocated,
            cached: 0,
        }
    }
}

/// A KV cache policy.
///
/// All methods must be O(1) or O(log n) in the number of live sequences (the
/// straightforward engine calls `grow` for every running sequence on every
/// step, and `usage` after every step), and must not allocate per token.
pub trait KvCache: Send {
    /// Tries to place a new sequence: stores `seq.tokens` and holds capacity for
    /// `seq.reserve` tokens. With prefix caching, leading whole blocks of
    /// `seq.content` already cached are shared instead of allocated, and
    /// reported in [`Admitted::cached_tokens`]. On `Err` nothing changes.
    fn admit(&mut self, seq: &SeqInfo) -> Result<Admitted, NoRoom>;

    /// Makes room for `n` more tokens of a live sequence. On `Err` nothing changes.
    fn grow(&mut self, seq: SeqId, n: u32) -> Result<(), NoRoom>;

    /// Makes `child` (a free slot) a copy of live sequence `parent` for
    /// parallel sampling: full blocks are shared (reference counted), a partial
    /// last block is copied (copy-on-write), so the child costs at most one
    /// block until it grows. Placements that cannot share (contiguous) copy the
    /// whole region. On `Err` nothing changes.
    fn fork(&mut self, parent: SeqId, child: SeqId) -> Result<(), NoRoom>;

    /// Frees everything a live sequence holds (shared blocks when their last
    /// holder goes; published blocks stay cached until evicted). The slot may
    /// be reused afterwards.
    fn release(&mut self, seq: SeqId);

    /// Frees every sequence and every cached block at once (the server died).
    fn reset(&mut self);

    /// Bytes of KV this sequence's attention reads in a decode step: its kept
    /// tokens in each layer group (at most the group's window).
    fn attended_bytes(&self, seq: SeqId) -> u64;

    /// Bytes of capacity this sequence holds: its blocks (shared ones
    /// included) or its contiguous region, whether tokens fill them or not.
    fn held_bytes(&self, seq: SeqId) -> u64;

    /// Bytes of [`KvCache::held_bytes`] the allocator added beyond what the
    /// sequence's capacity needs (a buddy allocator's rounding to a power of
    /// two): held, never usable by anyone. The PagedAttention paper counts it
    /// as external fragmentation, and so does the waste breakdown. 0 unless
    /// the allocator rounds.
    fn allocator_slack_bytes(&self, _seq: SeqId) -> u64 {
        0
    }

    /// Whether a sequence like `seq` could be admitted into an empty cache. A
    /// request for which this is false is unservable.
    fn fits_when_empty(&self, seq: &SeqInfo) -> bool;

    /// Free bytes that cannot serve `seq` because they lie in pieces too small
    /// for it (external fragmentation): the total of holes smaller than what
    /// `seq` needs for a contiguous placement; always 0 for paged placement.
    fn unusable_free_bytes(&self, seq: &SeqInfo) -> u64;

    /// The current memory counters.
    fn usage(&self) -> MemoryUsage;

    /// How sequences are laid out (layer groups, windows, block size).
    fn layout(&self) -> &KvLayout;

    /// Leading whole blocks of `content` this cache could serve from its
    /// prefix cache right now ([`PagedCache::leading_published_blocks`]),
    /// without changing anything: what a cache-aware router credits. None
    /// for placements without prefix caching.
    fn cached_prefix(&self, _content: &Content) -> CachedPrefix {
        CachedPrefix::default()
    }

    /// The paged cache behind this policy, if it is one: the engine's fast
    /// path defers decode growth to it ([`PagedCache::defer`]).
    fn as_paged_mut(&mut self) -> Option<&mut PagedCache> {
        None
    }

    /// [`KvCache::as_paged_mut`], read only.
    fn as_paged(&self) -> Option<&PagedCache> {
        None
    }

    /// The contiguous cache behind this policy, if it is one: the engine's
    /// fast path grows regions in place lazily
    /// ([`ContiguousCache::defer`]).
    fn as_contiguous_mut(&mut self) -> Option<&mut ContiguousCache> {
        None
    }

    /// [`KvCache::as_contiguous_mut`], read only.
    fn as_contiguous(&self) -> Option<&ContiguousCache> {
        None
    }
}

/// The most layer groups a layout has. Real models have one to three
/// (full + sliding; full + recurrent; full + chunked); a scenario may declare
/// up to this many (`model.groups`), and groups that keep the same tokens in
/// the same way are merged before counting.
pub const MAX_LAYER_GROUPS: usize = 4;

/// Layers that keep the same tokens (all, the last `W`, or the current chunk),
/// or a recurrent state per sequence.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KvGroup {
    /// Exact KV bytes per token of this group's layers (0: a recurrent or
    /// empty group).
    pub bytes_per_token: u64,
    /// Tokens the group keeps and attends to.
    pub span: Span,
    /// Layers in the group.
    pub layers: u32,
    /// Bytes each sequence holds whatever its length (recurrent state), all
    /// the group's layers.
    pub state_bytes: u64,
    /// Attention FLOPs per query-key pair per layer: `4 * heads * head_dim`
    /// (QK^T and PV, 2 FLOPs per multiply-add); 0 for recurrent layers,
    /// whose work is in the linear layers.
    pub flops_per_pair: u64,
}

impl KvGroup {
    /// Tokens of a `context`-token sequence this group keeps.
    #[inline]
    pub fn kept_tokens(&self, context: u32) -> u32 {
        self.span.kept(context)
    }

    /// Bytes a `context`-token sequence holds in this group.
    #[inline]
    pub fn kept_bytes(&self, context: u32) -> u64 {
        u64::from(self.span.kept(context)) * self.bytes_per_token + self.state_at(context)
    }

    /// The recurrent state a `context`-token sequence holds: all of it from
    /// the first token on, none before.
    #[inline]
    pub fn state_at(&self, context: u32) -> u64 {
        if context > 0 { self.state_bytes } else { 0 }
    }

    /// Whether the group holds nothing.
    pub fn is_empty(&self) -> bool {
        self.bytes_per_token == 0 && self.state_bytes == 0
    }
}

/// The per-token geometry a cache works with; shared by every policy.
///
/// Models whose layers differ (gemma-3's sliding and global layers, Llama-4's
/// chunked ones, a hybrid model's recurrent ones) have one group per kind:
/// memory, attention reads and attention FLOPs are accounted per group, so
/// none is over- or under-counted. A uniform model has one group.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KvLayout {
    /// The groups; only the first `len` are used.
    #[serde(serialize_with = "serialize_groups")]
    groups: [KvGroup; MAX_LAYER_GROUPS],
    /// Groups in use.
    #[serde(skip)]
    len: u8,
    /// Tokens per block (1 for contiguous placement).
    pub block_size: u32,
    /// The cache's element format.
    pub kv_dtype: Dtype,
}

fn serialize_groups<S: serde::Serializer>(
    groups: &[KvGroup; MAX_LAYER_GROUPS],
    s: S,
) -> Result<S::Ok, S::Error> {
    let used = groups
        .iter()
        .position(KvGroup::is_empty)
        .unwrap_or(groups.len());
    s.collect_seq(&groups[..used])
}

impl KvLayout {
    /// A layout of `groups` (at most [`MAX_LAYER_GROUPS`]; empty ones are
    /// dropped).
    ///
    /// # Panics
    /// With more than [`MAX_LAYER_GROUPS`] non-empty groups (the scenario
    /// loader refuses such a model first).
    pub fn new(groups: &[KvGroup], block_size: u32, kv_dtype: Dtype) -> Self {
        let mut out = KvLayout {
            groups: [KvGroup::default(); MAX_LAYER_GROUPS],
            len: 0,
            block_size,
            kv_dtype,
        };
        for g in groups.iter().filter(|g| !g.is_empty()) {
            assert!(
                usize::from(out.len) < MAX_LAYER_GROUPS,
                "at most {MAX_LAYER_GROUPS} layer groups"
            );
            out.groups[usize::from(out.len)] = *g;
            out.len += 1;
        }
        out
    }

    /// A layout whose every layer keeps the same tokens (`layers` of them).
    pub fn uniform(
        bytes_per_token: u64,
        window: Option<u32>,
        layers: u32,
        block_size: u32,
        kv_dtype: Dtype,
    ) -> Self {
        KvLayout::new(
            &[KvGroup {
                bytes_per_token,
                span: window.map_or(Span::All, Span::Window),
                layers,
                state_bytes: 0,
                flops_per_pair: 0,
            }],
            block_size,
            kv_dtype,
        )
    }

    /// The layer groups (none empty).
    #[inline]
    pub fn groups(&self) -> &[KvGroup] {
        &self.groups[..usize::from(self.len)]
    }

    /// Exact KV bytes per token over all layers.
    pub fn bytes_per_token(&self) -> u64 {
        self.groups().iter().map(|g| g.bytes_per_token).sum()
    }

    /// Bytes of one block of `block_size` tokens over all layers (what a KV
    /// tier below HBM stores per block).
    pub fn block_bytes(&self) -> u64 {
        u64::from(self.block_size) * self.bytes_per_token()
    }

    /// Bytes of recurrent state per sequence over all layers.
    pub fn state_bytes(&self) -> u64 {
        self.groups().iter().map(|g| g.state_bytes).sum()
    }

    /// Whether any group keeps fewer than all tokens (a window or a chunk).
    pub fn has_window(&self) -> bool {
        self.groups()
            .iter()
            .any(|g| g.bytes_per_token > 0 && !g.span.is_all())
    }

    /// Whether a sequence's bytes are `tokens * bytes_per_token`: every group
    /// keeps every token and none holds a state.
    pub fn is_linear(&self) -> bool {
        !self.has_window() && self.state_bytes() == 0
    }

    /// Bytes a `context`-token sequence keeps (and its attention reads in one
    /// step): each group's kept tokens times its bytes per token, plus its
    /// recurrent state.
    #[inline]
    pub fn kept_bytes(&self, context: u32) -> u64 {
        self.groups().iter().map(|g| g.kept_bytes(context)).sum()
    }

    /// [`KvLayout::kept_bytes`], or `None` if it overflows 64 bits (for
    /// lengths from a command line, which no scenario has bounded).
    pub fn checked_kept_bytes(&self, context: u32) -> Option<u64> {
        self.groups().iter().try_fold(0u64, |acc, g| {
            let kept = u64::from(g.span.kept(context)).checked_mul(g.bytes_per_token)?;
            acc.checked_add(kept)?.checked_add(g.state_at(context))
        })
    }

    /// The most bytes a sequence keeps at any length up to `context` (a
    /// chunked group's kept tokens fall at every chunk boundary, so its peak
    /// is `min(context, C)`, not what it keeps at `context`).
    #[inline]
    pub fn peak_bytes(&self, context: u32) -> u64 {
        self.groups()
            .iter()
            .map(|g| u64::from(g.span.peak(context)) * g.bytes_per_token + g.state_at(context))
            .sum()
    }

    /// Bytes of KV a `context`-token sequence's attention reads in one step
    /// (a recurrent layer reads its state).
    #[inline]
    pub fn attended_bytes(&self, context: u32) -> u64 {
        self.kept_bytes(context)
    }

    /// Attention FLOPs of appending `k` tokens to a sequence of `p`, summed
    /// over layers: each group scores its own span (saturating: it is a
    /// price, and absurd shapes must not wrap).
    pub fn attention_flops(&self, p: u32, k: u32) -> u64 {
        self.groups()
            .iter()
            .map(|g| {
                crate::scheduler::attention_pairs(p, k, g.span)
                    .saturating_mul(u64::from(g.layers))
                    .saturating_mul(g.flops_per_pair)
            })
            .fold(0, u64::saturating_add)
    }
}

/// The four policy presets (docs/ARCHITECTURE.md#cache-policies).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyName {
    /// One contiguous region per sequence, first-fit in a linear address space.
    Contiguous,
    /// Fixed-size blocks allocated on demand (vLLM's PagedAttention).
    Paged,
    /// Paged, keeping only the last `window` tokens.
    Sliding,
    /// Paged with a quantized `kv_dtype` (fp8 unless set).
    Quantized,
}

impl PolicyName {
    /// The name used in scenario files and CSV columns.
    pub const fn name(self) -> &'static str {
        match self {
            PolicyName::Contiguous => "contiguous",
            PolicyName::Paged => "paged",
            PolicyName::Sliding => "sliding",
            PolicyName::Quantized => "quantized",
        }
    }
}

/// How much a contiguous allocator reserves at admission
/// (docs/ARCHITECTURE.md#cache-policies; the Orca baselines of the PagedAttention paper, Kwon et al. SOSP 2023).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reserve {
    /// Prompt plus the request's `max_tokens` output cap.
    MaxTokens,
    /// The model's whole context length (Orca Max).
    MaxModelLen,
    /// The true final length rounded up to a power of two.
    Pow2,
    /// The prompt plus the true output length rounded up to a power of two:
    /// the PagedAttention paper's Orca (Pow2), which "over-reserves the space
    /// for outputs by at most 2x" ("if the true output length is 25, it
    /// reserves 32 positions for outputs"; Kwon et al., SOSP 2023, sec. 6.1).
    Pow2Output,
    /// Exactly the true final length (Orca Oracle).
    Oracle,
}

impl Reserve {
    /// The name used in scenario files.
    pub const fn name(self) -> &'static str {
        match self {
            Reserve::MaxTokens => "max-tokens",
            Reserve::MaxModelLen => "max-model-len",
            Reserve::Pow2 => "pow2",
            Reserve::Pow2Output => "pow2-output",
            Reserve::Oracle => "oracle",
        }
    }

    /// Tokens to reserve for a request with a `prompt`-token prompt, an output
    /// cap of `max_tokens` and a true KV footprint of `final_tokens` (prompt plus
    /// output minus one: the last output token's KV is never written), never
    /// more than `max_model_len` and never less than the prompt.
    pub fn tokens(
        self,
        prompt: u32,
        max_tokens: u32,
        final_tokens: u32,
        max_model_len: u32,
    ) -> u32 {
        let want = match self {
            Reserve::MaxTokens => prompt.saturating_add(max_tokens).saturating_sub(1),
            Reserve::MaxModelLen => max_model_len,
            Reserve::Pow2 => final_tokens.checked_next_power_of_two().unwrap_or(u32::MAX),
            Reserve::Pow2Output => {
                // The last output token's KV is never written, as for Oracle.
                let output = final_tokens.saturating_sub(prompt).saturating_add(1);
                let slots = output.checked_next_power_of_two().unwrap_or(u32::MAX);
                prompt.saturating_add(slots).saturating_sub(1)
            }
            Reserve::Oracle => final_tokens,
        };
        want.min(max_model_len).max(prompt)
    }
}

/// How a contiguous placement carves regions out of its address space.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Allocator {
    /// The lowest-addressed free hole big enough, exactly as big as needed;
    /// freed space coalesces with every free neighbour.
    #[default]
    FirstFit,
    /// A binary buddy system: power-of-two blocks aligned to their size,
    /// merging only with their buddies (the PagedAttention paper's Orca
    /// baselines).
    Buddy,
}

impl Allocator {
    /// The name used in scenario files.
    pub const fn name(self) -> &'static str {
        match self {
            Allocator::FirstFit => "first-fit",
            Allocator::Buddy => "buddy",
        }
    }
}

/// Where sequences are placed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Placement {
    /// A linear address space of token slots, first-fit.
    Contiguous,
    /// Fixed blocks of `block_size` tokens.
    Paged {
        /// Tokens per block.
        block_size: u32,
    },
}

/// A validated cache configuration: the preset resolved into its knobs.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct CacheConfig {
    /// The preset this configuration came from (reported in outputs).
    pub policy: PolicyName,
    /// Contiguous or paged placement.
    pub placement: Placement,
    /// Reservation rule used under `reserve` admission.
    pub reserve: Reserve,
    /// How contiguous regions are allocated (not used by paged placement).
    pub allocator: Allocator,
    /// Tokens kept per sequence in every layer, if windowed (the `sliding`
    /// policy); a model's own window on some layers is in its [`KvLayout`].
    pub window: Option<u32>,
    /// Element format of the cache.
    pub kv_dtype: Dtype,
    /// Whether full blocks of identical prefixes are shared (paged only).
    pub prefix_caching: bool,
}

impl CacheConfig {
    /// Builds the policy over `budget_bytes` of KV memory laid out as `layout`
    /// (whose block size this configuration's placement overrides).
    pub fn build(&self, budget_bytes: u64, layout: KvLayout) -> Box<dyn KvCache> {
        match self.placement {
            Placement::Contiguous => Box::new(ContiguousCache::new(
                budget_bytes,
                KvLayout {
                    block_size: 1,
                    ..layout
                },
                self.allocator,
            )),
            Placement::Paged { block_size } => Box::new(PagedCache::new(
                budget_bytes,
                KvLayout {
                    block_size,
                    ..layout
                },
                self.prefix_caching,
            )),
        }
    }

    /// Bytes a sequence whose final KV footprint is `tokens` holds at its peak
    /// under this placement and `layout` (blocks rounded up, windows applied per
    /// layer group), given its contiguous reservation `reserved` (ignored by
    /// paged placement).
    /// A buddy allocator's rounding to a power of two is included.
    pub fn footprint_bytes(&self, layout: &KvLayout, tokens: u32, reserved: u32) -> u64 {
        match self.placement {
            Placement::Contiguous => {
                ContiguousCache::region_bytes(layout, self.allocator, reserved.max(tokens))
            }
            Placement::Paged { block_size } => paged_peak_bytes(layout, block_size, tokens)
                .expect("validated shapes keep a sequence's bytes within 64 bits"),
        }
    }
}

/// The bytes a `tokens`-token sequence holds in a paged cache of
/// `block_size`-token blocks laid out as `layout`, with no reservation ahead:
/// per group, the blocks covering the tokens it keeps at that length (a
/// window's span may straddle one more block than its size), plus its
/// recurrent state; `None` on overflow. What `kvsim kv` reports as the paged
/// bytes of one sequence.
pub fn paged_held_bytes(layout: &KvLayout, block_size: u32, tokens: u32) -> Option<u64> {
    let bs = u64::from(block_size.max(1));
    let t = u64::from(tokens);
    layout.groups().iter().try_fold(0u64, |acc, g| {
        let kept = u64::from(g.span.kept(tokens));
        let blocks = if kept == 0 {
            0
        } else {
            t.div_ceil(bs) - (t - kept) / bs
        };
        let bytes = blocks.checked_mul(bs)?.checked_mul(g.bytes_per_token)?;
        acc.checked_add(bytes)?.checked_add(g.state_at(tokens))
    })
}

/// The most bytes a sequence growing to `tokens` holds in a paged cache of
/// `block_size`-token blocks laid out as `layout`: each group's peak blocks
/// (windows and chunks applied) plus its recurrent state; `None` on overflow.
pub fn paged_peak_bytes(layout: &KvLayout, block_size: u32, tokens: u32) -> Option<u64> {
    let bs = u64::from(block_size.max(1));
    layout.groups().iter().try_fold(0u64, |acc, g| {
        let blocks = peak_blocks(bs, g.span, 1, tokens);
        let bytes = blocks.checked_mul(bs)?.checked_mul(g.bytes_per_token)?;
        acc.checked_add(bytes)?.checked_add(g.state_at(tokens))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_follow_their_rules_within_the_context() {
        use Reserve::*;
        // (rule, prompt, max_tokens, final tokens, reserved).
        for (rule, prompt, max_tokens, final_tokens, want) in [
            (Pow2, 20, 100, 25, 32),
            (Oracle, 20, 100, 25, 25),
            (MaxTokens, 20, 100, 25, 119),
            (MaxModelLen, 20, 100, 25, 4096),
            // The paper's Orca (Pow2): an output of 25 tokens gets 32
            // positions. The last token's KV is never written (final = prompt
            // + output - 1), as for every rule.
            (Pow2Output, 100, 1000, 124, 131),
            // An output that is already a power of two reserves exactly.
            (Pow2Output, 100, 1000, 131, 131),
            (Pow2Output, 100, 1000, 100, 100),
            (Pow2Output, 3000, 1000, 3999, 4023),
            // Never above the model's context, never below the prompt.
            (Pow2, 20, 100, 3000, 4096),
            (Pow2Output, 3500, 1000, 4095, 4096),
            (Oracle, 20, 1, 20, 20),
        ] {
            assert_eq!(
                rule.tokens(prompt, max_tokens, final_tokens, 4096),
                want,
                "{rule:?}"
            );
        }
        assert_eq!(Pow2Output.name(), "pow2-output");
    }

    #[test]
    #[should_panic(expected = "KV usage out of bounds")]
    fn usage_beyond_the_budget_is_a_bug() {
        let _ = MemoryUsage::new(100, 101, 50);
    }
}
