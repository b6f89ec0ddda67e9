"""The configurations `stress.ranking` tests, and the scenario of one seeded case."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stress.ranking import _scenarios as scenarios
from stress.ranking._scenarios import FAMILIES

Scenario = dict[str, Any]


@dataclass(frozen=True)
class Config:
    """The manager under test and its options."""

    subject: str  # "safeckpt", or "tf" for plain tf.train.CheckpointManager
    max_to_keep: int | None
    verify: str

    @property
    def label(self) -> str:
        """Short name for tables."""
        return f"{self.subject}/keep={self.max_to_keep}/{self.verify}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"subject": self.subject, "max_to_keep": self.max_to_keep, "verify": self.verify}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """Inverse of `to_dict`."""
        return cls(d["subject"], d["max_to_keep"], d["verify"])


CONFIGS = tuple(Config("safeckpt", k, v) for k in (None, 1, 2, 3) for v in ("quick", "deep"))
BASELINE = (Config("tf", None, "none"), Config("tf", 2, "none"))


def make_scenario(seed: int, case: int, configs: Sequence[Config] = CONFIGS) -> Scenario:
    """Case ``case`` of ``seed``: the same scenario every time."""
    rng = random.Random(f"{seed}:{case}")
    family = rng.choice(FAMILIES)
    config = rng.choice(list(configs))
    ops = scenarios.generate(rng, family)
    return {"family": family, "seed": seed, "case": case, "config": config.to_dict(), "ops": ops}
