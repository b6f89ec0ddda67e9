"""Tests of safeckpt/_restore/."""
