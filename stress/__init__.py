"""Long-running harnesses: crash consistency (kill -9) and corruption fuzzing (make stress)."""
