"""Tests of platform/training/."""
