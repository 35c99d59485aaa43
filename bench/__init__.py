"""The benchmarks. A package only so tests can import ``bench.benchlib``: each script runs as
a file (``python bench/<script>.py``) and imports ``benchlib`` from its own directory."""
