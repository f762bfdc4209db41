"""Tests of aejax.evaluate (a package, so that its test_faces.py and tests/data/test_faces.py can share a name)."""
