"""Automata (sampling, minimisation, canonical keys) and the RegBench data set and metrics."""
import numpy as np
import pytest
import torch

from blaviz.data import (
    DFA,
    NUM_SYMBOLS,
    PAD_ID,
    SEP_ID,
    VOCAB_SIZE,
    canonical_key,
    canonicalize,
    legal_next,
    make_regbench,
    minimize,
    next_symbol_distribution,
    oracle_logits,
    random_dfa,
    sample_string,
    tv_distance,
    validity_accuracy,
)


# ------------------------------------------------------------------------------ helpers


def dfa_from_edges(num_states, edges, total_symbols=NUM_SYMBOLS):
    """DFA from {(state, symbol): next}; the alphabet is the set of used symbols."""
    rows = [[-1] * total_symbols for _ in range(num_states)]
    for (q, a), t in edges.items():
        rows[q][a] = t
    return DFA(num_states, tuple(sorted({a for _, a in edges})), tuple(map(tuple, rows)))


def legal_strings(dfa, max_len, state=0):
    """All legal strings of length <= max_len from `state` (brute force)."""
    out, frontier = {()}, [((), state)]
    for _ in range(max_len):
        frontier = [(s + (a,), t) for s, q in frontier for a, t in dfa.out_edges(q)]
        out.update(s for s, _ in frontier)
    return out


def distinguishable_pairs(dfa):
    """Table-filling (Myhill-Nerode) over the states: independent of minimize()'s Moore refinement."""
    n = dfa.num_states
    legal = [frozenset(a for a, _ in dfa.out_edges(q)) for q in range(n)]
    dist = {(p, q) for p in range(n) for q in range(p + 1, n) if legal[p] != legal[q]}
    changed = True
    while changed:
        changed = False
        for p in range(n):
            for q in range(p + 1, n):
                if (p, q) in dist:
                    continue
                for a in legal[p]:  # == legal[q] here
                    s, t = sorted((dfa.step(p, a), dfa.step(q, a)))
                    if s != t and (s, t) in dist:
                        dist.add((p, q))
                        changed = True
                        break
    return dist


def reachable(dfa):
    seen, stack = {0}, [0]
    while stack:
        for _, t in dfa.out_edges(stack.pop()):
            if t not in seen:
                seen.add(t)
                stack.append(t)
    return seen


# ------------------------------------------------------------------------------ automata


def test_random_dfa_raw_structure():
    rng = np.random.default_rng(0)
    for _ in range(300):
        d = random_dfa(rng, minimized=False)
        assert 4 <= d.num_states <= 12
        assert 4 <= len(d.alphabet) <= 18
        for q in range(d.num_states):
            edges = d.out_edges(q)
            assert 1 <= len(edges) <= 3
            assert all(t != q for _, t in edges)  # no self-loops
            assert all(a in d.alphabet for a, _ in edges)


def test_random_dfa_minimized_is_minimal_and_equivalent():
    rng = np.random.default_rng(1)
    for i in range(150):
        state = rng.bit_generator.state
        m = random_dfa(rng)
        rng2 = np.random.default_rng()
        rng2.bit_generator.state = state
        raw = random_dfa(rng2, minimized=False)
        assert minimize(raw) == m  # same draws, minimised afterwards
        n = m.num_states
        assert reachable(m) == set(range(n))
        # minimal: every pair of states is distinguishable
        assert len(distinguishable_pairs(m)) == n * (n - 1) // 2
        assert all(1 <= len(m.out_edges(q)) <= 3 for q in range(n))
        if i < 40:  # same language (brute force, short strings)
            assert legal_strings(raw, 5) == legal_strings(m, 5)
        # idempotent; canonical numbering is a fixed point
        assert minimize(m) == m
        assert canonicalize(m) == m


def test_minimize_merges_duplicated_state():
    # 0 -a-> 1 -b-> 2 -c-> 0 ; plus a copy 3 of state 1 reached by 0 -d-> 3
    base = {(0, 0): 1, (1, 1): 2, (2, 2): 0}
    d = dfa_from_edges(3, base)
    assert minimize(d).num_states == 3
    dup = dfa_from_edges(4, {**base, (0, 3): 3, (3, 1): 2})
    m = minimize(dup)
    assert m.num_states == 3
    assert legal_strings(m, 7) == legal_strings(dup, 7)
    # a chain a*: states that all allow exactly 'a' collapse to a single self-loop
    chain = dfa_from_edges(5, {(q, 0): q + 1 for q in range(4)} | {(4, 0): 0})
    assert minimize(chain).transitions[0][0] == 0 and minimize(chain).num_states == 1
    # a dead end is NOT equivalent to a state with continuations
    dead = dfa_from_edges(3, {(0, 0): 1, (1, 0): 2})
    assert minimize(dead).num_states == 3
    # unreachable states are dropped
    unreachable = dfa_from_edges(4, {**base, (3, 0): 0})
    assert minimize(unreachable).num_states == 3


def test_canonical_key_is_renumbering_invariant():
    rng = np.random.default_rng(2)
    for _ in range(50):
        m = random_dfa(rng)
        n = m.num_states
        # relabel states 1..n-1 by a random permutation (start stays 0)
        perm = np.concatenate([[0], 1 + rng.permutation(n - 1)])
        rows = [None] * n
        for q in range(n):
            rows[perm[q]] = tuple(-1 if t < 0 else int(perm[t]) for t in m.transitions[q])
        shuffled = DFA(n, m.alphabet, tuple(rows))
        assert canonical_key(shuffled) == canonical_key(m)
        assert minimize(shuffled) == m


def test_sample_string_legal_and_distributions():
    rng = np.random.default_rng(3)
    for _ in range(50):
        d = random_dfa(rng)
        for length in (0, 1, 7, 30):
            s = sample_string(d, length, rng)
            assert len(s) == length and d.accepts(s)
            legal = legal_next(d, s)
            assert legal == tuple(a for a, _ in d.out_edges(d.run(s)))
            p = next_symbol_distribution(d, s, vocab_size=VOCAB_SIZE)
            assert p.shape == (VOCAB_SIZE,) and np.isclose(p.sum(), 1.0)
            assert set(np.flatnonzero(p)) == set(legal)
            assert np.allclose(p[list(legal)], 1 / len(legal))
    d = dfa_from_edges(2, {(0, 0): 1})
    with pytest.raises(ValueError):
        legal_next(d, [1])
    with pytest.raises(ValueError):
        sample_string(d, 2, rng)  # state 1 is a dead end


def test_sample_string_is_uniform_over_edges():
    d = dfa_from_edges(2, {(0, 0): 1, (0, 5): 1, (0, 9): 1, (1, 2): 0})
    rng = np.random.default_rng(4)
    firsts = np.array([sample_string(d, 1, rng)[0] for _ in range(3000)])
    freq = np.array([(firsts == a).mean() for a in (0, 5, 9)])
    assert np.abs(freq - 1 / 3).max() < 0.04


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_states_range=(1, 3)),
        dict(num_states_range=(5, 4)),
        dict(alphabet_size_range=(4, 19)),
        dict(edges_per_state=(0, 2)),
        dict(edges_per_state=(1, 5)),
    ],
)
def test_random_dfa_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        random_dfa(np.random.default_rng(0), **kwargs)


def test_dfa_validation():
    with pytest.raises(ValueError):
        DFA(2, (0,), ((1,), (5,)))  # target out of range
    with pytest.raises(ValueError):
        DFA(1, (0,), ((-1, 0),))  # symbol outside the alphabet
    with pytest.raises(ValueError):
        DFA(2, (0,), ((0,),))  # wrong number of rows


# ------------------------------------------------------------------------------ RegBench data


@pytest.fixture(scope="module")
def splits():
    return make_regbench(120, 40, seed=7)


def _decode(row_inputs, length):
    toks = row_inputs[:length].tolist()
    strings, cur = [], []
    for t in toks:
        if t == SEP_ID:
            strings.append(cur)
            cur = []
        else:
            cur.append(t)
    strings.append(cur)
    return strings


def test_prompts_are_legal_and_well_formed(splits):
    for data in splits:
        n, L = data.inputs.shape
        assert data.targets.shape == data.mask.shape == data.score_mask.shape == data.states.shape == (n, L)
        assert torch.equal(data.dfa_index, torch.arange(n))
        assert L == int(data.lengths.max())
        for b in range(n):
            dfa = data.dfas[int(data.dfa_index[b])]
            length = int(data.lengths[b])
            assert (data.inputs[b, length:] == PAD_ID).all() and (data.inputs[b, :length] != PAD_ID).all()
            assert data.inputs[b, 0] != SEP_ID and data.inputs[b, length - 1] != SEP_ID
            strings = _decode(data.inputs[b], length)
            assert 10 <= len(strings) <= 19
            assert all(1 <= len(s) <= 49 and dfa.accepts(s) for s in strings)
            # states follow the automaton and restart at separators
            expected = [0 if t == SEP_ID else None for t in data.inputs[b, :length].tolist()]
            i = 0
            for s in strings:
                for j in range(len(s)):
                    expected[i + j] = dfa.run(s[: j + 1])
                i += len(s) + 1
            assert data.states[b, :length].tolist() == expected
            assert (data.states[b, length:] == -1).all()


def test_position_conventions(splits):
    data = splits[0]
    length = data.lengths[:, None]
    pos = torch.arange(data.inputs.shape[1])[None, :]
    has_next = pos + 1 < length
    assert torch.equal(data.targets[:, :-1][has_next[:, :-1]], data.inputs[:, 1:][has_next[:, :-1]])
    assert (data.targets[~has_next] == -100).all()
    assert torch.equal(data.score_mask, has_next & (data.targets >= 0) & (data.targets < NUM_SYMBOLS))
    # every scored target is legal under the automaton state at that position
    legal = data.legal_mask
    scored_targets = data.targets[data.score_mask]
    assert legal[data.score_mask].gather(1, scored_targets[:, None]).all()
    # every target at all is legal (separators included)
    assert legal[has_next].gather(1, data.targets[has_next][:, None]).all()
    # after a separator the separator is not legal; after a symbol it is
    is_sep = data.inputs == SEP_ID
    assert not legal[is_sep][:, SEP_ID].any()
    assert legal[data.mask & ~is_sep][:, SEP_ID].all()
    assert not legal[..., PAD_ID].any()
    # next_dist agrees with the reference per-prefix distribution
    dist = data.next_dist
    assert torch.allclose(dist[data.mask].sum(-1), torch.ones(int(data.mask.sum())))
    for b in (0, 5, 17):
        dfa = data.dfas[int(data.dfa_index[b])]
        toks = data.inputs[b].tolist()
        for i in (0, 1, 10, int(data.lengths[b]) - 1):
            start = max((k for k in range(i + 1) if toks[k] == SEP_ID), default=-1) + 1
            ref = next_symbol_distribution(dfa, toks[start : i + 1], vocab_size=VOCAB_SIZE)
            assert np.allclose(dist[b, i].numpy(), ref)


def test_dedup_and_disjoint_splits(splits):
    train, test = splits
    k_train = [canonical_key(d) for d in train.dfas]
    k_test = [canonical_key(d) for d in test.dfas]
    assert len(set(k_train)) == len(k_train) == 120
    assert len(set(k_test)) == len(k_test) == 40
    assert not set(k_train) & set(k_test)
    assert all(minimize(d) == d for d in train.dfas[:30])  # stored automata are minimal/canonical


def test_determinism():
    a_tr, a_te = make_regbench(30, 10, seed=1)
    b_tr, b_te = make_regbench(30, 10, seed=1)
    c_tr, _ = make_regbench(30, 10, seed=2)
    for x, y in ((a_tr, b_tr), (a_te, b_te)):
        assert torch.equal(x.inputs, y.inputs) and torch.equal(x.states, y.states)
        assert x.dfas == y.dfas
    assert a_tr.dfas != c_tr.dfas
    # the train automata do not depend on the test size
    d_tr, _ = make_regbench(30, 3, seed=1)
    assert d_tr.dfas == a_tr.dfas


def test_max_len_pads_and_truncates():
    train, test = make_regbench(20, 5, seed=3, max_len=128)
    full, _ = make_regbench(20, 5, seed=3)
    assert train.inputs.shape == (20, 128) and test.inputs.shape == (5, 128)
    assert torch.equal(train.inputs, full.inputs[:, :128])
    assert torch.equal(train.states, full.states[:, :128])
    assert (train.targets[:, -1] == -100).all()
    assert torch.equal(train.lengths, full.lengths.clamp_max(128))
    short, _ = make_regbench(4, 1, seed=3, max_len=1000, num_strings_range=(1, 2), string_len_range=(1, 3))
    assert short.inputs.shape == (4, 1000) and (short.inputs[:, 10:] == PAD_ID).all()


def test_subset_and_metrics(splits):
    data = splits[1]
    oracle = oracle_logits(data)
    assert oracle.shape == (*data.inputs.shape, VOCAB_SIZE)
    assert validity_accuracy(oracle, data) == 1.0
    assert tv_distance(oracle, data) < 1e-6
    # extra logit columns (e.g. a vocabulary padded to 32) are ignored
    wide = oracle_logits(data, vocab_size=32)
    wide[..., SEP_ID] = 50.0  # mass on the separator does not count: metrics condition on a symbol
    assert validity_accuracy(wide, data) == 1.0 and tv_distance(wide, data) < 1e-6

    uniform = torch.zeros(*data.inputs.shape, VOCAB_SIZE)
    assert tv_distance(uniform, data) > 0.5  # at most 3 of 18 symbols are legal
    # an always-illegal predictor scores 0
    illegal = torch.where(data.symbol_legal(), -10.0, 10.0)
    assert validity_accuracy(illegal, data) == 0.0
    assert abs(tv_distance(illegal, data) - 1.0) < 1e-3

    sub = data[3:9]
    assert len(sub) == 6 and torch.equal(sub.inputs, data.inputs[3:9])
    assert tv_distance(oracle_logits(sub), sub) < 1e-6
    assert len(data[2]) == 1 and len(data[-1]) == 1 and len(data[np.int64(4)]) == 1
    assert torch.equal(data[-1].inputs, data.inputs[-1:])
    # TV hand check on one position: uniform over 18 vs uniform over k legal -> 1 - k/18
    k = data.symbol_legal()[data.score_mask].sum(-1).double()
    assert abs(tv_distance(uniform, data) - float((1 - k / 18).mean())) < 1e-6
    with pytest.raises(ValueError):
        validity_accuracy(uniform[:, :-1], data)
    with pytest.raises(ValueError):
        tv_distance(uniform[..., :10], data)


@pytest.mark.parametrize(
    "args,kwargs",
    [
        ((-1, 5), dict(seed=0)),
        ((0, 0), dict(seed=0)),
        ((5, 5), dict(seed=-3)),
        ((5, 5), dict(seed=0, num_strings_range=(0, 3))),
        ((5, 5), dict(seed=0, num_strings_range=(5, 2))),
        ((5, 5), dict(seed=0, string_len_range=(0, 49))),
        ((5, 5), dict(seed=0, max_len=1)),
        ((5, 5), dict(seed=0, dfa_kwargs=dict(total_symbols=10, alphabet_size_range=(4, 10)))),
        ((5, 5), dict(seed=0, dfa_kwargs=dict(edges_per_state=(0, 3)))),
    ],
)
def test_make_regbench_bad_arguments(args, kwargs):
    with pytest.raises(ValueError):
        make_regbench(*args, **kwargs)


def test_not_enough_distinct_automata():
    # with 2 states and 1 symbol there are only a handful of languages
    tiny = dict(num_states_range=(2, 2), alphabet_size_range=(1, 1), edges_per_state=(1, 1))
    with pytest.raises(RuntimeError):
        make_regbench(20, 5, seed=0, dfa_kwargs=tiny)


def test_brute_force_strings_helper_sanity():
    d = dfa_from_edges(2, {(0, 0): 1, (1, 1): 0})
    assert legal_strings(d, 3) == {(), (0,), (0, 1), (0, 1, 0)}
