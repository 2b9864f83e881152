"""TemporalAttention (TA-SNN) against its definition in MODELS.md."""
import pytest
import torch

from odg.models import TemporalAttention, keep_mask


def test_scores_follow_the_definition():
    torch.manual_seed(0)
    ta = TemporalAttention(steps=10, reduction=5)
    assert ta.fc1.in_features == 10 and ta.fc1.out_features == 2 and ta.fc2.out_features == 10
    x = torch.randn(10, 3, 4, 5, 6)                       # [T, B, C, H, W]
    z = torch.stack([torch.stack([x[t, b].mean() for b in range(3)]) for t in range(10)])
    torch.testing.assert_close(ta.squeeze(x), z)
    d = ta.scores(x)
    assert d.shape == (10, 3) and bool(((d > 0) & (d < 1)).all())
    for b in range(3):                                   # excitation over T, one sample at a time
        h = torch.relu(ta.fc1.weight @ z[:, b] + ta.fc1.bias)
        want = torch.sigmoid(ta.fc2.weight @ h + ta.fc2.bias)
        torch.testing.assert_close(d[:, b], want)
    y = ta(x)
    for t, b in [(0, 0), (3, 1), (9, 2)]:
        torch.testing.assert_close(y[t, b], x[t, b] * d[t, b])


def test_works_on_feature_vectors_and_learns():
    torch.manual_seed(1)
    ta = TemporalAttention(steps=16, reduction=16)
    x = torch.randn(16, 4, 32)                            # [T, B, F] (fc layers)
    torch.testing.assert_close(ta.squeeze(x), x.mean(dim=2))
    ta(x).square().sum().backward()
    assert ta.fc1.weight.grad.abs().sum() > 0 and ta.fc2.bias.grad.abs().sum() > 0


def test_bad_sizes_raise():
    with pytest.raises(ValueError):
        TemporalAttention(steps=4, reduction=5)          # T // r == 0
    ta = TemporalAttention(steps=8, reduction=4)
    with pytest.raises(ValueError):
        ta(torch.randn(6, 2, 3))                         # built for T = 8


def test_keep_mask():
    d = torch.tensor([[0.1, 0.6], [0.5, 0.49]])
    assert keep_mask(d, 0.5).tolist() == [[False, True], [True, False]]
    assert bool(keep_mask(d, 0.0).all())
