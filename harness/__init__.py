"""What tests and benchmarks share to run motcua for real, on 127.0.0.1.

- ``harness.process``: a ``server.py serve`` process (start, stop, kill, restart on the
  same store), a free port, the staff login.
- ``harness.services``: PostgreSQL and Redis for a run: a scratch database made and
  dropped, and what a test does when a service cannot be reached.
- ``harness.devices``: a blocking Socket.IO device that records what it receives (tests).
- ``harness.centre``: the centre the tests run on (tests/centre.toml), its tokens and
  passwords, and the server as the tests start it.
- ``harness.local``: the engine in-process on a copy of a provisioned SQLite file (the
  fast tier), batching its changes for any audience as the hub does.
- ``harness.nginx``: Debian's nginx in front of server processes with the site
  ``server.py deploy-config`` writes, a self-signed certificate, devices on wss.
- ``harness.proxy``: a TCP proxy a test can cut (a database or Redis that goes away).
- ``harness.replica``: a device's state built from its snapshot and batches, as a page
  builds it, to compare with a fresh snapshot.
"""
