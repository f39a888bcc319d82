"""The client side of btob: order payloads through a cluster without being a member.

:func:`open_client` gives a :class:`Client`; its :meth:`~Client.broadcast` returns a
:class:`~btob.core.clientwire.Receipt` that anyone holding ``cluster.toml`` can verify.
"""
