"""Backends: where steps run. One module each; see ``ductwork.runtime.engine.backend``."""
