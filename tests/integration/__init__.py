"""Tests that need processes, servers or clusters: gs://, multi-worker, crashes, harness slices."""
