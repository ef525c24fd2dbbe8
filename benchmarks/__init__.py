"""anyconc's benchmarks: every primitive side by side with raw AnyIO, the native
backends and the peer libraries.

Run them with ``python -m benchmarks`` (add ``--quick`` for a smoke run); see
``python -m benchmarks --help`` and ``benchmarks/RESULTS.md``.
"""
