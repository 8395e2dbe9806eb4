"""Text for terminals: tables of figures and failure summaries, shared by every room that prints results."""
