"""Model providers: the SDK clients behind the model backend, sharing one call loop and one status mapping.

Invariant: the provider SDKs (anthropic, openai) are imported under `sim.backends` only.
"""
