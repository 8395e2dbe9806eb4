"""``hwnas``: the controller's command line, one module per command group (``main`` assembles them).

Nothing past this package sees an argparse namespace: each command turns its flags into the typed values
(spaces, plans, a ``FleetConfig``, search settings) that the rooms below take.
"""
