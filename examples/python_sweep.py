"""Where each KV cache policy hits the memory wall, from Python: the README's
headline sweep (scenarios/policies.toml: Llama-2-13B on one A100-40GB, chat
users from 8 to 128, four cache policies) run with `kvsim.sweep`, then OOM
rate and TPOT p99 plotted against concurrency with matplotlib.

    pip install ./python matplotlib
    python examples/python_sweep.py [OUT.png]    # from the repository's root

It writes the chart to OUT.png (default policies.png). In a notebook, paste
the cells (`# %%`) and leave out the savefig and the Agg backend.
"""

# %%
import sys

import matplotlib

matplotlib.use("Agg")  # a file, not a window; remove in a notebook
import matplotlib.pyplot as plt

import kvsim

scenario = kvsim.Scenario.from_toml("scenarios/policies.toml")
# The scenario's own grid, written out: users (concurrency) x cache policy.
table = kvsim.sweep(
    scenario,
    {
        "traffic.arrival.users": [8, 16, 24, 32, 48, 64, 96, 128],
        "cache.policy": ["contiguous", "paged", "sliding", "quantized"],
    },
)
print(table[["traffic.arrival.users", "cache.policy", "oom_rate", "batch_peak", "tpot_p99"]])

# %%
fig, (oom, tpot) = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
for policy, rows in table.groupby("cache.policy", sort=False):
    users = rows["traffic.arrival.users"]
    oom.plot(users, 100 * rows["oom_rate"], marker="o", label=policy)
    tpot.plot(users, 1000 * rows["tpot_p99"], marker="o", label=policy)
oom.set(xlabel="concurrent users", ylabel="OOM rate (%)", title="Requests lost to memory")
tpot.set(xlabel="concurrent users", ylabel="TPOT p99 (ms)", title="Time per output token")
slo = table["slo_tpot_p99"].iloc[0]
if slo == slo:  # the scenario's objective, when it has one (NaN otherwise)
    tpot.axhline(1000 * slo, color="grey", linestyle="--", label="objective")
users = sorted(table["traffic.arrival.users"].unique())
for ax in (oom, tpot):
    ax.set_xscale("log", base=2)
    ax.set_xticks(users, [str(u) for u in users])
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()
out = sys.argv[1] if len(sys.argv) > 1 else "policies.png"
fig.savefig(out, dpi=120)
print(f"wrote {out}")
