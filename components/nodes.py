"""The chat graph's nodes, each a thin KServe wrapper over one NaviyamChatbot step.

naviyam-nlu        steps 1-4: validate the chat request, preprocess, NLU, safety, dialogue state
naviyam-retriever  step 5A
naviyam-candidates step 5B
naviyam-nlg        steps 7-8: grounded answer, memory, interaction log -> ChatbotResponse
(naviyam-ranker, step 6, is a transformer + predictor pair: see ranker_transformer/ranker_predictor.)
"""
from __future__ import annotations

from kserve.errors import InvalidInput
from pydantic import ValidationError

from components.envelope_model import EnvelopeModel, parse_envelope, safe_text
from naviyam.chatbot import NaviyamChatbot
from naviyam.config import Settings
from naviyam.metrics import ChatMetrics
from naviyam.models import ModelBundle
from naviyam.schemas import TRAFFIC_HEADER, ChatbotResponse, Envelope, UserInput, traffic_kind, validation_problems


class ChatNode(EnvelopeModel):
    parts: tuple[str, ...] = ("catalog",)

    def __init__(self, name: str, settings: Settings, metrics: ChatMetrics | None = None,
                 models: ModelBundle | None = None):
        super().__init__(name, settings)
        # The process's metrics (components/server.py: on the registry KServe's /metrics serves);
        # without them the bot keeps a private registry.
        self.metrics = metrics
        # The process's bundle when several nodes share one process (serving.colocate).
        self.shared_models = models

    def load_parts(self) -> None:
        models = self.shared_models or ModelBundle(self.settings)
        models.warm_up(self.parts)
        self.bot = NaviyamChatbot(models, metrics=self.metrics)


class NLUNode(ChatNode):
    parts = ("catalog", "preprocessor", "nlu")

    def load_parts(self) -> None:
        super().load_parts()
        if self.settings.nlu.backend != "fast":
            self.bot.models.warm_up(("llm",))

    @property
    def runs_inline(self) -> bool:
        return self.settings.nlu.backend == "fast"  # an LLM parse takes seconds: a worker thread

    def handle(self, body: dict) -> Envelope:
        return self.handle_request(body, {})

    def handle_request(self, body: dict, headers: dict[str, str]) -> Envelope:
        self.bot.models.refresh_adapter()  # a promoted LoRA adapter goes live without a restart
        raw = body.get("input", body)
        try:
            traffic = traffic_kind(headers.get(TRAFFIC_HEADER.lower()))
        except ValueError as exc:
            raise InvalidInput(safe_text(str(exc))) from None
        try:
            user_input = UserInput.model_validate(raw)
        except ValidationError as exc:
            raise InvalidInput(safe_text(f"invalid chat request: {'; '.join(validation_problems(exc))}")) from None
        env = self.bot.start(user_input, traffic)
        return self.bot.understand(env)


class SearchStepNode(ChatNode):
    """A step-5 node: runs ``step`` (a NaviyamChatbot method) when the turn searches, else passes through."""

    step: str = ""

    def handle(self, body: dict) -> Envelope:
        # The validated envelope, not the body: unknown keys of a forged body (which may hold
        # anything, a lone surrogate included) are not passed on.
        return self.run_step(parse_envelope(body))

    def run_step(self, env: Envelope) -> Envelope:
        """The step on a validated envelope: what the HTTP path runs, and what a ranker
        transformer in the same process calls directly (``RankerTransformer.local_steps``)."""
        if not env.needs_search:
            return env
        return getattr(self.bot, self.step)(env)


class RetrieverNode(SearchStepNode):
    parts = ("catalog", "retriever")
    step = "retrieve"


class CandidatesNode(SearchStepNode):
    parts = ("catalog", "candidates")
    step = "generate_candidates"


class NLGNode(ChatNode):
    parts = ("catalog",)

    def load_parts(self) -> None:
        super().load_parts()
        if self.settings.llm.nlg_enabled:
            self.bot.models.warm_up(("catalog", "llm", "answerer"))

    @property
    def runs_inline(self) -> bool:
        return not self.settings.llm.nlg_enabled  # LLM generation takes seconds: a worker thread

    def handle(self, body: dict) -> ChatbotResponse:
        self.bot.models.refresh_adapter()
        env = parse_envelope(body)
        self.bot.answer(env)
        return self.bot.finish(env)


NODES = {
    "naviyam-nlu": NLUNode,
    "naviyam-retriever": RetrieverNode,
    "naviyam-candidates": CandidatesNode,
    "naviyam-nlg": NLGNode,
}
