"""What every loss term shares (losses/_term.py): name, needs, weight, weighted_sum."""

import math

import pytest
import torch

from deepcluster_sk.losses import (
    Clustering,
    LossTerm,
    NeighborConsistency,
    NTXent,
    Reconstruction,
    ViewConsistency,
    weighted_sum,
)
from deepcluster_sk.memberships import FuzzyCMeansRule

RULE = FuzzyCMeansRule(2.0)

#: Each term: a factory taking the weight, its name and the outputs it reads.
TERMS = {
    "Reconstruction": (lambda w: Reconstruction(w), "recon", {"reconstruction"}),
    "NTXent": (lambda w: NTXent(w), "contrastive", {"projections"}),
    "Clustering": (lambda w: Clustering(RULE, weight=w), "cluster", {"distances"}),
    "ViewConsistency": (lambda w: ViewConsistency(RULE, weight=w), "consistency", {"distances", "view_distances"}),
    "NeighborConsistency": (lambda w: NeighborConsistency(RULE, weight=w), "neighbor",
                            {"distances", "neighbor_distances"}),
}


@pytest.mark.parametrize("term", list(TERMS))
def test_each_term_has_its_name_and_needs(term):
    factory, name, needs = TERMS[term]
    obj = factory(0.5)
    assert isinstance(obj, LossTerm)
    assert obj.name == name and obj.needs == frozenset(needs)
    assert obj.weight == 0.5 and type(obj.weight) is float
    assert "weight=0.5" in repr(obj)


@pytest.mark.parametrize("weight", [-0.1, math.nan, "1", None, True, [1.0]])
@pytest.mark.parametrize("term", list(TERMS))
def test_each_term_rejects_a_bad_weight(term, weight):
    with pytest.raises(ValueError, match=r"weight must be a non-negative number"):
        TERMS[term][0](weight)


@pytest.mark.parametrize("term", list(TERMS))
def test_each_term_accepts_zero_and_integer_weights(term):
    assert TERMS[term][0](0).weight == 0.0
    assert TERMS[term][0](2).weight == 2.0


def test_term_names_are_unique():
    names = [name for _, name, _ in TERMS.values()]
    assert len(set(names)) == len(names)


class _Mean(LossTerm):
    name, needs = "mean", frozenset({"embedding"})

    def forward(self, out):
        return out["embedding"].mean()


class _Max(LossTerm):
    name, needs = "max", frozenset({"embedding"})

    def forward(self, out):
        return out["embedding"].max()


def test_weighted_sum_returns_each_term_and_the_float32_total():
    out = {"embedding": torch.tensor([[1.0, 3.0]], dtype=torch.bfloat16)}
    values = weighted_sum([_Mean(0.5), _Max(2.0)], out)
    assert set(values) == {"mean", "max", "loss"}
    assert values["mean"].item() == 2.0 and values["max"].item() == 3.0
    assert values["loss"].dtype == torch.float32
    assert values["loss"].item() == pytest.approx(0.5 * 2.0 + 2.0 * 3.0)
