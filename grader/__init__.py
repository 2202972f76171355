"""dli-grade: grade the DLI diffusion-models assessment against a reference implementation."""

__version__ = "0.1.0"
