"""Sphinx configuration: ``make docs`` builds docs/_build/html with warnings as errors, offline."""

from __future__ import annotations

import sys
from pathlib import Path

import klkit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "klkit"
author = "klkit developers"
copyright = "klkit developers"
release = klkit.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax copied into _static: formulas render without network
    "numpydoc",
    "myst_parser",
    "klkit_api",  # the API reference from each module's __all__
    "klkit_lab",  # the gallery (runs the lab), the registry's pair table
    "klkit_cli",  # the CLI page from the commands' --help
]
# No intersphinx: the build must work without network (CI reaches only package registries).

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

nitpicky = True
# Docstrings link to the libraries klkit works with (torch.nn.functional.cross_entropy, scipy's
# jensenshannon, gymnasium's vector envs ...). Their inventories would need intersphinx, which needs
# network, so references into these packages, and only these, are left unresolved.
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|torch|scipy|matplotlib|gymnasium|sklearn)(\..*)?"),
]

# autodoc / autosummary / numpydoc
autosummary_generate = False  # the module pages document each name themselves
autosummary_imported_members = True
autodoc_typehints = "none"  # the numpydoc Parameters/Returns sections carry the types
autodoc_default_options = {"member-order": "bysource"}
autodoc_inherit_docstrings = False  # an overridden torch method would show torch's docstring
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# MyST
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# HTML
html_theme = "pydata_sphinx_theme"
html_title = f"klkit {release}"
html_static_path = ["_static"]
html_css_files = ["klkit.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "use_edit_page_button": False,
}
html_show_sourcelink = False
html_last_updated_fmt = None
