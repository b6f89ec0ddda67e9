"""Tests of safeckpt/keras/."""
