"""A local Bybit V5 exchange: accounts, a simulated market, and a server speaking Bybit's REST
and WebSocket APIs on Bybit's paths, with controls and fault injection for testing bots.

``Sandbox`` is the in-process entry point; ``bybitkit sandbox serve`` runs one as a process.
"""

from bybitkit.sandbox.app import Sandbox

__all__ = ["Sandbox"]
