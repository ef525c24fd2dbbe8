"""
anyconc: backend-agnostic concurrency utilities on AnyIO.

Write the async code once; run it unchanged on asyncio, asyncio + uvloop and trio.
Every public object can be created at import time and used from any number of
event-loop runs, one after another, on any backend.
"""

from __future__ import annotations

# Each family lives in its own private module; this file only re-exports.
# --- tasks (task groups and handles) ---
# --- threads ---
# --- races ---
# --- background tasks ---
# --- lazy values and events ---
# --- coordination ---
# --- fan-out ---
# --- resilience ---
# --- processes and executors ---

__all__ = [
    # --- tasks ---
    # --- threads ---
    # --- races ---
    # --- background tasks ---
    # --- lazy values and events ---
    # --- coordination ---
    # --- fan-out ---
    # --- resilience ---
    # --- processes and executors ---
]
