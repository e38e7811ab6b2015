"""Exact, faster forms of the baseline token mixers, for training on a GPU.

The references in :mod:`blaviz.ops` are token-by-token loops: clear, and the ground truth, but a
loop of ``T`` steps is thousands of tiny kernel launches per layer. The functions here compute the
*same* quantities (same arguments, same semantics, same final states) with a handful of batched
matrix products, and ``tests/layers/test_fast_ops.py`` checks each against its reference in float64
(outputs, final states and gradients, odd lengths and chunk sizes that do not divide ``T``).

============================  ===============================  =====================================
function                      reference                        form
============================  ===============================  =====================================
:func:`causal_softmax`        ``softmax_attention``            ``scaled_dot_product_attention``
:func:`sliding_window`        ``sliding_window_attention``     SDPA with a banded boolean mask
:func:`masked_linear`         ``linear_attention``             ``(Q K^T * causal) V``
:func:`chunk_gated_linear`    ``gla_attention``                chunked, decays relative to chunk
                              (and GSA's two passes)           starts (never ``exp`` of a positive)
:func:`chunk_gsa`             ``gsa_attention``                two :func:`chunk_gated_linear` passes
:func:`chunk_gated_delta`     ``gated_delta_rule``             chunked UT / WY form (triangular solve)
============================  ===============================  =====================================

All take fla's layout ``[B, T, H, D]``. Chunked forms pad ``T`` up to a multiple of the chunk with
tokens that leave the state unchanged (zero keys, zero log decay, zero write strength), so the
outputs and the final state are exact for any ``T``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["causal_softmax", "sliding_window", "masked_linear", "chunk_gated_linear", "chunk_gsa",
           "chunk_gated_delta"]


def _scale(scale, d):
    return d ** -0.5 if scale is None else float(scale)


def _bhtd(*xs):
    return [x.transpose(1, 2) for x in xs]


def causal_softmax(q, k, v, *, scale=None):
    """Causal softmax attention (``blaviz.ops.softmax.softmax_attention``) through PyTorch's SDPA."""
    qh, kh, vh = _bhtd(q, k, v)
    o = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=_scale(scale, q.shape[-1]))
    return o.transpose(1, 2)


def band_mask(T: int, window: int, device=None) -> torch.Tensor:
    """``[T, T]`` boolean: query ``t`` sees keys ``t - window < tau <= t``."""
    t = torch.arange(T, device=device)
    lag = t[:, None] - t[None, :]
    return (lag >= 0) & (lag < window)


def sliding_window(q, k, v, window: int, *, scale=None):
    """Sliding-window attention (``blaviz.ops.swa.sliding_window_attention``) through SDPA."""
    qh, kh, vh = _bhtd(q, k, v)
    mask = band_mask(q.shape[1], window, q.device)
    o = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, scale=_scale(scale, q.shape[-1]))
    return o.transpose(1, 2)


def masked_linear(q, k, v, *, scale=None):
    """Linear attention from a zero state (``blaviz.ops.linear.linear_attention``), parallel form:
    ``o = scale (Q K^T * causal) V``. O(T^2), which is cheap at MQAR lengths."""
    qh, kh, vh = _bhtd(q, k, v)
    T = q.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    a = (qh @ kh.transpose(-1, -2)).masked_fill(~causal, 0.0)
    return (_scale(scale, q.shape[-1]) * (a @ vh)).transpose(1, 2)


def _chunks(x: torch.Tensor, C: int, pad_value: float = 0.0) -> torch.Tensor:
    """``[B, T, H, D] -> [B, H, NC, C, D]`` (or ``[B, T, H] -> [B, H, NC, C]``), zero-padded at the end."""
    T = x.shape[1]
    pad = (-T) % C
    x = x.transpose(1, 2)
    if pad:
        widths = (0, 0, 0, pad) if x.ndim == 4 else (0, pad)
        x = F.pad(x, widths, value=pad_value)
    return x.reshape(*x.shape[:2], -1, C, *x.shape[3:])


def _unchunk(x: torch.Tensor, T: int) -> torch.Tensor:
    """``[B, H, NC, C, D] -> [B, T, H, D]``."""
    B, H, NC, C, D = x.shape
    return x.reshape(B, H, NC * C, D)[:, :, :T].transpose(1, 2)


def chunk_gated_linear(q, k, v, gk=None, gv=None, *, scale=None, initial_state=None,
                       output_final_state=False, chunk_size: int = 16):
    r"""Gated linear attention with a log decay on the key *or* the value dimension, chunked.

    .. math::
        h_t = \operatorname{diag}(e^{g^k_t})\, h_{t-1}\, \operatorname{diag}(e^{g^v_t}) + k_t^\top v_t,
        \qquad o_t = \mathrm{scale}\; q_t h_t

    ``gk`` ``[B, T, H, Dk]`` alone is :func:`blaviz.ops.gla.gla_attention`; ``gv`` ``[B, T, H, Dv]``
    alone is the first pass of GSA (the key memory decays along its slot columns). Within a chunk
    with inclusive cumulative log decays ``b``, the weight of ``tau`` at ``t`` is
    ``exp(b_t - b_tau)`` (``<= 1`` for non-positive decays), formed explicitly as a
    ``[C, C, D]`` tensor: the exponent is never positive, so nothing overflows. The state enters a
    chunk through ``exp(b_t)`` and leaves it through ``exp(b_C - b_tau)``.

    Returns ``(o [B, T, H, Dv], final_state [B, H, Dk, Dv] or None)``; ``o`` in ``q``'s dtype.
    """
    if (gk is None) == (gv is None):
        raise ValueError("give exactly one of gk (key-dimension decay) or gv (value-dimension decay)")
    B, T, H, Dk = q.shape
    Dv = v.shape[-1]
    C = int(chunk_size)
    scale = _scale(scale, Dk)
    qc, kc, vc = _chunks(q, C), _chunks(k, C), _chunks(v, C)                  # [B, H, NC, C, D]
    g = _chunks(gk if gk is not None else gv, C)
    b = g.cumsum(dim=3)                                                       # inclusive, per chunk
    b_last = b[:, :, :, -1:]                                                  # [B, H, NC, 1, D]
    causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    # exp(b_i - b_j) for j <= i, 0 above the diagonal: [B, H, NC, C(i), C(j), D]
    diff = (b[:, :, :, :, None, :] - b[:, :, :, None, :, :]).masked_fill(~causal[..., None], float("-inf"))
    decay = diff.exp()
    if gk is not None:
        a = torch.einsum("bhnic,bhnjc,bhnijc->bhnij", qc, kc, decay)          # intra-chunk scores
        o = a @ vc
        q_in = qc * b.exp()                                                   # reads the entering state
        k_out = kc * (b_last - b).exp()                                       # carried to the chunk end
        v_out = vc
    else:
        a = (qc @ kc.transpose(-1, -2)).masked_fill(~causal, 0.0)
        o = torch.einsum("bhnij,bhnjd,bhnijd->bhnid", a, vc, decay)
        q_in = qc
        k_out = kc
        v_out = vc * (b_last - b).exp()
    writes = k_out.transpose(-1, -2) @ v_out                                  # [B, H, NC, Dk, Dv]
    last = b_last.squeeze(3).exp()                                            # [B, H, NC, D]
    h = q.new_zeros(B, H, Dk, Dv) if initial_state is None else initial_state.to(q.dtype)
    entering = []
    for n in range(qc.shape[2]):
        entering.append(h)
        if gk is not None:
            h = last[:, :, n, :, None] * h + writes[:, :, n]
        else:
            h = h * last[:, :, n, None, :] + writes[:, :, n]
    h_in = torch.stack(entering, dim=2)                                       # [B, H, NC, Dk, Dv]
    inter = q_in @ h_in
    if gv is not None:
        inter = inter * b.exp()
    o = scale * (o + inter)
    return _unchunk(o, T), (h if output_final_state else None)


def chunk_gsa(q, k, v, s, g, *, scale=None, initial_state=None, output_final_state=False,
              chunk_size: int = 16):
    """Gated slot attention (:func:`blaviz.ops.gsa.gsa_attention`) as two chunked passes.

    Pass 1 (keys, decay along the slot columns): ``scores_t = scale q_t H^k_t``; softmax over the
    ``M`` slots; pass 2 (values, decay along the slot rows): ``o_t = p_t H^v_t``.
    """
    hk0, hv0 = (None, None) if initial_state is None else initial_state
    scores, hk = chunk_gated_linear(q, k, s, gv=g, scale=scale, initial_state=hk0,
                                    output_final_state=output_final_state, chunk_size=chunk_size)
    p = scores.softmax(dim=-1)
    o, hv = chunk_gated_linear(p, s, v, gk=g, scale=1.0, initial_state=hv0,
                               output_final_state=output_final_state, chunk_size=chunk_size)
    return o, ((hk, hv) if output_final_state else None)


def chunk_gated_delta(q, k, v, g, beta, *, scale=None, initial_state=None, output_final_state=False,
                      chunk_size: int = 32):
    r"""The gated delta rule (:func:`blaviz.ops.deltanet.gated_delta_rule`), chunked.

    Inside a chunk entered with state ``S_0``, with ``gamma_i`` the inclusive cumulative log decay,
    ``D_ij = exp(gamma_i - gamma_j)`` (``j <= i``) and the corrections ``u_i`` (rows of ``U``):

    .. math::
        (I + A)\, U = \beta \odot V - (\beta e^{\gamma} \odot K)\, S_0,
        \quad A_{ij} = \beta_i D_{ij}\, k_i \cdot k_j \ (j < i)

        o_i = \mathrm{scale}\,\big(e^{\gamma_i} q_i S_0 + \textstyle\sum_{j \le i} D_{ij}\, (q_i \cdot k_j)\, u_j\big),
        \qquad S_C = e^{\gamma_C} S_0 + \textstyle\sum_j e^{\gamma_C - \gamma_j}\, k_j^\top u_j

    ``(I + A)^{-1}`` is one unit-lower-triangular solve per chunk, done for all chunks at once;
    only the ``S`` recurrence runs chunk by chunk. Shapes as the reference.
    """
    B, T, H, Dk = q.shape
    Dv = v.shape[-1]
    C = int(chunk_size)
    scale = _scale(scale, Dk)
    qc, kc, vc = _chunks(q, C), _chunks(k, C), _chunks(v, C)
    gc, bc = _chunks(g, C), _chunks(beta, C)                                  # [B, H, NC, C]
    gam = gc.cumsum(dim=-1)
    causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    D = (gam[..., :, None] - gam[..., None, :]).masked_fill(~causal, float("-inf")).exp()
    strict = torch.ones(C, C, dtype=torch.bool, device=q.device).tril(-1)
    A = (bc[..., :, None] * D * (kc @ kc.transpose(-1, -2))).masked_fill(~strict, 0.0)
    eye = torch.eye(C, dtype=q.dtype, device=q.device)
    rhs = torch.cat([bc[..., None] * vc, (bc * gam.exp())[..., None] * kc], dim=-1)
    sol = torch.linalg.solve_triangular(eye + A, rhs, upper=False, unitriangular=True)
    u_free, w = sol[..., :Dv], sol[..., Dv:]                                  # U = u_free - w S_0
    qk = (qc @ kc.transpose(-1, -2)) * D                                      # D is 0 above diagonal
    q_in = qc * gam.exp()[..., None]
    k_out = kc * (gam[..., -1:] - gam).exp()[..., None]
    last = gam[..., -1].exp()                                                 # [B, H, NC]
    S = q.new_zeros(B, H, Dk, Dv) if initial_state is None else initial_state.to(q.dtype)
    outs = []
    for n in range(qc.shape[2]):
        U = u_free[:, :, n] - w[:, :, n] @ S
        outs.append(q_in[:, :, n] @ S + qk[:, :, n] @ U)
        S = last[:, :, n, None, None] * S + k_out[:, :, n].transpose(-1, -2) @ U
    o = scale * torch.stack(outs, dim=2)
    return _unchunk(o, T), (S if output_final_state else None)
