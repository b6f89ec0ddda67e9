"""Tests of safeckpt/_cli/."""
