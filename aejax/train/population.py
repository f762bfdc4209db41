"""A population: R >= 1 runs of one structure trained as one program; the one place that knows the run axis.

A run alone keeps its own programs (no run axis: its numbers are those of every earlier aejax release);
a population of several members stacks their params, optimizer state, hp and keys on a leading axis of
W slots and vmaps the single run's programs over it (`program`). The slot table maps slots to members:
the live members in order, then padding slots that repeat the first live one. The width W is a power of
two (a few compiled widths as a search stops members) capped at the population's planned size, whatever
was trained before: a search resumed after a kill runs at the width the uninterrupted one ran at, so
its numbers are the same bits. On several devices the slots are sharded over the "runs" axis of a global
mesh, which spans every process under `jax.distributed` (each process computes the members on its own
devices; `fetch` gathers them on every process).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from aejax.train.distributed import host
from aejax.train.step import over_runs

P = jax.sharding.PartitionSpec


def stack(trees: Sequence[Any]):
    """Stacks pytrees of equal structure on a new leading axis (on the host: no per-shape compiles)."""
    return jax.tree_util.tree_map(lambda *leaves: np.stack([np.asarray(x) for x in leaves]), *trees)


class Population:
    """Members' device state, hp and keys on W slots, placed on the mesh; programs, gathers, reads of one member.

    Args:
      states, hps, keys: per member (keys: {"data", "loop", "eval"} -> a key), host or device trees.
      vmapped: carry the run axis (a sweep group); False only for a run alone.
      planned: the population's size as planned (members already finished included): the most slots.
      data_parallel: each member's batches split over the mesh's "data" axis instead of members over "runs".
      tables: per member, the rows of the shared training split it sees (`aejax.data.subsets`), or None (every
        member sees every row): held as `rows` = (idx, count), idx padded to the longest table.
    """

    @staticmethod
    def run_axis(runs_axis: bool | None, members: int) -> bool:
        """Whether populations of `members` runs in all carry the run axis (by default: with several)."""
        vmapped = members > 1 if runs_axis is None else bool(runs_axis)
        if not vmapped and members != 1:
            raise ValueError(f"{members} runs need a run axis (runs_axis=True).")
        return vmapped

    def __init__(self, states: Sequence[Any], hps: Sequence[Any], keys: Sequence[dict], *, vmapped: bool,
                 planned: int | None = None, data_parallel: bool = False, tables: Sequence[np.ndarray] | None = None):
        if not vmapped and len(states) != 1:
            raise ValueError(f"{len(states)} members need the run axis (vmapped=True).")
        self.vmapped, self.planned = vmapped, max(planned or len(states), len(states))
        devices = np.asarray(jax.devices())
        self.mesh = None  # ("runs", "data"): members spread over "runs", or each member's batches over "data"
        if len(devices) > 1 and (vmapped or data_parallel):
            self.mesh = jax.sharding.Mesh(devices.reshape((1, -1) if data_parallel else (-1, 1)), ("runs", "data"))
        self.slots = self._slot_table(list(range(len(states))))
        place = self.per_member if vmapped else self.shared
        pick = (lambda items: stack([items[r] for r in self.slots])) if vmapped else (lambda items: items[0])
        self.state, self.hp = place(pick(states)), place(pick(hps))
        self.keys = {name: place(jax.random.wrap_key_data(pick([np.asarray(jax.random.key_data(k[name]))
                                                                for k in keys]))) for name in keys[0]} \
            if vmapped else dict(keys[0])
        self.rows = None  # (idx [(slots,) L] int32, count [(slots,)] int32): each member's rows of the shared split
        if tables is not None:
            longest = max(len(t) for t in tables)
            idx = [np.concatenate([t, np.full(longest - len(t), t[0])]).astype(np.int32) for t in tables]
            self.rows = (place(pick(idx)), place(pick([np.int32(len(t)) for t in tables])))

    # -- placement --
    def _place(self, tree, spec):
        sharding = jax.sharding.NamedSharding(self.mesh, spec)
        if jax.process_count() == 1:
            return jax.device_put(tree, sharding)

        def one(x):  # every process holds the whole host value; each places the shards on its own devices
            if isinstance(x, jax.Array) and not x.is_fully_addressable:  # a global array: resharded on the devices
                return jax.jit(lambda a: a, out_shardings=sharding)(x)
            if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                return jax.random.wrap_key_data(one(jax.random.key_data(x)), impl=jax.random.key_impl(x))
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

        return jax.tree_util.tree_map(one, tree)

    def shared(self, tree):
        """`tree` on the device, whole for every member (replicated over the mesh)."""
        return jax.device_put(tree) if self.mesh is None else self._place(tree, P())

    def per_member(self, tree):
        """`tree` (a leading slot axis when vmapped) on the device, its slots sharded over the mesh's "runs" axis."""
        return self.shared(tree) if self.mesh is None or not self.vmapped else self._place(tree, P("runs"))

    @property
    def batch_sharding(self):
        """Each batch split over the "data" axis (a data-parallel run), or None."""
        return None if self.mesh is None or self.mesh.shape["data"] == 1 else \
            jax.sharding.NamedSharding(self.mesh, P("data"))

    # -- programs and reads --
    def program(self, fn: Callable, shared: tuple[int, ...] = ()) -> Callable:
        """The single run's `fn`, vmapped over the slots (arguments at `shared` seen whole by every member)."""
        return over_runs(fn, shared, spmd_axis_name=None if self.mesh is None else "runs") if self.vmapped else fn

    def fetch(self, tree):
        """`tree` on the host in one transfer, every slot on every process; a run alone gets a slot axis of one."""
        def gathered(x):
            if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.sharding.is_fully_replicated:
                return multihost_utils.process_allgather(x, tiled=True)
            return x
        fetched = host(jax.tree_util.tree_map(gathered, tree))
        return fetched if self.vmapped else jax.tree_util.tree_map(lambda x: np.asarray(x)[None], fetched)

    @staticmethod
    def member(fetched, slot: int):
        """Slot `slot` of a fetched tree (`fetch`)."""
        return jax.tree_util.tree_map(lambda leaf: leaf[slot], fetched)

    def slot(self, tree, slot: int):
        """Slot `slot` of a tree on the device (a run alone: the tree itself)."""
        return jax.tree_util.tree_map(lambda leaf: leaf[slot], tree) if self.vmapped else tree

    def first_slots(self) -> dict[int, int]:
        """{member: its first slot}, for every member in the slot table."""
        return {r: self.slots.index(r) for r in dict.fromkeys(self.slots)}

    # -- width and gathers --
    def width(self, live: int) -> int:
        """Slots for `live` members: the next power of two, at most the planned size, a multiple of the "runs" axis."""
        width = max(min(2 ** math.ceil(math.log2(max(live, 1))), self.planned), live)
        runs_devices = 1 if self.mesh is None else self.mesh.shape["runs"]
        return -(-width // runs_devices) * runs_devices

    def _slot_table(self, members: list[int]) -> list[int]:
        return members + members[:1] * (self.width(len(members)) - len(members))

    def regroup(self, keep: Sequence[int], copy_from: dict[int, int], hp: dict[int, dict[str, float]]) -> None:
        """Members `keep` (in order) go on at the width for their count, each with the params and optimizer state of
        `copy_from.get(r, r)` (an exploit), its own keys and its own hp updated by `hp[r]`: one gather on the slot
        axis (the same width compiles nothing new). A run alone can only go on (`keep` [0]) with new hp."""
        if not self.vmapped:
            self.hp = self.shared({**self.hp, **{k: jnp.asarray(v, jnp.float32) for k, v in hp.get(0, {}).items()}})
            return
        first, slots = self.first_slots(), self._slot_table(list(keep))
        take = lambda tree, sources: jax.tree_util.tree_map(
            lambda a: jnp.take(a, jnp.asarray([first[r] for r in sources]), axis=0), tree)
        new_hp, self.keys, self.rows = take((self.hp, self.keys, self.rows), slots)
        for i, r in enumerate(slots):
            for name, value in hp.get(r, {}).items():
                new_hp[name] = new_hp[name].at[i].set(value)
        self.state, self.hp, self.keys, self.rows = self.per_member(
            (take(self.state, [copy_from.get(r, r) for r in slots]), new_hp, self.keys, self.rows))
        self.slots = slots

    def fold_eval_key(self, epoch: int):
        """Each member's validation key after 0-based `epoch`: fold_in(eval_key, epoch); the final evaluation of
        every split takes epoch 10**6."""
        return (_FOLD_RUNS if self.vmapped else _FOLD)(self.keys["eval"], np.int32(epoch))


_FOLD = jax.jit(jax.random.fold_in)  # the validation's key, one cached program instead of eager ops per epoch
_FOLD_RUNS = jax.jit(jax.vmap(jax.random.fold_in, in_axes=(0, None)))

__all__ = ["Population", "stack"]
