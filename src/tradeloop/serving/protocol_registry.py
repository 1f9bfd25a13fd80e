"""Which serving protocols a gateway speaks: a name -> factory registry.

The built-in ones are registered here; a plug-in registers its own with `register_protocol`
before the app is built (`build_app(protocols=...)` takes an explicit mapping instead).
"""

from __future__ import annotations

from tradeloop.errors import BadInput
from tradeloop.serving import protocol_mlflow, protocol_trading, protocol_v2
from tradeloop.serving.protocol import ProtocolFactory

PROTOCOLS: dict[str, ProtocolFactory] = {
    protocol_mlflow.NAME: protocol_mlflow.factory,
    protocol_v2.NAME: protocol_v2.factory,
    protocol_trading.NAME: protocol_trading.factory,
}

__all__ = ["PROTOCOLS", "register_protocol"]


def register_protocol(name: str, factory: ProtocolFactory) -> None:
    """Make `name` part of every gateway built without an explicit protocol mapping."""
    if PROTOCOLS.get(name, factory) is not factory:
        raise BadInput(f"a serving protocol named {name!r} is registered already")
    PROTOCOLS[name] = factory
