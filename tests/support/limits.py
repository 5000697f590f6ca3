"""How long a test waits for a command, a server or a thread before calling it hung.

A hang detector, never a speed bound: a healthy tiny study takes seconds to a minute on a quiet 2-core machine and
many times that when other jobs share its cores (a CI run measured a one-trial study past 240 s at eight jobs per
core), so the limit is far beyond any healthy run. A test that must show something happens *quickly* measures it
in benchmarks/, not here.
"""

HANG_S = 1800.0
