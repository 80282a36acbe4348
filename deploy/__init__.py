"""The files of a production installation (docs/deployment.md), written by
``server.py deploy-config``: systemd units, the settings file, the nginx site, the backup
and restore scripts. The templates are in ``deploy/templates/``; the tests run nginx with
the site this writes (harness/nginx.py)."""
