"""Tests of platform/study/."""
