"""Labelled prompt pairs for training and validating the cross-encoder verifier.

Everything here is written by the project: intents (one question with slots, phrased
several ways), slot fillers (each value with the surface forms that mean the same), and
rewording rules. A pair is positive when both prompts need the same answer (another
phrasing, order, abbreviation, register, typos) and negative when most words stay but the
answer changes (another entity, number, date, version, polarity, direction, format,
language, audience or time frame; or a sibling question).

Generation is deterministic for a seed. Intents are split into train and validation by a
stable hash of their id, so validation prompts come from templates training never saw.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

# A slot value: its surface forms, all meaning the same thing. Pools are ordered so that
# neighbours are near misses (3.11 vs 3.12, Q2 vs Q3) for hard negatives.
POOLS: dict[str, list[str]] = {
    "system": [
        "VPN",
        "Okta",
        "Jira",
        "Salesforce",
        "Windows",
        "Slack",
        "GitHub",
        "Workday",
        "Outlook",
        "Zoom",
    ],
    "field": ["status", "assignee", "priority", "due date", "labels", "sprint", "reporter", "component"],
    "tracker": ["Jira", "ServiceNow", "Zendesk", "Linear"],
    "n": ["5/five", "10/ten", "20/twenty", "50/fifty", "100/a hundred", "200", "500"],
    "printer": ["HP LaserJet", "Xerox", "Canon", "Brother"],
    "errcode": ["E-04", "E-07", "50.2", "13.20", "C-101", "E-210"],
    "software": [
        "Docker Desktop",
        "Python 3.12",
        "Node.js",
        "Microsoft Teams/MS Teams",
        "PostgreSQL/Postgres",
        "VS Code/Visual Studio Code",
        "Slack",
        "Zoom",
    ],
    "os": ["macOS/a Mac/my Mac", "Windows 11/Win 11", "Windows 10/Win10", "Ubuntu 22.04", "Ubuntu 24.04"],
    "toggle": ["enable/turn on/switch on/set up", "disable/turn off/switch off/remove"],
    "network": ["guest", "corporate/office", "lab", "conference room"],
    "mailapp": ["Outlook", "Gmail", "Slack", "Teams"],
    "employee": [
        "full-time employees/full-timers",
        "part-time employees/part-timers",
        "contractors",
        "interns",
        "new hires/new joiners",
        "managers",
    ],
    "tenure": [
        "in their first year/during year one/in the first year",
        "after five years/after 5 years of service",
        "after ten years/after 10 years of service",
    ],
    "country": [
        "the US/the United States/the USA",
        "the UK/the United Kingdom",
        "Germany",
        "France",
        "India",
        "Canada",
        "Japan",
        "Brazil",
    ],
    "benefit": [
        "401k match/401(k) match",
        "health insurance",
        "stock options/equity grant",
        "wellness stipend",
        "learning budget/training budget",
        "gym reimbursement",
    ],
    "covered": ["covered/reimbursable/eligible", "not covered/not reimbursable/excluded"],
    "budget": ["travel policy", "learning budget", "home office stipend", "team events budget"],
    "request": ["time-off/PTO", "expense/expense report", "equipment", "relocation", "sick leave"],
    "hrsys": ["Workday", "BambooHR", "SAP SuccessFactors", "Personio"],
    "level": ["junior/entry-level", "mid-level", "senior", "staff", "lead"],
    "role": [
        "data analyst",
        "backend engineer",
        "product designer",
        "account executive",
        "DevOps engineer",
        "customer success manager",
    ],
    "year": ["2024", "2025", "2026", "2027"],
    "pto_action": ["carry over/roll over", "cash out/get paid for"],
    "pyop": [
        "sort a list in ascending order/sort a list ascending",
        "sort a list in descending order/reverse sort a list",
        "reverse a string",
        "remove duplicates from a list/dedupe a list",
        "merge two dictionaries/combine two dicts",
        "flatten a nested list",
        "read a CSV file/load a CSV file",
        "write a CSV file/save a CSV file",
        "read a JSON file/load a JSON file",
        "write a JSON file/dump a JSON file",
        "parse a date string into a datetime/convert a string to a datetime",
        "format a datetime as a string/convert a datetime to a string",
        "check if a file exists",
        "delete a file/remove a file",
        "get the current time in UTC",
        "get the current local time",
    ],
    "agg": ["mean/average", "median", "sum/total", "max/maximum", "min/minimum", "count/number"],
    "col": ["region", "customer", "month", "product category", "country", "sales rep"],
    "metric": ["revenue", "order value", "latency", "session length", "basket size"],
    "pyerr": [
        "KeyError",
        "TypeError",
        "IndexError",
        "AttributeError",
        "ValueError",
        "ImportError",
        "RecursionError",
        "UnicodeDecodeError",
    ],
    "pyver": ["3.9", "3.10", "3.11", "3.12", "3.13"],
    "pkgtool": ["pip", "conda", "poetry", "uv"],
    "pkg": ["numpy", "pandas", "requests", "torch/PyTorch", "scikit-learn/sklearn", "fastapi", "polars"],
    "testfw": ["pytest", "unittest"],
    "fn": [
        "parses an ISO date/parses ISO dates",
        "validates an email address/checks email addresses",
        "computes a discount",
        "slugifies a title",
        "retries an HTTP call/retries HTTP requests",
    ],
    "dtype": ["list", "tuple", "set", "dict/dictionary", "string/str", "bytes", "integer/int"],
    "entity": ["orders", "signups", "support tickets", "invoices", "refunds", "active users"],
    "group": ["customer", "region", "month", "product", "sales rep", "week"],
    "sqlop": [
        "add a column to a table",
        "drop a column from a table/remove a column from a table",
        "rename a column",
        "create an index",
        "drop an index",
        "get the current date/get today's date",
        "concatenate two strings",
        "return only the first 10 rows/limit the result to 10 rows",
        "delete duplicate rows/remove duplicate rows",
        "find duplicate rows/list duplicate rows",
        "pivot rows into columns",
        "unpivot columns into rows",
    ],
    "db": ["PostgreSQL/Postgres", "MySQL", "SQL Server/MSSQL", "BigQuery", "Snowflake", "SQLite", "Oracle"],
    "rank_entity": ["customers", "products", "sales reps", "stores", "campaigns"],
    "ranking": ["revenue", "order count/number of orders", "margin", "refund rate"],
    "timeframe": [
        "last month/in the last month/over the past month",
        "this year/year to date/so far this year",
        "last quarter/in the previous quarter",
        "in 2023",
        "in 2024",
    ],
    "sqlterm": [
        "INNER JOIN",
        "LEFT JOIN",
        "WHERE",
        "HAVING",
        "UNION",
        "UNION ALL",
        "DELETE",
        "TRUNCATE",
        "a CTE",
        "a subquery",
        "a view",
        "a materialized view",
    ],
    "quarter": ["Q1", "Q2", "Q3", "Q4"],
    "kpi": ["churn", "revenue", "NPS", "hiring", "support ticket volume", "pipeline"],
    "audience": [
        "board/board of directors",
        "sales team",
        "engineering leads",
        "whole company/all-hands",
        "investors",
    ],
    "k": ["3/three", "5/five", "7/seven"],
    "metric_term": [
        "churn rate",
        "net revenue retention/NRR",
        "customer acquisition cost/CAC",
        "customer lifetime value/LTV",
        "ARPU/average revenue per user",
        "gross margin",
        "conversion rate",
        "DAU/MAU ratio",
    ],
    "period": ["monthly/per month", "quarterly/per quarter", "annual/yearly"],
    "viz": [
        "a trend over time/change over time",
        "parts of a whole/share of a total",
        "a distribution",
        "a correlation between two variables",
        "a comparison across categories",
        "a funnel",
    ],
    "spreadsheet": ["Excel", "Google Sheets"],
    "xlop": [
        "freeze the top row",
        "freeze the first column",
        "remove duplicates",
        "create a pivot table",
        "do a VLOOKUP/use VLOOKUP",
        "use XLOOKUP",
        "split text into columns",
        "merge cells",
        "unmerge cells",
        "protect a sheet",
        "add a dropdown list",
    ],
    "updown": ["dropped/fell/went down", "increased/rose/went up"],
    "change": ["checkout redesign", "price increase", "new onboarding flow", "homepage relaunch"],
    "tone": ["polite/courteous", "apologetic", "firm", "friendly/warm", "formal"],
    "issue": [
        "refund is two weeks late/refund is 2 weeks late",
        "order arrived damaged",
        "subscription was charged twice/card was charged twice",
        "password reset email never arrived",
        "package went to the wrong address/parcel was delivered to the wrong address",
        "invoice shows the wrong VAT number",
    ],
    "decision": ["approving/accepting", "declining/rejecting/turning down"],
    "req": [
        "a refund",
        "a discount",
        "an extension of their trial/a trial extension",
        "early contract termination/ending their contract early",
        "a custom integration",
    ],
    "phrase": [
        "your order has shipped",
        "we are sorry for the delay",
        "your ticket has been closed",
        "thank you for your patience",
        "your account has been locked",
    ],
    "lang": ["German", "French", "Spanish", "Japanese", "Portuguese", "Italian", "Dutch"],
    "payment": ["credit card", "PayPal", "bank transfer", "gift card", "Apple Pay"],
    "amount": ["$200k/$200,000/200k dollars", "$350k/$350,000", "$50k/$50,000", "$500k/$500,000"],
    "rate": ["4%/4 percent", "5%/5 percent", "6.5%/6.5 percent", "7%/7 percent"],
    "years": ["10", "15", "20", "30"],
    "acct": ["401k/401(k)", "Roth IRA", "traditional IRA", "HSA", "FSA", "brokerage account"],
    "side": ["buying/purchasing", "selling"],
    "asset": ["company stock/RSUs", "bonds", "ETF shares", "index funds"],
    "holding": ["after less than a year/within a year", "after more than a year/after over a year"],
    "money": ["100", "250", "1,000/1000", "5,000/5000"],
    "cur": ["USD/US dollars", "EUR/euros", "GBP/British pounds", "JPY/Japanese yen", "CHF/Swiss francs"],
    "txn": ["an accrual", "a prepaid expense", "deferred revenue", "a depreciation entry", "a write-off"],
    "ledger": ["NetSuite", "QuickBooks", "SAP", "Xero"],
    "expense": ["hotels/hotel stays", "meals", "client dinners", "flights/airfare"],
    "region": ["Europe", "the US", "Asia", "Latin America"],
    "finterm": ["gross margin", "net margin", "EBITDA", "operating income", "free cash flow", "net income"],
    "asset_l": [
        "the product roadmap/our roadmap",
        "source code/our source code",
        "the pricing sheet/our price list",
        "the customer list/our customer list",
    ],
    "partner": ["reseller", "vendor/supplier", "prospect/potential customer", "contractor/freelancer"],
    "clause": [
        "termination",
        "limitation of liability/liability",
        "indemnification/indemnity",
        "confidentiality",
        "auto-renewal",
    ],
    "contract": [
        "our MSA/the master services agreement",
        "the DPA/the data processing agreement",
        "the reseller agreement",
        "the office lease",
    ],
    "law": ["GDPR", "CCPA", "HIPAA"],
    "data": [
        "customer emails",
        "job applicant CVs/applicants' resumes",
        "server logs",
        "payment records",
        "call recordings",
    ],
    "license": ["MIT", "GPL-3.0/GPLv3", "Apache 2.0/Apache-2.0", "AGPL", "LGPL"],
    "product_kind": ["closed-source/proprietary", "SaaS/hosted", "open-source"],
    "entform": ["LLC", "C corp", "S corp", "sole proprietorship"],
    "product": ["analytics dashboard", "mobile app", "public API", "AI assistant", "billing module"],
    "segment": [
        "retailers/retail brands",
        "hospitals/healthcare providers",
        "banks",
        "restaurants",
        "universities",
    ],
    "channel": ["LinkedIn", "Twitter/X", "Facebook", "our newsletter"],
    "buyer": ["CFO", "CTO", "head of HR", "VP of Sales"],
    "company_kind": ["startup", "mid-size retailer", "hospital", "logistics company"],
    "offer": [
        "20% off annual plans/a 20% discount on annual plans",
        "30% off annual plans",
        "a free trial extension",
        "our spring webinar",
        "our autumn webinar",
    ],
    "length_w": ["50-word", "100-word", "300-word"],
    "goods": [
        "noise-cancelling headphones",
        "a standing desk",
        "our CRM software",
        "a reusable water bottle",
        "an ergonomic chair",
    ],
    "k8s": ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Service", "Ingress"],
    "http": ["403/403 Forbidden", "404/404 Not Found", "400/400 Bad Request", "301", "500"],
    "s3ctx": ["a presigned URL", "a public object", "a cross-account request", "a static website"],
    "cloudop": [
        "rotate access keys",
        "create a VPC",
        "set up a load balancer",
        "enable autoscaling",
        "restore a database snapshot/restore a DB snapshot",
        "take a database snapshot/snapshot a DB",
        "set a budget alert",
    ],
    "cloud": ["AWS/Amazon Web Services", "GCP/Google Cloud", "Azure"],
    "kop": [
        "list all pods/get all pods",
        "delete all pods",
        "restart a deployment",
        "view the logs of a pod",
        "list all services",
    ],
    "ns": ["staging", "production/prod", "dev/development"],
    "tfres": ["an S3 bucket", "a Postgres RDS instance", "an EKS cluster", "a VPC"],
    "aws_region": ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"],
    "pgver": ["13", "14", "15", "16", "17"],
    "sysmetric": ["CPU usage", "memory usage", "disk usage", "error rate", "p99 latency"],
    "pct": ["70%", "80%", "90%", "95%"],
    "dur": ["5 minutes/5 min", "10 minutes/10 min", "1 hour/an hour"],
    "app": ["Slack", "Notion", "Confluence", "Google Docs", "Figma", "Asana", "Salesforce"],
    "prodop": [
        "share a page with an external guest",
        "export a page as PDF/export a page to PDF",
        "export a page as Markdown",
        "archive a channel",
        "delete a channel",
        "create a recurring task",
        "set up a reminder",
        "restore a deleted page",
        "change the page owner",
    ],
    "seat": ["user/seat", "admin", "guest"],
    "plan": ["Pro", "Business", "Enterprise"],
    "mute": ["mute/silence/turn off", "unmute/turn on"],
    "nscope": ["one channel/a single channel", "all channels", "weekends"],
    "setting": ["language", "time zone/timezone", "font", "currency", "date format"],
    "nation": ["Australia", "Canada", "Brazil", "Turkey", "Switzerland", "Nigeria", "New Zealand", "Morocco"],
    "qty": ["5", "10", "37", "100", "250"],
    "dist": ["km/kilometers", "miles/mi", "meters/metres", "feet/ft"],
    "weight": ["kg/kilograms", "pounds/lbs", "grams/g", "ounces/oz"],
    "concept": [
        "gradient descent",
        "inflation",
        "photosynthesis",
        "blockchain",
        "compound interest",
        "public key cryptography",
    ],
    "listener": [
        "a ten-year-old/a 10 year old/a child",
        "a beginner/a complete beginner",
        "an expert/a PhD student",
        "an executive/a CEO",
    ],
    "city": ["London", "New York/NYC", "Tokyo", "Berlin", "Sydney", "Paris", "Toronto"],
    "hour": ["9am/9 AM", "3pm/3 PM", "noon/12pm"],
    "day": ["today", "tomorrow", "this weekend"],
    "event": [
        "the fall of the Berlin Wall",
        "the first Moon landing",
        "the start of the French Revolution",
        "the founding of the United Nations",
    ],
}


@dataclass(frozen=True)
class Intent:
    """One question: phrasings that all need the same answer, with slots from POOLS."""

    id: str
    domain: str
    phrasings: tuple[str, ...]
    # When two slots share a pool, swapping them changes the answer unless the intent is symmetric.
    symmetric: bool = False
    # Intents of one group make sibling negatives for each other (same slot values, other question).
    group: str = ""


def _intents() -> list[Intent]:
    # Format: "domain | group | flags" header lines ("@"), then one intent per line,
    # phrasings separated by " || ". Flag "~": slots of one pool may be swapped freely.
    spec = """
@it
reset | How do I reset my {system} password? || I forgot my {system} password, how can I reset it || steps to reset a {system} password || {system} password reset - how? || Can you walk me through resetting my password for {system}?
unlock | My {system} account is locked, how do I unlock it? || {system} account locked out, what do I do || how to unlock a locked {system} account || I got locked out of {system}, how can I get back in?
bulk | How do I bulk change the {field} on {n} tickets in {tracker}? || {tracker}: change the {field} of {n} tickets at once || is there a way to update the {field} for {n} {tracker} tickets in one go || bulk edit {field} on {n} tickets ({tracker})
printer | Our {printer} printer shows error {errcode}, what should I do? || {printer} printer error {errcode} - how to fix? || How do I fix error {errcode} on a {printer} printer? || getting {errcode} on the {printer} printer, help
install | How do I install {software} on {os}? || install {software} on {os} || what's the way to set up {software} on {os} || {software} installation steps for {os} || Could you explain how to get {software} installed on {os}?
mfa | How do I {toggle} MFA on my {system} account? || {toggle} two-factor authentication for {system} || {toggle} 2FA on {system} - steps? || I want to {toggle} multi-factor auth for my {system} login
wifi | My laptop can't connect to the {network} wifi || unable to join the {network} wireless network on my laptop || laptop won't connect to {network} wi-fi, help || cannot get on the {network} Wi-Fi from my laptop
attach | What is the attachment size limit in {mailapp}? || max attachment size {mailapp} || how big can attachments be in {mailapp}? || {mailapp}: what's the largest file I can attach
admin | How do I request admin rights on my {os} laptop? || request local admin access on {os} || I need admin privileges on my {os} machine, how do I ask for them || process to get admin rights on {os}
@hr
vacation | How many vacation days do {employee} get {tenure}? || {employee}: how much PTO {tenure}? || what's the annual leave entitlement for {employee} {tenure} || vacation day allowance for {employee} {tenure}
parental | What is the parental leave policy for {employee} in {country}? || {country} parental leave rules for {employee} || how much parental leave can {employee} take in {country}? || parental leave for {employee} based in {country}
eligible | Are {employee} eligible for the {benefit}? || do {employee} qualify for the {benefit} || {benefit} eligibility for {employee} || can {employee} get the {benefit}?
covered | Which expenses are {covered} under the {budget}? || list the expenses {covered} by our {budget} || what is {covered} under the {budget}? || {budget}: what expenses are {covered}
hrreq | How do I submit a {request} request in {hrsys}? || {hrsys}: how to file a {request} request || where do I make a {request} request in {hrsys} || submitting {request} requests through {hrsys}
jobdesc | Write a job description for a {level} {role} || draft a JD for a {level} {role} role || job posting for a {level} {role}, please || Can you write up a job ad for a {level} {role}?
carry | Can I {pto_action} unused vacation days in {year}? || is it possible to {pto_action} leftover PTO in {year} || {pto_action} unused holiday days - allowed in {year}? || unused PTO in {year}: can I {pto_action} it?
@python
pyop | How do I {pyop} in Python? || python: {pyop} || what's the pythonic way to {pyop} || {pyop} python example || Show me how to {pyop} with Python
groupby | pandas: group by {col} and take the {agg} of {metric} || How do I compute the {agg} {metric} per {col} in pandas? || pandas groupby {col} {agg} {metric} || in pandas, {agg} {metric} for each {col}
pyerr | What does {pyerr} mean in Python and how do I fix it? || python {pyerr} - how to fix || fix {pyerr} python || I keep getting a {pyerr} in my Python script, what causes it?
pyver | What's new in Python {pyver}? || python {pyver} new features || changes introduced in Python {pyver} || what changed in py{pyver}
pkg | How do I install {pkg} with {pkgtool}? || {pkgtool} install {pkg} - command? || command to add {pkg} using {pkgtool} || installing {pkg} via {pkgtool}
unittest | Write a {testfw} unit test for a function that {fn} || {testfw} tests for a function which {fn} || unit tests in {testfw}: function that {fn} || Can you write {testfw} tests for a function that {fn}?
convert | How do I convert a {dtype} to a {dtype2} in Python? || python convert {dtype} to {dtype2} || turn a {dtype} into a {dtype2} in Python || {dtype} -> {dtype2} conversion in python
@sql
count | SQL: count {entity} per {group} in {year} || write a SQL query that counts the {entity} for each {group} in {year} || how many {entity} per {group} in {year} - SQL || query to count {entity} grouped by {group}, year {year}
sqlop | How do I {sqlop} in {db}? || {db}: {sqlop} || {sqlop} in {db} - syntax? || What is the syntax to {sqlop} in {db}?
topn | Write a SQL query to find the top {n} {rank_entity} by {ranking} {timeframe} || SQL for the top {n} {rank_entity} ranked by {ranking} {timeframe} || top {n} {rank_entity} by {ranking} {timeframe}, as a SQL query || query: which {n} {rank_entity} had the highest {ranking} {timeframe}
sqldiff ~ | What's the difference between {sqlterm} and {sqlterm2} in SQL? || {sqlterm} vs {sqlterm2} in SQL || SQL: {sqlterm} or {sqlterm2}, what's the difference? || explain {sqlterm} versus {sqlterm2}
sqlport | Convert this {db} query to {db2} syntax || translate a {db} query into {db2} || port SQL from {db} to {db2} || rewrite {db} SQL for {db2}
@analytics
summary | Summarise the {quarter} {kpi} numbers for the {audience} in {k} bullet points || give me a {k}-bullet summary of {quarter} {kpi} for the {audience} || {quarter} {kpi} summary for the {audience}, {k} bullets || summarize {quarter} {kpi} for the {audience} in {k} bullets
define | What does {metric_term} mean? || define {metric_term} || explain {metric_term} in simple terms || what is {metric_term}?
calc | How do I calculate {period} {metric_term}? || formula for {period} {metric_term} || {period} {metric_term} - how is it calculated? || how to compute {metric_term} on a {period} basis
chart | Which chart should I use to show {viz}? || best chart type for {viz} || what visualization works for {viz}? || chart for showing {viz}
sheet | In {spreadsheet}, how do I {xlop}? || {spreadsheet}: {xlop} || how to {xlop} in {spreadsheet} || {xlop} in {spreadsheet}?
conv | Why might our conversion rate have {updown} after the {change}? || conversion {updown} after the {change} - possible reasons? || what could explain conversion having {updown} since the {change} || our conversion rate {updown} after the {change}, why?
@support
reply | Draft a {tone} reply to a customer whose {issue} || write a {tone} response to a customer: {issue} || customer email: {issue}. Write a {tone} reply || {tone} answer for a customer whose {issue}
decide | Write a reply {decision} a customer's request for {req} || draft an email {decision} a client's request for {req} || customer asked for {req}, write a response {decision} it || response {decision} a request for {req}
translate | Translate '{phrase}' into {lang} || how do you say '{phrase}' in {lang}? || {lang} translation of '{phrase}' || '{phrase}' in {lang} please
refundtime | How long does a refund take for orders paid with {payment}? || refund time for {payment} orders || when do customers who paid by {payment} get their refund? || {payment} refunds - how many days?
@finance
loan | Calculate the monthly payment on a {amount} loan at {rate} over {years} years || monthly payment for a {amount} loan, {rate} interest, {years}-year term || what would I pay per month on {amount} borrowed at {rate} for {years} years? || {amount} loan, {rate}, {years} years: monthly payment?
acct ~ | What's the difference between a {acct} and a {acct2}? || {acct} vs {acct2} || {acct} or {acct2}, which is which? || compare a {acct} with a {acct2}
tax | What are the tax consequences of {side} {asset} {holding}? || tax implications of {side} {asset} {holding} || how is {side} {asset} {holding} taxed? || taxes when {side} {asset} {holding}
fx | How much is {money} {cur} in {cur2}? || convert {money} {cur} to {cur2} || {money} {cur} to {cur2} || what's {money} {cur} worth in {cur2}?
book | How do I book {txn} in {ledger}? || {ledger}: recording {txn} || steps to record {txn} in {ledger} || journal entry for {txn} in {ledger}
limit | What is our expense limit for {expense} when travelling to {region}? || spending cap on {expense} for trips to {region} || how much can I spend on {expense} travelling in {region}? || {region} travel: limit for {expense}
finterm ~ | Explain the difference between {finterm} and {finterm2} || {finterm} vs {finterm2}, what's the difference? || how does {finterm} differ from {finterm2}? || {finterm} compared with {finterm2}
@legal
nda | Is an NDA needed before sharing {asset_l} with a {partner}? || do we need a signed NDA to share {asset_l} with a {partner} || NDA required? sharing {asset_l} with a {partner} || before I send {asset_l} to a {partner}, do we need an NDA?
clause | Summarise the {clause} clause in {contract} || what does the {clause} clause of {contract} say? || {contract}: summary of the {clause} clause || give me the gist of the {clause} clause in {contract}
retention | Under {law}, how long can we keep {data}? || {law} retention period for {data} || how long may we store {data} under {law}? || {data}: maximum retention under {law}
license | Can we use {license} licensed code in a {product_kind} product? || is {license} code OK to ship in a {product_kind} product? || using {license} libraries in {product_kind} software - allowed? || {license} license: can it go into our {product_kind} product?
entity ~ | What is the difference between an {entform} and an {entform2}? || {entform} vs {entform2} || {entform} or {entform2}: how do they differ? || compare {entform} and {entform2}
@sales
post | Write a {channel} post announcing our new {product} for {segment} || draft a {channel} announcement: new {product} for {segment} || {channel} post to launch our {product} aimed at {segment} || announce our {product} for {segment} on {channel}
cold | Write a cold email to a {buyer} at a {company_kind} about our {product} || cold outreach email: {buyer} at a {company_kind}, pitching our {product} || draft a cold email pitching our {product} to the {buyer} of a {company_kind} || email to a {company_kind} {buyer} introducing our {product}
subject | Give me {k} subject lines for an email promoting {offer} || {k} email subject lines for {offer} || suggest {k} subject lines: email about {offer} || write {k} subject lines to promote {offer}
desc | Write a {length_w} product description for {goods} || {length_w} description of {goods} for our shop || product copy for {goods}, {length_w} || draft a {length_w} blurb describing {goods}
tagline | Write a tagline for {goods} aimed at {segment} || tagline ideas: {goods} for {segment} || slogan for {goods} targeting {segment} || a catchy line selling {goods} to {segment}
@cloud
k8s ~ | Explain the difference between a Kubernetes {k8s} and a {k8s2} || k8s {k8s} vs {k8s2} || when should I use a {k8s} instead of a {k8s2} in Kubernetes? || Kubernetes: {k8s} or {k8s2}?
s3 | Why does my S3 bucket return {http} for {s3ctx}? || S3 {http} error with {s3ctx} || getting {http} from S3 on {s3ctx}, why? || {s3ctx} on S3 gives {http} - cause?
cloudop | How do I {cloudop} in {cloud}? || {cloud}: {cloudop} || steps to {cloudop} on {cloud} || what's the way to {cloudop} in {cloud}
kubectl | kubectl command to {kop} in the {ns} namespace || how do I {kop} in namespace {ns} with kubectl || {kop} in {ns} using kubectl || kubectl: {kop}, namespace {ns}
tf | Write a Terraform config for {tfres} in {aws_region} || terraform for {tfres}, region {aws_region} || Terraform code to create {tfres} in {aws_region} || give me terraform that provisions {tfres} in {aws_region}
pgup | How do I upgrade PostgreSQL from {pgver} to {pgver2}? || Postgres {pgver} -> {pgver2} upgrade steps || steps for migrating a Postgres {pgver} database to version {pgver2} || upgrading from PG {pgver} to PG {pgver2}
alert | Set up an alert when {sysmetric} goes above {pct} for {dur} || alert if {sysmetric} exceeds {pct} for {dur} || how do I get alerted when {sysmetric} is over {pct} for {dur}? || alerting rule: {sysmetric} > {pct} for {dur}
@product
prodop | How do I {prodop} in {app}? || {app}: how to {prodop} || {prodop} in {app}? || steps to {prodop} in {app}
seat | How do I add a {seat} to our {plan} plan? || add a {seat} on the {plan} plan || adding a {seat} to a {plan} subscription || can I add another {seat} to the {plan} plan, and how?
notify | In {app}, how do I {mute} notifications for {nscope}? || {app}: {mute} notifications for {nscope} || how to {mute} {app} notifications for {nscope} || {mute} notifications in {app} for {nscope}
setting | How do I change the default {setting} in {app}? || {app}: change default {setting} || where do I set the default {setting} in {app} || changing the {setting} default in {app}
@general
capital | What is the capital of {nation}? || capital city of {nation} || {nation}'s capital? || which city is the capital of {nation}
population | What is the population of {nation}? || population of {nation} || how many people live in {nation}? || {nation} population
distance | Convert {qty} {dist} to {dist2} || {qty} {dist} in {dist2} || how many {dist2} is {qty} {dist}? || {qty} {dist} to {dist2} conversion
weight | Convert {qty} {weight} to {weight2} || {qty} {weight} in {weight2} || how many {weight2} are {qty} {weight}? || {qty} {weight} -> {weight2}
explain | Explain {concept} to {listener} || how would you explain {concept} to {listener}? || {concept} explained for {listener} || describe {concept} so that {listener} understands
timezone | What time is it in {city} when it's {hour} in {city2}? || {hour} in {city2} is what time in {city}? || if it's {hour} in {city2}, what time is it in {city} || {city2} {hour} -> {city} time
weather | weather in {city} {day} || what's the weather like in {city} {day}? || {city} weather forecast {day} || will it rain in {city} {day}?
when | When did {event} happen? || what year was {event}? || date of {event} || in which year did {event} take place?
"""
    intents: list[Intent] = []
    domain = ""
    for raw in spec.strip().splitlines():
        line = raw.strip()
        if line.startswith("@"):
            domain = line[1:]
            continue
        head, body = line.split(" | ", 1)
        name, *flags = head.split()
        phrasings = tuple(part.strip() for part in body.split(" || "))
        intents.append(Intent(f"{domain}/{name}", domain, phrasings, symmetric="~" in flags, group=domain))
    return intents


INTENTS: list[Intent] = _intents()
SLOT = re.compile(r"\{([a-z_0-9]+)\}")

# Optional endings that shape the answer: same value (any surface) keeps a pair positive,
# another value (or none) makes it negative.
MODIFIERS: dict[str, list[str]] = {
    "format": [
        "as a table/in a table/in table form",
        "as JSON/in JSON format/formatted as JSON",
        "as a bulleted list/in bullet points",
        "as a numbered list/in numbered steps",
    ],
    "language": [
        "answer in French/reply in French/in French please",
        "answer in German/reply in German",
        "answer in Spanish/reply in Spanish/en español",
    ],
    "length": [
        "in one sentence/in a single sentence",
        "in under 100 words/in less than 100 words",
        "in detail/with full detail",
    ],
    "audience": [
        "for a non-technical audience/for non-technical readers",
        "for senior engineers/for experts",
    ],
}

# Rewordings that never change what must be answered.
PREFIXES = [
    "",
    "",
    "",
    "Quick question: ",
    "Hi, ",
    "hey - ",
    "Please help: ",
    "Question: ",
    "I need to know: ",
    "Can you help? ",
    "Hello team, ",
]
SUFFIXES = ["", "", "", " thanks", " thx", " pls", " asap", " (urgent)", " - thank you!", " :)"]
ABBREVIATIONS = {
    "please": "pls",
    "you": "u",
    "information": "info",
    "database": "db",
    "configuration": "config",
    "application": "app",
    "documentation": "docs",
    "with": "w/",
    "without": "w/o",
    "because": "bc",
    "kubernetes": "k8s",
    "message": "msg",
    "account": "acct",
    "number": "no.",
    "minutes": "mins",
    "question": "q",
    "tomorrow": "tmrw",
    "thanks": "thx",
}


@dataclass(frozen=True)
class Pair:
    first: str
    second: str
    label: int
    kind: str
    intent: str


def in_validation(intent: Intent) -> bool:
    """About a quarter of the intents are held out, chosen by a stable hash of their id."""
    digest = hashlib.sha256(intent.id.encode()).digest()
    return digest[0] % 4 == 0


def _pool_name(slot: str) -> str:
    return slot.rstrip("0123456789")


def _surface(value: str, rng: random.Random) -> str:
    return rng.choice(value.split("/"))


def _typo(word: str, rng: random.Random) -> str:
    index = rng.randrange(1, len(word) - 1)
    if rng.random() < 0.5:
        return word[:index] + word[index + 1] + word[index] + word[index + 2 :]
    return word[:index] + word[index + 1 :]


def noise(text: str, rng: random.Random, strength: float) -> str:
    """Change the surface of a prompt, never what it asks."""
    words = text.split(" ")
    for index, word in enumerate(words):
        lower = word.lower()
        if lower in ABBREVIATIONS and rng.random() < strength * 0.4:
            words[index] = ABBREVIATIONS[lower]
        elif word.isalpha() and len(word) >= 5 and rng.random() < strength * 0.05:
            words[index] = _typo(word, rng)
    text = " ".join(words)
    if rng.random() < strength * 0.5:
        text = text.lower()
    if rng.random() < strength * 0.4:
        text = text.rstrip("?.!")
    if rng.random() < strength:
        text = rng.choice(PREFIXES) + text + rng.choice(SUFFIXES)
    return text.strip()


def _different(pool: list[str], current: str, rng: random.Random) -> str:
    """Another value of the pool, a neighbour half the time (the hardest look-alikes)."""
    index = pool.index(current)
    if rng.random() < 0.5 and len(pool) > 2:
        neighbours = [pool[i] for i in (index - 1, index + 1) if 0 <= i < len(pool)]
        return rng.choice(neighbours)
    return rng.choice([value for value in pool if value != current])


class PairGenerator:
    """Draws labelled pairs from a set of intents; the same seed gives the same pairs."""

    def __init__(self, intents: list[Intent], seed: int) -> None:
        self.intents = intents
        self.rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets

    def _fill(self, intent: Intent) -> dict[str, str]:
        values: dict[str, str] = {}
        for slot in sorted({match for phrasing in intent.phrasings for match in SLOT.findall(phrasing)}):
            pool = POOLS[_pool_name(slot)]
            taken = {value for name, value in values.items() if _pool_name(name) == _pool_name(slot)}
            values[slot] = self.rng.choice([value for value in pool if value not in taken])
        return values

    def _modifier(self) -> tuple[str, str] | None:
        if self.rng.random() < 0.7:
            return None
        kind = self.rng.choice(sorted(MODIFIERS))
        return kind, self.rng.choice(MODIFIERS[kind])

    def _render(self, phrasing: str, values: dict[str, str], modifier: tuple[str, str] | None) -> str:
        text = SLOT.sub(lambda match: _surface(values[match.group(1)], self.rng), phrasing)
        if modifier is not None:
            joiner = self.rng.choice([", ", " ", " - ", "; "])
            text = text.rstrip("?.") + joiner + _surface(modifier[1], self.rng)
        return text[0].upper() + text[1:] if self.rng.random() < 0.5 else text

    def _two_phrasings(self, intent: Intent, same_rate: float) -> tuple[str, str]:
        if self.rng.random() < same_rate:
            phrasing = self.rng.choice(intent.phrasings)
            return phrasing, phrasing
        first, second = self.rng.sample(list(intent.phrasings), 2)
        return first, second

    def positive(self) -> Pair:
        intent = self.rng.choice(self.intents)
        values = self._fill(intent)
        modifier = self._modifier()
        first_phrasing, second_phrasing = self._two_phrasings(intent, same_rate=0.2)
        second_values = dict(values)
        kind = "reword"
        if intent.symmetric and self.rng.random() < 0.5:
            names = [name for name in values if _pool_name(name) != name]
            if names:
                other = _pool_name(names[0])
                second_values[other], second_values[names[0]] = values[names[0]], values[other]
                kind = "symmetric-swap"
        first = noise(self._render(first_phrasing, values, modifier), self.rng, 0.3)
        second = noise(self._render(second_phrasing, second_values, modifier), self.rng, 0.8)
        return Pair(*self._ordered(first, second), 1, kind, intent.id)

    def negative(self) -> Pair:
        intent = self.rng.choice(self.intents)
        values = self._fill(intent)
        modifier = self._modifier()
        first_phrasing, second_phrasing = self._two_phrasings(intent, same_rate=0.5)
        second_values = dict(values)
        second_modifier = modifier
        second_intent_phrasing = second_phrasing
        roll = self.rng.random()
        swappable = [name for name in values if _pool_name(name) != name] if not intent.symmetric else []
        if swappable and roll < 0.45:
            other = _pool_name(swappable[0])
            second_values[other], second_values[swappable[0]] = values[swappable[0]], values[other]
            kind = "direction"
        elif roll < 0.75 or (roll < 0.87 and len(self.intents) < 2):
            slot = self.rng.choice(sorted(values))
            second_values[slot] = _different(POOLS[_pool_name(slot)], values[slot], self.rng)
            kind = f"slot:{_pool_name(slot)}"
        elif roll < 0.87:
            siblings = [
                other for other in self.intents if other.group == intent.group and other.id != intent.id
            ]
            sibling = self.rng.choice(siblings or [other for other in self.intents if other.id != intent.id])
            sibling_values = self._fill(sibling)
            # Keep shared slot values so the sibling looks as close as it can.
            sibling_values.update({name: value for name, value in values.items() if name in sibling_values})
            second_values = sibling_values
            second_intent_phrasing = self.rng.choice(sibling.phrasings)
            kind = "sibling"
        else:
            kind_name = modifier[0] if modifier else self.rng.choice(sorted(MODIFIERS))
            choices = [value for value in MODIFIERS[kind_name] if modifier is None or value != modifier[1]]
            # Dropping a format or language asks for another output; dropping "in detail" may not.
            if modifier is not None and kind_name in ("format", "language") and self.rng.random() < 0.3:
                second_modifier = None
            else:
                second_modifier = (kind_name, self.rng.choice(choices))
            kind = f"modifier:{kind_name}"
        first = noise(self._render(first_phrasing, values, modifier), self.rng, 0.3)
        second = noise(self._render(second_intent_phrasing, second_values, second_modifier), self.rng, 0.8)
        return Pair(*self._ordered(first, second), 0, kind, intent.id)

    def _ordered(self, first: str, second: str) -> tuple[str, str]:
        # The stored prompt can be either side; the model must not learn which side is noisier.
        return (first, second) if self.rng.random() < 0.5 else (second, first)

    def pairs(self, count: int) -> Iterator[Pair]:
        for index in range(count):
            pair = self.positive() if index % 2 == 0 else self.negative()
            if pair.first.lower() == pair.second.lower() and pair.label == 0:
                continue  # A slot change that is invisible on the surface is no negative.
            yield pair


def generate(count: int, seed: int, *, validation: bool) -> list[Pair]:
    """`count` pairs (half positive) from the training or the held-out validation intents."""
    intents = [intent for intent in INTENTS if in_validation(intent) == validation]
    return list(PairGenerator(intents, seed).pairs(count))
