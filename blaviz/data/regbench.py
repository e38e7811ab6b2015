"""RegBench: in-context learning of regular languages (Akyürek et al., 2024, "In-Context Language
Learning: Architectures and Algorithms").

Each example (a *prompt*) belongs to one random automaton (see :mod:`blaviz.data.dfa`) and is
10-19 strings sampled from it (uniform random walks of length 1-49), joined by a separator.
Training and test automata are disjoint, so a model must infer each language in context.

Vocabulary (``VOCAB_SIZE = 20``):

======================  =====================================================
ids ``0 .. 17``         the 18 alphabet symbols (``NUM_SYMBOLS``)
``SEP_ID = 18``         separator between strings (no separator at the start or end)
``PAD_ID = 19``         right padding after the prompt
======================  =====================================================

Position conventions (causal LM, same as MQAR: ``logits[:, i]`` is read at input position ``i``
and predicts token ``i + 1``; no further shift):

* ``targets[b, i] = inputs[b, i + 1]`` for ``i + 1 < length``, else -100.  Train with
  ``F.cross_entropy(logits[:, i], targets[:, i], ignore_index=-100)``; this includes
  separator targets, so the model learns the prompt format.
* ``states[b, i]`` is the automaton state after reading ``inputs[b, i]``: the state reached by the
  current string's prefix if ``inputs[b, i]`` is a symbol, and the start state 0 if it is a
  separator (the next string restarts from the start).  -1 at padding.
* **Scored positions** (``score_mask``) are the positions whose target is a *symbol*.  Whether a
  string ends (the separator) is decided by the sampled length, not by the automaton — every
  state is accepting — so the automaton defines no probability for it; separator targets are
  therefore excluded from the metrics, and at scored positions the automaton's distribution
  ``next_dist`` is the next-symbol law *given that the string continues*: uniform over the legal
  symbols of ``states[b, i]`` (after a separator: the legal first symbols).
* Consistently, the metrics read only the 18 symbol logits: :func:`validity_accuracy` takes the
  argmax over symbols and :func:`tv_distance` renormalises the softmax over symbols.
* ``legal_mask[b, i, v]`` (all positions) marks every token that may follow: the legal symbols,
  plus ``SEP_ID`` when ``inputs[b, i]`` is a symbol (a string can end after any non-empty
  prefix).  Padding is never legal.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from .dfa import DFA, NUM_SYMBOLS, canonical_key, random_dfa

__all__ = [
    "NUM_SYMBOLS",
    "SEP_ID",
    "PAD_ID",
    "VOCAB_SIZE",
    "IGNORE_INDEX",
    "RegBenchData",
    "make_regbench",
    "validity_accuracy",
    "tv_distance",
    "oracle_logits",
]

SEP_ID = NUM_SYMBOLS  # 18
PAD_ID = NUM_SYMBOLS + 1  # 19
VOCAB_SIZE = NUM_SYMBOLS + 2  # 20
IGNORE_INDEX = -100


@dataclass
class RegBenchData:
    """One split of RegBench: N prompts padded to a common length L.

    Attributes:
        inputs: int64 ``[N, L]`` token ids, ``PAD_ID`` after the prompt.
        targets: int64 ``[N, L]`` next token (``inputs[:, i + 1]``), -100 where there is none.
        mask: bool ``[N, L]``, True on real (non-padding) tokens.
        score_mask: bool ``[N, L]``, True where the target is a symbol (positions the metrics score).
        states: int64 ``[N, L]`` automaton state after ``inputs[:, i]`` (0 after a separator, -1 at padding).
        lengths: int64 ``[N]`` prompt lengths (after truncation to ``max_len``).
        dfa_index: int64 ``[N]`` index of each prompt's automaton in ``dfas`` / ``legal_table``.
        legal_table: bool ``[D, S_max, NUM_SYMBOLS]``: ``legal_table[d, q, a]`` iff symbol ``a`` is
            legal in state ``q`` of automaton ``d`` (rows past a DFA's states are all False).
        dfas: the D (minimised, canonically numbered) automata.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    score_mask: torch.Tensor
    states: torch.Tensor
    lengths: torch.Tensor
    dfa_index: torch.Tensor
    legal_table: torch.Tensor
    dfas: tuple[DFA, ...]

    _ROW_FIELDS = ("inputs", "targets", "mask", "score_mask", "states", "lengths", "dfa_index")

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, idx: Any) -> "RegBenchData":
        """Select prompts (int, slice, index tensor or bool mask); automata tables are shared."""
        if isinstance(idx, (int, np.integer)):  # keep the batch dimension
            idx = int(idx)
            idx = slice(idx, idx + 1) if idx != -1 else slice(-1, None)
        return replace(self, **{name: getattr(self, name)[idx] for name in self._ROW_FIELDS})

    def to(self, device) -> "RegBenchData":
        return replace(self, **{f.name: getattr(self, f.name).to(device)
                                for f in fields(self) if isinstance(getattr(self, f.name), torch.Tensor)})

    def symbol_legal(self) -> torch.Tensor:
        """bool ``[N, L, NUM_SYMBOLS]``: legal next symbols at each position (all False at padding)."""
        legal = self.legal_table[self.dfa_index[:, None], self.states.clamp_min(0)]
        return legal & (self.states >= 0)[..., None]

    @property
    def legal_mask(self) -> torch.Tensor:
        """bool ``[N, L, VOCAB_SIZE]``: legal next tokens (symbols, and SEP after a symbol)."""
        out = torch.zeros(*self.inputs.shape, VOCAB_SIZE, dtype=torch.bool, device=self.inputs.device)
        out[..., :NUM_SYMBOLS] = self.symbol_legal()
        out[..., SEP_ID] = self.mask & (self.inputs < NUM_SYMBOLS)
        return out

    @property
    def next_dist(self) -> torch.Tensor:
        """float32 ``[N, L, VOCAB_SIZE]``: automaton next-symbol distribution (zero on SEP/PAD).

        Uniform over the legal symbols; all-zero rows at padding.
        """
        legal = self.symbol_legal().float()
        out = torch.zeros(*self.inputs.shape, VOCAB_SIZE, dtype=torch.float32, device=self.inputs.device)
        out[..., :NUM_SYMBOLS] = legal / legal.sum(-1, keepdim=True).clamp_min(1.0)
        return out


def _unique_dfas(rng: np.random.Generator, count: int, seen: set, dfa_kwargs: dict) -> list[DFA]:
    """Draw minimised automata until ``count`` have canonical keys not in ``seen`` (updated)."""
    out: list[DFA] = []
    max_tries = 50 * count + 1000
    for _ in range(max_tries):
        if len(out) == count:
            break
        dfa = random_dfa(rng, **dfa_kwargs)
        key = canonical_key(dfa)
        if key not in seen:
            seen.add(key)
            out.append(dfa)
    if len(out) < count:
        raise RuntimeError(f"only found {len(out)} distinct automata out of {count} requested "
                           f"after {max_tries} draws; widen the DFA ranges")
    return out


def _walk_tables(dfas: list[DFA]):
    """Padded numpy tables for vectorised random walks over many automata.

    Returns ``trans [D, S, NUM_SYMBOLS]`` (-1 illegal), ``out_sym [D, S, E]`` (legal symbols in
    increasing order, padded with 0) and ``out_deg [D, S]``.
    """
    d_count = len(dfas)
    s_max = max((d.num_states for d in dfas), default=1)
    trans = np.full((d_count, s_max, NUM_SYMBOLS), -1, dtype=np.int64)
    for i, d in enumerate(dfas):
        trans[i, : d.num_states] = d.table()
    legal = trans >= 0
    out_deg = legal.sum(-1)
    e_max = max(int(out_deg.max(initial=0)), 1)
    # A stable argsort puts the legal symbols first, in increasing symbol order.
    out_sym = np.argsort(~legal, axis=-1, kind="stable")[..., :e_max]
    return trans, out_sym, out_deg


def _make_split(
    dfas: list[DFA],
    rng: np.random.Generator,
    num_strings_range: tuple[int, int],
    string_len_range: tuple[int, int],
    max_len: int | None,
) -> RegBenchData:
    n = len(dfas)
    trans, out_sym, out_deg = _walk_tables(dfas)
    legal_table = torch.from_numpy(trans >= 0)

    # One prompt per automaton: W strings in total, all walked in parallel.
    n_strings = rng.integers(num_strings_range[0], num_strings_range[1] + 1, size=n)
    string_dfa = np.repeat(np.arange(n), n_strings)  # [W]
    string_len = rng.integers(string_len_range[0], string_len_range[1] + 1, size=string_dfa.size)
    w, t_max = string_dfa.size, int(string_len.max(initial=0))
    syms = np.zeros((w, t_max), dtype=np.int64)
    after = np.zeros((w, t_max), dtype=np.int64)
    cur = np.zeros(w, dtype=np.int64)
    u = rng.random((w, t_max))
    for t in range(t_max):
        deg = out_deg[string_dfa, cur]
        # Strings past their length keep walking harmlessly (and are cut below); every state of
        # a RegBench automaton has an outgoing edge, so deg >= 1 here.
        if np.any((deg == 0) & (t < string_len)):
            raise ValueError("an automaton has a state without outgoing edges")
        choice = np.minimum((u[:, t] * deg).astype(np.int64), np.maximum(deg - 1, 0))
        sym = out_sym[string_dfa, cur, choice]
        cur = np.maximum(trans[string_dfa, cur, sym], 0)
        syms[:, t], after[:, t] = sym, cur

    # Lay every string out as [its symbols..., SEP] in a [W, t_max + 1] grid, then drop the SEP
    # of each prompt's last string and flatten row-major: the valid cells, in order, are the
    # prompts back to back.
    col = np.arange(t_max + 1)
    tok = np.full((w, t_max + 1), SEP_ID, dtype=np.int64)
    st = np.zeros((w, t_max + 1), dtype=np.int64)  # state after a SEP is the start state 0
    tok[:, :t_max], st[:, :t_max] = syms, after
    tok[col[None, :] == string_len[:, None]] = SEP_ID
    st[col[None, :] == string_len[:, None]] = 0
    valid = col[None, :] <= string_len[:, None]
    last_of_prompt = np.cumsum(n_strings) - 1
    valid[last_of_prompt, string_len[last_of_prompt]] = False
    flat_tok, flat_st = tok[valid], st[valid]
    prompt_len = np.bincount(string_dfa, weights=string_len + 1, minlength=n).astype(np.int64) - 1
    prompt_of = np.repeat(np.arange(n), prompt_len)
    offsets = np.concatenate([[0], np.cumsum(prompt_len)[:-1]])
    pos = np.arange(flat_tok.size) - offsets[prompt_of]

    length = prompt_len if max_len is None else np.minimum(prompt_len, max_len)
    seq_len = int(prompt_len.max(initial=0)) if max_len is None else int(max_len)
    keep = pos < seq_len
    inputs = np.full((n, seq_len), PAD_ID, dtype=np.int64)
    states = np.full((n, seq_len), -1, dtype=np.int64)
    inputs[prompt_of[keep], pos[keep]] = flat_tok[keep]
    states[prompt_of[keep], pos[keep]] = flat_st[keep]

    inputs_t = torch.from_numpy(inputs)
    length_t = torch.from_numpy(length)
    positions = torch.arange(seq_len)
    mask = positions[None, :] < length_t[:, None]
    has_next = positions[None, :] + 1 < length_t[:, None]
    nxt = torch.cat([inputs_t[:, 1:], torch.full((n, 1), PAD_ID, dtype=torch.long)], dim=1)
    targets = torch.where(has_next, nxt, torch.full_like(nxt, IGNORE_INDEX))
    score_mask = has_next & (nxt < NUM_SYMBOLS)
    return RegBenchData(
        inputs=inputs_t,
        targets=targets,
        mask=mask,
        score_mask=score_mask,
        states=torch.from_numpy(states),
        lengths=length_t,
        dfa_index=torch.arange(n),
        legal_table=legal_table,
        dfas=tuple(dfas),
    )


def make_regbench(
    num_train_dfas: int,
    num_test_dfas: int,
    *,
    seed: int,
    num_strings_range: tuple[int, int] = (10, 19),
    string_len_range: tuple[int, int] = (1, 49),
    max_len: int | None = None,
    dfa_kwargs: dict | None = None,
) -> tuple[RegBenchData, RegBenchData]:
    """Generate the RegBench train and test splits: one prompt per automaton.

    Args:
        num_train_dfas, num_test_dfas: number of distinct automata (= prompts) per split (>= 0,
            not both 0).  Automata are deduplicated by :func:`~blaviz.data.dfa.canonical_key` of
            their minimal form, within and across splits, so the splits are disjoint.
        seed: non-negative seed; the output is a pure function of the arguments.  The train
            automata do not depend on ``num_test_dfas``.
        num_strings_range: inclusive range of strings per prompt.
        string_len_range: inclusive range of string lengths (>= 1, so SEP never follows SEP).
        max_len: pad (or truncate) every prompt to this length; ``None`` pads each split to its
            longest prompt.
        dfa_kwargs: extra keyword arguments for :func:`~blaviz.data.dfa.random_dfa`.

    Returns:
        ``(train, test)`` :class:`RegBenchData` (see the module docstring for the conventions).
    """
    for name, v in (("num_train_dfas", num_train_dfas), ("num_test_dfas", num_test_dfas), ("seed", seed)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be an int >= 0, got {v!r}")
    if num_train_dfas + num_test_dfas == 0:
        raise ValueError("num_train_dfas + num_test_dfas must be >= 1")
    ranges = {}
    for name, r in (("num_strings_range", num_strings_range), ("string_len_range", string_len_range)):
        try:
            lo, hi = (int(x) for x in r)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a (low, high) pair, got {r!r}") from None
        if not 1 <= lo <= hi:
            raise ValueError(f"{name} must satisfy 1 <= low <= high, got {r!r}")
        ranges[name] = (lo, hi)
    if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 2):
        raise ValueError(f"max_len must be None or an int >= 2, got {max_len!r}")
    dfa_kwargs = dict(dfa_kwargs or {})
    if dfa_kwargs.get("total_symbols", NUM_SYMBOLS) != NUM_SYMBOLS:
        raise ValueError(f"RegBench's vocabulary fixes total_symbols={NUM_SYMBOLS}")
    dfa_kwargs.pop("minimized", None)  # always minimised: dedup keys must be language keys

    # Independent streams: automata, train strings, test strings.
    dfa_ss, train_ss, test_ss = np.random.SeedSequence([int(seed), 0x4E6B]).spawn(3)
    dfa_rng = np.random.default_rng(dfa_ss)
    seen: set = set()
    train_dfas = _unique_dfas(dfa_rng, num_train_dfas, seen, dfa_kwargs)
    test_dfas = _unique_dfas(dfa_rng, num_test_dfas, seen, dfa_kwargs)
    args = (ranges["num_strings_range"], ranges["string_len_range"], None if max_len is None else int(max_len))
    return (
        _make_split(train_dfas, np.random.default_rng(train_ss), *args),
        _make_split(test_dfas, np.random.default_rng(test_ss), *args),
    )


# ----------------------------------------------------------------------------------- metrics


def _check_logits(logits: torch.Tensor, batch: RegBenchData) -> None:
    if logits.dim() != 3 or logits.shape[:2] != batch.inputs.shape or logits.shape[2] < NUM_SYMBOLS:
        raise ValueError(f"logits must be [B, L, V>={NUM_SYMBOLS}] matching inputs {tuple(batch.inputs.shape)}, "
                         f"got {tuple(logits.shape)}")


def validity_accuracy(logits: torch.Tensor, batch: RegBenchData) -> float:
    """Fraction of scored positions whose argmax over the 18 symbol logits is a legal next symbol.

    ``logits``: ``[B, L, V]`` with ``V >= NUM_SYMBOLS`` (columns past the symbols, e.g. SEP and
    PAD, are ignored).  Returns NaN if the batch has no scored position.
    """
    _check_logits(logits, batch)
    batch = batch.to(logits.device)
    pred = logits[..., :NUM_SYMBOLS].argmax(-1, keepdim=True)
    ok = batch.symbol_legal().gather(-1, pred).squeeze(-1)
    m = batch.score_mask
    return float(ok[m].float().mean()) if m.any() else float("nan")


def tv_distance(logits: torch.Tensor, batch: RegBenchData) -> float:
    """Mean over scored positions of ``0.5 * sum_a |softmax(logits_symbols)_a - p_dfa(a)|``.

    The softmax is taken over the 18 symbol logits only (the model's next-symbol law given that
    the string continues, matching ``p_dfa``); columns past the symbols are ignored.
    ``logits``: ``[B, L, V]`` with ``V >= NUM_SYMBOLS``.  Returns NaN without scored positions.
    """
    _check_logits(logits, batch)
    batch = batch.to(logits.device)
    m = batch.score_mask
    if not m.any():
        return float("nan")
    p_model = torch.softmax(logits[..., :NUM_SYMBOLS][m].double(), dim=-1)
    legal = batch.symbol_legal()[m].double()
    p_dfa = legal / legal.sum(-1, keepdim=True)
    return float((0.5 * (p_model - p_dfa).abs().sum(-1)).mean())


def oracle_logits(batch: RegBenchData, *, vocab_size: int = VOCAB_SIZE, neg: float = -1e4) -> torch.Tensor:
    """``log next_dist`` with ``log 0`` replaced by ``neg``: float32 ``[N, L, vocab_size]``.

    The ideal in-context learner that knows each prompt's automaton (validity 1, TV 0).
    """
    if vocab_size < VOCAB_SIZE:
        raise ValueError(f"vocab_size must be >= {VOCAB_SIZE}, got {vocab_size}")
    p = batch.next_dist
    out = torch.full((*p.shape[:2], vocab_size), neg, dtype=torch.float32, device=p.device)
    out[..., :VOCAB_SIZE] = torch.where(p > 0, p.clamp_min(1e-30).log(), torch.full_like(p, neg))
    return out
