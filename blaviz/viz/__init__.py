"""Figures and widgets for the book: one way to draw, shared by every chapter.

The book's pages are static HTML, so every interactive figure exists twice:

* :func:`slider_figure` - a plotly figure with a plotly-native slider over precomputed steps.
  It needs no kernel: it works on the website, offline, and in any Jupyter front end.
* :func:`live_app` - an ipywidgets app that recomputes the figure for any slider value. Its
  callbacks need a running kernel (Jupyter, Colab); on the website its cell output is removed.

Call :func:`setup_notebook` (or at least :func:`setup_plotly`) at the top of each notebook.
"""
from .figures import compact, slider_figure
from .notebook import by_device, md_table, pick_device, setup_notebook, show_source
from .plotly_html import RENDERER_NAME, BookRenderer, figure_html, setup_plotly
from .widgets import live_app

__all__ = [
    "setup_plotly", "setup_notebook", "pick_device", "by_device", "show_source", "md_table",
    "slider_figure", "compact", "live_app", "figure_html", "BookRenderer", "RENDERER_NAME",
]
