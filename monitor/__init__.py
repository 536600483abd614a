"""specmon: live screening of how negative speech sounds, window by window (not a diagnosis)."""

__version__ = "0.1.0"
