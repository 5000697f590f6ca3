"""Tests of platform/spec/."""
