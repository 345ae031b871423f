"""Step 7: grounded answer generation, the grounding guard and the child-friendly normaliser."""
