"""trio services: the relay (``serve_relay``) and the destination (``serve``)."""
