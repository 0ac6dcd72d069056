"""Views of traces: grid renderers, the ipywidgets player, static HTML animations, PNG strips, pickers."""
from .animation import animation_figure, export_html, png_strip
from .figure import TraceView
from .grids import ARC_COLOURS, draw_example, draw_panel, grid_figure
from .pickers import (Picked, PuzzleFormatError, from_dataset, parse_arc_task, parse_maze, parse_puzzle,
                      parse_sudoku, pick_interesting, rank_puzzles)


def Player(*args, **kwargs):  # imported lazily: ipywidgets is only needed for the live player
    from .player import Player as _Player

    return _Player(*args, **kwargs)


__all__ = ["TraceView", "Player", "animation_figure", "export_html", "png_strip", "grid_figure", "draw_panel",
           "draw_example", "ARC_COLOURS",
           "Picked", "PuzzleFormatError", "from_dataset", "parse_arc_task", "parse_maze", "parse_puzzle",
           "parse_sudoku", "pick_interesting", "rank_puzzles"]
