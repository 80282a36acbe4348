"""What every role's door shares: connection auth, acknowledgements, ordered delivery of
change events to sockets, and the HTTP API (health, login). Imports core, never a role."""
