"""MonteCarlo from Python (issue 16): KernelML's update rule, the history, hooks (prior sampler,
history sampler, transforms, minibatch sampler), exceptions in hooks, and weak intervals."""

import numpy as np
import pytest

import latent


def quad(x):
    return float((x[0] - 1.0) ** 2 + 10.0 * (x[1] + 2.0) ** 2 + (x[2] - 3.0) ** 2)


def small(**kw):
    kw = {"init_samples": 200, "samples": 40, "elite": 8, "seed": 3, **kw}
    return latent.MonteCarlo(3, **kw)


@pytest.mark.parametrize("strategy", ["kernelml", "elitist"])
def test_both_strategies_converge_and_keep_their_history(strategy):
    mc = small(strategy=strategy)
    mc.set_prior("uniform", -4, 4)
    best = mc.minimize(quad)
    assert np.allclose(best, [1, -2, 3], atol=1e-4)
    assert mc.stop_reason == latent.MonteCarloStop.CONVERGED and mc.converged
    h = mc.history()
    assert len(h) == mc.iterations and mc.first_kept_iteration == 0
    for i in range(mc.iterations):
        assert quad(mc.param_by_iter(i)) == h[i]
    with pytest.raises(latent.InvalidArgument):
        mc.param_by_iter(mc.iterations)
    x, loss = mc.records()
    assert x.shape == (loss.size, 3) and loss.size > 0
    assert all(quad(r) == v for r, v in zip(x, loss))
    assert mc.runs == 1 and mc.run_best(0)[1] == mc.best_loss


def test_kernelml_is_the_default_and_strategy_names_are_checked():
    assert latent.MonteCarlo(2)._handle is not None
    assert latent._ffi.lib.latent_montecarlo_params_default().strategy == latent.MonteCarloStrategy.KERNELML
    with pytest.raises(ValueError):
        latent.MonteCarlo(2, strategy="annealing")
    with pytest.raises(latent.InvalidArgument):
        latent.MonteCarlo(2, z_window=1)


@pytest.mark.parametrize(
    "transform, target, ok",
    [
        (lambda b: np.round(b), [1.4, -2.6, 2.51], lambda x: np.all(x == np.round(x))),
        (lambda b: np.abs(b) / np.abs(b).sum(axis=1, keepdims=True), [0.6, 0.3, 0.1],
         lambda x: np.all(x >= 0) and abs(x.sum() - 1) < 1e-12),
        (lambda b: b.sort(axis=1), [-1.0, 0.5, 2.0], lambda x: np.all(np.diff(x) >= 0)),
    ],
    ids=["integer", "simplex", "ordered"],
)
def test_transforms(transform, target, ok):
    seen_bad = []

    def loss(x):
        if not ok(x):
            seen_bad.append(x)
        return float(((x - target) ** 2).sum())

    mc = small()
    mc.set_prior("uniform", -3, 3)
    mc.set_transform(transform)
    best = mc.minimize(loss)
    assert ok(best) and not seen_bad
    nearest = {1.4: [1, -3, 3]}.get(target[0], target)
    assert np.allclose(best, nearest, atol=1e-3)


def test_prior_and_history_samplers():
    calls = []
    mc = small(max_iterations=0)
    mc.set_prior_sampler(lambda count, n, seed: 5.0 + 1e-3 * np.random.default_rng(seed).random((count, n)))
    assert np.allclose(mc.minimize(quad), 5.0, atol=0.01)

    def sampler(view, count, seed):
        calls.append(view)
        assert view.best.shape == (3,) and view.loss_by_iter.size == view.iteration - view.first_kept_iteration
        assert view.records.shape == (view.record_losses.size, 3)
        rng = np.random.default_rng(seed)
        return view.best + (view.spreads + 1e-9) * rng.standard_normal((count, 3))

    mc = small()
    mc.set_sampler(sampler)
    assert np.allclose(mc.minimize(quad), [1, -2, 3], atol=1e-4)
    assert len(calls) == mc.iterations


def test_a_hook_exception_cancels_the_run_and_propagates():
    mc = small()

    def boom(block):
        raise KeyError("from the transform")

    mc.set_transform(boom)
    with pytest.raises(KeyError):
        mc.minimize(quad)
    assert mc.stop_reason == latent.MonteCarloStop.CANCELLED
    mc.set_transform(None)
    mc.minimize(quad)
    assert mc.stop_reason == latent.MonteCarloStop.CONVERGED
    # A prior sampler of NaN only: no feasible candidate.
    mc = small()
    mc.set_prior_sampler(lambda count, n, seed: np.full((count, n), np.nan))
    with pytest.raises(latent.NonFinite):
        mc.minimize(quad)
    assert mc.evaluations == 0


def test_fit_network_priors_and_a_minibatch_sampler():
    rng = np.random.default_rng(0)
    x = rng.random((40, 3)).astype(np.float32)
    net = latent.Network(3, 2, output_activation="identity", loss="mse")
    p = net.params.size
    mc = latent.MonteCarlo(p, max_iterations=0, init_samples=50)
    mc.set_prior("normal", 100.0, 0.001)
    mc.fit_network(net, x)
    assert np.all(np.abs(net.params - 100.0) < 0.005)  # drawn from the priors
    requests = []

    def batches(run, iteration, n_rows, size, seed):
        requests.append((run, iteration))
        return np.random.default_rng(seed).integers(0, n_rows, size)

    net = latent.Network(3, 2, output_activation="identity", loss="mse")
    mc = latent.MonteCarlo(p, max_iterations=4, samples=20, elite=5)
    mc.fit_network(net, x, batch_size=10, runs=2, batch_sampler=batches, batch_every_iteration=True)
    assert len(requests) == mc.iterations and requests[0] == (0, 0) and mc.runs == 2
    with pytest.raises(ValueError):
        mc.fit_network(net, x, batch_size=10, batch_sampler=lambda *a: [0, 1])


def test_weak_intervals_against_ols():
    # y = 1.5 - 0.7 x + N(0, 0.5^2), n = 100; the OLS standard errors against the Laplace fit
    # and against the spread of the bests over 30 runs on half-samples (variance factor 1).
    rng = np.random.default_rng(4)
    n = 100
    x = np.linspace(0, 10, n)
    y = 1.5 - 0.7 * x + 0.5 * rng.standard_normal(n)
    a = np.column_stack([np.ones(n), x])
    coef, sse, *_ = np.linalg.lstsq(a, y, rcond=None)
    se = np.sqrt(np.diag(sse[0] / (n - 2) * np.linalg.inv(a.T @ a)))

    def sse_on(idx):
        xi, yi = x[idx], y[idx]
        return lambda t: float(((yi - t[0] - t[1] * xi) ** 2).sum())

    mc = latent.MonteCarlo(2, init_samples=200, samples=40, elite=8, seed=1)
    mc.set_prior("uniform", -5, 5)
    mc.minimize(sse_on(np.arange(n)))
    lap = mc.laplace(sse_on(np.arange(n)), level=0.95, observations=n)
    assert np.allclose(lap.sd / se, 1, atol=0.1)
    assert lap.covariance.shape == (2, 2) and abs(lap.covariance[1, 1] - lap.sd[1] ** 2) < 1e-15
    runs = latent.MonteCarlo(2, init_samples=200, samples=40, elite=8, seed=2)
    runs.set_prior("uniform", -5, 5)
    for _ in range(30):
        runs.minimize(sse_on(rng.permutation(n)[: n // 2]))
    kml = runs.run_intervals(0.95, 1.0)
    ratio = kml.sd / se
    assert np.all((ratio > 1 / 1.6) & (ratio < 1.6)), ratio
    assert np.all(kml.lower < runs.best) and np.all(runs.best < kml.upper)


def test_a_custom_proposal_from_python():
    calls = []

    def logistic(index, center, scale, u):
        calls.append(index)
        return center + scale * 0.5513288954217921 * np.log(u / (1 - u))

    mc = small(strategy="elitist")
    mc.set_prior("uniform", -4, 4)
    mc.set_proposal("custom", logistic, first=0, count=2)
    assert np.allclose(mc.minimize(quad), [1, -2, 3], atol=1e-4)
    assert calls and set(calls) == {0, 1}

    def broken(index, center, scale, u):
        raise ZeroDivisionError("in the quantile")

    mc = small(strategy="elitist")
    mc.set_proposal("custom", broken)
    with pytest.raises(ZeroDivisionError):
        mc.minimize(quad)
