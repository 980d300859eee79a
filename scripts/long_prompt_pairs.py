"""Labelled pairs of long prompts: one pasted text, with an instruction before or after it.

    python scripts/long_prompt_pairs.py [--out app/toolkit/ml/data/long_prompts.csv]

Each prompt is a text of 150 to 200 words (meeting notes, an incident report, an email thread, a
product spec, a code review, a support ticket), or a document of all six of them (about 4,500
characters, past what the models read of a prompt; six documents, each opening with another
text), and one instruction about it, placed before or after the text. A pair keeps the text and
changes the instruction: to another wording of the same request (label 1: the same answer serves
both), to another request, or to the same request with another one added after it (label 0).
Both prompts of a pair embed alike (the embedder reads the text's first 256 tokens); what tells
them apart is a few words next to a long shared text, where a verifier reading only each prompt's
opening sees nothing. The file is written in a fixed order, its `kind` column says what changed
and where; `deja eval --pairs FILE --compare` measures the service on it, kind by kind.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

TEXTS = {
    "meeting notes": (
        "Weekly product sync, Tuesday. Present: Amara (product), Jonas (backend), Priya (design),"
        " Lena (support). The export feature slipped a week: the PDF renderer times out on reports"
        " over 40 pages, and Jonas wants to move rendering to a background job before launch."
        " Priya showed the new onboarding flow; testers liked the checklist but found the"
        " progress bar confusing on mobile, so she will try a step counter instead. Lena said"
        " tickets about invoice downloads doubled since the billing change, mostly customers"
        " who cannot find the new menu entry. Amara asked for a short help article and an"
        " in-app hint. Budget for the user research round in March was approved, capped at"
        " 6,000 euros. Next sync moves to Wednesday because of the offsite."
    ),
    "incident report": (
        "At 02:14 UTC the checkout service started returning errors for about a third of"
        " requests in the EU region. The on-call engineer was paged at 02:19 and found the"
        " connection pool to the orders database exhausted after a deploy that raised the worker"
        " count without raising the pool limit. Rolling back the deploy at 02:41 restored"
        " service; error rates were normal by 02:47. About 1,900 orders failed and customers saw"
        " a generic error page. No data was lost, but 212 payments were authorised without an"
        " order and had to be voided by hand the next morning. The alert fired five minutes"
        " after errors began because its threshold averages over ten minutes. The deploy"
        " checklist does not mention pool sizes, and the staging environment runs with a"
        " quarter of production's workers, so the problem could not show there."
    ),
    "email thread": (
        "From Carla to the facilities team: the third-floor meeting rooms have been booked out"
        " every afternoon this month, and two teams have started holding calls in the kitchen."
        " Could we convert the old storage room into two small call booths? I can share the"
        " floor plan. Reply from Tom, facilities: the storage room still holds the archive boxes"
        " that legal must keep until June; we could move them to the basement, but that needs"
        " a fire safety check first, which takes about three weeks to schedule. Booths cost"
        " roughly 4,500 each installed, and the furniture budget for this quarter has 7,000"
        " left. Reply from Carla: could we do one booth now and the second after June? Also,"
        " can the booking system cap recurring afternoon reservations at two per team?"
    ),
    "product spec": (
        "Saved searches let a user store a search with its filters and get an email when new"
        " results match. A user can keep up to 20 saved searches; each has a name, the query,"
        " the filters, and a frequency of instant, daily or weekly. Instant alerts are batched"
        " so that a user receives at most one email every 15 minutes. Emails list up to ten new"
        " results with a link to the rest. Saved searches belong to a user, not a workspace,"
        " and are deleted with the account. Out of scope for the first release: sharing saved"
        " searches, push notifications and alerts on changed results. Success means 15 percent"
        " of weekly active users keep at least one saved search after a month, and alert emails"
        " see an open rate above 30 percent. The search team estimates four weeks of work."
    ),
    "code review": (
        "The pull request adds retry logic to the payment client. It wraps every call in a loop"
        " that retries up to five times with a fixed one-second delay, catching all exceptions."
        " The tests mock the HTTP layer and check that a call succeeds on the third attempt. A"
        " few things stand out: charges are retried even after a timeout, when the provider may"
        " already have taken the payment, and there is no idempotency key on the request."
        " Catching every exception also retries validation errors that will never succeed. The"
        " delay is fixed, so a provider outage gets a burst of retries from every worker at"
        " once. The new configuration option is read on every call instead of once at startup."
        " The change has no metrics, so nobody would notice retries climbing."
    ),
    "support ticket": (
        "Customer: Northwind Logistics, enterprise plan, 340 seats. Since Monday their"
        " warehouse staff cannot log in with single sign-on; they get an error saying the"
        " assertion has expired. Office staff on the same identity provider log in fine. The"
        " warehouse uses shared tablets whose clocks, the customer says, are set by hand and"
        " may be several minutes off. They changed nothing on their side, but our release on"
        " Sunday tightened the allowed clock skew from five minutes to one. The customer has"
        " asked for a fix by Thursday, when a large shipment arrives, and is asking whether we"
        " can exempt their account. Their contract includes a four-hour response time for"
        " severity-one issues, and their account manager is copied on the ticket."
    ),
}

# Requests about a text: each with two wordings that one answer serves.
INSTRUCTIONS = (
    ("Summarise this in three bullet points.", "Give me a three-bullet summary of this."),
    ("Translate this into French.", "Can you put this into French?"),
    ("List the action items.", "What are the action items here?"),
    ("Draft a reply to this.", "Write a response to this."),
    ("What are the main risks?", "Which risks stand out here?"),
    ("Rewrite this in a more formal tone.", "Make this sound more formal."),
    ("Shorten this to one paragraph.", "Cut this down to a single paragraph."),
    ("What questions should I ask about this?", "Which questions should I raise about this?"),
    ("What deadlines are mentioned?", "Which dates or deadlines does this mention?"),
    ("Who is responsible for what?", "Who owns each task here?"),
)


def _prompt(instruction: str, text: str, before: bool) -> str:
    return f"{instruction}\n\n{text}" if before else f"{text}\n\n{instruction}"


def _documents() -> list[str]:
    texts = list(TEXTS.values())
    return ["\n\n".join(texts[start:] + texts[:start]) for start in range(len(texts))]


def pairs() -> list[tuple[str, str, int, str]]:
    """(stored prompt, asked prompt, label, kind) for every text, placement and instruction."""
    rows = []
    for text, length in [(t, "") for t in TEXTS.values()] + [(d, ", document") for d in _documents()]:
        for before in (True, False):
            where = ("before" if before else "after") + length
            for index, (wording, rewording) in enumerate(INSTRUCTIONS):
                other = INSTRUCTIONS[(index + 1) % len(INSTRUCTIONS)][0]
                stored = _prompt(wording, text, before)
                rows.append((stored, _prompt(rewording, text, before), 1, f"reworded instruction {where}"))
                rows.append((stored, _prompt(other, text, before), 0, f"other instruction {where}"))
                added = _prompt(f"{wording} {other}", text, before)
                rows.append((stored, added, 0, f"added instruction {where}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("app/toolkit/ml/data/long_prompts.csv"))
    args = parser.parse_args()
    rows = pairs()
    with args.out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence1", "sentence2", "label", "kind"])
        writer.writerows(rows)
    print(f"{len(rows)} pairs ({sum(row[2] for row in rows)} same answer) -> {args.out}")


if __name__ == "__main__":
    main()
