"""hwnas device agent: measures models sent by the controller over gRPC.

Kept light on purpose: importing this package pulls in neither torch, pymoo,
ortools nor the controller; runtimes are imported only by the backend a user
picks.
"""

__version__ = "0.1.0"
