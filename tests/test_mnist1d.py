"""MNIST-1D (snnlab.data.mnist1d): generated offline by the mnist1d package with its defaults (4,000 / 1,000, seed
42), pinned first samples, both encodings, the caller's random state untouched, clear errors; the 1-D tutorial
model and the MLP train on it through fit."""
import hashlib
import random

import numpy as np
import pytest
import torch

import snnlab
from snnlab.data import mnist1d
from snnlab.models import build_model


def test_generated_split_sizes_balance_and_pinned_samples():
    d = mnist1d.raw()
    assert d["x"].shape == (4000, 40) and d["x_test"].shape == (1000, 40)
    assert np.bincount(d["y"]).tolist() == [398, 396, 411, 394, 394, 402, 401, 404, 402, 398]
    assert d["y"][:10].tolist() == [2, 6, 4, 5, 6, 6, 6, 0, 3, 1]
    np.testing.assert_allclose(d["x"][0, :5], [-0.33200567, -0.47191037, -0.77869708, -1.00974083, -0.88235257],
                               rtol=0, atol=1e-8)
    # standardised over all 5,000 signals
    allx = np.concatenate([d["x"], d["x_test"]])
    assert abs(allx.mean()) < 1e-12 and abs(allx.std() - 1) < 1e-12
    digest = hashlib.sha256(np.ascontiguousarray(d["x"][:100]).tobytes()).hexdigest()
    assert digest == hashlib.sha256(np.ascontiguousarray(mnist1d.raw()["x"][:100]).tobytes()).hexdigest()


def test_the_callers_random_state_is_left_alone():
    mnist1d._make.cache_clear()
    random.seed(5)
    np.random.seed(5)
    a, b = random.random(), np.random.rand()
    random.seed(5)
    np.random.seed(5)
    mnist1d.raw()  # generates (make_dataset seeds the global generators itself)
    assert (random.random(), np.random.rand()) == (a, b)


def test_both_encodings():
    s = snnlab.data.load("mnist1d")
    assert (s.input_shape, s.temporal, s.T, len(s.train), len(s.test)) == ((1, 40), False, None, 4000, 1000)
    x0, y0 = s.train[0]
    q = snnlab.data.load("mnist1d-seq")
    assert (q.input_shape, q.temporal, q.T) == ((1,), True, 40)
    xs, ys = q.train[0]
    assert xs.shape == (40, 1) and torch.equal(xs[:, 0], x0[0]) and ys == y0  # the same signal, one sample per step
    assert "mnist1d-seq" in snnlab.data.TEMPORAL and "mnist1d" in snnlab.data.EMBEDDED


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="'mnist1d' is static, so load\\(\\) takes no T"):
        snnlab.data.load("mnist1d", T=4)
    with pytest.raises(ValueError, match="T must be 40"):
        snnlab.data.load("mnist1d-seq", T=8)
    with pytest.raises(TypeError, match="unknown keyword argument\\(s\\) 'size'"):
        snnlab.data.load("mnist1d", size=3)


def test_models_on_1d_signals():
    x = torch.randn(4, 3, 1, 40)
    assert build_model("tutorial1d", (1, 40), 10)(x).shape == (4, 3, 10)
    assert build_model("mlp", (1, 40), 10)(x).shape == (4, 3, 10)
    assert build_model("mlp", (1,), 10)(torch.randn(40, 3, 1)).shape == (40, 3, 10)
    with pytest.raises(ValueError, match="must be \\(channels, length\\)"):
        build_model("tutorial1d", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="too short"):
        build_model("tutorial1d", (1, 3), 10)
    with pytest.raises(ValueError, match="non-empty tuple of positive sizes"):
        build_model("mlp", (0, 40), 10)


@pytest.mark.parametrize("dataset,model,T", [("mnist1d", "tutorial1d", 4), ("mnist1d-seq", "mlp", 40)])
def test_fit_trains_on_mnist1d(dataset, model, T):
    cfg = snnlab.TrainConfig(dataset=dataset, model=model, T=T, epochs=1, max_batches=5, lr=1e-2, progress=False,
                             device="cpu")
    h = snnlab.fit(cfg)
    assert len(h) == 1 and 0.0 <= h.last["test_acc"] <= 1.0 and np.isfinite(h.last["test_loss"])
