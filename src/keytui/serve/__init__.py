"""``keytui serve``: the HTTP face that gateways (nginx ``auth_request``, Traefik
``forwardAuth``, Caddy ``forward_auth``, Envoy ``ext_authz``) and services call to check a key.

A thin face like the CLI and the app: it reads the key and the client's address from the
request and asks ``KeyService.verify``; every rule is the service's. Modules, one concern each:
``options`` (what the command was given), ``clientaddr`` (whose request it is), ``extract``
(where the key is), ``verifier`` (the service off or on the event loop), ``metrics``, ``app``
(the ASGI app), ``runner`` (uvicorn, workers, signals) and ``command`` (the click command).
"""
