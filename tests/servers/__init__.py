"""Loopback stand-ins for the archive services (DSS, VizieR, XMatch), for tests.

Each is a plain ``http.server.ThreadingHTTPServer`` on 127.0.0.1 with port 0,
run in a daemon thread; use it as a context manager and point the client at
its ``url``.  They never reach the internet.
"""

from servers.base import StandInServer
from servers.dss import DssStandIn
from servers.vizier import VizierStandIn
from servers.xmatch import XMatchStandIn

__all__ = ["StandInServer", "DssStandIn", "VizierStandIn", "XMatchStandIn"]
