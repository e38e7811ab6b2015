"""fla's GSA kernels and the lab's ``fla_gsa`` mixer against blaviz's GSA (``pytest -m gpu``).

Skipped without CUDA or without fla. fla's kernels run in float32 (their matmuls may use TF32);
the reference is :func:`blaviz.ops.gsa.gsa_attention` in float64 on the same inputs. Relative RMS
errors are printed (``-s``) and bounded by 1e-2 (TF32) on outputs, final states and gradients.
"""
import pytest
import torch
import torch.nn.functional as F

from blaviz.ops.gsa import gsa_attention
from blaviz.testing import assert_close_rms, rel_rms

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
fla_gsa = pytest.importorskip("fla.ops.gsa", reason="needs flash-linear-attention")

TOL = 1e-2


def _inputs(B, T, H, D, M, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    q, k, v = (F.silu(torch.randn(B, T, H, D, device="cuda", generator=g, dtype=torch.float64))
               for _ in range(3))
    gate = F.logsigmoid(torch.randn(B, T, H, M, device="cuda", generator=g,
                                    dtype=torch.float64)) / 8
    s = 1 - gate.exp()
    do = torch.randn(B, T, H, D, device="cuda", generator=g, dtype=torch.float64)
    return (q, k, v, s, gate), do


@pytest.mark.parametrize("mode", ["chunk", "fused_recurrent"])
@pytest.mark.parametrize("B,T,H,D,M", [(2, 37, 1, 64, 64), (1, 130, 2, 32, 16),
                                       (2, 256, 1, 64, 64)])
def test_fla_kernels_match_blaviz_reference(mode, B, T, H, D, M):
    xs64, do = _inputs(B, T, H, D, M, seed=T + M)
    fn = fla_gsa.chunk_gsa if mode == "chunk" else fla_gsa.fused_recurrent_gsa
    ref_in = [x.clone().requires_grad_() for x in xs64]
    o_ref, (hk, hv) = gsa_attention(*ref_in, scale=1.0, output_final_state=True)
    o_ref.backward(do)
    fla_in = [x.float().requires_grad_() for x in xs64]
    q, k, v, s, g = fla_in
    o, (fk, fv) = fn(q=q, k=k, v=v, s=s, g=g, scale=1.0, output_final_state=True)
    o.backward(do.float())
    # blaviz keeps H^k as [B, H, Dk, M]; fla as [B, H, Dk, M] too (checked by the shapes)
    pairs = [("o", o, o_ref), ("hk", fk, hk), ("hv", fv, hv)]
    pairs += [(f"d{n}", a.grad, b.grad) for n, a, b in zip("qkvsg", fla_in, ref_in)]
    for name, a, b in pairs:
        print(f"{mode} {(B, T, H, D, M)} {name}: rel RMS {rel_rms(a.double(), b):.2e}")
    for name, a, b in pairs:
        assert_close_rms(a.double(), b, TOL, f"{mode} {name}")


def test_fla_gsa_mixer_matches_blaviz_fla_recipe():
    """The fla_gsa mixer and blaviz's GSA with recipe="fla" are one function at equal weights."""
    from blaviz.experiments.fla_layers import FlaGatedSlotAttention
    from blaviz.layers import GatedSlotAttention

    torch.manual_seed(0)
    ours = GatedSlotAttention(64, num_slots=64, recipe="fla", impl="naive").cuda().double()
    theirs = FlaGatedSlotAttention(64, num_slots=64).cuda()
    theirs.load_state_dict({k: v.float() for k, v in ours.state_dict().items()})
    with torch.no_grad():
        ours.norm.weight.uniform_(0.5, 1.5)
        theirs.norm.weight.copy_(ours.norm.weight.float())
    for T in (40, 100):
        x = torch.randn(2, T, 64, device="cuda", dtype=torch.float64)
        y_ref = ours(x)
        y = theirs(x.float())
        print(f"mixer T={T}: rel RMS {rel_rms(y.double(), y_ref):.2e}")
        assert_close_rms(y.double(), y_ref, TOL, f"mixer output T={T}")
