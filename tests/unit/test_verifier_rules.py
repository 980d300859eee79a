"""The cheap rules: look-alikes they must turn down, paraphrases they must keep."""

from __future__ import annotations

import gc
import itertools
import os
import random
import uuid

import pytest

from app.cache.policy import TenantCachePolicy
from app.cache.verifier.base import Candidate, VerifierPolicy
from app.cache.verifier.rules import (
    ANTONYM,
    CODE,
    DIRECTION,
    ENTITY,
    NEGATION,
    NUMBER,
    ORDER,
    STATED_OTHERWISE_CHARS,
    TIME,
    different_code,
    different_entities,
    different_negation,
    different_numbers,
    different_time,
    entities,
    first_rejection,
    opposite_words,
    quantities,
    reversed_direction,
    swapped_roles,
)
from app.cache.verifier.stages import RulesStage


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ("convert 5 km to miles", "convert 5 miles to km", DIRECTION),
        ("convert 10 USD to EUR", "convert 10 EUR to USD", DIRECTION),
        ("convert Markdown to HTML", "convert HTML to Markdown", DIRECTION),
        ("train from Paris to Rome", "train from Rome to Paris", DIRECTION),
        ("buy 5 tickets for the show", "buy 50 tickets for the show", NUMBER),
        ("download Ubuntu 22.04 ISO", "download Ubuntu 24.04 ISO", NUMBER),
        ("top 3 hiking trails", "top ten hiking trails", NUMBER),
        ("100 Celsius in Fahrenheit", "convert 100°F to Celsius", DIRECTION),
        ("500 km by car", "500 miles by car", NUMBER),
        ("hotels in Rome in June", "hotels in Rome in December", NUMBER),
        ("pesto recipe with pine nuts", "pesto recipe without pine nuts", NEGATION),
        ("why does my script exit", "why doesn't my script exit", NEGATION),
        ("list of NBA champions", "list of NFL champions", ENTITY),
        ("current time in New York", "current time in Los Angeles", ENTITY),
        ("how to mute a thread", "how to unmute a thread", ANTONYM),
        ("should I buy Tesla shares", "should I sell Tesla shares", ANTONYM),
        ("sort the array ascending", "sort the array descending", ANTONYM),
        ("weather in Oslo tomorrow", "weather in Oslo today", TIME),
        ("back up the database daily", "back up the database weekly", TIME),
        ("Python code that works", "Python code that doesn't work", NEGATION),
        ("temperature in Celsius in Oslo", "temperature in Fahrenheit in Oslo", NUMBER),
        ("current USD/JPY rate", "USD/JPY rate yesterday", TIME),
        ("stream the match in 1080p", "stream the match in 720p", NUMBER),
        # Two codes, one led by digits (a number with letters to the rules), one by a letter (a name).
        ("What's the status of ticket 08771f?", "What's the status of ticket f7d870?", NUMBER),
        ("Revert commit 3f2a1b9 on main", "Revert commit a91c0e2 on main", NUMBER),
        ("Who is assigned to incident 4471b?", "Who is assigned to incident INC-5944?", NUMBER),
        ("convert 100 GBP to USD", "convert 100 GBP to Japanese yen", NUMBER),
        ("Translate a BigQuery query into Oracle", "translate an Oracle query into BigQuery", DIRECTION),
        ("Convert 250 EUR to Swiss francs", "250 Swiss francs to EUR", DIRECTION),
        ("average tickets per support agent", "average support agents per ticket", DIRECTION),
        ("chart of sessions per user last week", "chart of users per session last week", DIRECTION),
        ("index a thousand documents", "index a million documents", NUMBER),
        ("cost of storing one billion rows", "cost of storing a trillion rows", NUMBER),
        ("how do I turn off dark mode in VS Code", "enable dark mode in VS Code", ANTONYM),
        ("switch the VPN off on my laptop", "how to switch on the VPN on my laptop", ANTONYM),
        ("deactivate read receipts in Teams", "turn read receipts on in Teams", ANTONYM),
        ("customers who churned within 30 days", "customers who churned after more than 30 days", ANTONYM),
        ("laptops under $800 for students", "laptops over $800 for students", ANTONYM),
        ("interview questions for a junior designer", "interview questions for a senior designer", ANTONYM),
        ("why did commit 3f2a9c1 break the build", "why did commit 3f2a9c7 break the build", ENTITY),
        ("logs of pod 5d8f7-x2k", "logs of pod 5d8f7-q9z", ENTITY),
        (
            "flights shorter than five hours from Madrid",
            "flights longer than five hours from Madrid",
            ANTONYM,
        ),
        (
            "As a buyer, what should I check before a call with a seller?",
            "As a seller, what should I check before a call with a buyer?",
            ORDER,
        ),
        ("SOC 2 Type I audit checklist", "SOC 2 Type II audit checklist", NUMBER),
        ("World War I timeline", "World War II timeline", NUMBER),
        ("why did the hiring freeze stop", "she said no hiring freeze would stop", NEGATION),
        ("set up two-factor authentication", "set up three-factor authentication", NUMBER),
        ("outline a five-paragraph essay on remote work", "outline an essay on remote work", NUMBER),
        ("products with no orders last month", "products with orders last month", NEGATION),
        ("why my cron job doesnt run at midnight", "why my cron job runs at midnight", NEGATION),
        # One prompt adds detail to the other: it still says the other's words, and one negated.
        ("pesto recipe", "pesto recipe without nuts for my daughter who is allergic", NEGATION),
        (
            "SQL to list customers with orders",
            "SQL listing every customer that has never placed a single order",
            NEGATION,
        ),
        ("how do I archive a single Slack channel", "how do I archive every Slack channel", ANTONYM),
        ("lunch with Carl on Friday", "lunch with Carol on Friday", ENTITY),
        ("outline a five-step onboarding plan", "outline an onboarding plan", NUMBER),
        ("my manager said no to my raise request", "my manager said yes to my raise request", ANTONYM),
        ("is the UN budget funded", "is the UN budget unfunded", ANTONYM),
        ("Can my manager email me about the review?", "Can I email my manager about the review?", ORDER),
        ("Why did the client reject us?", "Why did we reject the client?", ORDER),
        ("I owe him $50. How should I bring it up?", "He owes me $50. How should I bring it up?", ORDER),
        ("They haven't invoiced us yet", "We haven't invoiced them yet", ORDER),
        ("move the weekly sync to Thursday", "move the weekly sync to Tuesday", TIME),
        ("Q3 revenue by region for the board", "Q4 revenue by region for the board", NUMBER),
        ("revenue for the third quarter", "revenue for Q2", NUMBER),
        ("prepare for a SOC 2 audit", "prepare for a SOC 3 audit", NUMBER),
        ("a contract that runs for 10 years", "a contract that runs for 10 months", NUMBER),
        ("forecast the next 12 months", "forecast the next two years", NUMBER),
        ("translate the memo into French", "translate the memo into German", ENTITY),
        ("tax rules for contractors in France", "tax rules for contractors in the U.S.", ENTITY),
        ("migrate our VMs from AWS to Azure", "migrate our VMs from Google Cloud to Azure", ENTITY),
        ("book a 30-minute call with the vendor", "book a quarter of an hour call with the vendor", NUMBER),
        ("plan a 2 hour workshop", "plan a workshop of an hour and a half", NUMBER),
    ],
)
def test_look_alikes_are_rejected(first: str, second: str, reason: str) -> None:
    assert first_rejection(first, second) == reason
    assert first_rejection(second, first) == reason


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("convert 5km to miles", "5 kilometers in miles"),
        ("convert 10 USD to EUR", "10 dollars in euros"),
        ("convert 5,000 JPY to GBP", "what are 5,000 Japanese yen worth in British pounds?"),
        ("How do I turn on 2FA for my Okta account?", "enable MFA on Okta"),
        ("What's the status of ticket 08771f?", "Can you tell me the status of ticket 08771f?"),
        ("How do I turn on 2FA for S3 buckets?", "enable MFA on S3 buckets"),
        ("Post a journal entry in SAP S/4HANA", "post a journal entry in SAP S4HANA"),
        ("Migrate our Postgres database to MySQL", "move the Postgres db to MySQL"),
        ("top 5 coffee shops in Seattle", "best five coffee shops in Seattle"),
        ("cost of 1,000 shares", "cost of 1000 shares"),
        ("cost of a thousand shares", "cost of 1,000 shares"),
        ("sell one million cars by 2030", "sell 1 million cars by 2030"),
        ("hourly rate for a plumber", "a plumber's rate per hour"),
        ("how many requests per second can Postgres handle", "how many req per second can Postgres take"),
        ("what's new in Python v3.11", "what is new in Python 3.11"),
        ("monthly payment on a $500k loan at 5%", "payment per month for a 500k dollar loan at 5 percent"),
        ("NYC subway map", "New York City subway map"),
        ("find contact email for Acme Corp", "Acme Corporation contact email"),
        ("weather in Berlin today", "today's weather in Berlin"),
        ("Flights from London to Tokyo in June", "June flights London→Tokyo"),
        ("return plaintext only, no links", "answer in plain text with no links"),
        ("zsh autocomplete not working", "fix zsh autocomplete that is not working"),
        ("nuxt vs next for content sites", "next vs nuxt for content websites"),
        ("rows in table orders", "rows in the orders table"),
        ("What is the capital of Canada?", "Capital city of Canada"),
        ("how many ounces in a pound", "pound to ounces conversion"),
        ("flights from NYC to LA", "New York to Los Angeles flights"),
        ("my printer is not working", "my printer is broken"),
        ("Scholem Aleichem biography", "Sholem Aleichem biography"),
        ("What is the population of Nigeria?", "What is Nigeria's population?"),
        ("Where is the warehouse of Amazon located?", "Where is Amazon's warehouse located?"),
        ("turn off notifications on weekends", "disable notifications on weekends"),
        ("tickets resolved within a day", "tickets resolved in less than a day"),
        ("plans for at most 10 seats", "plans for up to ten seats"),
        ("turn my phone off and on again", "turn my phone on and off again"),
        ("how to turn on/off wifi on a Pixel", "how to turn off/on wifi on a Pixel"),
        ("turn on silent mode on my phone", "silence my phone"),
        ("Write a summary of this article", "Read this article and give me a summary"),
        ("make a USB drive read-only", "write-protect a USB drive"),
        ("what changed over the weekend within the team", "what changed within the team this weekend"),
        ("deploy a Helm chart to k8s", "deploy a Helm chart to Kubernetes"),
        ("create a Jria ticket template", "create a Jira ticket template"),
        ("World War II timeline", "WWII timeline"),
        ("nonstop flights from NYC to Tokyo", "direct flights from NYC to Tokyo"),
        ("Is Tom Hanks married to Rita Wilson?", "Is Rita Wilson married to Tom Hanks?"),
        ("does a single missed payment hurt my credit score", "does a missed payment hurt my credit at all"),
        ("how to say no to a meeting invite", "how to decline a meeting invite"),
        ("World War II timeline", "World War 2 timeline"),
        ("How does EBITDA differ from net income?", "How does net income differ from EBITDA?"),
        ("She was born in 1923 in Boston", "She was born in Boston in 1923"),
        # One name written as one word or as two, a country by its adjective or initials, a product
        # by its short name, a quoted term in another inflection.
        ("How do I share a PowerBI report?", "how do I share a Power BI report"),
        ("What evidence does a SOC2 audit need?", "what evidence does a SOC 2 audit need"),
        ("Who is the French finance minister?", "Who is the finance minister of France?"),
        ("How do U.S. payroll taxes work?", "How do American payroll taxes work?"),
        ("Rewrite this MSSQL query for BigQuery", "Rewrite this SQL Server query for BigQuery"),
        ("Write an FB post for our launch", "Write a Facebook post for our launch"),
        ("What does 'shifting left' mean in QA?", "Explain 'shift left' in QA"),
        ("add a column named order_date", "add a column named order date"),
        ("Who won the Nadal-Federer final?", "who won the final between Federer and Nadal"),
        # Days of the week belong to the time rule, months to the number rule: a name beside one
        # is no swap ("Friday" / "the Berlin office").
        ("Ana asked on Friday for the Q2 numbers", "Ana asked for the Q2 numbers of the Berlin office"),
        # A quarter, a duration, an idiom, however written.
        ("Summarize Q3 sales for the team", "summarise third-quarter sales for the team"),
        ("a 3-year exclusivity deal, cut to 1 year", "an exclusivity of three years, cut to twelve months"),
        ("I have 24 months of data", "I have two years of data"),
        ("a meeting of 90 minutes", "a 1.5 hour meeting"),
        ("the ETL now takes 6h, up from 2h", "the ETL takes 6 hours instead of 2"),
        ("agenda for a 1:1 with my report", "agenda for a one-on-one with my report"),
        ("ELI5 how DNS works", "explain how DNS works like I'm five"),
        ("run migrations during a zero-downtime deploy", "run migrations in a deploy with no downtime"),
        ("he moved to Oslo at 23", "he moved to Oslo as a 23 year old"),
        ("which type I should pick for a startup", "which type should I pick for a startup"),
        ("turn off two-factor authentication for Zoom", "disable MFA on Zoom"),
        ("set up two-step verification", "set up 2-step verification"),
        ("which 5 products had the most orders", "which 5 products had the highest no. of orders"),
        ("set up single sign-on for Okta", "set up SSO for every Okta app"),
        # Products by their other names, parts of an hour and decades in words.
        (
            "How can I tell if the SSL certificate for api.example.com is about to expire?",
            "Is there a way to check when the TLS cert on api.example.com runs out?",
        ),
        (
            "Create a .gitignore for a Node.js project in VS Code",
            "gitignore for a Node project edited in Visual Studio Code",
        ),
        ("Summarize how OAuth 2.0 differs from OpenID Connect", "How does OIDC differ from plain OAuth2?"),
        ("How do I reset a user's MFA in Azure AD?", "Reset a user's MFA in Microsoft Entra ID"),
        (
            "a 45-minute lesson plan on photosynthesis",
            "a lesson plan on photosynthesis, three quarters of an hour",
        ),
        ("a bio: 20 years in finance, ex-Deloitte", "a bio: two decades in finance, formerly at Deloitte"),
        ("book a half-hour call with the vendor", "book a 30 minute call with the vendor"),
        (
            "Our vendor charged us twice. How do we get a refund?",
            "We were charged twice by our vendor. Refund?",
        ),
        ("We're being charged twice by our vendor", "Our vendor is charging us twice"),
        (
            "Should I email them or call them about the invoice?",
            "About the invoice: should I call them or email them?",
        ),
        (
            "How reliable is Quora at getting us accurate answers?",
            "How reliable are the answers we get from Quora?",
        ),
        # A request to the assistant, a passive question, a possessive "her", the country: no roles traded.
        ("Prepare me for my job interview at Google", "How should I prepare for my job interview at Google?"),
        ("Can you quiz me on French verbs?", "I want to quiz myself on French verbs"),
        ("Were we charged twice by the vendor?", "Did the vendor charge us twice?"),
        ("How much am I owed?", "How much do they owe me?"),
        ("My mom forgot her password. How do I reset it?", "How do I reset the password she forgot?"),
        ("We visit the US every summer, what should we pack?", "What to pack when visiting US every summer?"),
        ("Is this approach getting us anywhere?", "Are we getting anywhere with this approach?"),
        ("How do I know if this girl likes me?", "I like a girl. How will I know if she likes me back?"),
        # A verb that reads the same both ways, a preposition after "is", both directions named.
        ("I met her on Hinge last week. What next?", "She met me on Hinge last week. What next?"),
        ("Is she like me?", "Am I like her?"),
        # An identifier led by a digit is the same name in both.
        ("revert commit 3f2a9c1 please", "please revert 3f2a9c1"),
        ("Should I text him first or vice versa?", "Should he text me first or vice versa?"),
        # A negation typed without its apostrophe; a negative word in a prompt worded apart.
        ("printer on floor 3 wont print my PDF", "the printer on floor 3 won't print my PDF"),
        ("my wifi isnt working", "my wifi is not working"),
        ("outlook wont load", "outlook not loading"),
        (
            "explain the statute of limitations simply",
            "I'm not a lawyer, how long can someone wait to sue me?",
        ),
        (
            "move the blog to a new domain keeping SEO",
            "how do I change domains without losing search rankings",
        ),
    ],
)
def test_paraphrases_are_kept(first: str, second: str) -> None:
    assert first_rejection(first, second) is None
    assert first_rejection(second, first) is None


def test_quantities_normalise_spelling_and_units() -> None:
    assert {(q.value, q.unit) for q in quantities("five km and 1,000 USD in v2.0")} == {
        ("5", "km"),
        ("1000", "usd"),
        ("2.0", None),
    }
    # "3.10" is a version, not the decimal 3.1.
    assert different_numbers("upgrade to 3.10", "upgrade to 3.1") == NUMBER


def test_a_word_between_a_count_and_its_unit_leaves_the_unit_the_counts() -> None:
    assert (
        different_numbers(
            "Write a thank-you note to a client who just renewed for another two years.",
            "Client re-signed for 24 more months. Can you draft something to thank them?",
        )
        is None
    )
    assert different_numbers("extend the trial by 2 extra weeks", "extend the trial by 14 days") is None
    assert different_numbers("extend the trial by 2 extra weeks", "extend the trial by 3 weeks") == NUMBER


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # Times of day, however written; a range's one meridiem is both ends'.
        ("mute the alerts from 22:00 to 07:00", "mute the alerts between 10pm and 7am"),
        ("staff the desk 9am-5pm", "staff the desk from 9 to 5 pm"),
        ("cover the shop 8am to 8pm with four cashiers", "four cashiers, shop open 8 to 8: a rota please"),
        # Counts and durations in words.
        ("merge two spreadsheets into one", "merge a pair of spreadsheets into one"),
        ("set up two screens on my laptop", "use dual monitors with my laptop"),
        # Days as months, pounds as pounds sterling, half a minute, a time of day by its name.
        ("Create a 90-day plan for a new ops manager", "Plan a new ops manager's first three months"),
        (
            "Are gifts from suppliers over £50 allowed?",
            "Can I accept a present worth more than fifty pounds?",
        ),
        ("a 30-second voicemail script", "a script for a half-minute voicemail"),
        ("a CronJob that runs every night at midnight", "a CronJob that runs daily at 00:00"),
        ("it's noon in Chicago: what time is it in Sydney?", "12:00 in Chicago is what time in Sydney?"),
        # Two things named as two.
        ("How is a budget different from a forecast?", "How do the two, a budget and a forecast, differ?"),
        ("copy a 200GB file between two Linux servers", "move a 200 GB file from one Linux box to another"),
        ("a Jest test for sum(a, b)", "a Jest test for a function that adds two numbers"),
        ("months between a start date and an end date in Excel", "months between two dates in Excel"),
        ("customers with no order in the last 12 months", "customers who have not ordered in the past year"),
        ("a reminder for invoices seven days overdue", "a reminder for invoices a week overdue"),
        ("users with 0 logins this month", "users who never logged in this month"),
        # A percentage as a fraction; a month by its number.
        ("sample size at a 5% significance level and 80% power", "sample size for alpha 0.05 and power 0.8"),
        ("signups during 2025-04", "signups in April 2025"),
        # A number inside a name.
        ("why move from Win10 to Win11", "reasons to upgrade from Windows 10 to Windows 11"),
        ("explain OAuth2 simply", "explain OAuth 2.0 in plain words"),
        ("what does our p99 latency mean", "what does the 99th percentile latency mean"),
        ("vet a third-party vendor", "vet a 3PL vendor"),
        ("liability cover of at least 2M dollars", "liability insurance of $2 million"),
        ("CAGR from $2m to $5m in 4 years", "CAGR from $2 million to $5 million in four years"),
    ],
)
def test_a_number_stated_another_way_is_the_same_number(first: str, second: str) -> None:
    assert different_numbers(first, second) is None
    assert different_numbers(second, first) is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("book the room at 3pm", "book the room at 3am"),
        ("mute the alerts from 22:00 to 07:00", "mute the alerts between 9pm and 7am"),
        ("merge three spreadsheets into one", "merge a pair of spreadsheets into one"),
        ("churn in the first 30 days", "churn in the first 2 months"),
        ("a 30-second voicemail script", "a script for a one-minute voicemail"),
        ("a CronJob that runs every night at midnight", "a CronJob that runs daily at 01:00"),
        (
            "Are gifts from suppliers over £50 allowed?",
            "Can I accept a present worth more than sixty pounds?",
        ),
        # Two units of something are no two things named.
        ("Postgres vs MySQL in two sentences", "Postgres vs MySQL"),
        (
            "the difference between PTO and sick leave over two weeks",
            "the difference between PTO and sick leave",
        ),
        ("compare sum(a, b) with three numbers", "compare sum(a, b) with two numbers"),
        ("customers with no order in the last 6 months", "customers who have not ordered in the past year"),
        ("sample size at a 1% significance level", "sample size for alpha 0.05"),
        ("why move from Win10", "reasons to upgrade from Windows 11"),
        # "5m" alone is metres or minutes; "5M" is a million.
        ("a 5m walk to the office", "a 5M walk to the office"),
        # "P1" is a priority, not the tier in "tier 1".
        ("define the path from tier 1 support to engineering", "escalate a P1 outage to engineering"),
    ],
)
def test_another_number_stated_another_way_is_still_another_number(first: str, second: str) -> None:
    assert different_numbers(first, second) == NUMBER
    assert different_numbers(second, first) == NUMBER


def test_words_of_a_pasted_text_do_not_stand_for_a_count_its_request_adds() -> None:
    text = (
        "Both regions missed the target in March. The pair of new hires in Lyon started late, and the"
        " warehouse closed twice for repairs. Sales in the north held up, but returns doubled after the"
        " price change, and the support queue grew every week until the new rota was agreed with the team."
        " The pair of new tills arrives next month."
    )
    assert len(text) > STATED_OTHERWISE_CHARS
    assert different_numbers(f"Summarise this in two bullets: {text}", f"Summarise this: {text}") == NUMBER


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("when do I get my W-2", "when do I get my W2"),
        ("last day of the month in T-SQL", "last day of the month in SQL Server"),
        ("keep macOS awake during a talk", "keep my Mac awake during a talk"),
        ("can a firm in CA ask about salary history", "can a firm in California ask about salary history"),
        ("freight from OH to GA", "freight from Ohio to Georgia"),
        ("what does the new European rule on pay require", "what does the EU pay directive require"),
        ("is a spoken contract binding under English law", "is a verbal contract binding in England"),
        ("what is 480,000 Swedish kronor in USD", "convert 480,000 SEK to US dollars"),
    ],
)
def test_one_name_written_two_ways_is_one_name(first: str, second: str) -> None:
    assert different_entities(first, second) is None
    assert different_entities(second, first) is None


def test_a_state_code_matches_only_its_own_state() -> None:
    assert different_entities("payroll tax in TX", "payroll tax in Ohio") == ENTITY
    # "MS" stays Microsoft.
    assert different_entities("licences for MS Teams", "licences for Microsoft Teams") is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("migrate the table w/o downtime", "migrate the table without downtime"),
        (
            "what goes into an NDA with a contractor",
            "what goes into a non-disclosure agreement with a contractor",
        ),
        ("how to register an NGO in Kenya", "how to register a non-governmental organisation in Kenya"),
    ],
)
def test_a_negation_written_short_or_a_non_term_named_by_its_initials_is_kept(
    first: str, second: str
) -> None:
    assert different_negation(first, second) is None
    assert different_negation(second, first) is None


def test_a_non_term_against_its_plain_word_is_still_a_negation() -> None:
    assert different_negation("pesto w/o nuts", "pesto with nuts") == NEGATION
    assert (
        different_negation("explain TLS to a non-technical audience", "explain TLS to a technical audience")
        == NEGATION
    )
    # Initials that do not spell the term leave "non-" a negation.
    assert different_negation("NPS of non-paying users", "NPS of paying users") == NEGATION


def test_dates_compare_by_their_parts() -> None:
    assert different_numbers("AAPL close on 2024-12-31", "apple stock close 2024-12-31") is None
    assert different_numbers("posts after:2025-06-01", "posts after:2024-06-01") == NUMBER


def test_a_month_replaced_is_another_date_and_one_added_is_a_detail() -> None:
    first, second = (
        "How many business days are there between March 3 and March 28, 2025?",
        "How many business days are there between March 3 and April 28, 2025?",
    )
    assert different_numbers(first, second) == NUMBER
    assert different_numbers(second, first) == NUMBER
    assert different_numbers("Q3 and Q3 targets side by side", "Q3 and Q4 targets side by side") == NUMBER
    # A month one prompt adds, or writes short, is the model's to judge.
    assert (
        different_numbers(
            "The index dipped to 53.7 from 54.7 in August.",
            "The index slipped to 53.7 in September from 54.7 in August.",
        )
        is None
    )
    # A month in other words may be a bound.
    assert (
        different_numbers(
            "Which March invoices were paid in March?", "Which March invoices were paid before April?"
        )
        is None
    )
    assert (
        different_numbers(
            "Orders placed after December 20 will ship in January.",
            "Anything ordered after 20 Dec won't go out until January.",
        )
        is None
    )


def test_the_language_asked_for_and_a_thing_named_by_its_letter_are_names() -> None:
    assert (
        different_entities(
            "summarize this Japanese contract in English", "summarize this Japanese contract in Japanese"
        )
        == ENTITY
    )
    assert different_entities("Translate this email to Spanish", "Translate this email into German") == ENTITY
    assert (
        different_entities(
            "Calculate the gross margin for Product A using the data below.",
            "Using the data below, calculate the gross margin for Product B.",
        )
        == ENTITY
    )
    assert (
        different_entities(
            "Write a short email declining the meeting", "Write a short Slack message declining the meeting"
        )
        == ENTITY
    )
    assert (
        different_entities("Write a tweet about our Series B", "Write a blog post about our Series B")
        == ENTITY
    )
    # A kind of text named but not asked for, or one kind in two names.
    assert (
        different_entities(
            "How can I improve the open rate of our newsletter?", "Ideas to get our email opened more?"
        )
        is None
    )
    assert (
        different_entities(
            "What's the best time to send a B2B newsletter?", "When should I send a B2B email newsletter?"
        )
        is None
    )
    assert different_entities("Write a job ad for a nurse", "Draft a job posting for a nurse") is None
    assert different_entities("Draft an email to the team", "Write a message to the team") is None
    # One thing named for another of its kind, in the same words.
    for first, second in [
        ("How do I drop a column in Snowflake?", "How do I drop a table in Snowflake?"),
        ("How do I rename a branch in git?", "How do I rename a tag in git?"),
        ("How do I add a user to a group in Okta?", "How do I add a user to a role in Okta?"),
        ("How do I set a CPU limit for a container?", "How do I set a CPU request for a container?"),
        (
            "How do I write unit tests for this function?",
            "How do I write integration tests for this function?",
        ),
    ]:
        assert different_entities(first, second) == ENTITY
        assert different_entities(second, first) == ENTITY
    # Two names of one thing, or a sibling in other words.
    assert (
        different_entities(
            "How do I share a folder in Google Drive?", "How do I share a directory in Google Drive?"
        )
        is None
    )
    assert (
        different_entities(
            "How do I raise the storage quota for my mailbox?",
            "How do I raise the storage limit for my mailbox?",
        )
        is None
    )
    assert (
        different_entities("How do I drop a column in Snowflake?", "Remove a column from a Snowflake table")
        is None
    )
    # The same language asked for, a language the text is in, the same letters in another order.
    assert different_entities("Translate this email to Spanish", "Translate this email into Spanish") is None
    assert (
        different_entities(
            "The doc is in German. Summarize it in English.", "Summarize this German doc in English"
        )
        is None
    )
    assert (
        different_entities("Is Spanish similar to Portuguese?", "Is Portuguese similar to Spanish?") is None
    )
    assert different_entities("Compare plan A and plan B", "Compare plan B with plan A") is None
    assert different_entities("Compare Product A and B", "Compare Product A with Product B") is None
    assert (
        different_entities(
            "Summarise this French contract in English", "It's in French; give me an English summary"
        )
        is None
    )
    assert (
        different_entities(
            "What does 'Rechnung' mean in German?", "What does the German word 'Rechnung' mean in English?"
        )
        is None
    )
    assert (
        different_entities("Translate this into Portuguese", "Translate this into Brazilian Portuguese")
        is None
    )
    assert (
        different_entities(
            "Translate this into Brazilian Portuguese", "Translate this into European Portuguese"
        )
        == ENTITY
    )
    assert (
        different_entities(
            "Draft a note about email etiquette to post in Slack",
            "Write a Slack message about email etiquette",
        )
        is None
    )
    assert different_entities("Write an email copy for our newsletter", "Write our newsletter copy") is None
    assert different_entities("Write a cover letter for this job", "Write a resignation letter") == ENTITY
    assert different_entities("Write a letter to the landlord", "Write an email to the landlord") == ENTITY
    # "A letter" is any letter.
    assert different_entities("Write a cover letter for this job", "Write a letter for this job") is None


def test_the_length_of_text_asked_for_is_a_quantity() -> None:
    first, second = (
        "Explain the difference between a W-2 employee and a 1099 contractor in one sentence.",
        "Explain the difference between a W-2 employee and a 1099 contractor in a one-page guide.",
    )
    assert different_numbers(first, second) == NUMBER
    assert different_numbers(second, first) == NUMBER
    assert different_numbers("Draft a one-paragraph summary", "Draft a one-pager summarising it") == NUMBER
    # The same length in other words.
    assert different_numbers("Explain X in a sentence", "Explain X in one sentence") is None
    assert different_numbers("Summarise this in 3 bullets", "Summarise this in three bullets") is None
    assert different_numbers("Write a 100-word bio", "Write a bio of 100 words") is None
    assert different_numbers("Summarize this in 50 words", "Summarize this in 50 characters") == NUMBER


def test_a_half_counts_as_its_number_however_written() -> None:
    first, second = (
        "What were our sales in the first half of the year?",
        "What were our sales in the second half?",
    )
    assert different_numbers(first, second) == NUMBER
    assert different_numbers("H1 2024 revenue by region", "first half of 2024 revenue by region") is None
    assert different_numbers("the 2nd-half plan", "the H2 plan") is None
    # "2h" is two hours, not the second half.
    assert different_numbers("the ETL takes 2h", "the ETL takes 2 hours") is None


def test_each_rule_abstains_on_identical_prompts() -> None:
    text = "Convert 5 km to miles without rounding for Alice in 2024"
    for rule in (
        different_numbers,
        different_time,
        different_negation,
        different_entities,
        reversed_direction,
        swapped_roles,
        opposite_words,
    ):
        assert rule(text, text) is None


def test_names_swapped_between_roles_are_caught() -> None:
    first = "His father emigrated to Missouri in 1868 but came back before the family could go to America ."
    second = "His father emigrated to America in 1868 but came back before the family could go to Missouri ."
    assert swapped_roles(first, second) == ORDER


def test_words_that_trade_places_are_caught_but_reordered_lists_are_not() -> None:
    assert swapped_roles("the dog bites the man", "the man bites the dog") == ORDER
    assert swapped_roles("guests were Alice, Bob and Carol", "guests were Carol, Bob and Alice") is None
    assert swapped_roles("python memory leak in requests", "memory leak in python requests") is None
    # After a verb of replacing, "with" names the new one; otherwise it joins two things.
    assert (
        swapped_roles("Replace tabs with spaces in this file", "Replace spaces with tabs in this file")
        == ORDER
    )
    assert swapped_roles("Serve rice with beans", "Serve beans with rice") is None


def test_a_possessor_trades_places_as_its_name() -> None:
    assert (
        swapped_roles("Add Alice as a reviewer on Bob's PR", "Add Bob as a reviewer on Alice's PR") == ORDER
    )
    assert (
        swapped_roles(
            "Can a contractor approve an employee's timesheet?",
            "Can an employee approve a contractor's timesheet?",
        )
        == ORDER
    )
    assert swapped_roles("Review Bob's PR before Friday", "Before Friday, review Bob's PR") is None


def test_a_capital_letter_that_names_something_trades_places_as_a_name() -> None:
    # "A" names a column or an option here, not the article.
    assert (
        swapped_roles(
            "In Excel, how do I divide column A by column B?",
            "In Excel, how do I divide column B by column A?",
        )
        == ORDER
    )
    assert swapped_roles("Is A better than B for logging?", "Is B better than A for logging?") == ORDER
    # The article, where a sentence begins or in a title's capitals, and a symmetric relation.
    assert swapped_roles("Write A Short Poem About Rain", "write a short poem about rain") is None
    assert (
        swapped_roles(
            "A quick question: how do I reset my password?", "Quick question: how do I reset my password?"
        )
        is None
    )
    assert swapped_roles("Compare plan A with plan B", "Compare plan B with plan A") is None
    assert (
        swapped_roles("Is variant A independent of variant B?", "Is variant B independent of variant A?")
        is None
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Who reports to Dana in the platform team?", "Who does Dana report to in the platform team?"),
        ("Who did Dana hire last week?", "Who hired Dana last week?"),
        ("Who will hire Dana?", "Who will Dana hire?"),
        ("Who do I report to?", "Who reports to me?"),
        ("Who does the billing team report to?", "Who reports to the billing team?"),
        ("Who should I contact about payroll?", "Who should contact me about payroll?"),
        ("Which of our clients owe us the most?", "Which of our clients do we owe the most?"),
        ("Which teams report to Dana?", "Which teams does Dana report to?"),
        ("What depends on the auth service?", "What does the auth service depend on?"),
    ],
)
def test_who_asked_for_as_the_subject_and_then_as_the_object_is_another_question(
    first: str, second: str
) -> None:
    assert swapped_roles(first, second) == ORDER
    assert swapped_roles(second, first) == ORDER


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # A mutual relation, a passive, another wording: the one asked for keeps its role.
        ("Who works with Dana?", "Who does Dana work with?"),
        ("Who hired Dana?", "Who was Dana hired by?"),
        ("Who reports to Dana?", "Which people report to Dana?"),
        ("Who should I contact about payroll?", "Who do I contact about payroll?"),
        ("Who approved the budget for Q3?", "Who signed off the Q3 budget?"),
        ("Who manages Alex?", "Who is Alex's manager?"),
        ("Which teams does Dana manage?", "Which teams are managed by Dana?"),
        ("Which vendors do we pay late?", "Which of our vendors do we pay late?"),
        ("Who has edit access to the budget sheet?", "Who has access to edit the budget sheet?"),
        ("What does Dana work on?", "What is Dana working on?"),
        ("What blocks the release?", "What is blocking the release?"),
    ],
)
def test_who_asked_for_in_the_same_role_is_the_same_question(first: str, second: str) -> None:
    assert swapped_roles(first, second) is None
    assert swapped_roles(second, first) is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # A relative clause, with or without the word that opens it.
        ("List the people Dana manages", "List the people who manage Dana"),
        ("Find customers who referred Maria", "Find customers Maria referred"),
        ("List the services that call the user service", "List the services the user service calls"),
        # The same relation asked for from its other end.
        ("Which projects depend on the auth library?", "Which libraries does the auth project depend on?"),
        (
            "Salesforce: how do I see which accounts a specific rep owns?",
            "Salesforce: how do I see which rep owns a specific account?",
        ),
        # A party of two words.
        (
            "Write a polite email about the £4,000 that Acme Ltd owes us",
            "Write a polite email about the £4,000 that we owe Acme Ltd",
        ),
        # Who acts against whom it goes to or what is acted on.
        ("Show the tickets assigned by Lee", "Show the tickets assigned to Lee"),
        ("Which bugs were reported by support?", "Which bugs were reported to support?"),
        (
            "Draft a press release announcing our acquisition of Brightline Analytics.",
            "Draft a press release announcing our acquisition by Brightline Analytics.",
        ),
    ],
)
def test_roles_in_a_clause_traded_are_another_request(first: str, second: str) -> None:
    assert swapped_roles(first, second) == ORDER
    assert swapped_roles(second, first) == ORDER


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("List the people Dana manages", "List the people who Dana manages"),
        ("List the people Dana manages", "Show everyone that Dana manages"),
        ("Find customers who referred Maria", "Find the customers that referred Maria"),
        ("Which accounts does a rep own?", "Which accounts are owned by a rep?"),
        ("Show the invoices we sent to Acme", "Show the invoices that we sent to Acme"),
        ("Which projects depend on the auth library?", "Which of our projects rely on the auth library?"),
        (
            "In Salesforce, how do I see which accounts a rep owns?",
            "Salesforce: how can I view the accounts a given rep owns?",
        ),
        ("Show me the tickets Lee closed this week", "Which tickets did Lee close this week?"),
        ("I want to know which tools the data team uses", "Which tools does the data team use?"),
        ("Show the reports that Finance sends every Monday", "Show the reports Finance sends every Monday"),
        ("How much does Acme Ltd owe us?", "What does Acme Ltd still owe us?"),
        # Names in running text, a place, a quantity: no roles traded.
        ("Their first Winter Olympic Games were in 1994.", "Their first Olympic Winter Games were in 1994."),
        ("How do you unlock Wii Mario Kart?", "How do you unlock Mario Kart Wii?"),
        ("Is the office close to the station?", "Is the office close by the station?"),
        ("Revenue was increased by 5% last year", "Revenue was increased to 5% last year"),
        ("Find the commits written by Priya", "Find the commits Priya wrote"),
        # "after" is a time, "by" a criterion, a verb read both ways, a possessor.
        ("Which servers did the update restart?", "Which servers restarted after the update?"),
        ("Show revenue filtered by the EMEA region", "Show revenue filtered to the EMEA region"),
        ("What was the contribution of each team?", "What was the contribution by each team?"),
        ("Acme Ltd rents us its office", "We rent Acme Ltd's office"),
    ],
)
def test_a_clause_reworded_keeps_its_roles(first: str, second: str) -> None:
    assert swapped_roles(first, second) is None
    assert swapped_roles(second, first) is None


def test_an_object_turned_possessor_is_a_rewording_not_a_swap() -> None:
    # "the report for project X" / "project X's report": every role kept.
    assert (
        swapped_roles(
            "Summarise the hiring pipeline report for project Meridian for Q2 2021.",
            "Give me a summary of project Meridian's hiring pipeline report for Q2 2021.",
        )
        is None
    )
    assert (
        swapped_roles("the budget of the Berlin office for Q3", "the Berlin office's budget for Q3") is None
    )
    # The ends of a direction still swap.
    assert (
        swapped_roles("copy the rows from staging to production", "copy the rows from production to staging")
        == ORDER
    )


def test_a_pasted_text_both_share_sets_no_time_against_the_other() -> None:
    # The request says "current"; the text it is about names last week and next month. The other
    # prompt pastes the same text: the periods are the text's, not a time asked about.
    text = "Last week we shipped the billing migration. Next month the audit starts."
    assert (
        different_time(f"What is the current status? {text}", f"{text} Summarise where things stand.") is None
    )
    assert different_time("current USD/JPY rate", "USD/JPY rate yesterday") == TIME


def test_zero_before_a_noun_is_no_but_zero_in_on_is_a_verb() -> None:
    assert different_negation("deploy with zero downtime", "deploy with no downtime") is None
    assert different_negation("deploy with zero downtime", "deploy with downtime") == NEGATION
    assert different_negation("how do I zero in on the slow query", "how do I find the slow query") is None


def test_non_hyphenated_or_not_is_one_word() -> None:
    hyphenated = "They drafted a non-binding priorities list for the health-care cuts."
    joined = "They drafted a nonbinding priorities list for the health care cuts."
    assert different_negation(hyphenated, joined) is None
    assert opposite_words(hyphenated, joined) is None
    assert (
        opposite_words("the last non-empty value in column A", "the last non empty value in column A") is None
    )
    assert opposite_words("un-mute the channel", "unmute the channel") is None
    assert opposite_words("unmute the channel", "mute the channel") == ANTONYM
    # Against the plain word, either spelling is still the opposite.
    assert different_negation("draft a binding agreement", "draft a non-binding agreement") == NEGATION
    assert opposite_words("draft a binding agreement", "draft a nonbinding agreement") == ANTONYM
    assert different_negation("list the non-IIM colleges", "list the IIM colleges") == NEGATION


def test_two_things_moving_each_the_other_way_round_are_opposites() -> None:
    assert (
        opposite_words(
            "Why did the stock rise even though earnings dropped?",
            "Why did the stock drop even though earnings rose?",
        )
        == ANTONYM
    )
    assert (
        opposite_words("Costs went up 10% while revenue fell 5%", "Costs fell 5% while revenue went up 10%")
        == ANTONYM
    )
    # The same movements told in another order.
    assert (
        opposite_words("Why did revenue rise while costs fell?", "Why did costs fall while revenue rose?")
        is None
    )


def test_after_a_quantity_is_a_bound_against_within_it() -> None:
    first = "What are the tax implications of selling shares after one year?"
    assert (
        opposite_words(first, "What are the tax implications of selling shares within one year?") == ANTONYM
    )
    assert (
        opposite_words(
            "What happens to unused leave after a year?", "What happens to leave once a year passed?"
        )
        is None
    )
    assert opposite_words("Call me after the meeting", "Call me within the hour") is None
    # "after" before another bound leaves the bound to it.
    first = "how is selling index funds after less than a year taxed?"
    assert opposite_words(first, "taxes when selling index funds after over a year") == ANTONYM


def test_comparatives_are_opposites_unless_the_comparison_is_turned_round() -> None:
    asked, other = (
        "Which is faster for reads, Redis or Memcached?",
        "Which is slower for reads, Redis or Memcached?",
    )
    assert opposite_words(asked, other) == ANTONYM
    assert (
        opposite_words(
            "What does a stronger dollar do to exporters?", "What does a weaker dollar do to exporters?"
        )
        == ANTONYM
    )
    assert opposite_words("Is Rust faster than Go?", "Is Rust slower than Go?") == ANTONYM
    # A comparison turned round says the same; another wording is the model's to judge.
    assert opposite_words("Why is NumPy faster than a loop?", "Why is a loop slower than NumPy?") is None
    assert (
        opposite_words("Is Postgres faster compared to MySQL?", "Is MySQL slower compared to Postgres?")
        is None
    )
    assert (
        opposite_words("Is there an easier way to write this regex?", "It is harder to read: a simpler way?")
        is None
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "How do I give the 'Finance-Analysts' role read access to the sales schema in Snowflake?",
            "How do I give the 'Finance-Analysts' role write access to the sales schema in Snowflake?",
        ),
        (
            "Compare PostgreSQL and MySQL for a write-heavy workload",
            "Compare PostgreSQL and MySQL for a read-heavy workload",
        ),
        ("Show me how to read a JSON file with Python", "Show me how to write a JSON file with Python"),
        ("What is the hotel limit for domestic travel?", "What is the hotel limit for international travel?"),
        (
            "Statute of limitations for a written contract in California",
            "Statute of limitations for an oral contract in California",
        ),
        (
            "We're the licensor. What indemnities should we push for?",
            "We're the licensee. What indemnities should we push for?",
        ),
        ("How many sick days do part-time employees get?", "How many sick days do full-time employees get?"),
        ("How do I sum each row in Excel?", "How do I sum each column in Excel?"),
        ("Write a formal email declining the discount", "Write a casual email declining the discount"),
        ("What is our onboarding checklist?", "What is our offboarding checklist?"),
        ("What was our pre-tax income in 2024?", "What was our post-tax income in 2024?"),
        ("How do I request PTO in Workday?", "How do I approve PTO in Workday?"),
        ("Who files the vendor claim in Coupa?", "Who approves the vendor claim in Coupa?"),
    ],
)
def test_the_other_side_of_a_kind_in_the_same_words_is_an_opposite(first: str, second: str) -> None:
    assert opposite_words(first, second) == ANTONYM
    assert opposite_words(second, first) == ANTONYM


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # In other words than the same ones, the model judges.
        ("Write a summary of this article", "Read this article and give me a summary"),
        ("How do I read and write a JSON file?", "How do I write and read JSON files?"),
        ("Which readers of our blog write to us most?", "Which of our blog's readers write to us most?"),
        ("Add a row to the table", "Insert a new row into the table"),
        # Two words turned may say the same.
        (
            "Is a stateless service easier to scale than a stateful one?",
            "Is a stateful service harder to scale than a stateless one?",
        ),
    ],
)
def test_the_sides_of_a_kind_in_other_words_are_the_models_to_judge(first: str, second: str) -> None:
    assert opposite_words(first, second) is None
    assert opposite_words(second, first) is None


def test_a_negative_word_that_negates_nothing_asked_is_not_a_negation() -> None:
    assert (
        different_negation(
            "Not surprisingly, Korea leads the way in broadband penetration.",
            "Korea leads the way in broadband penetration.",
        )
        is None
    )
    assert (
        different_negation(
            "Draft the announcement for the new office, not to mention the parking.",
            "Draft the announcement for the new office.",
        )
        is None
    )
    # The asker's state before a question, not the request.
    assert (
        different_negation("I don't know how to pivot a table in Excel", "how to pivot a table in Excel")
        is None
    )
    assert (
        different_negation("I cant figure out how to export the report", "how do I export the report") is None
    )
    assert (
        different_negation("We still do not understand why the build fails", "why does the build fail")
        is None
    )
    # What the request is about still negates.
    assert (
        different_negation(
            "remove the users I don't know from the channel", "remove the users I know from the channel"
        )
        == NEGATION
    )
    assert different_negation("Remove the users I don't know.", "Remove the users I know.") == NEGATION
    assert (
        different_negation(
            "Draft the announcement, careful not to mention the layoffs.",
            "Draft the announcement, careful to mention the layoffs.",
        )
        == NEGATION
    )


def test_a_request_verb_after_a_greeting_is_no_name() -> None:
    assert entities("Hi, Send a follow-up on this article") == ()
    assert entities("Hello team, Port the SQL from BigQuery to MySQL") == ("sql", "bigquery", "mysql")
    assert (
        different_entities(
            "Hi, Send a follow-up on this article - draft it for me asap",
            "Hi, Darft a follow-up about this. pls",
        )
        is None
    )
    # Any other word after the greeting may be a name; so may the one the greeting names.
    assert (
        different_entities(
            "Hi, Priya asked for the Q3 deck, can you send it", "Hi, Rahul asked for the Q3 deck"
        )
        == ENTITY
    )
    assert different_entities("Hey team, send the Q3 deck to Priya", "send the Q3 deck to Rahul") == ENTITY
    assert entities("Hi Sam, send the notes") == ("sam",)


# A pasted text both prompts share, as the verifier reads it (line breaks joined): the request
# comes before it in one prompt and after its last line, with no stop, in the other.
_RELEASE_NOTES = (
    "Release 3.8.0 (May 2) - New: Bulk export of invoices to CSV and XLSX (Admin > Billing > Export)"
    " - Fixed: SSO login loop for Okta users on Safari - Changed: the 'Owner' role can no longer delete"
    " workspaces"
)
_FUNCTION = (
    'def average_order_value(orders): """Return the mean value of non-cancelled orders.""" total = 0'
    " for o in orders: if o['status'] != 'cancelled': total += o['amount'] return total / len(orders)"
)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            f"Turn these release notes into a tweet. {_RELEASE_NOTES}",
            f"{_RELEASE_NOTES} Write a tweet from this.",
        ),
        (
            f"Draft a customer email announcing this: {_RELEASE_NOTES}",
            f"{_RELEASE_NOTES} Make this into an email.",
        ),
        (
            f"There's a bug in this function, can you find it? {_FUNCTION}",
            f"Spot the mistake in this Python code: {_FUNCTION}",
        ),
        (
            "How do I limit a Docker container to 2 GB of memory?",
            "What flag caps the RAM a Docker container can use at 2GB?",
        ),
        ("Is phone support included on the Starter plan?", "Do Starter-tier customers get phone support?"),
    ],
)
def test_a_request_after_a_pasted_text_or_a_unit_or_a_word_hyphened_to_a_name_is_no_name(
    first: str, second: str
) -> None:
    assert different_entities(first, second) is None
    assert different_entities(second, first) is None


def test_a_name_after_a_pasted_text_is_still_a_name() -> None:
    # A capitalised word after a text that leads no request is a name, as anywhere else.
    assert (
        different_entities(
            f"{_RELEASE_NOTES} Acme Group asked for this.",
            f"{_RELEASE_NOTES} Brightline Group asked for this.",
        )
        == ENTITY
    )
    assert (
        different_entities(
            f"{_RELEASE_NOTES} Translate this for Priya.", f"{_RELEASE_NOTES} Translate this for Rahul."
        )
        == ENTITY
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("How do I format dates as YYYY-MM-DD in Excel?", "How do I format dates as DD/MM/YYYY in Excel?"),
        ("Parse 'MM/DD/YYYY' strings in pandas", "Parse 'DD/MM/YYYY' strings in pandas"),
        (
            "What's the deadline for filing Form 1099-NEC for 2024?",
            "What's the deadline for filing Form 1099-MISC for 2024?",
        ),
        # A 24-hour clock against a 12-hour one.
        ("Convert the timestamp to HH:mm format", "Convert the timestamp to hh:mm a format"),
        ("Show the time as %I:%M %p in Python", "Show the time as %H:%M in Python"),
        ("Format as yyyy-MM-dd HH:mm in Java", "Format as yyyy-MM-dd hh:mm in Java"),
        ("Format the cell as h:mm AM/PM in Excel", "Format the cell as hh:mm in Excel"),
    ],
)
def test_another_date_pattern_or_form_is_another_name(first: str, second: str) -> None:
    assert different_entities(first, second) == ENTITY
    assert different_entities(second, first) == ENTITY


def test_one_date_pattern_however_written_is_one_name() -> None:
    assert (
        different_entities("Format a date as %Y-%m-%d in Python", "Python: format a date as YYYY-MM-DD")
        is None
    )
    assert (
        different_entities("Excel date format yyyy-mm-dd", "How do I show dates as YYYY-MM-DD in Excel?")
        is None
    )
    # A time: "%I:%M %p" is "hh:mm a"; minutes in capitals after the hours are minutes; "hh" all in
    # lower case may be either clock.
    assert different_entities("Show the time as %I:%M %p in Python", "Python: time as hh:mm a") is None
    assert different_entities("Convert the timestamp to HH:mm", "Convert the timestamp to HH:MM") is None
    assert different_entities("format as yyyy-mm-dd hh:mm", "format as YYYY-MM-DD HH:mm") is None
    assert different_entities("Excel: show times as h:mm AM/PM", "Excel time format hh:mm am/pm") is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("can you explain what a Net-30 payment term means?", "Explain what a net 30 payment term means"),
        (
            "Employer Social Security contribution for an employee earning $6,500 a month?",
            "employer social security contribution for an employee earning $6500/month",
        ),
        (
            "How many mL of 1 M Tris-HCl do I need to make 500 mL of 50 mM buffer?",
            "how many ml of 1M tris-hcl do i need to make 500ml of 50mM buffer",
        ),
        (
            "What is the shelf life of reconstituted trypsin stored at -20°C?",
            "shelf life of reconstituted trypsin stored at -20C",
        ),
        (
            "Suggest a subject line for candidates who didn't pass the first interview round.",
            "suggest a subject line for candidates who did not pass the 1st interview round",
        ),
        (
            "Our printer on floor 2 keeps jamming. Who fixes it?",
            "Who repairs the second-floor printer? It jams.",
        ),
    ],
)
def test_a_number_in_another_notation_is_the_same_number(first: str, second: str) -> None:
    assert different_numbers(first, second) is None
    assert different_numbers(second, first) is None


def test_a_currency_before_a_number_is_its_unit_and_other_numbers_still_count() -> None:
    assert [(q.value, q.unit) for q in quantities("earning $6500/month")] == [("6500", "usd")]
    assert (
        different_numbers("an employee earning $6,500 a month", "an employee earning $7,500/month") == NUMBER
    )
    assert different_numbers("stored at -20°C", "stored at -80C") == NUMBER
    assert different_numbers("the 1st interview round", "the third interview round") == NUMBER


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "In our test, group A saw the new layout and group B saw the old one. A converted at 5.2% and"
            " B at 4.8%. Summarize what this means for the new layout.",
            "In our test, group A saw the old layout and group B saw the new one. A converted at 5.2% and"
            " B at 4.8%. Summarize what this means for the new layout.",
        ),
        (
            "List customers who bought product A but never bought product B",
            "List customers who bought product B but never bought product A",
        ),
        (
            "Why did churn rise in EMEA while it fell in APAC?",
            "Why did churn rise in APAC while it fell in EMEA?",
        ),
        # Clauses that differ around the two, before or after them.
        (
            "Flag invoices older than 30 days as overdue and invoices older than 90 days as delinquent",
            "Flag invoices older than 90 days as overdue and invoices older than 30 days as delinquent",
        ),
        (
            "Our UK entity invoices in GBP while our US entity invoices in USD",
            "Our UK entity invoices in USD while our US entity invoices in GBP",
        ),
        # "another" stands for the email; what each is about traded.
        (
            "Draft an email to the CFO about the budget and another to the CTO about the roadmap",
            "Draft an email to the CTO about the budget and another to the CFO about the roadmap",
        ),
        # Two numbers traded between what each is said of.
        (
            "What's our book-to-bill ratio for Q3 if bookings were $3.2M and billings were $2.8M?",
            "What's our book-to-bill ratio for Q3 if bookings were $2.8M and billings were $3.2M?",
        ),
        (
            "Revenue was 120k in March and 150k in April; what's the growth?",
            "Revenue was 150k in March and 120k in April; what's the growth?",
        ),
        ("Set min replicas to 2 and max replicas to 10", "Set min replicas to 10 and max replicas to 2"),
    ],
)
def test_two_things_traded_between_clauses_alike_are_another_request(first: str, second: str) -> None:
    assert swapped_roles(first, second) == ORDER
    assert swapped_roles(second, first) == ORDER


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # Two clauses alike but for the two: a list of two, reordered.
        (
            "They were there to enjoy us and they were there to pray for us.",
            "They were there to pray for us and they were there to enjoy us.",
        ),
        ("Keep it always short, always clear", "Keep it always clear, always short"),
        # The two compared.
        ("Compare sales in 2023 and sales in 2024", "Compare sales in 2024 and sales in 2023"),
        # Clauses alike around the two, words that mark the next of a list aside.
        (
            "Create a ticket for the login bug and another ticket for the export bug",
            "Create a ticket for the export bug and another ticket for the login bug",
        ),
        (
            "Fix the typo in the header, then fix the typo in the footer",
            "Fix the typo in the footer, then fix the typo in the header",
        ),
        (
            "Draft an email to say thanks and another email to ask for feedback",
            "Draft an email to ask for feedback and another email to say thanks",
        ),
        ("Plot revenue by month and plot costs by month", "Plot costs by month and plot revenue by month"),
        # The second clause says "one" for what the first named.
        (
            "Write a unit test for parse_date and write one for format_date",
            "Write a unit test for format_date and write one for parse_date",
        ),
        (
            "Open a ticket for the login bug and one for the export bug",
            "Open a ticket for the export bug and one for the login bug",
        ),
        # Numbers of a list, or of a comparison, reordered.
        (
            "How many employees have between 10 and 20 years of service?",
            "How many employees have between 20 and 10 years of service?",
        ),
        (
            "Compare sales of $1.2M in 2023 with sales of $1.5M in 2024",
            "Compare sales of $1.5M in 2024 with sales of $1.2M in 2023",
        ),
    ],
)
def test_two_clauses_alike_reordered_are_the_same_request(first: str, second: str) -> None:
    assert swapped_roles(first, second) is None
    assert swapped_roles(second, first) is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "Write a formal email declining a client's request for a discount.",
            "Write a friendly, casual email declining a client's request for a discount.",
        ),
        (
            "Write a formal apology to a customer whose shipment arrived damaged.",
            "Write a casual, light-hearted apology to a customer whose shipment arrived damaged.",
        ),
        (
            "How do I calculate customer churn rate for a quarter?",
            "How do I calculate customer retention rate for a quarter?",
        ),
        ("How do I submit an expense report in Concur?", "How do I approve an expense report in Concur?"),
    ],
)
def test_the_other_side_of_a_kind_among_a_few_more_words_is_an_opposite(first: str, second: str) -> None:
    assert opposite_words(first, second) == ANTONYM
    assert opposite_words(second, first) == ANTONYM


def test_less_of_a_side_is_more_of_its_opposite() -> None:
    assert opposite_words("Make this email less formal", "Make this email more casual") is None
    assert opposite_words("Rewrite this to be less casual", "Rewrite this to be more formal") is None
    assert opposite_words("Make this email less formal", "Make this email more formal") == ANTONYM
    assert opposite_words("Make this email less casual", "Make this email more casual") == ANTONYM
    # "less" before a word whose opposite the other prompt does not name stays "less".
    assert (
        opposite_words("Tone this post down so it reads less like an ad", "Make this post less salesy")
        is None
    )
    assert opposite_words("Which query uses less memory?", "Which query uses more memory?") == ANTONYM


def test_a_side_of_a_kind_kept_among_more_words_is_no_opposite() -> None:
    assert (
        opposite_words("Write a formal email to a client", "Write a formal, friendly email to a client")
        is None
    )
    assert (
        opposite_words("Write a formal email to a client", "Write a polite, formal email to a client") is None
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # A capitalised word that opens no request, after a pasted text or anywhere: a name.
        ("Ask Will to review the draft", "Ask Priya to review the draft"),
        (f"{_RELEASE_NOTES} Send this to Will for review", f"{_RELEASE_NOTES} Send this to Omar for review"),
        ("Build this in Make for our CRM", "Build this in Zapier for our CRM"),
        # A name of its own, hyphened: not the name with a word added.
        ("Register a branch office in Saxony", "Register a branch office in Saxony-Anhalt"),
        ("What does the Business plan include?", "What does the Business-Plus plan include?"),
        # A delimiter named in quotes, and a word of a product that is also a unit.
        ("Split the column on '-' in pandas", "Split the column on '_' in pandas"),
        ("How do I mail merge in Office 365 Word?", "How do I mail merge in Office 365 Excel?"),
    ],
)
def test_names_a_request_verb_or_a_suffix_or_a_unit_could_hide_are_still_names(
    first: str, second: str
) -> None:
    assert different_entities(first, second) == ENTITY
    assert different_entities(second, first) == ENTITY


def test_a_delimiter_traded_for_another_is_a_swap() -> None:
    assert (
        swapped_roles(
            "In pandas, replace '.' with ',' in the price column",
            "In pandas, replace ',' with '.' in the price column",
        )
        == ORDER
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Set the retry delay to 2 seconds", "Set the retry delay to a second"),
        ("Schedule 2 interviews with the candidate", "Schedule a second interview with the candidate"),
        ("An employee earning $6,500 a month", "An employee earning $6,500/week"),
        ("Is a contractor at $120/hr expensive?", "Is a contractor at $120 per day expensive?"),
        ("Our plan costs $40 monthly", "Our plan costs $40 a year"),
        # The period after what the amount is paid for.
        (
            "Storage costs $0.023 per GB per month; price 5 TB",
            "Storage costs $0.023 per GB per year; price 5 TB",
        ),
        ("Our plan costs $99/seat/month", "Our plan costs $99/seat/year"),
    ],
)
def test_a_count_is_no_rank_and_an_amount_paid_in_another_period_is_another_amount(
    first: str, second: str
) -> None:
    assert different_numbers(first, second) == NUMBER
    assert different_numbers(second, first) == NUMBER


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Is 16 GiB of RAM enough for this build?", "Is 16GiB of RAM enough for this build?"),
        ("Summarize the 5 M&A deals we closed", "Summarize the five M&A deals we closed"),
        ("Is a 2 M cable long enough for the rack?", "Is a 2-meter cable long enough for the rack?"),
        ("Set the cache TTL to 1 second", "Set the cache TTL to one second"),
        ("Our budget is $5MM for the project", "Our budget is $5 million for the project"),
        ("Keep samples at -80C", "Keep samples at minus 80 degrees Celsius"),
        (
            "Write an email announcing a price increase starting May 1",
            "Prices go up on the first of May: tell our customers",
        ),
        ("Onboarding tasks for week 2", "Onboarding tasks for the second week"),
        ("Employees earning $6,500 a month", "Employees earning $6,500 per month"),
        ("Our plan costs $99/seat per month", "Our plan costs $99 per seat monthly"),
        # When it is paid is no period it is paid in.
        ("I owe $500 next month", "I owe $500 from next month"),
    ],
)
def test_a_number_spaced_glued_or_in_words_is_the_same_number(first: str, second: str) -> None:
    assert different_numbers(first, second) is None
    assert different_numbers(second, first) is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "Write a casual email inviting the team to lunch",
            "Write a relaxed, less formal email inviting the team to lunch",
        ),
        ("Make this message casual", "Make this message friendly, not formal"),
        (
            "Write a retention email for at-risk customers",
            "Write a churn prevention email for at-risk customers",
        ),
        ("Write a summary of this article", "Read this article and give me a summary"),
    ],
)
def test_a_side_undone_beside_its_opposite_or_said_in_other_words_is_no_opposite(
    first: str, second: str
) -> None:
    assert opposite_words(first, second) is None
    assert opposite_words(second, first) is None


def test_an_added_name_alone_is_not_a_swap() -> None:
    assert different_entities("height of Everest", "elevation of Mount Everest") is None
    assert (
        different_entities("identifiers: user_id vs userId", "identifiers: user_id vs account_id") == ENTITY
    )


def _resident_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.parametrize("shape", ["many words", "few long words"])
def test_long_prompts_are_not_kept_in_the_analysis_caches(shape: str) -> None:
    # A client sending many distinct long prompts must not grow the verifier's memory: an analysis
    # is cached only for short texts, and a tuple of tokens only when its tokens are short
    # together. Kept, 200 prompts of 4,000 characters held about 24 MB (and 1,024 of them a
    # quarter of a GB); 1,000 prompts of five 800-character words (few tokens, but long) held 13 MB.
    rng = random.Random(0)
    words = ["the", "of", "report", "budget", "Berlin", "office", "migrate", "from", "to", "MySQL"]
    if shape == "many words":
        prompts = [" ".join(rng.choice(words) for _ in range(700))[:4000] for _ in range(200)]
    else:
        letters = str.maketrans("0123456789", "ghijklmnop")
        prompts = [
            " ".join(rng.randbytes(400).hex().translate(letters) for _ in range(5)) for _ in range(1000)
        ]
    gc.collect()
    before = _resident_mb()
    for first, second in itertools.pairwise(prompts):
        first_rejection(first, second)
    gc.collect()
    assert _resident_mb() - before < 8


def test_a_long_prompt_is_told_apart_from_each_of_its_candidates() -> None:
    # Past 512 characters a text's analyses are kept for one decision only: within it, every
    # candidate must still be read as itself, and the prompt the same against each.
    context = "Our team runs the nightly data jobs for the finance and the sales departments. " * 8
    asked = context + "Convert 5 km to miles for the route report."
    candidates = [
        Candidate(uuid.uuid4(), context + "Convert 5 miles to km for the route report.", 0.97),
        Candidate(uuid.uuid4(), context + "Convert 50 km to miles for the route report.", 0.97),
        Candidate(uuid.uuid4(), context + "Please convert 5 km to miles for the route report.", 0.97),
        Candidate(uuid.uuid4(), context + "Convert 5 km to miles for the route report without tolls.", 0.97),
    ]
    assert len(asked) > 512

    every_rule = VerifierPolicy(disabled_rules=frozenset())
    in_one_decision = [result.rejection for result in RulesStage().check(asked, candidates, every_rule)]
    apart = [first_rejection(asked, candidate.prompt) for candidate in candidates]

    assert in_one_decision == apart
    assert in_one_decision[0] is not None  # the units' direction reversed
    assert in_one_decision[1] == NUMBER
    assert in_one_decision[2] is None  # the same request


def test_negation_is_off_by_default_and_a_tenant_may_turn_it_on() -> None:
    asked = "a pesto recipe without nuts for a school lunch"
    stored = [Candidate(uuid.uuid4(), "a pesto recipe with nuts for a school lunch", 0.95)]

    by_default = TenantCachePolicy().verifier_policy()
    assert by_default.disabled_rules == frozenset({NEGATION})
    assert [result.rejection for result in RulesStage().check(asked, stored, by_default)] == [None]

    every_rule = TenantCachePolicy(disabled_rules=[]).verifier_policy()
    assert [result.rejection for result in RulesStage().check(asked, stored, every_rule)] == [NEGATION]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("What does tar -C do?", "What does tar -c do?"),
        ("What does the regex \\d+ match?", "What does the regex \\D+ match?"),
        ("In Go, is `Parse` exported?", "In Go, is `parse` exported?"),
        ("What does 3 // 2 return in Python?", "What does 3 / 2 return in Python?"),
        ("Why is x = 5 true here?", "Why is x == 5 true here?"),
        ("What does a && b give when b is false?", "What does a || b give when b is false?"),
        ("In C, what does x += 1 do?", "In C, what does x =+ 1 do?"),
        ("Does a < b hold for equal values?", "Does a <= b hold for equal values?"),
        ("What is 2^3 in Python?", "What is 2*3 in Python?"),
        ("What does if (a != b) do?", "What does if (a == b) do?"),
        ("What does `rm -rf ./build` delete?", "What does `rm -rf /build` delete?"),
        ("Explain `a && b || c` precedence in JavaScript", "Explain `a || b && c` precedence in JavaScript"),
        ("What is x + y * z when all are 2?", "What is x * y + z when all are 2?"),
        ("Is i++ faster than ++i here?", "Is i-- faster than ++i here?"),
        ("What does 3 - 2 give?", "What does 3 / 2 give?"),
        # The two sides of an operator that reads one way, traded.
        ("In Python, what does a - b return when a = 10?", "In Python, what does b - a return when a = 10?"),
        ("Why does `x / y` raise ZeroDivisionError here?", "Why does `y / x` raise ZeroDivisionError here?"),
        ("Explain `if a < b: swap(a, b)`", "Explain `if b < a: swap(a, b)`"),
        ("What does `git diff main..feature` show?", "What does `git diff feature..main` show?"),
        ("Why is x[0] - x[1] negative?", "Why is x[1] - x[0] negative?"),
        ("What is 10 % 3 in Python?", "What is 3 % 10 in Python?"),
        ("Is df.price / df.cost above 2?", "Is df.cost / df.price above 2?"),
    ],
)
def test_code_that_differs_in_case_or_in_an_operator_is_another_request(first: str, second: str) -> None:
    assert different_code(first, second) == CODE
    assert different_code(second, first) == CODE


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("What is the capital of France?", "what is the capital of france"),
        ("C corp or S corp: how do they differ?", "c corp vs s corp: how do they differ?"),
        ("Delete all .TMP files in C:\\Temp", "delete all .tmp files in C:\\temp"),
        ("What is in \\\\Server\\Share?", "What is in \\\\server\\share?"),
        ("What is a 30/60/90 day plan?", "What is a 30-60-90 day plan?"),
        ("John Sutter ( 1803 - 1880 ) was a pioneer", "John Sutter ( 1803 -- 1880 ) was a pioneer"),
        ("Tell me about e-mail etiquette", "Tell me about email etiquette"),
        ("How do I use a read/write lock?", "How do I use a read-write lock?"),
        ("Map the field A -> B", "Map the field A => B"),
        ("Is x==5 the same as y?", "Is x == 5 the same as y?"),
        ("What is C++?", "what is c++?"),
        ("What is Node.js?", "What is node-js?"),
        ("Write it up, e.g. as a list.", "Write it up, eg as a list."),
        ("Pioneer ( 1803 - 1880 ) - he said - arrived", "Pioneer ( 1803 -- 1880 ) - he said - arrived"),
        # Separators and marks of prose, and dashes however typed.
        ("Tea - coffee, which has more caffeine?", "Tea / coffee, which has more caffeine?"),
        ("Salt & pepper: how much?", "Salt + pepper: how much?"),
        ("Name: John | Age: 30", "Name: John - Age: 30"),
        ("Is 1.5-2 hours of sleep enough?", "Is 1.5\u20132 hours of sleep enough?"),
        ("Does 2-3% inflation hurt?", "Does 2\u20143% inflation hurt?"),
        ("Write a haiku -- about rain", "Write a haiku --- about rain"),
        ("Email John.Smith@Acme.com now", "email john.smith@acme.com now"),
        ("Why is **this** slow?", "Why is *this* slow?"),
        # Sides that read both ways, or prose's separators between words.
        ("What does a + b return?", "What does b + a return?"),
        ("Is a == b here?", "Is b == a here?"),
        ("SELECT * FROM a JOIN b ON a.id = b.id", "SELECT * FROM a JOIN b ON b.id = a.id"),
        ("Cheap Paris - London flights", "Cheap London - Paris flights"),
        ("Pros/cons of remote work", "Cons/pros of remote work"),
        ("What's the difference between x - y and y - x?", "What's the difference between y - x and x - y?"),
        ("Sort these: - apples - pears", "Sort these: - pears - apples"),
        ("Why is a-b slow?", "Why is a - b slow?"),
        # Bullets, clauses, an ellipsis, dates and lists of versions trade places in prose.
        (
            "Plan:\n- fix bug 123 in checkout\n- write docs for v2",
            "Plan:\n- write docs for v2\n- fix bug 123 in checkout",
        ),
        (
            "don't overthink it - just give me a short answer",
            "just give me a short answer - don't overthink it",
        ),
        (
            "rewrite this to sound friendlier... keep it under 100 words",
            "keep it under 100 words... rewrite this to sound friendlier",
        ),
        ("Is the office closed on 12/25?", "Is the office closed on 25/12?"),
        ("Does it run on Node 18/20?", "Does it run on Node 20/18?"),
    ],
)
def test_code_written_in_another_case_or_with_another_dash_is_the_same_request(
    first: str, second: str
) -> None:
    assert different_code(first, second) is None
    assert different_code(second, first) is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "How do I give Maria edit access to my Google Doc?",
            "How can I get edit rights on Maria's Google Doc?",
        ),
        ("Can my manager see my calendar?", "Can I see my manager's calendar?"),
        (
            "Set up an SSH tunnel so my laptop's port 8080 reaches port 80 on the remote server",
            "Set up an SSH tunnel so the remote server's port 80 reaches port 8080 on my laptop",
        ),
        (
            "List Bea's tickets from the sprint notes Bea and Colm wrote",
            "List Colm's tickets from the sprint notes Bea and Colm wrote",
        ),
    ],
)
def test_a_thing_had_by_the_other_party_is_another_request(first: str, second: str) -> None:
    assert swapped_roles(first, second) == ORDER
    assert swapped_roles(second, first) == ORDER


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Can I see my manager's calendar?", "Is it possible for me to view my manager's calendar?"),
        ("How do I share my screen with Priya?", "How can Priya see my screen?"),
        # A third person's pronoun may stand for the name; a time has nothing.
        (
            "Mr Koizumi said his remarks were inappropriate",
            "Koizumi said that Konoike's remarks were inappropriate",
        ),
        (
            "Is there a way to check my AWS bill for this month?",
            "How can I see this month's AWS bill so far?",
        ),
        # One name of several words.
        (
            "Sony's portfolio gives subscribers ring tones",
            "Sony Music's portfolio offers subscribers ring tones",
        ),
        # A thing said "of" or "for" its owner.
        ("A description of our CRM software for our shop", "A description of our shop's CRM software"),
        ("What was the reason of Alejandra's resignation?", "What was Alejandra's reason's resignation?"),
    ],
)
def test_a_thing_had_by_the_same_party_or_by_no_one_named_is_no_swap(first: str, second: str) -> None:
    assert swapped_roles(first, second) is None
    assert swapped_roles(second, first) is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Find invoices that were sent but not paid.", "Find invoices that were paid but never sent."),
        (
            "Show me deals that were closed-won in Salesforce but haven't been invoiced in NetSuite",
            "List the deals invoiced in NetSuite that aren't marked closed-won in Salesforce",
        ),
        (
            "SQL: customers who placed orders in 2023 but not in 2024",
            "SQL: customers who ordered in 2024 but not in 2023",
        ),
        (
            "Who registered for the webinar but didn't attend?",
            "Who attended the webinar without registering?",
        ),
    ],
)
def test_what_is_negated_traded_with_what_is_not_is_another_request(first: str, second: str) -> None:
    assert swapped_roles(first, second) == ORDER
    assert swapped_roles(second, first) == ORDER


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("users who signed up but never logged in", "users that registered and have not logged in since"),
        ("List employees without a manager", "List employees who don't have a manager assigned"),
        ("deals that closed but weren't invoiced", "deals that closed and haven't been invoiced yet"),
        # A question's negation sets nothing against anything; nor does a list under one negation.
        ("Why isn't Russia a member of NATO?", "Russia: why has Russia never joined NATO?"),
        (
            "Experts concluded that no one was killed or poisoned by the accident",
            "Experts concluded that no one was poisoned or killed by the accident",
        ),
    ],
)
def test_the_same_thing_negated_in_other_words_is_no_swap(first: str, second: str) -> None:
    assert swapped_roles(first, second) is None
    assert swapped_roles(second, first) is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # A label said again before each number: a list reordered.
        (
            "Pull sales for store 12 and sales for store 47 last week",
            "Pull sales for store 47 and sales for store 12 last week",
        ),
        ("Escalate tickets 101, 102 and 103 to tier 2", "Escalate tickets 103, 102 and 101 to tier 2"),
        # Amounts of two numbers each moved whole.
        ("What is 15% of $2,000 and 20% of $3,000?", "What is 20% of $3,000 and 15% of $2,000?"),
        (
            "Show me Q1 numbers for 2023 and Q1 numbers for 2024",
            "Show me Q1 numbers for 2024 and Q1 numbers for 2023",
        ),
        # Where a thing of the asker's is, said as whose it is.
        ("Update my signature in my Outlook", "Update my Outlook's signature"),
        ("How do I change my password on my work laptop?", "How do I change my work laptop's password?"),
        # A clock's hours with or without a leading zero.
        ("Display times as h:mm:ss in the report", "Display times as hh:mm:ss in the report"),
    ],
)
def test_a_list_or_a_place_or_a_leading_zero_reworded_is_the_same_request(first: str, second: str) -> None:
    assert first_rejection(first, second) is None
    assert first_rejection(second, first) is None


def test_numbers_traded_before_a_full_stop_are_still_traded() -> None:
    first = "Bookings were $3.4M and billings were $2.9M."
    second = "Bookings were $2.9M and billings were $3.4M."
    assert swapped_roles(first, second) == ORDER


def test_a_number_traded_between_two_amounts_is_another_request() -> None:
    first = "What is 15% of $2,000 and 20% of $3,000?"
    second = "What is 20% of $2,000 and 15% of $3,000?"
    assert swapped_roles(first, second) == ORDER
    assert swapped_roles(second, first) == ORDER


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("List all tables in the sales schema in Postgres", "List all tables in every schema in Postgres"),
        (
            "How do I see the disk usage of my home directory on Linux?",
            "How do I see the disk usage of every user's home directory on Linux?",
        ),
        ("Restart one pod in the payments namespace", "Restart all pods in the payments namespace"),
        (
            "Write an announcement for the finance team about the new expense tool",
            "Write an announcement for the whole company about the new expense tool",
        ),
        (
            "Turn off notifications for this channel in Slack",
            "Turn off notifications for all channels in Slack",
        ),
    ],
)
def test_every_one_of_a_kind_against_one_of_it_is_another_request(first: str, second: str) -> None:
    assert opposite_words(first, second) == ANTONYM
    assert opposite_words(second, first) == ANTONYM


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # Every one of what follows is that thing; a word that says how the kind is taken.
        ("Send the report to everyone on the team", "Send the report to my team"),
        (
            "Send a reminder to all of our offices about the fire drill",
            "Send a reminder to our offices about the fire drill",
        ),
        ("Show revenue by region", "Show revenue for every region"),
        ("Give me sales for each rep", "Give me sales per rep"),
        # "all" in a phrase of its own, "whole" not after a determiner, a word that takes in all.
        ("What are the best jokes ever?", "What are the all time best jokes?"),
        ("Is it healthy to eat egg whites every day?", "Is it healthy to eat a whole avocado every day?"),
        ("What would happen if everyone went vegetarian?", "What would happen if the world went vegetarian?"),
    ],
)
def test_every_one_of_a_kind_said_another_way_is_no_opposite(first: str, second: str) -> None:
    assert opposite_words(first, second) is None
    assert opposite_words(second, first) is None
