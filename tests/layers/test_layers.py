"""Token-mixer layers: shapes, state sizes, gradients, fast == naive, BLA at N = W == SWA."""
import warnings

import pytest
import torch

from blaviz.layers import BUILTIN_MIXERS, MIXERS, BaseConv, ShortConv, build_mixer, resolve_bla_impl
from blaviz.models import MixerLM
from blaviz.state_size import state_size
from blaviz.layers import attention
from blaviz.testing import assert_close_rms

D_MODEL, HEADS, HD = 24, 2, 12
B, T = 2, 21

CONFIGS = {
    "bla": dict(window=8, resolution=3, chunk_size=8),
    "swa": dict(window=5),
    "softmax": dict(seq_len=T),
    "gsa": dict(num_slots=4, chunk_size=8),
    "gla": dict(chunk_size=8),
    "linear": dict(),
    "gated_deltanet": dict(chunk_size=8),
    "mamba2": dict(d_state=5),
    "bla_multires": dict(heads=((4, 3), (8, 3)), chunk_size=8),
    "gated_bla": dict(window=8, resolution=3, chunk_size=8),
    "bla_exact_erasure": dict(window=8, resolution=3),
    "swa_bla_hybrid": dict(swa_window=3, window=8, resolution=3, chunk_size=8),
}
EXPECTED_STATE = {
    "bla": state_size("bla", head_dim=HD, num_heads=HEADS, resolution=3),   # 2 N d H
    "swa": 2 * 5 * HD * HEADS,
    "softmax": 2 * T * HD * HEADS,
    "gsa": 2 * 4 * HD * HEADS,
    "gla": HD * HD * HEADS,
    "linear": HD * HD * HEADS,
    "gated_deltanet": HD * HD * HEADS,
    "mamba2": 5 * HD * HEADS,
    "bla_multires": 2 * (3 + 3) * HD,
    "gated_bla": 2 * 3 * HD * HEADS,
    "bla_exact_erasure": 2 * (3 + 8) * HD * HEADS,
    "swa_bla_hybrid": 2 * (3 + 3) * HD * HEADS,
}


def make(name, dtype=torch.float32, **over):
    torch.manual_seed(0)
    return build_mixer(name, D_MODEL, num_heads=HEADS, **{**CONFIGS[name], **over}).to(dtype)


def test_every_mixer_is_covered():
    # Lab mixers added with register_mixer (e.g. fla's GSA) have their own tests.
    assert set(CONFIGS) == set(BUILTIN_MIXERS) <= set(MIXERS)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shape_state_size_and_gradients(name):
    layer = make(name)
    x = torch.randn(B, T, D_MODEL, requires_grad=True)
    y = layer(x)
    assert y.shape == (B, T, D_MODEL)
    assert torch.isfinite(y).all()
    assert layer.state_size == EXPECTED_STATE[name]
    assert layer.config()["mixer"] == name
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, p in layer.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_causal(name):
    """Changing a later token never changes earlier outputs."""
    layer = make(name, torch.float64)
    x = torch.randn(B, T, D_MODEL, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 13:] += torch.randn_like(x2[:, 13:])
    y, y2 = layer(x), layer(x2)
    assert torch.allclose(y[:, :13], y2[:, :13], atol=1e-12, rtol=0)
    assert not torch.allclose(y[:, 13:], y2[:, 13:])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fast_equals_naive_layer(name):
    """The layer's training path (impl='fast') equals the reference path (impl='naive'), float64."""
    fast = make(name, torch.float64)
    naive = make(name, torch.float64, impl="naive")
    naive.load_state_dict(fast.state_dict())
    x = torch.randn(B, T, D_MODEL, dtype=torch.float64)
    assert_close_rms(fast(x), naive(x), 1e-11, what=name)


def test_bla_at_full_resolution_is_swa():
    W = 6
    torch.manual_seed(0)
    bla = build_mixer("bla", D_MODEL, num_heads=HEADS, window=W, resolution=W, chunk_size=8).double()
    swa = build_mixer("swa", D_MODEL, num_heads=HEADS, window=W).double()
    swa.load_state_dict(bla.state_dict())
    x = torch.randn(B, T, D_MODEL, dtype=torch.float64)
    assert_close_rms(bla(x), swa(x), 1e-11, what="BLA(N=W) vs SWA")
    assert bla.state_size == swa.state_size


def test_bla_learned_temperature_scales_the_slot_logits():
    """``learn_temperature``: the layer equals plain BLA with the scale multiplied per head by
    ``exp(log_temperature)``, which starts at ``sqrt(W / N)`` and receives a gradient."""
    from blaviz.ops.bla import bla_attention
    W, N = 8, 3
    layer = make("bla", torch.float64, learn_temperature=True)
    assert torch.allclose(layer.log_temperature, torch.full((HEADS,), 0.5 * torch.log(torch.tensor(W / N))).double())
    with torch.no_grad():
        layer.log_temperature.copy_(torch.tensor([0.3, -0.7]))
    x = torch.randn(B, T, D_MODEL, dtype=torch.float64)
    q, k, v = (layer.heads(p(x)) for p in (layer.q_proj, layer.k_proj, layer.v_proj))
    want = torch.cat([bla_attention(q[:, :, h:h + 1], k[:, :, h:h + 1], v[:, :, h:h + 1], W, N,
                                    scale=HD ** -0.5 * float(layer.log_temperature[h].detach().exp()),
                                    impl="parallel")[0] for h in range(HEADS)], dim=2)
    assert_close_rms(layer.mix(q, k, v, x), want, 1e-12, what="learned temperature")
    layer(x).pow(2).sum().backward()
    assert layer.log_temperature.grad is not None and layer.log_temperature.grad.abs().min() > 0
    assert make("bla").config()["learn_temperature"] is False and not hasattr(make("bla"), "log_temperature")
    with pytest.raises(ValueError, match="learn_temperature"):
        make("bla", learn_temperature="yes")


def test_gsa_fla_recipe():
    """``recipe="fla"``: SiLU on v, unscaled slot scores, SiLU then an RMSNorm over all heads on the
    output; fast (chunked) == naive (recurrent); the default recipe is unchanged; bad names raise."""
    import torch.nn.functional as F
    from blaviz.ops.gsa import gsa_attention
    fast = make("gsa", torch.float64, recipe="fla")
    naive = make("gsa", torch.float64, recipe="fla", impl="naive")
    naive.load_state_dict(fast.state_dict())
    x = torch.randn(B, T, D_MODEL, dtype=torch.float64)
    assert_close_rms(fast(x), naive(x), 1e-10, what="GSA fla recipe, fast vs naive")
    q, k, v = (fast.heads(p(x)) for p in (fast.q_proj, fast.k_proj, fast.v_proj))
    g = F.logsigmoid(fast.f_proj(x)).view(B, T, HEADS, -1) / fast.gate_logit_normalizer
    o, _ = gsa_attention(F.silu(q), F.silu(k), F.silu(v), 1 - g.exp(), g, scale=1.0)
    h = F.silu(o).reshape(B, T, -1)
    want = fast.o_proj(h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-5) * fast.norm.weight)
    assert_close_rms(fast(x), want, 1e-10, what="GSA fla recipe, by hand")
    assert make("gsa").config()["recipe"] == "blaviz" and fast.config()["recipe"] == "fla"
    assert fast.state_size == make("gsa").state_size
    with pytest.raises(ValueError, match="recipe"):
        make("gsa", recipe="zoology")


def test_bla_impl_resolution_on_cpu():
    assert resolve_bla_impl("auto", "cpu") == "chunk"
    assert resolve_bla_impl("parallel", "cpu") == "parallel"
    with pytest.raises(ValueError):
        resolve_bla_impl("fastest", "cpu")
    layer = make("bla")
    assert layer.resolved_impl == "chunk"


def test_bad_bla_config_fails_at_construction():
    with pytest.raises(ValueError):
        build_mixer("bla", D_MODEL, window=8, resolution=4)     # even N < W
    with pytest.raises(ValueError, match="bla_impl must be one of"):
        build_mixer("bla", D_MODEL, window=8, resolution=3, bla_impl="fastest")


@pytest.mark.parametrize("over,match", [
    (dict(chunk_size=8), "power of two >= 16"),
    (dict(head_dim=192), "head dims up to 128"),
    (dict(window=4096, resolution=2047), "exceeds Triton"),
])
def test_triton_layer_beyond_the_kernels_fails_at_construction(over, match):
    cfg = {**dict(window=8, resolution=3, chunk_size=16, bla_impl="triton"), **over}
    with pytest.raises(ValueError, match=match):
        build_mixer("bla", D_MODEL, num_heads=HEADS, **cfg)


@pytest.fixture
def fresh_probe(monkeypatch):
    """An empty probe cache and warn-once set, restored afterwards."""
    monkeypatch.setattr(attention, "_PROBED", {})
    monkeypatch.setattr(attention, "_WARNED", set())


def test_triton_asked_for_and_broken_is_an_error(fresh_probe, monkeypatch):
    monkeypatch.setattr(attention, "_probe_triton", lambda device: "kernel exploded")
    # a "cuda" device object needs no GPU: the probe above stands in for the kernels
    with pytest.raises(RuntimeError, match="bla_impl='triton'.*cannot run on cuda.*kernel exploded"):
        resolve_bla_impl("triton", "cuda")


def test_auto_falls_back_and_says_so_once(fresh_probe, monkeypatch):
    monkeypatch.setattr(attention, "_probe_triton", lambda device: "kernel exploded")
    with pytest.warns(RuntimeWarning, match="falling back to the chunk form.*kernel exploded"):
        assert resolve_bla_impl("auto", "cuda") == "chunk"
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the second time: silent
        assert resolve_bla_impl("auto", "cuda") == "chunk"


def test_auto_takes_chunk_for_sizes_beyond_the_kernels(fresh_probe, monkeypatch):
    monkeypatch.setattr(attention, "_probe_triton", lambda device: None)
    assert resolve_bla_impl("auto", "cuda") == "triton"
    layer = make("bla", chunk_size=8)          # fine for chunk, not for the kernels
    with pytest.warns(RuntimeWarning, match="power of two"):
        assert resolve_bla_impl("auto", "cuda", triton_ok=layer._triton_ok) == "chunk"


def test_probe_catches_a_wrong_kernel(monkeypatch):
    import blaviz.ops.bla.triton as bla_triton_pkg
    from blaviz.ops.bla import bla_chunk

    def slightly_wrong(q, k, v, *args, **kw):
        o, st = bla_chunk(q, k, v, *args, **kw)
        return o * 1.01, st

    monkeypatch.setattr(bla_triton_pkg, "bla_triton", slightly_wrong)
    reason = attention._probe_triton("cpu")
    assert reason is not None and "disagrees with the float64 chunk form" in reason
    monkeypatch.setattr(bla_triton_pkg, "bla_triton", bla_chunk)   # right answer: no reason
    assert attention._probe_triton("cpu") is None


@pytest.mark.slow
def test_probe_passes_on_the_interpreter():
    assert attention._probe_triton("cpu") is None


def test_unknown_mixer():
    with pytest.raises(ValueError, match="unknown mixer"):
        build_mixer("mamba9", D_MODEL)


def test_short_conv_is_causal_depthwise():
    conv = ShortConv(3, 4).double()
    x = torch.zeros(1, 10, 3, dtype=torch.float64)
    x[0, 5, 1] = 1.0
    y = conv(x) - conv(torch.zeros_like(x))
    nz = y.abs() > 0
    assert nz[0, :5].sum() == 0                       # nothing before the impulse
    assert nz[0, 9:].sum() == 0                       # kernel 4: positions 5..8 only
    assert nz[0, :, [0, 2]].sum() == 0                # depthwise: channel 1 only
    assert BaseConv(3)(x.float()).shape == x.shape


@pytest.mark.parametrize("mlp_ratio", [0.0, 2.0])
def test_model_shapes_and_state(mlp_ratio):
    model = MixerLM(64, D_MODEL, "bla", dict(num_heads=HEADS, window=8, resolution=3), n_layers=2,
                    mlp_ratio=mlp_ratio)
    ids = torch.randint(0, 64, (B, T))
    h = model(ids)
    assert h.shape == (B, T, D_MODEL)
    assert model.logits(h).shape == (B, T, 64)
    assert model.state_size == EXPECTED_STATE["bla"]
    assert len(model.mixers) == 2
    assert model.logits(h[0, 0]).shape == (64,)
