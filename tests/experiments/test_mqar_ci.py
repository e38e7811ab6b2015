"""The ci preset learns MQAR on the CPU: SWA covering the sequence reaches far above chance."""
import pytest
import torch

from blaviz.experiments.mqar import get_preset, run_one, sweep_specs


@pytest.mark.slow   # a real training run: 1-2 minutes on two busy cores
def test_ci_preset_learns_mqar():
    torch.set_num_threads(1)
    preset = get_preset("ci")
    spec = next(s for s in sweep_specs(preset) if s["mixer"] == "swa")
    rec = run_one(spec, preset, device="cpu", progress=False)
    chance = 1 / (preset.data.vocab_size // 2)          # values are drawn from half the vocabulary
    assert chance < 3e-4
    # measured: 0.99 after ~800 steps (early stop); 0.5 leaves a wide margin
    assert rec["per_slice"]["64x4"] > 0.5, rec["history"]
    assert rec["accuracy"] == rec["per_slice"]["64x4"]          # the pooled set is (64, 4) alone
    assert rec["state_size"] == 2 * 64 * 32                        # SWA: 2 W d per layer (one head)
    assert rec["steps"] <= rec["planned_steps"]
