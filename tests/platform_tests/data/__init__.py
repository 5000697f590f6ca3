"""Tests of platform/data/."""
