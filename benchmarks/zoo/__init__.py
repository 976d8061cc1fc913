"""The design zoo: designs, a method registry, a resumable runner and its summaries.

Driven by ``benchmarks/design_zoo.py``; modules: ``designs`` (x laws x links with
their true subspace), ``methods`` (name -> factory registry), ``runner`` (seeded,
resumable CSV rows, joblib workers), ``summary`` (tables and figures).
"""
