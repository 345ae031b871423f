"""`naviyam` command line: chat, NLU, data and model building, evaluation.

Bad input gets a one-line message and exit code 2, never a traceback. Each command imports what
it runs inside its function, deliberately: a one-shot `chat` or `nlu` must not pay for the build,
training or evaluation stacks.
"""
from __future__ import annotations

import argparse
import atexit
import gc
import json
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from naviyam.bounds import TRAFFIC_KINDS
from naviyam.checkout import CheckoutNotFoundError, run_shell
from naviyam.config import Settings
from naviyam.data.catalog import DataNotBuiltError

log = logging.getLogger("naviyam")

EXAMPLE = "급식카드 되는 치킨집 추천해줘"


class UsageError(Exception):
    """A problem with what the user typed; printed as one line."""


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        if field == "text" and err["type"] == "string_too_short":
            parts.append("text is empty: type what you want to eat, e.g. '떡볶이 먹고 싶어'")
        elif field == "text" and err["type"] == "string_too_long":
            parts.append(f"text is too long ({err['ctx']['max_length']} characters at most)")
        else:
            parts.append(f"{field}: {err['msg']}")
    return "; ".join(parts)


def _settings(args) -> Settings:
    overrides = {"home": Path(args.home)} if getattr(args, "home", None) else {}
    return Settings.load(getattr(args, "config", None), **overrides)


def _dump(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


# -- chat ------------------------------------------------------------------------------------
def _make_chatbot(settings: Settings):
    from naviyam.chatbot import NaviyamChatbot
    from naviyam.models import ModelBundle

    return NaviyamChatbot(ModelBundle(settings))


def _chat_once(bot, text: str, args) -> str:
    from naviyam.schemas import UserInput

    try:
        user_input = UserInput(user_id=args.user_id, text=text, session_id=args.session_id)
    except ValidationError as exc:
        raise UsageError(_validation_message(exc)) from None
    response = bot.process(user_input, traffic=args.traffic)
    if args.json:
        return response.model_dump_json()
    return response.response


def cmd_chat(args) -> int:
    settings = _settings(args)
    bot = _make_chatbot(settings)
    try:
        if args.text is not None:
            print(_chat_once(bot, args.text, args))
            return 0
        return _repl(bot, args)
    finally:
        bot.close()


def _repl(bot, args) -> int:
    interactive = sys.stdin.isatty()
    if interactive:
        print("나비얌이에요! 먹고 싶은 걸 말해 줘. (끝내려면 'exit' 또는 Ctrl-D)")
    if args.session_id is None:
        import uuid

        args.session_id = uuid.uuid4().hex[:12]
    while True:
        try:
            line = input("> " if interactive else "")
        except (EOFError, KeyboardInterrupt):
            break
        if line.strip().lower() in {"exit", "quit", ":q"}:
            break
        if not line.strip():
            continue
        try:
            print(_chat_once(bot, line, args), flush=True)
        except UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
    return 0


# -- nlu ------------------------------------------------------------------------------------
def cmd_nlu(args) -> int:
    from naviyam.models import ModelBundle
    from naviyam.schemas import MAX_TEXT_CHARS

    models = ModelBundle(_settings(args))

    def parse(text: str) -> dict:
        if not text.strip():
            raise UsageError("text is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise UsageError(f"text is too long ({MAX_TEXT_CHARS} characters at most)")
        result = models.nlu.parse(models.preprocessor(text), models.shop_names)
        return {"text": text, **result.model_dump(mode="json")}

    def show(out: dict) -> str:
        if args.json:
            return _dump(out)
        ents = {k: v for k, v in out["entities"].items() if v is not None}
        return f"{out['intent']} ({out['confidence']:.2f}) {ents}"

    if args.text is not None:
        print(show(parse(args.text)))
        return 0
    # Batch mode: one utterance per line in, one JSON object per line out (blank lines too, so
    # the output lines stay aligned with the input lines).
    for line in sys.stdin:
        text = line.rstrip("\n")
        try:
            print(show(parse(text)), flush=True)
        except UsageError as exc:
            print(_dump({"text": text, "error": str(exc)}), flush=True)
    return 0


# -- build / train / eval ---------------------------------------------------------------------
def cmd_data_build(args) -> int:
    from naviyam.build import build_data

    summary = build_data(_settings(args), force=args.force)
    print(_dump(summary) if args.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return 0


def cmd_build(args) -> int:
    from naviyam.build import build_all

    report = build_all(_settings(args), force=args.force)
    print("built: " + ", ".join(f"{k} {v}s" for k, v in report.items()))
    return 0


def cmd_train(args) -> int:
    from naviyam import build

    settings = _settings(args)
    if args.what == "ranker":
        metrics = build.train_ranker(settings, force=True, init_from=Path(args.init_from) if args.init_from else None)
    elif args.what == "lora":
        metrics = build.train_lora(settings, init_from=args.init_from or "current", promote=not args.no_promote)
    elif args.what == "nlu":
        metrics = build.train_nlu(settings, force=True)
    elif args.what == "retriever":
        metrics = {"version": build.build_retriever(settings, force=True)}
    else:
        metrics = {"version": build.build_candidates(settings, force=True)}
    print(_dump(metrics))
    return 0


def cmd_eval(args) -> int:
    settings = _settings(args)
    if args.what == "ranker":
        from naviyam.data.catalog import Catalog
        from naviyam.data.generate import load_events
        from naviyam.ranking.evaluate import evaluate_ranker

        model_dir = settings.models_dir / "ranker"
        if not (model_dir / "meta.json").exists():
            raise UsageError("no trained ranker; run `naviyam train ranker` (or `make build`) first")
        metrics = evaluate_ranker(settings, Catalog.load(settings.data_dir), load_events(settings.data_dir), model_dir)
    elif args.what == "dialogue":
        return _eval_dialogue(settings, args)
    else:
        from naviyam.jsonl import read_jsonl
        from naviyam.evaluation.nlu_metrics import evaluate_nlu
        from naviyam.models import ModelBundle

        models = ModelBundle(settings)
        path = Path(args.file) if args.file else settings.data_dir / "nlu" / "nlu_test.jsonl"
        metrics = evaluate_nlu(models.nlu, read_jsonl(path), models.preprocessor)
    if args.json:
        print(_dump(metrics))
    else:
        for key, value in metrics.items():
            print(f"{key}: {value}")
    return 0


def _eval_dialogue(settings, args) -> int:
    """Whole conversations: turn success and joint goal accuracy, in-process or through the graph.

    In-process turns go to a throw-away memory and interaction log, never into the home's state:
    evaluation traffic is not children's traffic.
    """
    import tempfile

    from naviyam.data.catalog import Catalog
    from naviyam.evaluation.dialogue import CORPUS_DIR, evaluate_dialogues, in_process_turn, load_corpus, served_turn

    files = [Path(args.file)] if args.file else [
        CORPUS_DIR / f"{name}.jsonl" for name in (("dev", "test", "blind") if args.split == "all" else (args.split,))]
    conversations = [c for f in files for c in load_corpus(f)]
    catalog = Catalog.load(settings.data_dir)
    shops = {r.shop_id: (float(r.lat), float(r.lon)) for r in catalog.shops.itertuples()}
    if args.url:
        report = evaluate_dialogues(served_turn(args.url), conversations, shops)
    else:
        from naviyam.chatbot import NaviyamChatbot
        from naviyam.events import EventStore
        from naviyam.memory import ConversationMemory
        from naviyam.models import ModelBundle

        with tempfile.TemporaryDirectory(prefix="naviyam-eval-") as tmp:
            bot = NaviyamChatbot(ModelBundle(settings), ConversationMemory(Path(tmp) / "memory.sqlite"),
                                 EventStore(Path(tmp) / "events.sqlite"))
            try:
                report = evaluate_dialogues(in_process_turn(bot), conversations, shops)
            finally:
                bot.close()
    summary = {"conversations": len(conversations), **report.summary()}
    if args.json:
        print(_dump({**summary, "failures": report.failures}))
    else:
        if args.show_failures:
            for line in report.failures:
                print("FAIL", line)
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0


def cmd_pipeline(args) -> int:
    """Kubeflow pipelines live in the checkout's `pipelines/` shell (not installed with the
    package); the CLI runs it there."""
    home = ["--home", args.home] if args.home else []
    try:
        if args.action == "compile":
            return run_shell("pipelines.compile", args.rest)
        if args.action == "submit":
            return run_shell("pipelines.run", ["submit", args.name, *args.rest])
        return run_shell("pipelines.run", [args.name, *home, *args.rest])
    except CheckoutNotFoundError as exc:
        raise UsageError(str(exc)) from None


def cmd_simulate(args) -> int:
    from naviyam.simulate import simulate_drift

    print(_dump(simulate_drift(_settings(args), args.kind, args.n)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="naviyam", description="나비얌: 급식카드 맛집 추천 챗봇")
    parser.add_argument("--config", help="YAML settings file (also NAVIYAM_CONFIG)")
    parser.add_argument("--home", help="artefact directory (default: var/, also NAVIYAM_HOME)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="ask the chatbot (no text: interactive)")
    chat.add_argument("text", nargs="?")
    chat.add_argument("--user-id", default="guest")
    chat.add_argument("--session-id")
    chat.add_argument("--json", action="store_true", help="print the full ChatbotResponse")
    chat.add_argument("--traffic", default="live", choices=TRAFFIC_KINDS,
                      help="label of the logged turns (only live and simulated are learned from)")
    chat.set_defaults(func=cmd_chat)

    nlu = sub.add_parser("nlu", help="intent and entities (no text: one utterance per stdin line)")
    nlu.add_argument("text", nargs="?")
    nlu.add_argument("--json", action="store_true")
    nlu.set_defaults(func=cmd_nlu)

    data = sub.add_parser("data", help="data set")
    data_sub = data.add_subparsers(dest="action", required=True)
    data_build = data_sub.add_parser("build", help="generate the synthetic data set and NLU corpus")
    data_build.add_argument("--force", action="store_true")
    data_build.add_argument("--json", action="store_true")
    data_build.set_defaults(func=cmd_data_build)

    build = sub.add_parser("build", help="build data and every model that is missing")
    build.add_argument("--force", action="store_true")
    build.set_defaults(func=cmd_build)

    train = sub.add_parser("train", help="(re)train one model")
    train.add_argument("what", choices=["ranker", "nlu", "lora", "retriever", "candidates"])
    train.add_argument("--init-from", help="ranker: checkpoint dir; lora: 'current' (default), an adapter dir or 'none'")
    train.add_argument("--no-promote", action="store_true", help="lora: keep the current adapter active")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", help="evaluate a model on held-out data")
    evaluate.add_argument("what", choices=["ranker", "nlu", "dialogue"])
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--file", help="NLU: labelled JSONL; dialogue: a conversation corpus (JSONL)")
    evaluate.add_argument("--split", choices=["dev", "test", "blind", "all"], default="all",
                          help="dialogue: which split of the packaged corpus (default all)")
    evaluate.add_argument("--url", help="dialogue: run through the served graph at this URL instead of in-process")
    evaluate.add_argument("--show-failures", action="store_true", help="dialogue: print every failed turn")
    evaluate.set_defaults(func=cmd_eval)

    pipeline = sub.add_parser("pipeline", help="Kubeflow pipelines: compile, run locally (kfp.local), submit")
    pipe_sub = pipeline.add_subparsers(dest="action", required=True)
    compile_p = pipe_sub.add_parser("compile", help="compile every pipeline to IR YAML (--out DIR)")
    run_p = pipe_sub.add_parser("run", help="run retrain|canary|drift here with kfp.local")
    run_p.add_argument("name", choices=["retrain", "canary", "drift"])
    submit_p = pipe_sub.add_parser("submit", help="submit to Kubeflow Pipelines (--host URL [--schedule CRON])")
    submit_p.add_argument("name", choices=["retrain", "canary", "drift"])
    pipeline.set_defaults(func=cmd_pipeline)

    simulate = sub.add_parser("simulate", help="make drift happen: shifted serving traffic into the event store")
    simulate.add_argument("kind", choices=["new_school", "preference_shift", "broken_feature"])
    simulate.add_argument("--n", type=int, default=2000, help="chat turns to simulate")
    simulate.set_defaults(func=cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Interpreter finalisation runs a last full garbage collection over everything a command
    # loaded (Kiwi, the catalog, the models): ~0.6 s of a one-shot `naviyam chat`. Every command
    # closes what it writes before returning, and the OS takes the memory back at exit anyway, so
    # the heap is frozen at exit instead of walked (atexit runs this before that collection).
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    parser = build_parser()
    # `naviyam pipeline ...` forwards its own flags (--local, -p k=v, --host, --out) to pipelines/.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "pipeline":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.rest = extra
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr,
    )
    if args.command in {"build", "data", "train"}:
        logging.getLogger("naviyam").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DataNotBuiltError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc} (run `make build` first?)", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
