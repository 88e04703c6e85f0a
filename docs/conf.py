"""Sphinx configuration of skipnet's API reference (``sphinx-build -W -b html docs docs/_build``).

The reference is generated from the docstrings of the installed package (autodoc, with napoleon for
the NumPy-style sections of the estimators); docs/design.md is the design document beside it.
"""

import skipnet

project = "skipnet"
author = "skipnet developers"
release = version = skipnet.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # signatures show the defaults; types are in the docstrings
autodoc_mock_imports = ["torch", "onnx", "onnxruntime"]
exclude_patterns = ["_build", "design.md", "*.png"]
html_theme = "alabaster"
# a parameter named like an attribute of another documented class (n_inputs) is an ambiguous target
suppress_warnings = ["ref.python"]


def _skip_member(app, what, name, obj, skip, options):
    """scikit-learn's generated metadata-routing methods (set_fit_request...) are not skipnet's API."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
