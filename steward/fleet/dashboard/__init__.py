"""``steward fleet dashboard``: one read-only web page over the fleet bucket, live (docs/fleet.md,
"Seeing the fleet").

``FleetBroadcast`` turns one ``FleetFeed`` into messages for many listeners (each change, and
each node that falls silent); ``DashboardServer`` serves the page, the JSON and the SSE stream.
The page's assets (``index.html``, ``app.js``, ``style.css``) ship beside this module.
"""

from steward.fleet.dashboard.broadcast import FleetBroadcast, Listener
from steward.fleet.dashboard.server import DashboardServer

__all__ = ["DashboardServer", "FleetBroadcast", "Listener"]
