"""Tests of safeckpt/_format/."""
