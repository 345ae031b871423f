"""The conversation: one typed frame per conversation, updated by every turn.

state.py (the frame), acts.py (what one turn does to it: the NLU backends' contract),
references.py (a shown shop the child points at), places.py (named places -> coordinates),
policy.py (apply a turn's act to the frame; the frame becomes the search), profile.py (who asks).
"""
