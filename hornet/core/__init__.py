"""hornet's sans-IO protocol core.

Rules:
1. No I/O: no sockets, no files, no trio. Bytes in, results out.
2. No clock reads and no randomness of its own: ``now`` and ``rng`` are parameters.
3. Only ``hornet.core.crypto`` imports a cryptography library.
4. Results are frozen attrs classes; untrusted bytes raise only ``RemoteProtocolError``.

Internal: applications import from the package roots (``hornet``,
``hornet.sphinx``, ``hornet.mixer``, ``hornet.credentials``).
"""
