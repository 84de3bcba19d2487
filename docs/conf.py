"""Sphinx configuration of snnlab's documentation site (``make docs``).

The source directory is the repository root (``sphinx-build -c docs . docs/_build/html``), so that the README,
``docs/``, ``notebooks/`` and ``solutions/`` keep the relative links they have on GitHub and in JupyterLab.
The notebooks are rendered from their committed outputs (MyST-NB, never re-executed); the equations use a MathJax
bundled in a Python package (sphinx-mathjax-offline), so a site opened from disk needs no network.
"""
from __future__ import annotations

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

import snnlab  # noqa: E402

project = "snnlab"
author = "the snnlab authors"
copyright = "2026, the snnlab authors"
release = version = snnlab.__version__

extensions = [
    "myst_nb",                  # Markdown (MyST) and executed notebooks
    "sphinx.ext.autodoc",       # the API reference, from the docstrings
    "sphinx.ext.napoleon",      # their "Args:" / "Returns:" sections
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",   # MathJax 3 copied into _static: no CDN
]

root_doc = "docs/index"
include_patterns = ["README.md", "docs/**", "notebooks/*.ipynb", "solutions/*.ipynb"]
exclude_patterns = ["docs/_build", "**/.ipynb_checkpoints", ".venv", "runs", "results"]
templates_path: list[str] = []

# --- notebooks: rendered as committed -------------------------------------------------------------------------
nb_execution_mode = "off"
nb_ipywidgets_js = {}            # the widget manager comes from a CDN; the site's explorers are kernel-free instead
nb_merge_streams = True
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# --- API reference ---------------------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False  # torch.autograd.Function.forward's docstring links into the PyTorch docs

# --- HTML ------------------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"snnlab {release}"
html_static_path = ["_static"]
html_extra_path = ["_extra"]          # index.html at the site root: a redirect to docs/index.html
html_css_files = ["snnlab-explorers.css"]
html_js_files = ["snnlab-explorers.js"]
html_show_sourcelink = False
html_copy_source = False

# every warning is an error (make docs passes -W); dangling references are warnings
nitpicky = False


def _svg_mathjax(app, config):
    # sphinx-mathjax-offline sets the CommonHTML build; its web fonts are fetched by CSS, which Chromium refuses
    # over file://. The SVG build draws glyphs as paths: nothing to fetch.
    config.mathjax_path = "mathjax/tex-svg.js"


def setup(app):
    app.connect("config-inited", _svg_mathjax, priority=900)
html_show_search_summary = False   # the summaries are fetched pages: a file:// site refuses fetch()
