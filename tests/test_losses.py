"""SDT and TET losses against their formulas written out term by term; the lemma; the gradients."""
import pytest
import torch
import torch.nn.functional as F

from snnlab.losses import sdt_loss, tet_loss


def by_hand(O, y, lamb, phi):
    T, B, C = O.shape
    ce = sum(-torch.log_softmax(O[t], -1)[torch.arange(B), y].mean() for t in range(T)) / T
    mse = sum(((O[t] - phi) ** 2).mean() for t in range(T)) / T
    return (1 - lamb) * ce + lamb * mse


@pytest.mark.parametrize("lamb, phi", [(0.0, 1.0), (0.05, 1.0), (0.001, 0.5), (1.0, 2.0)])
def test_tet_matches_formula(lamb, phi):
    torch.manual_seed(0)
    O, y = torch.randn(5, 7, 10, dtype=torch.float64), torch.randint(0, 10, (7,))
    assert torch.allclose(tet_loss(O, y, lamb=lamb, phi=phi), by_hand(O, y, lamb, phi))


def test_sdt_is_ce_of_mean():
    torch.manual_seed(0)
    O, y = torch.randn(4, 6, 3, dtype=torch.float64), torch.randint(0, 3, (6,))
    assert torch.allclose(sdt_loss(O, y), F.cross_entropy(O.mean(0), y))


def test_lamb_zero_is_mean_of_per_step_ce():
    O, y = torch.randn(6, 5, 4, dtype=torch.float64), torch.randint(0, 4, (5,))
    per_step = torch.stack([F.cross_entropy(O[t], y) for t in range(6)])
    assert torch.allclose(tet_loss(O, y, lamb=0), per_step.mean())


def test_lemma_sdt_le_tet_on_many_random_logits():
    g = torch.Generator().manual_seed(0)
    for _ in range(500):
        T, B, C = (int(v) for v in torch.randint(1, 9, (3,), generator=g))
        C += 1
        O = torch.randn(T, B, C, generator=g, dtype=torch.float64) * float(torch.rand(1, generator=g) * 10)
        y = torch.randint(0, C, (B,), generator=g)
        assert sdt_loss(O, y) <= tet_loss(O, y, lamb=0) + 1e-12
    # equality when every step gives the same output
    O = torch.randn(1, 4, 5, dtype=torch.float64).expand(6, 4, 5)
    y = torch.tensor([0, 1, 2, 3])
    assert torch.allclose(sdt_loss(O, y), tet_loss(O, y))


def test_gradient_reweighting():
    """dL_TET/dO(t) = (softmax(O(t)) - y) / (T B); dL_SDT/dO(t) = (softmax(mean O) - y) / (T B)."""
    torch.manual_seed(1)
    T, B, C = 4, 3, 5
    O = torch.randn(T, B, C, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, C, (B,))
    onehot = F.one_hot(y, C).double()
    (g_tet,) = torch.autograd.grad(tet_loss(O, y), O)
    assert torch.allclose(g_tet, (torch.softmax(O, -1) - onehot) / (T * B))
    (g_sdt,) = torch.autograd.grad(sdt_loss(O, y), O)
    expected = (torch.softmax(O.mean(0), -1) - onehot) / (T * B)
    assert torch.allclose(g_sdt, expected.expand(T, B, C))


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "a"])
def test_bad_lambda(bad):
    with pytest.raises(ValueError, match="lamb must be"):
        tet_loss(torch.randn(2, 3, 4), torch.zeros(3, dtype=torch.long), lamb=bad)


@pytest.mark.parametrize("loss", [sdt_loss, tet_loss])
def test_bad_shapes(loss):
    with pytest.raises(ValueError, match=r"outputs must have shape \[T, B, C\], got \(3, 4\)"):
        loss(torch.randn(3, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"target must have shape \[B\] = \[3\].*got \(4,\)"):
        loss(torch.randn(2, 3, 4), torch.zeros(4, dtype=torch.long))
