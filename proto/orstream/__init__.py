"""The ``orstream`` proto package tree (generated modules live under ``v1``)."""
