"""The demo runs end to end (with small networks) and prints its table."""

import functools

import pytest

from deepcluster_sk import demo

TINY = dict(hidden_layer_sizes=(32,), pretrain_epochs=3, max_epochs=2)


def test_demo_prints_all_methods_and_saves_figure(monkeypatch, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(demo, "DeepFuzzyCMeans", functools.partial(demo.DeepFuzzyCMeans, **TINY))
    monkeypatch.setattr(demo, "DeepMEC", functools.partial(demo.DeepMEC, **TINY))
    figure = tmp_path / "demo.png"
    demo.main(["--quiet", "--figure", str(figure)])
    out = capsys.readouterr().out
    for method in ("KMeans (raw pixels)", "fuzzy c-means (raw pixels)", "DeepFuzzyCMeans", "DeepMEC"):
        assert f"| {method} |" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "ACC" not in line]
    for line in rows:
        acc = float(line.split("|")[2])
        assert 0.0 <= acc <= 1.0
    assert figure.stat().st_size > 10_000


def test_format_table_has_one_line_per_row():
    rows = [{"method": "m", "acc": 0.5, "nmi": 0.25, "ari": 0.125, "fit_s": 1.0}]
    table = demo.format_table(rows).splitlines()
    assert table[-1] == "| m | 0.500 | 0.250 | 0.125 | 1.0 |"
