"""trmlab: a workbench for the Tiny Recursion Model (Jolicoeur-Martineau 2025, arXiv:2510.04871)."""
__version__ = "0.1.0"
