"""The benchmark harness and its task families live here."""
