"""Tests of safeckpt/_multiworker/ (the cluster tests are in tests/integration/)."""
