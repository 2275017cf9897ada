"""The documentation builds without a single warning, and covers the API.

The Sphinx build runs the gallery (``examples/``), so it also checks that
every example runs. It builds a copy of ``docs/`` and ``examples/`` in a
temporary directory, leaving the source tree untouched.
"""

import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: The workspace's data folder, ``../shared/data`` beside the repository.
WORKSPACE_DATA = ROOT.parent / "shared" / "data"
API_MODULES = [
    "deepcluster_sk",
    "deepcluster_sk.metrics",
    "deepcluster_sk.memberships",
    "deepcluster_sk.losses",
    "deepcluster_sk.augment",
    "deepcluster_sk.initialization",
    "deepcluster_sk.networks",
    "deepcluster_sk.datasets",
    "deepcluster_sk.plotting",
    "deepcluster_sk.baselines",
    "deepcluster_sk.parallel",
]


def _documented_names():
    """``module -> names`` listed in autosummary tables of api.rst."""
    names, module = {}, None
    for line in (DOCS / "api.rst").read_text().splitlines():
        found = re.match(r"\.\. currentmodule:: (\S+)", line)
        if found:
            module = found.group(1)
        elif module and re.match(r"   [A-Za-z_]\w*$", line):
            names.setdefault(module, set()).add(line.strip())
    return names


@pytest.mark.parametrize("module_name", API_MODULES)
def test_api_reference_lists_every_public_name(module_name):
    module = importlib.import_module(module_name)
    documented = _documented_names().get(module_name, set())
    missing = sorted(set(module.__all__) - documented)
    assert not missing, f"add to docs/api.rst under {module_name}: {missing}"


#: Public methods every estimator inherits from scikit-learn's plumbing and
#: that the API pages leave out on purpose (docs/_templates/autosummary/estimator.rst).
SKLEARN_PLUMBING = {"set_output", "get_metadata_routing"}
ESTIMATORS = ["DeepFuzzyCMeans", "DeepMEC", "ContrastiveEmbedder"]
#: A set of choices with doubled braces, {{'mlp', 'cnn'}} (LaTeX's "}}" is fine);
#: in HTML the quotes are typographic
DOUBLED_BRACES = re.compile(r"\{\{(?:'|&#x27;|&#39;|\u2018)|(?:'|&#x27;|&#39;|\u2019)\}\}")


def _public_methods(cls):
    return sorted(
        name for name, value in inspect.getmembers(cls)
        if callable(value) and not name.startswith("_") and not inspect.isclass(value)
        and name not in SKLEARN_PLUMBING and not re.fullmatch(r"set_\w+_request", name)
    )


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_docstrings_have_single_braces(name):
    # the shared parameter text is pasted into f-strings: help() must show
    # {'mlp', 'cnn'}, not {{'mlp', 'cnn'}}
    import deepcluster_sk

    doc = getattr(deepcluster_sk, name).__doc__
    assert not DOUBLED_BRACES.search(doc), DOUBLED_BRACES.search(doc)
    choices = "{'mlp', 'cnn'}" if name == "ContrastiveEmbedder" else "{'auto', 'mlp', 'cnn'}"
    assert choices in doc


@pytest.mark.parametrize("name", ["DeepFuzzyCMeans", "DeepMEC"])
def test_clusterer_notes_are_maths_in_the_user_guide_notation(name):
    import deepcluster_sk

    notes = getattr(deepcluster_sk, name).__doc__.split("Notes\n    -----", 1)[1].split("Examples\n", 1)[0]
    assert ".. math::" in notes
    assert ":math:`v_j`" in notes and "c_j" not in notes  # centres v_j, as in user_guide/objectives.rst


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    """Build a copy of the docs once for the tests below: ``(process, html folder)``."""
    pytest.importorskip("sphinx", reason="building the docs needs the 'docs' extra: pip install -e '.[docs]'")
    for extension in ("numpydoc", "sphinx_gallery", "myst_parser", "pydata_sphinx_theme", "matplotlib"):
        pytest.importorskip(extension, reason=f"building the docs needs {extension} (extra 'docs')")

    tmp_path = tmp_path_factory.mktemp("docs_build")
    # build a copy: the gallery and autosummary write into the source tree
    generated = shutil.ignore_patterns("_build", "generated", "auto_examples", "sg_execution_times.rst")
    shutil.copytree(DOCS, tmp_path / "docs", ignore=generated)
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")  # docs/results.md includes its results
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)  # the SignalToImage page includes its tables
    for table in (ROOT / "benchmarks" / "results").glob("*.rst"):
        shutil.copy(table, tmp_path / "benchmarks" / "results")
    out = tmp_path / "html"
    # document this checkout's package, whatever else is installed
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONPATH=pythonpath)
    if (WORKSPACE_DATA / "bloodmnist.npz").is_file():  # the BloodMNIST example's data; left out without it
        env.setdefault("DEEPCLUSTER_SK_DATA", str(WORKSPACE_DATA))
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(tmp_path / "docs"), str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    return proc, out


def _html(built_docs, page):
    proc, out = built_docs
    assert proc.returncode == 0, "the docs build failed: see test_docs_build_without_warnings"
    return (out / page).read_text()


def test_docs_build_without_warnings(built_docs):
    proc, out = built_docs
    assert proc.returncode == 0, f"sphinx -W failed:\n{proc.stderr[-6000:]}\n{proc.stdout[-2000:]}"

    pages = ["index.html", "api.html", "install.html", "results.html", "changelog.html", "citing.html",
             "user_guide/index.html", "user_guide/objectives.html", "user_guide/model_selection.html",
             "generated/deepcluster_sk.DeepFuzzyCMeans.html",
             "generated/deepcluster_sk.plotting.plot_embedding.html"]
    if (DOCS / "robustness.md").is_file():  # written separately; in the user guide once it exists
        pages.append("robustness.html")
    for page in pages:
        assert (out / page).is_file(), page
    examples = sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py"))
    data = Path(os.environ.get("DEEPCLUSTER_SK_DATA") or WORKSPACE_DATA)
    if not (data / "bloodmnist.npz").is_file():
        examples.remove("plot_bloodmnist_cells")  # conf.py leaves it out without its data
    assert examples
    for name in examples:
        html = (out / "auto_examples" / f"{name}.html").read_text()
        assert "sphx-glr-single-img" in html or "sphx-glr-multi-img" in html, f"{name} drew no figure"
        # what a reader should not see in an example's code or output
        for junk in ("&lt;Axes", "&lt;Figure", "np.float64", "noqa", "sphinx_gallery_"):
            assert junk not in html, f"{name}: {junk}"
    # the quickstart comes first in the gallery
    gallery = (out / "auto_examples" / "index.html").read_text()
    order = [m for m in re.findall(r'href="(plot_\w+)\.html', gallery)]
    assert order[0] == "plot_digits_quickstart", order


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_page_documents_public_methods(built_docs, name):
    import deepcluster_sk

    html = _html(built_docs, f"generated/deepcluster_sk.{name}.html")
    methods = _public_methods(getattr(deepcluster_sk, name))
    assert {"fit", "transform", "get_params", "set_params"} <= set(methods)
    missing = [m for m in methods if f'id="deepcluster_sk.{name}.{m}"' not in html]
    assert not missing, f"the API page of {name} does not document {missing}"
    assert f"Examples using <code" in html and "sphx-glr-thumbcontainer" in html
    assert not DOUBLED_BRACES.search(html), DOUBLED_BRACES.search(html)
    # as Sphinx renders {'mlp', 'cnn'} (the clusterers: {'auto', 'mlp', 'cnn'})
    choices = "{\u2018mlp\u2019, \u2018cnn\u2019}" if name == "ContrastiveEmbedder" else (
        "{\u2018auto\u2019, \u2018mlp\u2019, \u2018cnn\u2019}")
    assert choices in html
    if name != "ContrastiveEmbedder":
        assert {"predict", "predict_proba", "score", "fit_predict"} <= set(methods)


def test_user_guide_method_references_are_links(built_docs):
    html = _html(built_docs, "user_guide/objectives.html")
    for method in ("predict", "predict_proba", "transform", "score"):
        assert f'href="../generated/deepcluster_sk.DeepFuzzyCMeans.html#deepcluster_sk.DeepFuzzyCMeans.{method}"' in html


def test_other_projects_names_are_links(built_docs):
    # intersphinx, from the inventories shipped in docs/_inventories (no network)
    links = {
        "index.html": ["https://scikit-learn.org/stable/modules/generated/sklearn.pipeline.Pipeline.html",
                       "https://scikit-learn.org/stable/modules/generated/sklearn.model_selection.GridSearchCV.html"],
        "user_guide/persistence.html": ["https://joblib.readthedocs.io/en/stable/generated/joblib.dump.html",
                                        "https://docs.pytorch.org/docs/stable/generated/torch.save.html",
                                        "https://docs.python.org/3/library/pickle.html"],
        "user_guide/gpu_and_precision.html": ["https://numpy.org/doc/stable/reference/generated/numpy.memmap.html"],
        "generated/deepcluster_sk.DeepFuzzyCMeans.html": [
            "https://scikit-learn.org/stable/modules/generated/sklearn.cluster.KMeans.html"],
    }
    for page, urls in links.items():
        html = _html(built_docs, page)
        for url in urls:
            assert f'href="{url}' in html, f"{page} does not link {url}"


def test_results_page_carries_the_readme_results(built_docs):
    html = _html(built_docs, "results.html")
    text = re.sub(r"<[^>]+>", "", html)
    assert "python benchmarks/run_benchmark.py" in text  # every figure with its command
    assert "python -m deepcluster_sk.demo --figure" in text
    assert html.count("<table") >= 4
    assert "demo_digits.png" in html
    for page in (DOCS / "user_guide").glob("*.rst"):
        assert "README" not in page.read_text(), f"{page.name}: point to the results page, not the README"


def test_gallery_history_plot_draws_every_term(built_docs):
    # examples/plot_training_history.py checks, in a block hidden from the
    # rendered page, that the legend names train_loss, delta_label and every
    # term of history_; the build aborts on a failing example, so a built
    # page means the check passed
    source = (ROOT / "examples" / "plot_training_history.py").read_text()
    hidden = source.split("# sphinx_gallery_start_ignore", 1)[1].split("# sphinx_gallery_end_ignore", 1)[0]
    assert "get_legend()" in hidden and "history_" in hidden and "assert" in hidden
    html = _html(built_docs, "auto_examples/plot_training_history.html")
    assert "neighbor" in html and "sphx-glr-single-img" in html
    assert "_legend" not in html
