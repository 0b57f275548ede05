"""Figures made from runs and models (PNG files and TensorBoard images)."""
