"""Per-feature attributions of a model's raw score, from a JSON explainer document.

Serving runs ONNX, which carries no attributions, so training stores an explainer beside it
(`explainer.json`, sha256 in the version's `explainer_sha256` tag), built from the fitted model
without pickle:

- `lightgbm`: the booster's own model text; attributions are TreeSHAP, LightGBM's
  `predict(pred_contrib=True)` (exact Shapley values of the trees, plus the expected value);
- `linear`: the scaler's mean and scale and the coefficients; attribution_j = coef_j × z_j
  with z_j = (x_j − mean_j) / scale_j, and the intercept as the base value.

Either way `base_value + sum(attributions) == raw_score` exactly, and the model's output is
`link(raw_score)`: the logistic function for a classifier (the raw score is log-odds), the
identity for a regressor.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tradeloop.errors import BadInput

Link = Literal["logit", "identity"]
KINDS = ("lightgbm", "linear")


def encode(doc: dict[str, Any]) -> bytes:
    """The canonical bytes of an explainer document (what its sha256 is taken over)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Attribution:
    """Rows x features attributions, the base value and the raw score per row."""

    feature_names: tuple[str, ...]
    values: np.ndarray  # [N, F]
    base: np.ndarray  # [N]
    raw: np.ndarray  # [N]
    link: Link

    def score(self) -> np.ndarray:
        """The model's output: link(raw score)."""
        if self.link == "logit":
            return np.asarray(1.0 / (1.0 + np.exp(-self.raw)))
        return self.raw

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-ready explanation per row."""
        scores = self.score()
        return [
            {
                "base_value": float(self.base[i]),
                "raw_score": float(self.raw[i]),
                "score": float(scores[i]),
                "link": self.link,
                "attributions": dict(
                    zip(self.feature_names, (float(v) for v in self.values[i]), strict=True)
                ),
            }
            for i in range(self.values.shape[0])
        ]


class Explainer:
    """Attributions for one model version, from its explainer document."""

    def __init__(self, doc: dict[str, Any]) -> None:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind not in KINDS:
            raise BadInput(f"explainer kind must be one of {list(KINDS)}, got {kind!r}")
        names = doc.get("feature_names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BadInput("explainer needs feature_names, a list of strings")
        link = doc.get("link")
        if link not in ("logit", "identity"):
            raise BadInput(f"explainer link must be 'logit' or 'identity', got {link!r}")
        self.kind: str = kind
        self.feature_names = tuple(names)
        self.link: Link = link
        self._doc = doc
        self._booster: Any = None
        if kind == "linear":
            self._linear = {
                k: np.asarray(doc[k], dtype=np.float64) for k in ("mean", "scale", "coef")
            }
            self._intercept = float(doc["intercept"])
            if any(v.shape != (len(names),) for v in self._linear.values()):
                raise BadInput("linear explainer: mean, scale and coef need one value per feature")

    @classmethod
    def from_bytes(cls, data: bytes) -> Explainer:
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise BadInput(f"explainer is not JSON: {exc}") from exc
        return cls(doc)

    def explain(self, X: np.ndarray) -> Attribution:
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise BadInput(
                f"explain needs [N, {len(self.feature_names)}] features, got shape {x.shape}"
            )
        if self.kind == "linear":
            lin = self._linear
            values = lin["coef"] * (x - lin["mean"]) / lin["scale"]
            base = np.full(x.shape[0], self._intercept)
        else:
            out = np.asarray(self._tree_booster().predict(x, pred_contrib=True), dtype=np.float64)
            values, base = out[:, :-1], out[:, -1]
        raw = base + values.sum(axis=1)
        return Attribution(self.feature_names, values, base, raw, self.link)

    def _tree_booster(self) -> Any:
        if self._booster is None:
            import lightgbm as lgb

            self._booster = lgb.Booster(model_str=self._doc["model"])
        return self._booster


def global_importance(attribution: Attribution) -> list[dict[str, Any]]:
    """Mean |attribution| (and mean signed attribution) per feature, largest first."""
    mean_abs = np.abs(attribution.values).mean(axis=0)
    mean = attribution.values.mean(axis=0)
    total = float(mean_abs.sum())
    rows = [
        {
            "feature": name,
            "mean_abs": float(a),
            "mean": float(m),
            "share": float(a / total) if total > 0 and math.isfinite(total) else 0.0,
        }
        for name, a, m in zip(attribution.feature_names, mean_abs, mean, strict=True)
    ]
    return sorted(rows, key=lambda r: -r["mean_abs"])
