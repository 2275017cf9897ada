"""Sphinx configuration of the deepcluster_sk documentation.

Build (warnings are errors, as in CI)::

    python -m sphinx -W -b html docs docs/_build/html

Needs the ``docs`` extra: ``pip install -e ".[docs]"``. The gallery runs
every script of ``examples/`` (a few seconds each, on the CPU).
"""

import os
import sys
from pathlib import Path

# The examples fit tiny networks: one intra-op thread is fastest, and avoids
# oversubscribing shared CPUs. Set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# The BloodMNIST example reads $DEEPCLUSTER_SK_DATA/bloodmnist.npz (in the
# development workspace, ../shared/data beside the repository). Without the
# file that example is left out of the gallery instead of failing the build.
_WORKSPACE_DATA = ROOT.parent / "shared" / "data"
if not os.environ.get("DEEPCLUSTER_SK_DATA") and (_WORKSPACE_DATA / "bloodmnist.npz").is_file():
    os.environ["DEEPCLUSTER_SK_DATA"] = str(_WORKSPACE_DATA)
HAVE_BLOODMNIST = (Path(os.environ.get("DEEPCLUSTER_SK_DATA") or ".") / "bloodmnist.npz").is_file()
sys.path.insert(0, str(ROOT))

import deepcluster_sk  # noqa: E402
from sphinx_gallery.sorting import ExplicitOrder  # noqa: E402

project = "deepcluster_sk"
author = "the deepcluster_sk developers"
copyright = "the deepcluster_sk developers, BSD-3-Clause"
version = release = deepcluster_sk.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "_inventories", "**/.ipynb_checkpoints", "auto_examples/*.ipynb"]
default_role = "literal"
nitpicky = False

# -- autodoc / autosummary / numpydoc -----------------------------------------
autosummary_generate = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
# "fit()" rather than "DeepFuzzyCMeans.fit()" in the page's table of contents
toc_object_entries_show_parents = "hide"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- intersphinx: links to Python, scikit-learn, NumPy, SciPy, PyTorch, ... ------
# The build must work offline (CI cannot download), so the inventories are
# shipped in _inventories/ and never fetched; _inventories/README.md says where
# each comes from and how to refresh it.
INVENTORIES = DOCS / "_inventories"
intersphinx_mapping = {
    name: (url, str(INVENTORIES / f"{name}.inv"))
    for name, url in {
        "python": "https://docs.python.org/3/",
        "sklearn": "https://scikit-learn.org/stable/",
        "scipy": "https://docs.scipy.org/doc/scipy/",
        "numpy": "https://numpy.org/doc/stable/",
        "torch": "https://docs.pytorch.org/docs/stable/",
        "joblib": "https://joblib.readthedocs.io/en/stable/",
        "distributed": "https://distributed.dask.org/en/stable/",
    }.items()
}

# -- MyST (markdown pages) ------------------------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- sphinx-gallery -------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py" + ("" if HAVE_BLOODMNIST else r"|plot_bloodmnist_cells\.py"),
    # the quickstart first, then from the everyday to the specialised
    "within_subsection_order": ExplicitOrder([
        "plot_digits_quickstart.py",
        "plot_tabular_pipeline.py",
        "plot_softness.py",
        "plot_training_history.py",
        "plot_label_free_selection.py",
        "plot_contrastive_pipeline.py",
        "*",
    ]),
    # a plot call's return value (<Axes: ...>) is not output worth showing
    "ignore_repr_types": r"matplotlib\.(axes|figure|text|image|collections)",
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "download_all_examples": False,
    "doc_module": ("deepcluster_sk",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"deepcluster_sk": None},
    "min_reported_time": 1,
}

# -- HTML -------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"deepcluster_sk {release}"
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 7,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_static_path = ["_static"]
html_css_files = ["deepcluster_sk.css"]
html_show_sourcelink = False
