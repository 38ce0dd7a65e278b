"""Policy: thresholds per metric that turn a scorecard into pass / warn / fail.

A policy is a YAML file::

    metrics:
      quality.exact_duplicate_rate: {warn_above: 0.02, fail_above: 0.10}
      quality.knn_precision:        {warn_below: 0.70, fail_below: 0.50}
    missing: warn          # a graded metric that could not be computed: pass | warn | fail

Each rule grades one metric (keys as in :mod:`synthscope.scorecard.metrics`): ``fail`` when
``value > fail_above`` (or ``< fail_below``), else ``warn`` when past a ``warn_``
bound, else ``pass``. A metric the policy does not name is shown but not graded
(``info``). A section's grade is its worst metric's, the dataset version's the
worst section's. :data:`DEFAULT_POLICY` is what synthscope uses when none is
given; ``synthscope policy`` prints it as a starting point.

A policy with a typo must not pass silently: an unknown metric key, an unknown
bound, a bound that is not a finite number (``nan`` would turn the gate off), a key
that is not a name, or a warn bound looser than its fail bound is an error that
names the file and line.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.constructor import SafeConstructor

PASS, WARN, FAIL, INFO = "pass", "warn", "fail", "info"
ORDER = {INFO: 0, PASS: 1, WARN: 2, FAIL: 3}
BOUNDS = ("warn_above", "fail_above", "warn_below", "fail_below")
_STR, _INT, _FLOAT = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float"))

DEFAULT_POLICY = """\
# synthscope policy: thresholds per metric -> pass / warn / fail.
# fail when value > fail_above (or < fail_below); warn when past a warn_ bound; else pass.
# Metrics not named here are shown but not graded.
metrics:
  # contamination: share of a benchmark's items this dataset version contaminates (worst benchmark)
  contamination.contaminated_share: {warn_above: 0.0, fail_above: 0.01}
  quality.exact_duplicate_rate:     {warn_above: 0.02, fail_above: 0.10}
  quality.near_duplicate_rate:      {warn_above: 0.05, fail_above: 0.20}
  quality.invalid_rate:             {warn_above: 0.01, fail_above: 0.05}
  quality.knn_precision:            {warn_below: 0.70, fail_below: 0.50}
  quality.structure_jsd:            {warn_above: 0.10, fail_above: 0.30}
  bias.cluster_tvd:                 {warn_above: 0.20, fail_above: 0.40}
  bias.attribute_tvd_max:           {warn_above: 0.20, fail_above: 0.40}
  privacy.pii_replay_rate:          {warn_above: 0.0, fail_above: 0.05}
  privacy.near_copy_share:          {warn_above: 0.01, fail_above: 0.05}
  privacy.dcr_protection:           {warn_below: 0.80, fail_below: 0.50}
  privacy.mia_auroc:                {warn_above: 0.60, fail_above: 0.70}
# a graded metric that could not be computed (no reference, no holdout, ...): pass | warn | fail
missing: warn
"""


class PolicyError(ValueError):
    """The policy file is not valid; the message names the file and line."""


@dataclass(frozen=True)
class Rule:
    key: str
    warn_above: float | None = None
    fail_above: float | None = None
    warn_below: float | None = None
    fail_below: float | None = None

    def grade(self, value: float) -> str:
        if self.fail_above is not None and value > self.fail_above:
            return FAIL
        if self.fail_below is not None and value < self.fail_below:
            return FAIL
        if self.warn_above is not None and value > self.warn_above:
            return WARN
        if self.warn_below is not None and value < self.warn_below:
            return WARN
        return PASS

    def describe(self) -> str:
        """``warn > 0.02, fail > 0.1``: the rule in a few characters."""
        parts = [f"{name.split('_')[0]} {'>' if name.endswith('above') else '<'} {getattr(self, name):g}"
                 for name in BOUNDS if getattr(self, name) is not None]
        return ", ".join(parts)


@dataclass(frozen=True)
class Policy:
    rules: dict[str, Rule] = field(default_factory=dict)
    missing: str = WARN
    source: str = "default policy"  # the file it came from
    text: str = ""

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    def grade(self, key: str, value: float) -> str:
        rule = self.rules.get(key)
        if rule is None:
            return INFO
        if value is None or math.isnan(value):
            return self.missing
        return rule.grade(value)


def worst(grades: list[str]) -> str:
    """The worst of ``grades`` (fail > warn > pass > info); ``info`` when there are none."""
    return max(grades, key=ORDER.__getitem__, default=INFO)


def parse(text: str, source: str = "policy", known_keys: set[str] | None = None) -> Policy:
    """A policy from YAML ``text``; ``known_keys`` (every metric the sections produce) catches typos."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
    if root is None:
        raise PolicyError(f"{source}: the policy is empty; it needs a `metrics:` mapping")

    def where(node: yaml.Node) -> str:
        return f"{source}:{node.start_mark.line + 1}"

    if not isinstance(root, yaml.MappingNode):
        raise PolicyError(f"{where(root)}: a policy is a mapping with `metrics:` (and optionally `missing:`)")
    rules: dict[str, Rule] = {}
    missing = WARN
    for key_node, value_node in root.value:
        name = _name(key_node, where, "a setting")
        if name == "missing":
            if not isinstance(value_node, yaml.ScalarNode) or value_node.value not in (PASS, WARN, FAIL):
                raise PolicyError(f"{where(value_node)}: `missing` must be pass, warn or fail, "
                                  f"not {_shown(value_node)}")
            missing = value_node.value
        elif name == "metrics":
            if not isinstance(value_node, yaml.MappingNode):
                raise PolicyError(f"{where(value_node)}: `metrics` must map metric keys to their bounds")
            for metric_node, bounds_node in value_node.value:
                rule = _rule(metric_node, bounds_node, where, known_keys)
                if rule.key in rules:
                    raise PolicyError(f"{where(metric_node)}: {rule.key} is given twice")
                rules[rule.key] = rule
        else:
            raise PolicyError(f"{where(key_node)}: unknown setting {name!r}; a policy has `metrics` and `missing`")
    return Policy(rules, missing, source, text)


def _shown(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return repr(node.value) if node.tag == _STR else node.value
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"


def _name(node: yaml.Node, where, what: str) -> str:
    """The text of a key that must be a plain name (not a number, a list, a mapping)."""
    if not isinstance(node, yaml.ScalarNode) or node.tag != _STR:
        raise PolicyError(f"{where(node)}: {what} must be a name, not {_shown(node)}")
    return node.value


def _number(node: yaml.Node) -> float | None:
    """A YAML number as a float (``1e-3`` too, which YAML 1.1 reads as text); None for anything else."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    if node.tag in (_INT, _FLOAT):
        return float(SafeConstructor().construct_object(node))
    if node.tag == _STR and node.style is None:  # unquoted
        try:
            return float(node.value)
        except ValueError:
            return None
    return None


def _rule(metric_node: yaml.Node, bounds_node: yaml.Node, where, known_keys: set[str] | None) -> Rule:
    key = _name(metric_node, where, "a metric key")
    if known_keys is not None and key not in known_keys:
        close = sorted(k for k in known_keys if k.split(".")[0] == key.split(".")[0]) or sorted(known_keys)
        raise PolicyError(f"{where(metric_node)}: unknown metric {key!r}; known: {', '.join(close)}")
    if not isinstance(bounds_node, yaml.MappingNode) or not bounds_node.value:
        raise PolicyError(f"{where(bounds_node)}: {key} needs bounds such as {{warn_above: 0.02, fail_above: 0.1}}")
    bounds: dict[str, float] = {}
    for bound_node, number_node in bounds_node.value:
        bound = _name(bound_node, where, f"a bound of {key}")
        if bound not in BOUNDS:
            raise PolicyError(f"{where(bound_node)}: unknown bound {bound!r} for {key}; use {', '.join(BOUNDS)}")
        if bound in bounds:
            raise PolicyError(f"{where(bound_node)}: {key}.{bound} is given twice")
        number = _number(number_node)
        if number is None or not math.isfinite(number):
            raise PolicyError(f"{where(number_node)}: {key}.{bound} must be a finite number, "
                              f"not {_shown(number_node)}")
        bounds[bound] = number
    rule = Rule(key, **bounds)
    if rule.warn_above is not None and rule.fail_above is not None and rule.warn_above > rule.fail_above:
        raise PolicyError(f"{where(metric_node)}: {key}: warn_above {rule.warn_above:g} is above fail_above "
                          f"{rule.fail_above:g}, so it could never warn")
    if rule.warn_below is not None and rule.fail_below is not None and rule.warn_below < rule.fail_below:
        raise PolicyError(f"{where(metric_node)}: {key}: warn_below {rule.warn_below:g} is below fail_below "
                          f"{rule.fail_below:g}, so it could never warn")
    return rule


def load(path: str | Path | None, known_keys: set[str] | None = None) -> Policy:
    """The policy in ``path``, or :data:`DEFAULT_POLICY` when ``path`` is None."""
    if path is None:
        return parse(DEFAULT_POLICY, "default policy", known_keys)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy {path}: {exc.strerror or exc}") from exc
    return parse(text, str(path), known_keys)
