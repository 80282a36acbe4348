"""motcua core: the domain of a service centre's queue, free of any web framework.

Everything that changes queue state goes through :mod:`core.engine`; the store
(:mod:`core.store`) is the source of truth and numbers every change of a centre.
"""
