"""Figures made from runs and models (PNG files and TensorBoard images).

Each ``*_figure`` function takes plain arrays/tensors and returns a matplotlib Figure;
``xray_lightning.report`` gathers a run's data, calls them and saves the PNGs.
"""
