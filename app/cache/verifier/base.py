"""The hit decision as a chain of stages.

The cache hands the verifier the top-k stored prompts nearest to a new prompt (same tenant,
namespace and scope). Each stage looks at the candidates that are still alive, scores them
and may reject some; cheap stages come first so that an expensive one (a cross-encoder, a
judge model) sees as few candidates as possible.

Every stage's score and every rejection reason is kept in the `Verdict`: metrics, feedback
and future per-entry calibration read them from there.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Final, Protocol, cast, runtime_checkable

# Two prompts that share less than this share of their words are reworded, not rearranged.
REWORDED_MAX_OVERLAP: Final = 0.5
_WORD: Final = re.compile(r"[^\W_]+")
# The greetings a prompt may open with, lowercase (a regular expression's fragment): "hi", "hello
# team", "good morning all" ... The cross-encoder's `folded` leaves them out; the entity rule reads
# a request verb after one as a sentence start.
GREETING: Final = r"(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening))(?: there| team| all| everyone)?"


def words(text: str) -> list[str]:
    """The words of a text, case-folded, in order (letters and digits; no punctuation)."""
    return _WORD.findall(text.casefold())


def word_overlap(first: str, second: str) -> float:
    """The words the two prompts share, over the words either has (case-blind); 1.0 for two
    prompts without words."""
    words_a, words_b = set(words(first)), set(words(second))
    either = words_a | words_b
    return len(words_a & words_b) / len(either) if either else 1.0


def shared_ends(first: Sequence[object], second: Sequence[object]) -> tuple[int, int]:
    """How many items two sequences (words, token ids) share at their start, and then at their end."""
    shortest = min(len(first), len(second))
    start = 0
    while start < shortest and first[start] == second[start]:
        start += 1
    end = 0
    while end < shortest - start and first[-1 - end] == second[-1 - end]:
        end += 1
    return start, end


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored prompt the index found near the new one."""

    entry_id: uuid.UUID
    prompt: str
    # Cosine similarity of the two prompts' embeddings, as the index returned it.
    similarity: float
    # The new prompt as read beside this one, when it is not the text the chain decides for: two
    # prompts too long to be read whole are both cut to where they differ (a cut of their own).
    query: str | None = None
    # The two texts stop before the prompts do: what closes them is not the prompts' closing
    # punctuation (`app.cache.verifier.texts.Compared`).
    cut_short: bool = False

    def beside(self, query: str) -> str:
        """The new prompt as the stages read it beside this candidate."""
        return query if self.query is None else self.query


@dataclass(frozen=True, slots=True)
class VerifierPolicy:
    """How strict the hit decision is; a tenant may tune it, a request may only tighten it.

    The defaults were measured on labelled prompt pairs (chat prompts with hard negatives,
    and the adversarial PAWS set) with the served int8 embedder: `deja eval`, `scripts/quality.sh`.
    """

    # Cosine floor when the cross-encoder reads the candidates after the rules: low enough to
    # let the model recover paraphrases that embed far apart, high enough to spare it hopeless ones.
    # Below `cross_encoder_strict_below` the model must be surer (`cross_encoder_strict_min_score`),
    # below `cross_encoder_far_below` surer still (`cross_encoder_far_min_score`).
    min_similarity: float = 0.65
    # Cosine floor when no cross-encoder runs (none shipped, or the tenant turned it off): the
    # floor and the rules are then the whole decision. 0.9 with the rules served 2% of the chat
    # look-alikes where plain cosine served 10%, at the same recall.
    min_similarity_without_cross_encoder: float = 0.9
    # Run the cheap checks on numbers, time, negation, antonyms, names, direction and word order.
    rules: bool = True
    # Rule names (`app.cache.verifier.rules.RULES`) to skip, for a tenant whose prompts trip one.
    # `negation` is off by default: over ten sets of work prompts written apart from the project it
    # refused 12 true pairs the cross-encoder alone would serve and caught no look-alike it would
    # serve, and a blind set rich in negations judged it so (docs/quality.md). A tenant may turn it
    # back on with a list that leaves it out.
    disabled_rules: frozenset[str] = frozenset({"negation"})
    # Lowest cross-encoder probability served; None turns the cross-encoder stage off. It
    # belongs to one trained model's calibration: re-measure it whenever the model is retrained
    # (scripts/quality.sh, `default_on_validation`): the lowest threshold at which the held-out
    # chat pairs and the held-out work prompts each keep 95% of hits right and no validation
    # slice is served less precisely than plain cosine >= 0.9 serves it (docs/quality.md).
    cross_encoder_min_score: float | None = 0.7
    # Candidates whose cosine is below this (and at least `min_similarity`) are served only when
    # the cross-encoder is at least `cross_encoder_strict_min_score` sure: a true paraphrase often
    # embeds between 0.7 and 0.8, and the model, sure enough, tells it from the look-alikes
    # there. Chosen with the threshold (`default_on_validation`).
    cross_encoder_strict_below: float = 0.8
    cross_encoder_strict_min_score: float = 0.8
    # Candidates whose cosine is below this (and at least `min_similarity`) are served only when
    # the cross-encoder is at least `cross_encoder_far_min_score` sure: a paraphrase reworded
    # through and through may embed at 0.6, among many more look-alikes and unrelated prompts
    # than above, and only a model all but certain is right there. Open at the defaults, from the
    # floor (0.65) to 0.7: for the shipped model the floor and threshold chosen there keep the
    # chat and work prompts 95% right (`default_on_validation`); `min_similarity` at or above
    # this closes it.
    cross_encoder_far_below: float = 0.7
    cross_encoder_far_min_score: float = 0.93
    # A candidate at this cosine or more worded apart from the prompt (`word_overlap` under
    # REWORDED_MAX_OVERLAP: the words both have are under half the words either has; "Best
    # horror movies from the 1990s" / "Top 1990s horror films list") is served
    # `cross_encoder_reworded_margin` below `cross_encoder_min_score` (0.35 at the defaults; a
    # tenant that raises the usual threshold raises this one too). The model learnt from
    # word-order swaps that a prompt rearranged may ask something else, and it carries that
    # doubt to prompts worded apart that embed almost as one, which are paraphrases far more
    # often: there the cosine is the stronger evidence, and the model need only not object.
    # 1.0 (or a margin of 0) closes it.
    cross_encoder_reworded_above: float = 0.9
    cross_encoder_reworded_margin: float = 0.35
    # Let a configured first pass (`FirstPassStage`) decide the pairs it is sure of. Off where the
    # cross-encoder's own score must grade every hit (the error bound's learned curve).
    first_pass: bool = True
    # The cross-encoder reads the candidates one at a time, nearest first, and stops at the first
    # it serves: a pair costs the same alone as in a batch on a CPU, and the nearest candidate is
    # the one served on most hits. Off, it reads them (at most two) in one call and the chain serves
    # its favourite (the error bound, whose curve grades the best-scored candidate).
    nearest_first: bool = True

    def cross_encoder_threshold(self, similarity: float, overlap: float = 1.0) -> float | None:
        """The lowest cross-encoder probability served for a candidate of this cosine and this
        `word_overlap` with the prompt; None: the cross-encoder is off."""
        if self.cross_encoder_min_score is None:
            return None
        if similarity < self.cross_encoder_far_below:
            return max(
                self.cross_encoder_min_score,
                self.cross_encoder_strict_min_score,
                self.cross_encoder_far_min_score,
            )
        if similarity < self.cross_encoder_strict_below:
            return max(self.cross_encoder_min_score, self.cross_encoder_strict_min_score)
        if similarity >= self.cross_encoder_reworded_above and overlap < REWORDED_MAX_OVERLAP:
            return max(0.0, self.cross_encoder_min_score - self.cross_encoder_reworded_margin)
        return self.cross_encoder_min_score

    def similarity_floor(self, cross_encoder_follows: bool) -> float:
        """The cosine floor in force, given whether a cross-encoder stage will run after the rules."""
        if cross_encoder_follows and self.cross_encoder_min_score is not None:
            return self.min_similarity
        return self.min_similarity_without_cross_encoder

    def stricter(self, min_similarity: float | None = None) -> VerifierPolicy:
        """This policy with a cosine threshold a request asked for, never looser than the tenant's."""
        if min_similarity is None:
            return self
        return replace(
            self,
            min_similarity=max(self.min_similarity, min_similarity),
            min_similarity_without_cross_encoder=max(
                self.min_similarity_without_cross_encoder, min_similarity
            ),
        )


@dataclass(frozen=True, slots=True)
class StageResult:
    """One stage's finding on one candidate: its score (if it scores), why it rejects (if it
    does), and whether it settles the candidate as a hit (the later stages then never read it)."""

    score: float | None = None
    rejection: str | None = None
    settled: bool = False
    # The model that gave the score, where the stage reads pairs with more than one and their
    # scores are not calibrated together (an error bound learns a curve per model).
    scorer: str | None = None


@dataclass(slots=True)
class CandidateReport:
    """Everything the chain learnt about one candidate."""

    candidate: Candidate
    # Stage name -> score, for the stages that scored this candidate.
    scores: dict[str, float] = field(default_factory=dict)
    # The reason of the first stage that rejected it; None if it survived every stage.
    rejection: str | None = None
    # The stage that rejected it, when the reason alone does not say (e.g. two rule stages).
    rejected_by: str | None = None
    # The stage that settled it as a hit before the later stages read it; None if none did.
    settled_by: str | None = None
    # The model that gave its last score, when the stage names one (`StageResult.scorer`).
    scorer: str | None = None

    @property
    def accepted(self) -> bool:
        return self.rejection is None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision: the candidate to serve, or None for a miss, with per-candidate detail."""

    accepted: Candidate | None
    # The deciding score of the accepted candidate: the last stage that scored it (the
    # cross-encoder probability when it ran, the first pass's when that decided, else the
    # cosine). None on a miss.
    score: float | None
    # One report per candidate, best cosine first.
    reports: tuple[CandidateReport, ...]

    @property
    def hit(self) -> bool:
        return self.accepted is not None

    @property
    def rejections(self) -> Mapping[uuid.UUID, str]:
        """Entry id -> reason, for every candidate that was turned down."""
        return {r.candidate.entry_id: r.rejection for r in self.reports if r.rejection is not None}


@runtime_checkable
class Stage(Protocol):
    """One step of the chain.

    `check` receives only the candidates still alive, best cosine first, and returns one
    `StageResult` per candidate in the same order. A candidate a stage settles stays a hit
    without the later stages reading it: a cheaper stage that is sure spares the dearer one. A
    judge model asking "do these two need the same answer?" fits here as one more stage after the
    cross-encoder (a candidate settled before it would skip it too).
    """

    name: str

    def enabled(self, policy: VerifierPolicy) -> bool: ...

    def check(
        self, query: str, candidates: Sequence[Candidate], policy: VerifierPolicy
    ) -> Sequence[StageResult]: ...


@runtime_checkable
class Screen(Stage, Protocol):
    """A stage whose finding on a candidate never depends on the others (the rules): it can be
    asked about one candidate at a time, inside one decision (`deciding`), so that the stage after
    it asks only about the candidates it comes to read."""

    def check_one(self, query: str, candidate: Candidate, policy: VerifierPolicy) -> StageResult: ...

    def deciding(self) -> AbstractContextManager[None]: ...


@runtime_checkable
class ScreenedReader(Stage, Protocol):
    """A stage that reads candidates in an order of its own and can ask the screen before it about
    each only as it comes to it: `passes(position)` says whether the candidate at that position
    got past the screen. It returns one result per candidate, those it never came to refused
    unread; or None when it must know every survivor first (the screen then reads them all)."""

    def check_screened(
        self,
        query: str,
        candidates: Sequence[Candidate],
        policy: VerifierPolicy,
        passes: Callable[[int], bool],
    ) -> Sequence[StageResult] | None: ...


class Verifier:
    """Runs the stages in order and serves the best survivor.

    Synchronous and CPU-bound: the async caller runs `decide` in a worker thread whenever a model
    may read a pair.
    """

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages: tuple[Stage, ...] = tuple(stages)
        # Asked once: a protocol check costs more than a decision should spend on it.
        self._screens = frozenset(id(s) for s in self.stages if isinstance(s, Screen))
        self._readers = frozenset(id(s) for s in self.stages if isinstance(s, ScreenedReader))

    def decide(self, query: str, candidates: Sequence[Candidate], policy: VerifierPolicy) -> Verdict:
        reports = [CandidateReport(c) for c in sorted(candidates, key=lambda c: c.similarity, reverse=True)]
        alive = list(reports)
        settled: list[CandidateReport] = []
        stages = [stage for stage in self.stages if stage.enabled(policy)]
        index = 0
        while index < len(stages) and alive:
            stage = stages[index]
            following = stages[index + 1] if index + 1 < len(stages) else None
            if following is not None and id(stage) in self._screens and id(following) in self._readers:
                # The screen (the rules) reads only the candidates the reader after it comes to:
                # the nearest survivor is read first and most hits end there.
                alive = self._screened(
                    cast(Screen, stage), cast(ScreenedReader, following), query, alive, policy, settled
                )
                index += 2
                continue
            results = stage.check(query, [r.candidate for r in alive], policy)
            alive = _apply(stage.name, alive, results, settled)
            index += 1
        alive += settled
        if not alive:
            return Verdict(accepted=None, score=None, reports=tuple(reports))
        # The last stage that scored is the best informed: among survivors, serve its favourite.
        best = max(alive, key=_deciding_score)
        return Verdict(accepted=best.candidate, score=_deciding_score(best), reports=tuple(reports))

    @staticmethod
    def _screened(
        screen: Screen,
        reader: ScreenedReader,
        query: str,
        alive: list[CandidateReport],
        policy: VerifierPolicy,
        settled: list[CandidateReport],
    ) -> list[CandidateReport]:
        """The screen and the reader after it, the screen asked about a candidate only when the
        reader comes to it; the same decision as the two stages run one after the other."""
        candidates = [r.candidate for r in alive]
        found: dict[int, StageResult] = {}

        def passes(position: int) -> bool:
            if position not in found:
                found[position] = screen.check_one(query, candidates[position], policy)
            return found[position].rejection is None and not found[position].settled

        with screen.deciding():
            read = reader.check_screened(query, candidates, policy, passes)
            if read is None:
                for position in range(len(candidates)):
                    passes(position)
        screened = _apply(
            screen.name, alive, [found.get(p, StageResult()) for p in range(len(alive))], settled
        )
        if read is None:
            return _apply(
                reader.name, screened, reader.check(query, [r.candidate for r in screened], policy), settled
            )
        positions = {id(report): position for position, report in enumerate(alive)}
        return _apply(reader.name, screened, [read[positions[id(r)]] for r in screened], settled)


def _apply(
    name: str, alive: list[CandidateReport], results: Sequence[StageResult], settled: list[CandidateReport]
) -> list[CandidateReport]:
    """Records one stage's results on the candidates it read; returns those still alive (a
    candidate it settles joins `settled`)."""
    if len(results) != len(alive):
        raise ValueError(f"stage {name!r} returned {len(results)} results for {len(alive)}")
    survivors = []
    for report, result in zip(alive, results, strict=True):
        if result.score is not None:
            report.scores[name] = result.score
            report.scorer = result.scorer
        if result.rejection is not None:
            report.rejection = result.rejection
            report.rejected_by = name
        elif result.settled:
            report.settled_by = name
            settled.append(report)
        else:
            survivors.append(report)
    return survivors


def _deciding_score(report: CandidateReport) -> float:
    if report.scores:
        return next(reversed(report.scores.values()))
    return report.candidate.similarity
