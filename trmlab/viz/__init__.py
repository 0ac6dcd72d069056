"""Views of traces: grid renderers, the ipywidgets player, static HTML animations, PNG strips, figures,
tables and curves. Drawing only: choosing a puzzle (reading a dataset, running the model) is
``trmlab.trace.pickers``."""
from .animation import animation_figure, export_html, png_strip, show_animation
from .figure import TraceView
from .grids import ARC_COLOURS, draw_example, draw_panel, grid_figure
from .player import Player


__all__ = ["TraceView", "Player", "animation_figure", "export_html", "png_strip", "show_animation", "grid_figure", "draw_panel",
           "draw_example", "ARC_COLOURS"]
