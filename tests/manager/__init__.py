"""Tests of safeckpt/_manager/."""
