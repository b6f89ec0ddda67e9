"""Tests of safeckpt/_diagnose/."""
