"""The figures "site" owns (chapters 1, 3, 5) follow blaviz.viz.figures' checklist."""
import re

import pytest
import torch

from blaviz.viz import equivalence, memory, window

PSEUDO_TEX = re.compile(r"[A-Za-z)]_[A-Za-z(]|\^[A-Za-z0-9(-]|\btau\b")


def _texts(fig) -> list[str]:
    layout = fig.layout
    texts = [a.text or "" for a in layout.annotations]
    texts += [(layout.title.text or "")]
    for name in dir(layout):
        if re.fullmatch(r"[xy]axis\d*", name):
            texts.append(getattr(layout, name).title.text or "")
    texts += [t.name or "" for t in fig.data]
    return texts


def _heatmaps_have_a_colorbar(fig) -> bool:
    heat = [t for t in fig.data if t.type == "heatmap"]
    return all(t.showscale is not False for t in heat) and all(
        t.coloraxis is None or fig.layout[t.coloraxis].showscale is not False for t in heat)


@pytest.mark.parametrize("make", [
    lambda: memory.mixing_figure({"softmax": torch.rand(6, 6), "BLA": torch.randn(6, 6)}),
    lambda: memory.state_size_figure(resolutions=[1, 3, 128]),
    lambda: equivalence.transition_figure(8),
    lambda: equivalence.slot_kernels_figure(8),
    lambda: window.leaving_slider_figure(window=16, resolutions=(3, 16), active=3),
], ids=["mixing", "state", "transition", "slot_kernels", "leaving"])
def test_labels_are_math_not_pseudo_tex_and_heatmaps_keep_a_colorbar(make):
    fig = make()
    bad = [t for t in _texts(fig) if PSEUDO_TEX.search(re.sub(r"<[^>]+>", "", t))]
    assert not bad, bad
    assert _heatmaps_have_a_colorbar(fig)


def test_transition_colour_range_follows_the_slider():
    fig = equivalence.transition_figure(8, [3, 8])
    lims = [s.args[1]["coloraxis.cmax"] for s in fig.layout.sliders[0].steps]
    assert all(x > 0 for x in lims) and len(set(lims)) == 2
