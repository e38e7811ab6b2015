"""Small deterministic finite automata for RegBench (Akyürek et al., 2024).

Conventions used throughout:

* Symbols are integer ids ``0 .. total_symbols - 1`` (RegBench: ``NUM_SYMBOLS = 18``).
* ``DFA.transitions[q][a]`` is the state reached from ``q`` on symbol ``a``, or -1 when ``a`` is
  not allowed in ``q`` (partial transition function).  The start state is 0 and **every state
  is accepting**, so the language is prefix-closed: a string is in the language iff every one
  of its transitions exists ("legal").
* As a probabilistic automaton, each state moves along each of its outgoing edges with equal
  probability (uniform transition probabilities); :func:`sample_string` is that random walk and
  :func:`next_symbol_distribution` its next-symbol law.

Minimisation (:func:`minimize`) treats every missing transition as a move to a non-accepting
dead sink, so two states are equivalent iff they allow exactly the same set of continuations.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "NUM_SYMBOLS",
    "DFA",
    "random_dfa",
    "minimize",
    "canonicalize",
    "canonical_key",
    "sample_string",
    "legal_next",
    "next_symbol_distribution",
]

NUM_SYMBOLS = 18


@dataclass(frozen=True)
class DFA:
    """A partial DFA with start state 0 and all states accepting.

    Attributes:
        num_states: S.
        alphabet: sorted symbol ids the automaton was drawn with (a superset of the symbols on
            its edges; it does not affect the language or :func:`canonical_key`).
        transitions: S rows of ``total_symbols`` ints: next state, or -1 if illegal.
    """

    num_states: int
    alphabet: tuple[int, ...]
    transitions: tuple[tuple[int, ...], ...]

    def __post_init__(self):
        # Normalise to tuples so instances are hashable and compare by value.
        trans = tuple(tuple(int(t) for t in row) for row in self.transitions)
        alphabet = tuple(sorted(int(a) for a in self.alphabet))
        object.__setattr__(self, "transitions", trans)
        object.__setattr__(self, "alphabet", alphabet)
        if self.num_states < 1 or len(trans) != self.num_states:
            raise ValueError(f"need num_states >= 1 rows, got num_states={self.num_states}, {len(trans)} rows")
        width = len(trans[0])
        if width < 1 or any(len(row) != width for row in trans):
            raise ValueError("every transition row must have the same positive length (total_symbols)")
        if len(set(alphabet)) != len(alphabet) or any(not 0 <= a < width for a in alphabet):
            raise ValueError(f"alphabet must be distinct symbol ids in [0, {width}), got {alphabet}")
        for q, row in enumerate(trans):
            for a, t in enumerate(row):
                if t == -1:
                    continue
                if not 0 <= t < self.num_states:
                    raise ValueError(f"transition ({q}, {a}) -> {t} out of range")
                if a not in alphabet:
                    raise ValueError(f"transition ({q}, {a}) uses symbol {a} outside the alphabet")

    @property
    def total_symbols(self) -> int:
        return len(self.transitions[0])

    def step(self, state: int, symbol: int) -> int:
        """Next state, or -1 if ``symbol`` is illegal in ``state`` (or out of range)."""
        if state < 0 or not 0 <= symbol < self.total_symbols:
            return -1
        return self.transitions[state][symbol]

    def out_edges(self, state: int) -> tuple[tuple[int, int], ...]:
        """``((symbol, next_state), ...)`` in increasing symbol order."""
        return tuple((a, t) for a, t in enumerate(self.transitions[state]) if t >= 0)

    def run(self, string: Iterable[int]) -> int:
        """State after reading ``string`` from the start state, or -1 if it is illegal."""
        state = 0
        for a in string:
            state = self.step(state, int(a))
            if state < 0:
                return -1
        return state

    def accepts(self, string: Iterable[int]) -> bool:
        return self.run(string) >= 0

    def table(self) -> np.ndarray:
        """Transition table as int64 array ``[num_states, total_symbols]`` (-1 = illegal)."""
        return np.asarray(self.transitions, dtype=np.int64).reshape(self.num_states, self.total_symbols)


def _check_range(name: str, rng_pair, lo_min: int) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in rng_pair)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of ints, got {rng_pair!r}") from None
    if lo < lo_min or hi < lo:
        raise ValueError(f"{name} must satisfy {lo_min} <= low <= high, got {rng_pair!r}")
    return lo, hi


def random_dfa(
    rng: np.random.Generator,
    *,
    num_states_range: tuple[int, int] = (4, 12),
    alphabet_size_range: tuple[int, int] = (4, 18),
    total_symbols: int = NUM_SYMBOLS,
    edges_per_state: tuple[int, int] = (1, 3),
    minimized: bool = True,
) -> DFA:
    """Sample a random RegBench automaton (all ranges inclusive).

    1. ``S ~ U{num_states_range}`` states, an alphabet of ``c ~ U{alphabet_size_range}`` distinct
       symbols out of ``total_symbols``.
    2. Each state gets ``k ~ U{edges_per_state}`` outgoing edges labelled with ``k`` distinct
       alphabet symbols; each edge goes to a uniformly chosen *other* state (no self-loops;
       two edges of one state may share a target).
    3. If ``minimized`` (default), return :func:`minimize` of it: reachable part only, merged
       equivalent states, canonical numbering.  Merging can create self-loops and may leave fewer
       than ``num_states_range[0]`` states; out-degrees stay within ``edges_per_state``.
    """
    s_lo, s_hi = _check_range("num_states_range", num_states_range, 2)  # edges need another state
    c_lo, c_hi = _check_range("alphabet_size_range", alphabet_size_range, 1)
    e_lo, e_hi = _check_range("edges_per_state", edges_per_state, 1)
    if c_hi > total_symbols:
        raise ValueError(f"alphabet_size_range {alphabet_size_range} exceeds total_symbols={total_symbols}")
    if e_hi > c_lo:
        raise ValueError(f"edges_per_state {edges_per_state} needs alphabets of >= {e_hi} symbols, "
                         f"alphabet_size_range starts at {c_lo}")
    n = int(rng.integers(s_lo, s_hi + 1))
    c = int(rng.integers(c_lo, c_hi + 1))
    alphabet = np.sort(rng.choice(total_symbols, size=c, replace=False))
    trans = np.full((n, total_symbols), -1, dtype=np.int64)
    for q in range(n):
        k = int(rng.integers(e_lo, e_hi + 1))
        symbols = rng.choice(alphabet, size=k, replace=False)
        # q + U{1..n-1} mod n is uniform over the other states.
        targets = (q + rng.integers(1, n, size=k)) % n
        trans[q, symbols] = targets
    dfa = DFA(n, tuple(alphabet.tolist()), tuple(map(tuple, trans.tolist())))
    return minimize(dfa) if minimized else dfa


def _bfs_order(dfa: DFA) -> list[int]:
    """Reachable states in BFS order from 0, exploring edges in increasing symbol order."""
    order, seen, queue = [0], {0}, deque([0])
    while queue:
        q = queue.popleft()
        for _, t in dfa.out_edges(q):
            if t not in seen:
                seen.add(t)
                order.append(t)
                queue.append(t)
    return order


def canonicalize(dfa: DFA) -> DFA:
    """Renumber the reachable states in BFS order (symbol order) from the start; drop the rest.

    Two DFAs map to the same result iff their reachable parts are isomorphic (with the start
    state fixed), because a deterministic automaton's BFS numbering is determined by its shape.
    """
    order = _bfs_order(dfa)
    new_id = {q: i for i, q in enumerate(order)}
    rows = tuple(tuple(new_id[t] if t >= 0 else -1 for t in dfa.transitions[q]) for q in order)
    return DFA(len(order), dfa.alphabet, rows)


def canonical_key(dfa: DFA) -> tuple[tuple[int, ...], ...]:
    """Hashable key of :func:`canonicalize` (transitions only; the alphabet is ignored).

    For minimised DFAs, equal keys <=> equal languages (minimal DFAs are unique up to
    isomorphism), which is what deduplication of RegBench automata needs.
    """
    return canonicalize(dfa).transitions


def minimize(dfa: DFA) -> DFA:
    """Minimal equivalent DFA, canonically numbered (see :func:`canonicalize`).

    Moore partition refinement on the reachable states plus an explicit dead sink that absorbs
    every missing transition.  The sink is the only non-accepting state, so it always stays in a
    block of its own; it is removed again at the end (edges into it become -1).
    """
    order = _bfs_order(dfa)
    index = {q: i for i, q in enumerate(order)}
    n, width = len(order), dfa.total_symbols
    sink = n
    # Completed table over reachable states + sink: [n + 1, width].
    full = np.full((n + 1, width), sink, dtype=np.int64)
    for i, q in enumerate(order):
        for a, t in enumerate(dfa.transitions[q]):
            if t >= 0:
                full[i, a] = index[t]
    block = np.zeros(n + 1, dtype=np.int64)
    block[sink] = 1  # initial partition: accepting (all real states) vs. the non-accepting sink
    num_blocks = 2
    while True:
        # Refine: two states stay together iff same block and same successor blocks for all symbols.
        signature = np.concatenate([block[:, None], block[full]], axis=1)
        _, new_block = np.unique(signature, axis=0, return_inverse=True)
        new_block = new_block.reshape(-1)
        new_num = int(new_block.max()) + 1
        block = new_block
        if new_num == num_blocks:
            break
        num_blocks = new_num
    # Quotient automaton.  Number blocks by first appearance along `order`, so the start state's
    # block is 0 (the sink's block never appears: it is alone); canonicalize() fixes the rest.
    new_id: dict[int, int] = {}
    reps: list[int] = []
    for i in range(n):
        b = int(block[i])
        if b not in new_id:
            new_id[b] = len(reps)
            reps.append(i)
    sink_block = int(block[sink])
    quotient = tuple(
        tuple(-1 if int(block[t]) == sink_block else new_id[int(block[t])] for t in full[i]) for i in reps
    )
    return canonicalize(DFA(len(reps), dfa.alphabet, quotient))


def sample_string(dfa: DFA, length: int, rng: np.random.Generator) -> list[int]:
    """Uniform random walk of ``length`` symbols from the start state.

    At each step the next symbol is uniform over the legal symbols of the current state
    (equivalently over its outgoing edges), so the result is always a legal string.
    Raises ValueError if the walk reaches a state without outgoing edges.
    """
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    state, out = 0, []
    for _ in range(length):
        edges = dfa.out_edges(state)
        if not edges:
            raise ValueError(f"state {state} has no outgoing edge; cannot extend to length {length}")
        symbol, state = edges[int(rng.integers(len(edges)))]
        out.append(symbol)
    return out


def legal_next(dfa: DFA, prefix: Sequence[int]) -> tuple[int, ...]:
    """Sorted symbol ids that may follow ``prefix`` (a string read from the start state).

    Raises ValueError if ``prefix`` itself is illegal.
    """
    state = dfa.run(prefix)
    if state < 0:
        raise ValueError(f"prefix {list(prefix)} is not a legal string of this DFA")
    return tuple(a for a, _ in dfa.out_edges(state))


def next_symbol_distribution(dfa: DFA, prefix: Sequence[int], vocab_size: int | None = None) -> np.ndarray:
    """Next-symbol probabilities after ``prefix``: float64 ``[vocab_size]``.

    Uniform over :func:`legal_next`, zero elsewhere (ids >= ``total_symbols`` — e.g. RegBench's
    separator and padding — are always zero).  ``vocab_size`` defaults to ``total_symbols``.
    """
    vocab_size = dfa.total_symbols if vocab_size is None else int(vocab_size)
    if vocab_size < dfa.total_symbols:
        raise ValueError(f"vocab_size={vocab_size} < total_symbols={dfa.total_symbols}")
    legal = legal_next(dfa, prefix)
    p = np.zeros(vocab_size, dtype=np.float64)
    if legal:
        p[list(legal)] = 1.0 / len(legal)
    return p
