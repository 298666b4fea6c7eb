from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from equicat.train.ema import EMA
from equicat.train.optim import make_optimizer, make_scheduler, warmup_cosine


def test_warmup_then_cosine():
    f = [warmup_cosine(s, 4, 14, 0.1) for s in range(16)]
    assert f[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert f[4] == pytest.approx(1.0)
    assert f[9] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f[14] == pytest.approx(0.1) and f[15] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(f[4:], f[5:], strict=False))


def test_scheduler_follows_the_factor():
    model = nn.Linear(2, 2)
    opt = make_optimizer(model, lr=1.0, weight_decay=0.1)
    sched = make_scheduler(opt, 2, 6, 0.0)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([warmup_cosine(s, 2, 6, 0.0) for s in range(6)])


def test_weight_decay_only_on_matrices():
    model = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 4), nn.LayerNorm(4))
    decayed, plain = make_optimizer(model, 1e-3, 0.5).param_groups
    assert [p.shape for p in decayed["params"]] == [torch.Size([4, 3])]
    assert decayed["weight_decay"] == 0.5 and plain["weight_decay"] == 0.0
    assert len(plain["params"]) == 4  # embedding, linear bias, norm weight and bias


def test_ema_average_with_warmup():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.5)
    expected = 0.0
    for t in range(1, 5):
        with torch.no_grad():
            model.weight.fill_(float(t))
        ema.update(model)
        d = min(0.5, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * t
        assert float(ema.state_dict()["weight"]) == pytest.approx(expected)
    none = EMA(model, decay=None)
    with torch.no_grad():
        model.weight.fill_(9.0)
    none.update(model)
    assert float(none.state_dict()["weight"]) == 9.0
