"""Tests of platform/promote/."""
