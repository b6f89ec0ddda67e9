"""Tests of safeckpt/_catalog/."""
