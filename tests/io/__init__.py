"""Tests of safeckpt/_io/."""
