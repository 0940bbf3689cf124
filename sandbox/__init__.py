"""The WeCom sandbox (not deployed): WeCom's API with its rules, fault injection, an effects
journal and a customer simulator that posts encrypted callbacks. See docs/sandbox.md.
"""

from __future__ import annotations

from sandbox.app import Sandbox, default_sandbox, handle
from sandbox.clock import Clock
from sandbox.demo import DEMO_AES_KEY, DEMO_CALLBACK_TOKEN, DEMO_CORP_ID, DEMO_SECRET, seed_demo
from sandbox.journal import Journal
from sandbox.server import SandboxServer, serve
from sandbox.state import ApiFailure, SimulationError

__all__ = [
    "DEMO_AES_KEY",
    "DEMO_CALLBACK_TOKEN",
    "DEMO_CORP_ID",
    "DEMO_SECRET",
    "ApiFailure",
    "Clock",
    "Journal",
    "Sandbox",
    "SandboxServer",
    "SimulationError",
    "default_sandbox",
    "handle",
    "seed_demo",
    "serve",
]
