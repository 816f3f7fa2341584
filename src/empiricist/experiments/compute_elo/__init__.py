"""Compute–Elo laws for imitation capped at an Elo, and expert iteration past the cap (docs/compute_elo.md)."""
