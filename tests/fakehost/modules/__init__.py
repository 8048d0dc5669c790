"""Fake WebUI ``modules`` package for tests (see tests/fakehost/README.md)."""
