"""Step 4: natural-language understanding (intent, entities, follow-up, search filters).

- ``base.NLUBackend``: the protocol every backend satisfies.
- ``fast.FastNLU``: default backend, a trained classifier plus the rule-based entity tagger.
- ``entities`` / ``budget`` / ``food`` / ``shops`` / ``followup``: the tagger's parts.
"""
from naviyam.nlu.base import NLUBackend

__all__ = ["NLUBackend"]
