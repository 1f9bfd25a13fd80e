"""The one conformance suite every model adapter passes, built-in or plug-in.

    from tradeloop.training.adapters.conformance import check_adapter
    assert check_adapter(MyAdapter) == []          # or check_adapter(partial(MyAdapter, k=3))

`check_adapter(factory)` runs every check for both tasks and returns the failures as readable
lines (`check[task]: what was wrong`); an empty list means the adapter conforms. `factory` is
the adapter class, or any callable taking `task=` and `seed=` keywords (a `functools.partial`
to shrink a slow model for tests). For one test per check, as scikit-learn's
`parametrize_with_checks` gives, iterate `ADAPTER_CHECKS` and call each check yourself: it
raises `AdapterConformanceError` with the same message.

What it checks: `fit` returns `self` and keeps learned state in `_` attributes; predictions have
one finite float per row and learn a plain signal; the same seed gives the same model and
byte-identical ONNX; the ONNX export has the fixed interface and matches `predict`; bad input
is refused with `BadInput` (NaN labels, wrong shapes, one class); missing features are either
handled in both runtimes or refused; row t's prediction never depends on later rows; and
`get_params`/`clone`/`with_params` round-trip.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable

import numpy as np

from tradeloop.conformance import collect_failures
from tradeloop.errors import BadInput, TradeloopError
from tradeloop.training.adapters.base import ModelAdapter, NotFittedError
from tradeloop.training.adapters.onnx_io import onnx_input_schema, onnx_predict
from tradeloop.training.adapters.schema import INPUT_NAME, OUTPUT_NAME, TASKS, Task

AdapterFactory = Callable[..., ModelAdapter]
N_FEATURES = 6
FEATURES = [f"f{i}" for i in range(N_FEATURES)]
ONNX_ATOL = 1e-5


class AdapterConformanceError(TradeloopError):
    """An adapter broke the contract; the message says which rule and how."""


def dataset(task: Task, n: int = 2400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A learnable signal (two features matter, with noise), on float32 features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    X[:, 5] *= 50.0  # a feature in other units, as RSI is next to returns
    signal = X[:, 0] + 0.5 * X[:, 1] + 0.8 * rng.normal(size=n)
    if task == "classification":
        return X, (signal > 0).astype(np.float64)
    return X, 0.01 * signal


def _expect(ok: bool, message: str) -> None:
    if not ok:
        raise AdapterConformanceError(message)


def _expect_raises(
    error: type[Exception], pattern: str, action: Callable[[], object], doing: str
) -> None:
    try:
        action()
    except error as exc:
        _expect(
            bool(re.search(pattern, str(exc))), f"{doing}: message {str(exc)!r} lacks {pattern!r}"
        )
        return
    except Exception as exc:
        raise AdapterConformanceError(
            f"{doing}: raised {type(exc).__name__} ({exc}), expected {error.__name__}"
        ) from exc
    raise AdapterConformanceError(f"{doing}: no {error.__name__} raised")


def _fitted(factory: AdapterFactory, task: Task, seed: int = 7) -> tuple[ModelAdapter, np.ndarray]:
    """An adapter fitted on the first 2/3 of the data, and the held-out rows."""
    X, y = dataset(task)
    return factory(task=task, seed=seed).fit(X[:1600], y[:1600]), X[1600:]


# -------------------------------------------------------------------------------- the checks


def check_fit_returns_self(factory: AdapterFactory, task: Task) -> None:
    X, y = dataset(task, n=600)
    adapter = factory(task=task, seed=1)
    _expect(isinstance(adapter, ModelAdapter), f"factory made {type(adapter).__name__}")
    learned = sorted(k for k in vars(adapter) if k.endswith("_") and not k.startswith("_"))
    _expect(not learned, f"__init__ set learned state {learned}: only fit may")
    _expect(not adapter.fitted, "a new adapter says it is fitted")
    _expect(adapter.fit(X, y) is adapter, "fit(X, y) must return self")
    _expect(adapter.fitted and adapter.n_features_ == N_FEATURES, "fit did not set n_features_")


def check_predict_shape_and_range(factory: AdapterFactory, task: Task) -> None:
    adapter, X = _fitted(factory, task)
    p = adapter.predict(X)
    _expect(p.shape == (X.shape[0],), f"predict gave shape {p.shape}, want ({X.shape[0]},)")
    _expect(p.dtype == np.float64, f"predict gave {p.dtype}, want float64")
    _expect(bool(np.isfinite(p).all()), "predict gave NaN or inf")
    _expect(np.unique(p).size > 10, "predictions are (nearly) constant")
    if task == "classification":
        _expect(bool(((p >= 0) & (p <= 1)).all()), "a probability outside [0, 1]")


def check_learns_a_simple_signal(factory: AdapterFactory, task: Task) -> None:
    X, y = dataset(task)
    p = factory(task=task, seed=7).fit(X[:1600], y[:1600]).predict(X[1600:])
    truth = y[1600:]
    if task == "classification":
        hit = float(np.mean((p > 0.5) == (truth > 0.5)))
        _expect(hit > 0.7, f"held-out accuracy {hit:.3f} <= 0.7 on a plain signal")
    else:
        hit = float(np.mean(np.sign(p) == np.sign(truth)))
        corr = float(np.corrcoef(p, truth)[0, 1])
        _expect(hit > 0.7 and corr > 0.6, f"held-out sign hit {hit:.3f}, corr {corr:.3f}")


def check_same_seed_same_model(factory: AdapterFactory, task: Task) -> None:
    X, y = dataset(task, n=1200, seed=3)
    a = factory(task=task, seed=11).fit(X[:800], y[:800])
    b = factory(task=task, seed=11).fit(X[:800], y[:800])
    _expect(np.array_equal(a.predict(X[800:]), b.predict(X[800:])), "same seed, other predictions")
    # the registry identifies a model by its ONNX sha256
    _expect(a.to_onnx(FEATURES) == b.to_onnx(FEATURES), "same seed, other ONNX bytes")


def check_unfitted_is_a_clear_error(factory: AdapterFactory, task: Task) -> None:
    adapter = factory(task=task, seed=1)
    _expect_raises(
        NotFittedError,
        r"not fitted: call fit\(X, y\) before predict",
        lambda: adapter.predict(np.zeros((3, N_FEATURES), dtype=np.float32)),
        "predict before fit",
    )
    _expect_raises(NotFittedError, "before to_onnx", lambda: adapter.to_onnx(FEATURES), "export")


def check_onnx_parity(factory: AdapterFactory, task: Task) -> None:
    adapter, X = _fitted(factory, task)
    exported = onnx_predict(adapter.to_onnx(FEATURES), X)
    _expect(exported.dtype == np.float32, f"ONNX gave {exported.dtype}, want float32")
    gap = float(np.max(np.abs(exported - adapter.predict(X))))
    _expect(gap <= ONNX_ATOL, f"ONNX differs from predict by up to {gap:.2e} > {ONNX_ATOL}")


def check_onnx_interface(factory: AdapterFactory, task: Task) -> None:
    import onnx
    import onnxruntime as ort

    adapter, X = _fitted(factory, task)
    blob = adapter.to_onnx(FEATURES)
    sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    ins, outs = sess.get_inputs(), sess.get_outputs()
    _expect(len(ins) == 1 and len(outs) == 1, "the ONNX model needs one input and one output")
    inp, out = ins[0], outs[0]
    got = (inp.name, inp.type, inp.shape[1])
    _expect(got == (INPUT_NAME, "tensor(float)", N_FEATURES), f"ONNX input is {got}")
    _expect(not isinstance(inp.shape[0], int), "the ONNX batch dimension must be free")
    got = (out.name, out.type, len(out.shape))
    _expect(got == (OUTPUT_NAME, "tensor(float)", 1), f"ONNX output is {got}")
    for rows in (7, 1):
        (pred,) = sess.run(None, {INPUT_NAME: X[:rows]})
        _expect(pred.shape == (rows,), f"ONNX gave shape {pred.shape} for {rows} rows")
    onnx.checker.check_model(onnx.load_from_string(blob))
    schema = onnx_input_schema(blob)
    _expect(schema.feature_names == tuple(FEATURES), "ONNX carries the wrong feature names")
    want = "probability" if task == "classification" else "value"
    _expect(schema.output == want, f"ONNX schema says output {schema.output!r}, want {want!r}")


def check_describe_is_json(factory: AdapterFactory, task: Task) -> None:
    adapter, _ = _fitted(factory, task)
    d = json.loads(json.dumps(adapter.describe()))
    _expect(d["type"] == adapter.model_type and d["task"] == task, f"describe() says {d}")
    _expect(d["fitted"] is True and d["n_features"] == N_FEATURES, f"describe() says {d}")
    _expect(d["params"] == adapter.params, "describe()['params'] differs from params")


def check_params_round_trip(factory: AdapterFactory, task: Task) -> None:
    X, y = dataset(task, n=400)
    adapter = factory(task=task, seed=5).fit(X, y)
    params = adapter.get_params()
    twin = type(adapter)(**params)
    _expect(twin.get_params() == params, "type(a)(**a.get_params()) has other params")
    for other, how in ((adapter.clone(), "clone()"), (adapter.with_params(), "with_params()")):
        _expect(type(other) is type(adapter) and other is not adapter, f"{how} is no new twin")
        _expect(other.get_params() == params, f"{how} changed the params")
        _expect(not other.fitted and other.describe()["fitted"] is False, f"{how} is fitted")
    _expect(adapter.fitted, "clone() unfitted the original")
    _expect_raises(
        BadInput,
        r"unknown .* parameters \['bogus'\]",
        lambda: adapter.with_params(bogus=1),
        "with_params(bogus=1)",
    )


def check_bad_input_is_refused(factory: AdapterFactory, task: Task) -> None:
    X, y = dataset(task, n=300)
    adapter = factory(task=task, seed=5)
    nan_y = y.copy()
    nan_y[10] = np.nan
    refused: list[tuple[str, Callable[[], object], str]] = [
        ("300 rows but y has 299", lambda: adapter.fit(X, y[:-1]), "y one row short"),
        ("2-D", lambda: adapter.fit(X[:, 0], y), "1-D X"),
        ("NaN or inf", lambda: adapter.fit(X, nan_y), "a NaN label"),
        ("zero rows", lambda: adapter.fit(X[:0], y[:0]), "no rows"),
    ]
    if task == "classification":
        refused.append(("both classes", lambda: adapter.fit(X, np.ones(300)), "one class"))
        refused.append(("0 or 1", lambda: adapter.fit(X, y * 2), "labels 0 and 2"))
    for pattern, action, doing in refused:
        _expect_raises(BadInput, pattern, action, f"fit with {doing}")
    adapter.fit(X, y)
    _expect_raises(
        BadInput,
        "X has 5 features, the model was fitted on 6",
        lambda: adapter.predict(X[:, :5]),
        "predict on 5 of 6 features",
    )
    _expect_raises(
        BadInput, "5 feature names given", lambda: adapter.to_onnx(FEATURES[:5]), "5 names"
    )


def check_missing_features(factory: AdapterFactory, task: Task) -> None:
    """NaN features: handled identically in both runtimes (`allows_nan`), or refused."""
    X, y = dataset(task)
    adapter = factory(task=task, seed=2)
    if not adapter.allows_nan:
        X = X[:200].copy()
        X[3, 2] = np.nan
        _expect_raises(BadInput, "1 rows hold NaN", lambda: adapter.fit(X, y[:200]), "NaN X")
        return
    X[np.random.default_rng(1).random(X.shape) < 0.1] = np.nan  # warm-up gaps
    adapter.fit(X[:1600], y[:1600])
    native = adapter.predict(X[1600:])
    _expect(bool(np.isfinite(native).all()), "NaN features gave a NaN prediction")
    gap = float(np.max(np.abs(onnx_predict(adapter.to_onnx(FEATURES), X[1600:]) - native)))
    _expect(gap <= ONNX_ATOL, f"with NaN features ONNX differs from predict by {gap:.2e}")


def check_no_look_ahead(factory: AdapterFactory, task: Task) -> None:
    """Row t's prediction is a function of row t: later rows (the future) change nothing."""
    adapter, X = _fitted(factory, task)
    cut = X.shape[0] // 2
    later = X.copy()
    later[cut:] = np.random.default_rng(99).normal(size=later[cut:].shape).astype(np.float32) * 9
    whole = adapter.predict(X)
    _expect(
        np.array_equal(adapter.predict(later)[:cut], whole[:cut]),
        "changing later rows moved earlier predictions",
    )
    _expect(
        np.array_equal(adapter.predict(X[:cut]), whole[:cut]),
        "predictions depend on the batch's length",
    )
    blob = adapter.to_onnx(FEATURES)
    _expect(
        np.array_equal(onnx_predict(blob, later)[:cut], onnx_predict(blob, X)[:cut]),
        "in ONNX, changing later rows moved earlier predictions",
    )


def check_explainer(factory: AdapterFactory, task: Task) -> None:
    """No explainer is allowed; one that exists sums to the raw score whose link is `predict`."""
    from tradeloop.evaluation.explain import Explainer, encode

    model, X = _fitted(factory, task)
    doc = model.explainer_doc(FEATURES)
    if doc is None:
        return
    try:
        att = Explainer.from_bytes(encode(doc)).explain(X[:200])
    except BadInput as exc:
        raise AdapterConformanceError(f"explainer_doc is not a usable explainer: {exc}") from exc
    gap = float(np.max(np.abs(att.base + att.values.sum(axis=1) - att.raw)))
    _expect(gap < 1e-9, f"attributions + base miss the raw score by {gap:.3g}")
    diff = float(np.max(np.abs(att.score() - model.predict(X[:200]))))
    _expect(diff < ONNX_ATOL, f"link(raw score) differs from predict() by {diff:.3g}")


ADAPTER_CHECKS: dict[str, Callable[[AdapterFactory, Task], None]] = {
    f.__name__.removeprefix("check_"): f
    for f in (
        check_fit_returns_self,
        check_predict_shape_and_range,
        check_learns_a_simple_signal,
        check_same_seed_same_model,
        check_unfitted_is_a_clear_error,
        check_onnx_parity,
        check_onnx_interface,
        check_describe_is_json,
        check_params_round_trip,
        check_bad_input_is_refused,
        check_missing_features,
        check_no_look_ahead,
        check_explainer,
    )
}


def check_adapter(factory: AdapterFactory, tasks: tuple[Task, ...] = TASKS) -> list[str]:
    """Every check for every task; the failures as `check[task]: message` (empty: conforms)."""
    checks = {name: functools.partial(check, factory) for name, check in ADAPTER_CHECKS.items()}
    return collect_failures(checks, {task: task for task in tasks}, AdapterConformanceError)


__all__ = [
    "ADAPTER_CHECKS",
    "AdapterConformanceError",
    "AdapterFactory",
    "check_adapter",
    "dataset",
]
