"""``rerank doctor``: check the configured provider before trusting it — the key, the model, its
price, canary pairs any sound reranker orders right, whether an instruction reaches the model,
whether a document near the token limit is read whole, and the speed of one full batch.

Everything goes through one :class:`Reranker` session with the score cache off (scores must be
fresh). The canaries and the verdicts are in core/canaries.py; the report's writer in
writers/diagnosis.py."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from rerank_cli.core import canaries as canary
from rerank_cli.core.budget import Estimate, budget_refusal
from rerank_cli.core.canaries import FAIL, PASS, SKIP, WARN, Check
from rerank_cli.errors import ApiError, ExitCode, UsageError
from rerank_cli.jobs.execution import guard_output, retry_notices
from rerank_cli.session import Reranker
from rerank_cli.settings.schema import Settings
from rerank_cli.terminal import Environment
from rerank_cli.words import plural

# The speed check sends one batch of the configured size, but never more than this.
MAX_BATCH = 64
# Statuses of HTTP answers that are about the account, not the document (never a size refusal).
ACCOUNT_STATUSES = (401, 402)


@dataclass(frozen=True)
class Step:
    """What one check will send: documents and requests (at most, for the long documents)."""

    label: str
    documents: int
    requests: int
    what: str


def run_doctor(
    env: Environment,
    settings: Settings,
    output: str | None,
    *,
    dry_run: bool = False,
    verbose: bool = False,
) -> ExitCode:
    settings = replace(settings, cache="off")  # canaries are scored afresh, never cached
    if settings.instruction_mode == "none":  # nothing to send: no warning on every request
        settings = replace(settings, instruction=None, task=None)
    fmt = output or ("table" if env.stdout_isatty else "json")
    notify = retry_notices(env, verbose)
    with Reranker.from_settings(settings, env, require_key=not dry_run, notify=notify) as session:
        doctor = Doctor(session)
        steps = doctor.steps()
        documents = sum(step.documents for step in steps)
        requests = sum(step.requests for step in steps)
        billed = session.capabilities.billed
        price, note = session.price_per_1k() if billed else (0.0, "")
        estimate = Estimate(
            documents=documents,
            unique=documents,
            cached=0,
            to_send=documents,
            requests=requests,
            price_per_1k=price,
            price_note=note,
        )
        target = doctor.target()
        if dry_run:
            _report_dry_run(env, output, steps, estimate, target)
            return ExitCode.OK
        refusal = budget_refusal(estimate, settings)
        if refusal:
            raise UsageError(f"{refusal}; nothing was sent")
        env.info(
            f"doctor: sending up to {plural(documents, 'document')} to {target} ({_cost(estimate)})"
        )
        checks = doctor.run(price, note)
        sent = session.stats.sent
        cost = None if price is None else sent * price / 1000.0
    about = {
        "profile": settings.profile.name,
        "engine": settings.engine,
        "url": target,
        "model": settings.model,
        "instruction_mode": settings.instruction_mode,
        "documents_sent": sent,
        "estimated_cost": cost,
    }
    from rerank_cli.writers.common import WriteOptions
    from rerank_cli.writers.diagnosis import write_diagnosis

    options = WriteOptions(width=env.width, color=env.stdout_color)
    guard_output(lambda: write_diagnosis(about, checks, fmt, env.stdout, options))
    failed = [check.label for check in checks if check.status == FAIL]
    warned = sum(check.status == WARN for check in checks)
    if failed:
        env.info(f"doctor: failed: {', '.join(failed)}")
        return ExitCode.NOTHING_TO_SHOW
    verdict = f"no check failed ({plural(warned, 'warning')})" if warned else "every check passed"
    spent = f", estimated ${cost:.6f}" if cost else ""
    env.info(f"doctor: {verdict}; {plural(sent, 'document')} sent{spent}")
    return ExitCode.OK


def _cost(estimate: Estimate) -> str:
    cost = estimate.cost
    if cost is None:
        return "price unknown" + (f": {estimate.price_note}" if estimate.price_note else "")
    return "free" if cost == 0 else f"about ${cost:.6f}"


def _report_dry_run(
    env: Environment, output: str | None, steps: Sequence[Step], estimate: Estimate, target: str
) -> None:
    if output == "json":  # asked for: the plan is the data
        data: dict[str, Any] = {
            "dry_run": True,
            "url": target,
            "documents": estimate.to_send,
            "requests": estimate.requests,
            "price_per_1k": estimate.price_per_1k,
            "estimated_cost": estimate.cost,
            "checks": [
                {"check": s.label, "documents": s.documents, "requests": s.requests, "what": s.what}
                for s in steps
            ],
        }
        guard_output(lambda: env.stdout.write(orjson.dumps(data) + b"\n"))
        return
    env.info(
        f"dry run: doctor would send up to {plural(estimate.to_send, 'document')} in up to "
        f"{plural(estimate.requests, 'request')} to {target} ({_cost(estimate)}); nothing was sent"
    )
    for step in steps:
        env.info(
            f"  {step.label}: {plural(step.documents, 'document')} in "
            f"{plural(step.requests, 'request')} — {step.what}"
        )


class Doctor:
    """The checks, run in order on one session."""

    def __init__(self, session: Reranker) -> None:
        self.session = session
        self.settings = session.settings
        self.remote = session.capabilities.remote
        self.limit = self._limit()
        shortest = self.limit[1].count("\n\n" + canary.NEEDLE) + canary.MARGIN
        self.lengths = [n for n in canary.probe_lengths(self.limit[0]) if n >= shortest]
        profile_max = self.settings.profile.max_documents or MAX_BATCH
        self.batch = max(1, min(self.settings.batch_size, profile_max, MAX_BATCH))
        self.instructed = self.settings.instruction_mode != "none"

    def target(self) -> str:
        if not self.remote:
            return f"the {self.settings.engine} engine (offline)"
        return self.settings.base_url.rstrip("/") + self.settings.profile.path

    def _limit(self) -> tuple[int | None, Any]:
        """(tokens per document or None, the tokenizer that counts them), as ranking has them."""
        from rerank_cli.providers import tokens

        if not self.session.capabilities.token_limited:
            return None, tokens.tokenizer_for(self.settings.model)
        from rerank_cli.core.long_documents import document_limit

        limit = document_limit(self.settings, canary.NEEDLE_QUERY)
        return limit.max_tokens, limit.tokenizer

    def steps(self) -> list[Step]:
        pairs = len(canary.CANARIES)
        languages = ", ".join(dict.fromkeys(c.language for c in canary.CANARIES))
        steps = [
            Step("canary pairs", 2 * pairs, pairs, f"{pairs} pairs ({languages})"),
        ]
        if self.instructed and self.remote:
            count = len(canary.INSTRUCTION_CANARIES)
            steps.append(
                Step("instruction", 2 * count, count, f"{count} pairs under another instruction")
            )
        if self.lengths:
            steps.append(
                Step(
                    "long documents",
                    2 + len(self.lengths),
                    1 + len(self.lengths),
                    f"documents of up to {self.lengths[-1]:,} tokens, the relevant sentence at "
                    "the end",
                )
            )
        steps.append(Step("batch speed", self.batch, 1, "one full batch, timed"))
        return steps

    # -- sending

    def scores(
        self, query: str, texts: Sequence[str], instruction: str | None = None
    ) -> list[float]:
        """Fresh scores of ``texts`` for ``query``, in input order."""
        results = self.session.rank(query, list(texts), instruction=instruction)
        by_index = [0.0] * len(texts)
        for result in results:
            by_index[result.document.index] = result.score
        return by_index

    # -- the checks

    def run(self, price: float | None, note: str) -> list[Check]:
        relevant, irrelevant = self._canary_scores()  # a refused key or model stops here: 3
        checks = [self._key(), self._model(), self._price(price, note)]
        from rerank_cli.providers.tokens import is_qwen3

        verdict = canary.judge_canaries(
            canary.CANARIES,
            relevant,
            irrelevant,
            qwen3=is_qwen3(self.settings.model) or self.settings.profile.tokenizer == "qwen3",
            template_mode=self.settings.instruction_mode == "template",
        )
        checks.append(verdict)
        meaningful = verdict.status != FAIL
        checks.append(self._instruction(relevant, irrelevant, meaningful))
        checks.append(self._long_documents(meaningful))
        checks.append(self._batch())
        return checks

    def _canary_scores(self) -> tuple[list[float], list[float]]:
        relevant, irrelevant = [], []
        for pair in canary.CANARIES:
            good, bad = self.scores(pair.query, [pair.relevant, pair.irrelevant])
            relevant.append(good)
            irrelevant.append(bad)
        return relevant, irrelevant

    def _key(self) -> Check:
        settings = self.settings
        if not self.remote:
            return Check(
                "key", "key", PASS, f"none needed: the {settings.engine} engine is offline"
            )
        if settings.api_key:
            origin = settings.api_key_origin or "the settings"
            return Check(
                "key", "key", PASS, f"the key from {origin} was accepted by {settings.host}"
            )
        return Check("key", "key", PASS, f"{settings.host} answered without a key")

    def _model(self) -> Check:
        model = self.settings.model
        if not self.remote:
            return Check("model", "model", PASS, f"the {self.settings.engine} engine, offline")
        try:
            listed = [info.id for info in self.session.models()]
        except ApiError as error:
            return Check("model", "model", PASS, f"{model} answered (GET /models: {error})")
        if model in listed:
            return Check("model", "model", PASS, f"{model} answered, and GET /models lists it")
        if not listed:
            return Check("model", "model", PASS, f"{model} answered (GET /models lists no models)")
        shown = ", ".join(listed[:3]) + (", …" if len(listed) > 3 else "")
        return Check(
            "model",
            "model",
            WARN,
            f"{model} answered, but GET /models lists only {shown}: the server may ignore the "
            "model name and serve its own",
            {"listed": listed},
        )

    def _price(self, price: float | None, note: str) -> Check:
        if not self.session.capabilities.billed:
            return Check("price", "price", PASS, "free: nothing is billed offline")
        if price is not None:
            return Check(
                "price",
                "price",
                PASS,
                f"${price:g} per 1,000 documents (GET /models)",
                {"per_1k_documents": price},
            )
        if not self.settings.profile.key_required:
            return Check("price", "price", PASS, f"none listed ({note}): a local server")
        return Check(
            "price",
            "price",
            WARN,
            f"unknown ({note}): cost estimates say 'price unknown', and --max-cost refuses to run",
        )

    def _instruction(
        self, relevant: list[float], irrelevant: list[float], meaningful: bool
    ) -> Check:
        mode = self.settings.instruction_mode
        if mode == "none":
            return Check(
                "instruction",
                "instruction",
                SKIP,
                f"the {self.settings.profile.name} profile sends no instruction (instruction mode "
                "none)",
            )
        if not self.remote:
            return Check(
                "instruction", "instruction", SKIP, f"the {self.settings.engine} engine reads none"
            )
        if not meaningful:
            return Check("instruction", "instruction", SKIP, "not judged: the canary pairs failed")
        from rerank_cli.providers.instructions import TASKS

        other = TASKS["dedup"] if self.settings.instruction != TASKS["dedup"] else TASKS["code"]
        before, after = [], []
        for pair in canary.INSTRUCTION_CANARIES:
            index = canary.CANARIES.index(pair)
            before += [relevant[index], irrelevant[index]]
            after += self.scores(pair.query, [pair.relevant, pair.irrelevant], instruction=other)
        return canary.judge_instruction(
            before, after, [*relevant, *irrelevant], self.settings.profile.instruction_field, mode
        )

    def _long_documents(self, meaningful: bool) -> Check:
        name, label = "long_documents", "long documents"
        if not meaningful:
            return Check(name, label, SKIP, "not judged: the canary pairs failed")
        limit, tokenizer = self.limit
        if not self.lengths:
            return Check(
                name, label, SKIP, f"not checked: {limit} tokens per document is too few to probe"
            )
        relevant, irrelevant = self.scores(canary.NEEDLE_QUERY, [canary.NEEDLE, canary.NEEDLE_OFF])
        if not relevant > irrelevant:
            return Check(
                name,
                label,
                WARN,
                f"not judged: the short relevant document scored {canary.number(relevant)}, not "
                f"above the irrelevant one ({canary.number(irrelevant)})",
            )
        longest_seen = 0
        details: dict[str, Any] = {"limit": limit, "relevant": relevant, "irrelevant": irrelevant}
        probes: list[dict[str, Any]] = []
        details["probes"] = probes
        for length in self.lengths:
            text = canary.long_document(tokenizer, length)
            count = tokenizer.count(text)
            try:
                (score,) = self.scores(canary.NEEDLE_QUERY, [text])
            except ApiError as error:
                if error.status in ACCOUNT_STATUSES:
                    raise
                probes.append({"tokens": count, "refused": error.message})
                advice = (
                    f"set --max-tokens {longest_seen} (the longest read whole here)"
                    if longest_seen
                    else "set --max-tokens to what the server takes"
                )
                return Check(
                    name,
                    label,
                    FAIL,
                    f"a document of {count:,} tokens failed ({error.message}): documents that long "
                    f"will fail too — raise the server's limit, or {advice}",
                    details,
                )
            probes.append({"tokens": count, "score": score})
            if not canary.seen(score, relevant, irrelevant):
                below = (
                    f"between {longest_seen:,} and {count:,}"
                    if longest_seen
                    else f"fewer than {count:,}"
                )
                advice = (
                    f"--max-tokens {longest_seen} makes rerank split long documents into windows "
                    "the server reads whole"
                    if longest_seen
                    else "set --max-tokens to the server's real limit"
                )
                return Check(
                    name,
                    label,
                    WARN,
                    f"the server appears to truncate long documents to {below} tokens: a document "
                    f"of {count:,} tokens whose relevant sentence is at its end scored "
                    f"{canary.number(score)}, like an irrelevant one ({canary.number(irrelevant)}) "
                    f"— {advice}",
                    details,
                )
            longest_seen = count
        where = (
            f"near the limit of {limit:,}" if limit is not None else "(no per-document limit known)"
        )
        return Check(
            name,
            label,
            PASS,
            f"a document of {longest_seen:,} tokens {where}, its relevant sentence at the end, "
            f"scored {canary.number(score)}, like the short relevant one "
            f"({canary.number(relevant)}; irrelevant {canary.number(irrelevant)})",
            details,
        )

    def _batch(self) -> Check:
        stats = self.session.stats
        texts = [
            f"{(pair.relevant if i % 2 else pair.irrelevant)} [{i}]"
            for i, pair in zip(range(self.batch), itertools.cycle(canary.CANARIES), strict=False)
        ]
        requests, retries = stats.requests, stats.retries
        started = time.perf_counter()
        self.scores(canary.CANARIES[0].query, texts)
        elapsed = max(time.perf_counter() - started, 1e-9)
        requests, retries = stats.requests - requests, stats.retries - retries
        rate = len(texts) / elapsed
        where = f"in {plural(requests, 'request')}" if self.remote else "offline"
        reason = f"{plural(len(texts), 'document')} {where}: {elapsed:.2f} s, {rate:,.0f} docs/s"
        details = {
            "documents": len(texts),
            "requests": requests,
            "seconds": elapsed,
            "docs_per_second": rate,
        }
        if retries:
            return Check(
                "batch",
                "batch speed",
                WARN,
                f"{reason}, after {plural(retries, 'retry')}: the server is overloaded or warming",
                details,
            )
        return Check("batch", "batch speed", PASS, reason, details)
