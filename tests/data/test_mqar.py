"""MQAR generator: Zoology semantics, label convention, slices, determinism, power-law gaps."""
import numpy as np
import pytest
import torch

from blaviz.data import (
    IGNORE_INDEX,
    MQAR_TEST_SLICES,
    MQAR_TRAIN_MIX,
    MQARConfig,
    MQARSlices,
    make_mqar,
    mqar_test_slices,
    mqar_train_set,
    pad_and_concat,
)

V = 8192


def _check_semantics(inputs, labels, num_kv_pairs, vocab_size, answers_in_input=True):
    """Every documented invariant of one (inputs, labels) batch; returns the query slots [N, kv]."""
    n, seq_len = inputs.shape
    ctx = 2 * num_kv_pairs
    half = vocab_size // 2
    assert inputs.dtype == labels.dtype == torch.long
    assert labels.shape == inputs.shape
    assert inputs.min() >= 0 and inputs.max() < vocab_size
    keys, values = inputs[:, 0:ctx:2], inputs[:, 1:ctx:2]
    # keys in the lower half (token 0 reserved), values in the upper half
    assert keys.min() >= 1 and keys.max() < half
    assert values.min() >= half and values.max() < vocab_size
    # no key (and no value) reused within a sequence
    assert (keys.sort(1).values.diff(dim=1) > 0).all()
    assert (values.sort(1).values.diff(dim=1) > 0).all()
    # nothing labelled inside the context; exactly one label per pair
    assert (labels[:, :ctx] == IGNORE_INDEX).all()
    labelled = labels != IGNORE_INDEX
    assert (labelled.sum(1) == num_kv_pairs).all()
    slots = torch.empty(n, num_kv_pairs, dtype=torch.long)
    for b in range(n):
        pos = labelled[b].nonzero().squeeze(1)
        assert ((pos - ctx) % 2 == 0).all()  # query keys sit at the start of two-token slots
        binding = dict(zip(keys[b].tolist(), values[b].tolist()))
        queried = inputs[b, pos].tolist()
        assert sorted(queried) == sorted(binding)  # every key queried exactly once
        for p, k in zip(pos.tolist(), queried):
            assert labels[b, p].item() == binding[k]  # label = value bound to the query's key
            if answers_in_input:
                assert inputs[b, p + 1].item() == binding[k]  # next-token convention
        order = {k: i for i, k in enumerate(keys[b].tolist())}
        for p, k in zip(pos.tolist(), queried):
            slots[b, order[k]] = (p - ctx) // 2
    return slots


@pytest.mark.parametrize("seq_len,kv", [(64, 4), (64, 16), (128, 8), (100, 7)])
def test_semantics(seq_len, kv):
    inputs, labels = make_mqar(64, seq_len, kv, seed=3)
    assert inputs.shape == (64, seq_len)
    _check_semantics(inputs, labels, kv, V)


def test_semantics_small_vocab_and_zoology_layout():
    # answers_in_input=False is Zoology's layout: the slot after a query is filler.
    inputs, labels = make_mqar(200, 32, 4, vocab_size=12, seed=1, answers_in_input=False)
    _check_semantics(inputs, labels, 4, 12, answers_in_input=False)
    inputs, labels = make_mqar(200, 32, 4, vocab_size=12, seed=1, random_non_queries=False)
    _check_semantics(inputs, labels, 4, 12)
    # without random filler, every non-context, non-query, non-answer token is 0
    q = labels != IGNORE_INDEX
    a = torch.roll(q, 1, dims=1)
    filler = ~(q | a)
    filler[:, :8] = False
    assert (inputs[filler] == 0).all()


def test_label_convention_matches_causal_lm_loss():
    """labels[:, i] is the target of logits[:, i]: a model copying inputs[:, i+1] is perfect."""
    inputs, labels = make_mqar(16, 64, 8, seed=0)
    logits = torch.full((16, 64, V), -1e4)
    logits[:, :-1].scatter_(2, inputs[:, 1:, None], 0.0)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=IGNORE_INDEX)
    assert loss.item() < 1e-6


def test_determinism_and_config():
    a = make_mqar(32, 128, 8, seed=5)
    b = make_mqar(32, 128, 8, seed=5)
    c = make_mqar(32, 128, 8, seed=6)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    d = MQARConfig(128, 8).make(32, seed=5)
    assert torch.equal(a[0], d[0]) and torch.equal(a[1], d[1])
    # the global RNG is neither used nor disturbed
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    make_mqar(4, 64, 4, seed=1)
    assert torch.equal(torch.rand(3), before)


def test_train_mix_and_test_slices():
    train = mqar_train_set(6, seed=0)
    assert [tuple(x.shape) for x, _ in train] == [(6, L) for L, _ in MQAR_TRAIN_MIX]
    for (x, y), (L, kv) in zip(train, MQAR_TRAIN_MIX):
        _check_semantics(x, y, kv, V)
    train2 = mqar_train_set([1, 2, 3, 4, 5], seed=0)
    assert [x.shape[0] for x, _ in train2] == [1, 2, 3, 4, 5]

    test = mqar_test_slices(5, seed=0)
    assert list(test) == list(MQAR_TEST_SLICES)
    for (L, kv), (x, y) in test.items():
        assert x.shape == y.shape == (5, L)
        _check_semantics(x, y, kv, V)
    # same user seed: the (64, 4) slice of train and test must be different sequences
    assert not torch.equal(train[0][0][:5], test[(64, 4)][0])
    # deterministic per seed, different across seeds
    assert torch.equal(mqar_test_slices(5, seed=0)[(128, 32)][0], test[(128, 32)][0])
    assert not torch.equal(mqar_test_slices(5, seed=1)[(128, 32)][0], test[(128, 32)][0])

    s = MQARSlices()
    assert torch.equal(s.test_slices(5, seed=0)[(64, 8)][0], test[(64, 8)][0])
    assert [x.shape[0] for x, _ in s.train_set(seed=0, num_examples=2)] == [2] * 5


def test_pad_and_concat():
    train = mqar_train_set([3, 2, 1, 1, 1], seed=0)
    x, y = pad_and_concat(train)
    assert x.shape == y.shape == (8, 256)
    assert (x[:3, 64:] == 0).all() and (y[:3, 64:] == IGNORE_INDEX).all()
    assert torch.equal(x[:3, :64], train[0][0])
    assert ((y != IGNORE_INDEX).sum(1) == torch.tensor([4] * 3 + [8] * 2 + [16, 32, 64])).all()
    with pytest.raises(ValueError):
        pad_and_concat(train, seq_len=128)


def test_power_law_gaps_favour_short_gaps():
    n, seq_len, kv, a = 3000, 512, 8, 0.01
    inputs, labels = make_mqar(n, seq_len, kv, vocab_size=64, power_a=a, seed=11)
    slots = _check_semantics(inputs[:50], labels[:50], kv, 64)  # full check on a subset (speed)
    # recover all slots quickly: labelled positions, in key order
    ctx, space = 2 * kv, (seq_len - 2 * kv) // 2
    keys = inputs[:, 0:ctx:2]
    pos = (labels != IGNORE_INDEX).nonzero()
    all_slots = torch.empty(n, kv, dtype=torch.long)
    which = (inputs[pos[:, 0], pos[:, 1]][:, None] == keys[pos[:, 0]]).float().argmax(1)
    all_slots[pos[:, 0], which] = (pos[:, 1] - ctx) // 2
    assert torch.equal(all_slots[:50], slots)

    counts = np.bincount(all_slots.flatten().numpy(), minlength=space)
    quarters = counts.reshape(4, -1).sum(1)
    assert (np.diff(quarters) < 0).all()  # decreasing on average
    assert counts[:10].sum() > 3 * counts[-10:].sum()
    # first draw (key 0) follows the power law exactly: P(slot 0) = p_0
    p = np.arange(1, space + 1, dtype=np.float64) ** (a - 1)
    p /= p.sum()
    f0 = (all_slots[:, 0] == 0).float().mean().item()
    assert abs(f0 - p[0]) < 4 * np.sqrt(p[0] * (1 - p[0]) / n)

    # power_a = 1 is uniform: quarters roughly equal
    inputs, labels = make_mqar(n, seq_len, kv, vocab_size=64, power_a=1.0, seed=11)
    q = ((labels != IGNORE_INDEX).nonzero()[:, 1] - ctx) // 2
    quarters_u = np.bincount(q.numpy(), minlength=space).reshape(4, -1).sum(1)
    assert quarters_u.min() > 0.9 * quarters_u.max()


@pytest.mark.parametrize(
    "kwargs,word",
    [
        (dict(num_examples=4, seq_len=30, num_kv_pairs=8), "seq_len"),
        (dict(num_examples=4, seq_len=64, num_kv_pairs=0), "num_kv_pairs"),
        (dict(num_examples=0, seq_len=64, num_kv_pairs=4), "num_examples"),
        (dict(num_examples=4, seq_len=64, num_kv_pairs=4, vocab_size=101), "vocab_size"),
        (dict(num_examples=4, seq_len=64, num_kv_pairs=4, vocab_size=8), "vocab_size"),
        (dict(num_examples=4, seq_len=64, num_kv_pairs=4, power_a=0.0), "power_a"),
        (dict(num_examples=4.0, seq_len=64, num_kv_pairs=4), "num_examples"),
    ],
)
def test_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        make_mqar(**kwargs)


def test_bad_set_arguments():
    with pytest.raises(ValueError, match="configs"):
        mqar_train_set([1, 2], seed=0)
    with pytest.raises(ValueError, match="seed"):
        mqar_test_slices(2, seed=-1)
