"""trio services: the relay (``serve_relay``) and the destination (``serve``).

Internal: applications import from the package roots (``hornet``,
``hornet.sphinx``, ``hornet.mixer``, ``hornet.credentials``).
"""
