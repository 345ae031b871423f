"""Step 5B: four candidate funnels (popularity, content, collaborative, contextual) and their merge."""
from naviyam.candidates.collaborative import CollaborativeFunnel
from naviyam.candidates.content import ContentFunnel
from naviyam.candidates.contextual import ContextualFunnel
from naviyam.candidates.generator import CandidateGenerator, CandidateResult
from naviyam.candidates.merge import FUNNEL_NAMES, MERGE_WEIGHTS, Funnel, FunnelOutput, combined_score, merge_candidates
from naviyam.candidates.popularity import PopularityFunnel

__all__ = [
    "FUNNEL_NAMES", "MERGE_WEIGHTS", "CandidateGenerator", "CandidateResult", "CollaborativeFunnel",
    "ContentFunnel", "ContextualFunnel", "Funnel", "FunnelOutput", "PopularityFunnel", "combined_score",
    "merge_candidates",
]
