"""The test suite: tests/<package>/ mirrors safeckpt/_<package>/; integration/ has processes."""
