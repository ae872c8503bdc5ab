"""Figures, one module per family; each function writes PNG (and PDF) files and returns their paths."""
